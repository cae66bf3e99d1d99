package node

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/patchgate/patchgate/dataplane/engine"
	"github.com/patchgate/patchgate/dataplane/flow"
	"github.com/patchgate/patchgate/dataplane/inline"
	"github.com/patchgate/patchgate/dataplane/inline/afpacket"
	"github.com/patchgate/patchgate/dataplane/inline/nfqueue"
)

// Modes of the dataplane.
const (
	ModeNFQueue  = "nfqueue"
	ModeAFPacket = "afpacket"
)

// Defaults of the node configuration, in one place.
const (
	DefaultName         = "patchgate"
	DefaultPatches      = "/etc/patchgate/patches"
	DefaultEVE          = "/var/log/patchgate/eve.json"
	DefaultListen       = "127.0.0.1:9100"
	DefaultMaxFlows     = 262144
	DefaultMaxFlowBytes = 256 << 20
)

var nameRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$`)

// Config is the node's configuration file (YAML). Field paths in errors use
// the YAML keys, e.g. dataplane.nfqueue.queues.
type Config struct {
	// Name is the node's unique name: metrics label, EVE host, rule and
	// bridge names.
	Name      string       `yaml:"name"`
	Dataplane Dataplane    `yaml:"dataplane"`
	Patches   string       `yaml:"patches"`
	Engine    EngineConfig `yaml:"engine"`
	// EVE is the alert output: a file, "-" for standard output, "" for none.
	EVE  string     `yaml:"eve"`
	HTTP HTTPConfig `yaml:"http"`
	Log  LogConfig  `yaml:"log"`
	// Cluster, when present, joins a patchgate cluster (see ClusterConfig).
	Cluster *ClusterConfig `yaml:"cluster"`
	// Bus shares flow checkpoints with the other nodes (see BusConfig).
	Bus BusConfig `yaml:"bus"`
	// Drain says when a drained node's flows have moved (see DrainConfig).
	Drain DrainConfig `yaml:"drain"`
}

// Dataplane selects and configures the inline backend.
type Dataplane struct {
	// Mode is nfqueue (L3 routed hop) or afpacket (L2 bridge).
	Mode string `yaml:"mode"`
	// Fail is open or closed: what happens to traffic on overload and stop.
	Fail     string         `yaml:"fail"`
	NFQueue  NFQueueConfig  `yaml:"nfqueue"`
	AFPacket AFPacketConfig `yaml:"afpacket"`
}

// NFQueueConfig configures the NFQUEUE backend.
type NFQueueConfig struct {
	QueueBase int      `yaml:"queue_base"`
	Queues    int      `yaml:"queues"`
	Chains    []string `yaml:"chains"`
	Match     []string `yaml:"match"`
	Batch     int      `yaml:"batch"`
}

// AFPacketConfig configures the AF_PACKET bridge backend.
type AFPacketConfig struct {
	Interfaces []string `yaml:"interfaces"`
	Fanout     int      `yaml:"fanout"`
	BlockSize  int      `yaml:"block_size"`
	NumBlocks  int      `yaml:"num_blocks"`
}

// EngineConfig are the engine knobs the file exposes.
type EngineConfig struct {
	Midstream    string `yaml:"midstream"`
	Checksums    string `yaml:"checksums"`
	Violations   string `yaml:"violations"`
	MaxFlows     int    `yaml:"max_flows"`
	MaxFlowBytes int64  `yaml:"max_flow_bytes"`
}

// HTTPConfig configures the observability endpoint.
type HTTPConfig struct {
	// Listen is host:port for /metrics, /healthz and /readyz ("" = off).
	Listen string `yaml:"listen"`
}

// LogConfig configures the structured log on standard error.
type LogConfig struct {
	Level  string `yaml:"level"`
	Format string `yaml:"format"`
}

// DefaultConfig returns the defaults (a valid configuration).
func DefaultConfig() Config {
	return Config{
		Name: DefaultName,
		Dataplane: Dataplane{
			Mode: ModeNFQueue, Fail: "open",
			NFQueue: NFQueueConfig{Queues: nfqueue.DefaultQueues, Chains: []string{"FORWARD"}, Match: []string{},
				Batch: nfqueue.DefaultBatch},
			AFPacket: AFPacketConfig{Interfaces: []string{"eth0", "eth1"}, Fanout: afpacket.DefaultFanout,
				BlockSize: afpacket.DefaultBlockSize, NumBlocks: afpacket.DefaultNumBlocks},
		},
		Patches: DefaultPatches,
		Engine: EngineConfig{Midstream: "pickup", Checksums: "validate", Violations: "count",
			MaxFlows: DefaultMaxFlows, MaxFlowBytes: DefaultMaxFlowBytes},
		EVE:   DefaultEVE,
		HTTP:  HTTPConfig{Listen: DefaultListen},
		Log:   LogConfig{Level: "info", Format: "json"},
		Bus:   DefaultBusConfig(),
		Drain: DefaultDrainConfig(),
	}
}

// FieldError is a problem with one field of the configuration.
type FieldError struct {
	// Path is the field's YAML path, e.g. dataplane.nfqueue.queues.
	Path string
	Msg  string
}

func (e *FieldError) Error() string { return "config: " + e.Path + ": " + e.Msg }

// Validate checks every field and returns all problems (joined *FieldError),
// each naming the field path and what is wrong. Only the section of the
// selected dataplane mode is checked.
func (c Config) Validate() error {
	var errs []error
	bad := func(path, format string, args ...any) {
		errs = append(errs, &FieldError{Path: path, Msg: fmt.Sprintf(format, args...)})
	}
	if !nameRe.MatchString(c.Name) {
		bad("name", "must be 1-63 letters, digits, '.', '_' or '-' starting with a letter or digit, got %q", c.Name)
	}
	if c.Cluster != nil {
		c.Cluster.validate(bad)
	}
	if c.Bus.Enabled {
		c.Bus.validate(c.Name, bad)
	}
	c.Drain.validate(bad)
	dp := c.Dataplane
	if _, err := inline.ParseFailPolicy(dp.Fail); err != nil {
		bad("dataplane.fail", "must be open or closed, got %q", dp.Fail)
	}
	switch dp.Mode {
	case ModeNFQueue:
		q := dp.NFQueue
		if q.Queues < 1 || q.Queues > 64 {
			bad("dataplane.nfqueue.queues", "must be 1..64, got %d", q.Queues)
		}
		if q.QueueBase < 0 || q.QueueBase > 65535 {
			bad("dataplane.nfqueue.queue_base", "must be 0..65535, got %d", q.QueueBase)
		} else if q.Queues >= 1 && q.QueueBase+q.Queues-1 > 65535 {
			bad("dataplane.nfqueue.queue_base", "queues %d..%d exceed 65535", q.QueueBase, q.QueueBase+q.Queues-1)
		}
		if len(q.Chains) == 0 {
			bad("dataplane.nfqueue.chains", "must name at least one of INPUT, FORWARD, OUTPUT")
		}
		for i, ch := range q.Chains {
			if !slices.Contains(nfqueue.BuiltinChains, ch) {
				bad(fmt.Sprintf("dataplane.nfqueue.chains[%d]", i), "must be INPUT, FORWARD or OUTPUT, got %q", ch)
			} else if slices.Index(q.Chains, ch) != i {
				bad(fmt.Sprintf("dataplane.nfqueue.chains[%d]", i), "%s is listed twice", ch)
			}
		}
		if err := nfqueue.ValidateMatch(q.Match); err != nil {
			bad("dataplane.nfqueue.match", "%s", strings.TrimPrefix(err.Error(), "nfqueue: "))
		}
		if q.Batch < 1 || q.Batch > 1024 {
			bad("dataplane.nfqueue.batch", "must be 1..1024, got %d", q.Batch)
		}
	case ModeAFPacket:
		a := dp.AFPacket
		if len(a.Interfaces) != 2 {
			bad("dataplane.afpacket.interfaces", "must list exactly two interfaces, got %d", len(a.Interfaces))
		} else if a.Interfaces[0] == a.Interfaces[1] {
			bad("dataplane.afpacket.interfaces", "must be two different interfaces, got %q twice", a.Interfaces[0])
		}
		for i, ifc := range a.Interfaces {
			if ifc == "" || len(ifc) > 15 || strings.ContainsAny(ifc, "/: \t") {
				bad(fmt.Sprintf("dataplane.afpacket.interfaces[%d]", i), "%q is not an interface name", ifc)
			}
		}
		if a.Fanout < 1 || a.Fanout > 64 {
			bad("dataplane.afpacket.fanout", "must be 1..64, got %d", a.Fanout)
		}
		if err := afpacket.ValidateRing(a.BlockSize, 2); err != nil {
			bad("dataplane.afpacket.block_size", "must be a multiple of the page size in %d..%d, got %d",
				afpacket.MinBlockSize, 64<<20, a.BlockSize)
		}
		if a.NumBlocks < 2 || a.NumBlocks > 4096 {
			bad("dataplane.afpacket.num_blocks", "must be 2..4096, got %d", a.NumBlocks)
		}
	default:
		bad("dataplane.mode", "must be nfqueue or afpacket, got %q", dp.Mode)
	}
	if c.Patches == "" {
		bad("patches", "must name the directory of virtual patches")
	}
	e := c.Engine
	if _, err := engine.ParseMidstream(e.Midstream); err != nil {
		bad("engine.midstream", "must be pickup, drop or reset, got %q", e.Midstream)
	}
	if _, err := engine.ParseChecksum(e.Checksums); err != nil {
		bad("engine.checksums", "must be auto, validate or ignore, got %q", e.Checksums)
	}
	if _, err := engine.ParseViolations(e.Violations); err != nil {
		bad("engine.violations", "must be count, alert or block, got %q", e.Violations)
	}
	if e.MaxFlows < 1 {
		bad("engine.max_flows", "must be at least 1, got %d", e.MaxFlows)
	}
	if e.MaxFlowBytes < flow.EntryOverhead {
		bad("engine.max_flow_bytes", "must be at least %d, got %d", flow.EntryOverhead, e.MaxFlowBytes)
	}
	if c.HTTP.Listen != "" {
		host, port, err := net.SplitHostPort(c.HTTP.Listen)
		if p, perr := strconv.Atoi(port); err != nil || perr != nil || p < 0 || p > 65535 {
			bad("http.listen", "must be host:port, got %q", c.HTTP.Listen)
		} else if host != "" && net.ParseIP(host) == nil && host != "localhost" {
			bad("http.listen", "host must be an IP address or localhost, got %q", host)
		}
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		bad("log.level", "must be debug, info, warn or error, got %q", c.Log.Level)
	}
	if c.Log.Format != "json" && c.Log.Format != "text" {
		bad("log.format", "must be json or text, got %q", c.Log.Format)
	}
	return errors.Join(errs...)
}

// engineConfig returns the engine configuration with shards workers.
func (c Config) engineConfig(shards int) engine.Config {
	ec := engine.DefaultConfig()
	ec.Shards = shards
	ec.Midstream, _ = engine.ParseMidstream(c.Engine.Midstream)
	ec.Checksums, _ = engine.ParseChecksum(c.Engine.Checksums)
	ec.Violations, _ = engine.ParseViolations(c.Engine.Violations)
	ec.Flow.MaxFlows = c.Engine.MaxFlows
	ec.Flow.MaxBytes = c.Engine.MaxFlowBytes
	// Inline, every byte passes through the node: an acknowledgement of bytes
	// it never forwarded is forged or asymmetric routing, never capture loss.
	ec.Stream.GapOnAck = false
	return ec
}

// fail returns the fail policy (Validate has checked it).
func (c Config) fail() inline.FailPolicy {
	f, _ := inline.ParseFailPolicy(c.Dataplane.Fail)
	return f
}

// Load reads a configuration file over the defaults and validates it. Errors
// name the file, the line where the YAML gives one, and the field path.
func Load(path string) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("config: %w", err)
	}
	return Parse(path, data)
}

// Parse is Load for bytes; name is used in error messages.
func Parse(name string, data []byte) (Config, error) {
	cfg := DefaultConfig()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil && !errors.Is(err, io.EOF) {
		return Config{}, yamlErrors(name, err)
	}
	err := cfg.Validate()
	if err == nil {
		return cfg, nil
	}
	lines := map[string]int{}
	var root yaml.Node
	if yaml.Unmarshal(data, &root) == nil && len(root.Content) > 0 {
		collectLines(root.Content[0], "", lines)
	}
	var out []error
	for _, e := range unwrapAll(err) {
		var fe *FieldError
		if errors.As(e, &fe) {
			loc := name
			if l := lineOf(lines, fe.Path); l > 0 {
				loc = fmt.Sprintf("%s:%d", name, l)
			}
			out = append(out, &locatedError{loc: loc, fe: fe})
			continue
		}
		out = append(out, fmt.Errorf("config: %s: %w", name, e))
	}
	return Config{}, errors.Join(out...)
}

// locatedError is a FieldError with the file and line it comes from.
type locatedError struct {
	loc string
	fe  *FieldError
}

func (e *locatedError) Error() string { return "config: " + e.loc + ": " + e.fe.Path + ": " + e.fe.Msg }
func (e *locatedError) Unwrap() error { return e.fe }

var yamlLineRe = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)

// yamlErrors rewrites the YAML decoder's errors ("line 3: field x not found
// in type node.EngineConfig") as "config: FILE:3: field x not found in
// section engine".
func yamlErrors(name string, err error) error {
	msg := strings.TrimPrefix(err.Error(), "yaml: unmarshal errors:")
	var out []error
	for _, l := range strings.Split(msg, "\n") {
		l = strings.TrimSpace(l)
		if l == "" {
			continue
		}
		for typ, key := range sectionNames {
			l = strings.ReplaceAll(l, "in type node."+typ, "in section "+key)
		}
		if m := yamlLineRe.FindStringSubmatch(l); m != nil {
			out = append(out, fmt.Errorf("config: %s:%s: %s", name, m[1], m[2]))
		} else {
			out = append(out, fmt.Errorf("config: %s: %s", name, strings.TrimPrefix(l, "yaml: ")))
		}
	}
	return errors.Join(out...)
}

// sectionNames maps the configuration's Go types to their YAML paths.
var sectionNames = map[string]string{
	"Config": "(top level)", "Dataplane": "dataplane", "NFQueueConfig": "dataplane.nfqueue",
	"AFPacketConfig": "dataplane.afpacket", "EngineConfig": "engine", "HTTPConfig": "http", "LogConfig": "log",
	"BusConfig": "bus", "BusTLS": "bus.tls", "BusAuth": "bus.auth", "DrainConfig": "drain",
}

func unwrapAll(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

// collectLines maps every YAML path (a.b, a.list[2]) to its line.
func collectLines(n *yaml.Node, prefix string, lines map[string]int) {
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			p := n.Content[i].Value
			if prefix != "" {
				p = prefix + "." + p
			}
			lines[p] = n.Content[i].Line
			collectLines(n.Content[i+1], p, lines)
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			p := fmt.Sprintf("%s[%d]", prefix, i)
			lines[p] = c.Line
			collectLines(c, p, lines)
		}
	}
}

// lineOf returns the line of path or of its nearest ancestor in the file.
func lineOf(lines map[string]int, path string) int {
	for path != "" {
		if l, ok := lines[path]; ok {
			return l
		}
		i := strings.LastIndexAny(path, ".[")
		if i < 0 {
			break
		}
		path = path[:i]
	}
	return 0
}
