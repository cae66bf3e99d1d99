package lab

import (
	"fmt"
	"os"
	"path/filepath"

	"gopkg.in/yaml.v3"
)

// NodeFile is the node configuration file `patchgate node --config FILE`
// reads (the contract between the node daemon and the lab). Empty fields are
// left out of the file, so the daemon's defaults apply.
type NodeFile struct {
	Name      string        `yaml:"name"`
	Dataplane DataplaneFile `yaml:"dataplane"`
	Patches   string        `yaml:"patches"`
	Engine    EngineFile    `yaml:"engine,omitempty"`
	EVE       string        `yaml:"eve"`
	HTTP      HTTPFile      `yaml:"http"`
	Log       LogFile       `yaml:"log"`
}

// DataplaneFile is the node file's dataplane section. Only the section of
// the chosen mode is written.
type DataplaneFile struct {
	Mode     string        `yaml:"mode"`
	Fail     string        `yaml:"fail"`
	NFQueue  *NFQueueFile  `yaml:"nfqueue,omitempty"`
	AFPacket *AFPacketFile `yaml:"afpacket,omitempty"`
}

// NFQueueFile is dataplane.nfqueue.
type NFQueueFile struct {
	QueueBase int      `yaml:"queue_base"`
	Queues    int      `yaml:"queues"`
	Chains    []string `yaml:"chains,omitempty"`
	Match     []string `yaml:"match,omitempty"`
	Batch     int      `yaml:"batch,omitempty"`
}

// AFPacketFile is dataplane.afpacket.
type AFPacketFile struct {
	Interfaces []string `yaml:"interfaces"`
	Fanout     int      `yaml:"fanout"`
	BlockSize  int      `yaml:"block_size,omitempty"`
	NumBlocks  int      `yaml:"num_blocks,omitempty"`
}

// EngineFile is the engine section (engine.Config knobs).
type EngineFile struct {
	Midstream    string `yaml:"midstream,omitempty"`
	Checksums    string `yaml:"checksums,omitempty"`
	Violations   string `yaml:"violations,omitempty"`
	MaxFlows     int    `yaml:"max_flows,omitempty"`
	MaxFlowBytes int64  `yaml:"max_flow_bytes,omitempty"`
}

// HTTPFile is the http section (/metrics, /healthz, /readyz).
type HTTPFile struct {
	Listen string `yaml:"listen"`
}

// LogFile is the log section.
type LogFile struct {
	Level  string `yaml:"level"`
	Format string `yaml:"format"`
}

// DefaultNodeFile returns node i's configuration for the lab's variant:
// NFQUEUE on the FORWARD chain (L3) or an AF_PACKET bridge between eth0 and
// eth1 (L2), the lab's fail policy and patch directory, EVE alerts and logs
// in the lab directory, metrics on DefaultMetricsAddr inside the node's
// namespace.
func (l *Lab) DefaultNodeFile(i int) (NodeFile, error) {
	n, err := l.Node(i)
	if err != nil {
		return NodeFile{}, err
	}
	f := NodeFile{
		Name:    n.Name,
		Patches: l.cfg.Patches,
		EVE:     l.nodePath(i, "eve.json"),
		HTTP:    HTTPFile{Listen: DefaultMetricsAddr},
		Log:     LogFile{Level: "info", Format: "json"},
	}
	f.Dataplane.Fail = l.cfg.Fail
	if l.Variant == L3 {
		f.Dataplane.Mode = "nfqueue"
		f.Dataplane.NFQueue = &NFQueueFile{QueueBase: 0, Queues: l.cfg.Queues, Chains: []string{"FORWARD"}, Batch: 16}
	} else {
		f.Dataplane.Mode = "afpacket"
		f.Dataplane.AFPacket = &AFPacketFile{Interfaces: []string{n.In.Name, n.Out.Name}, Fanout: l.cfg.Queues}
	}
	return f, nil
}

// nodePath is a file of node i in the lab directory ("n1.yaml").
func (l *Lab) nodePath(i int, ext string) string {
	return filepath.Join(l.Dir, fmt.Sprintf("n%d.%s", i, ext))
}

// NodeConfigPath is where node i's configuration file is.
func (l *Lab) NodeConfigPath(i int) string { return l.nodePath(i, "yaml") }

// NodeLogPath is the file node i's standard output and error go to.
func (l *Lab) NodeLogPath(i int) string { return l.nodePath(i, "log") }

// NodeEVEPath is node i's EVE alert file (as DefaultNodeFile sets it).
func (l *Lab) NodeEVEPath(i int) string { return l.nodePath(i, "eve.json") }

// NodeConfig writes node i's default configuration (DefaultNodeFile) into the
// lab directory and returns its path.
func (l *Lab) NodeConfig(i int) (string, error) {
	f, err := l.DefaultNodeFile(i)
	if err != nil {
		return "", err
	}
	return l.WriteNodeConfig(i, f)
}

// WriteNodeConfig writes f as node i's configuration and returns its path.
// StartNode uses it until it is written again.
func (l *Lab) WriteNodeConfig(i int, f NodeFile) (string, error) {
	if _, err := l.Node(i); err != nil {
		return "", err
	}
	data, err := yaml.Marshal(f)
	if err != nil {
		return "", fmt.Errorf("lab: node %d: config: %w", i, err)
	}
	path := l.NodeConfigPath(i)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		return "", fmt.Errorf("lab: node %d: config: %w", i, err)
	}
	return path, nil
}
