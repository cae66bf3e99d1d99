package node

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// contractYAML is the documented example of the configuration file.
const contractYAML = `name: gw1
dataplane:
  mode: nfqueue
  fail: open
  nfqueue:
    queue_base: 0
    queues: 2
    chains: [FORWARD]
    match: []
    batch: 16
  afpacket:
    interfaces: [eth0, eth1]
    fanout: 2
    block_size: 1048576
    num_blocks: 64
patches: /etc/patchgate/patches
engine:
  midstream: pickup
  checksums: validate
  violations: count
  max_flows: 262144
  max_flow_bytes: 268435456
eve: /var/log/patchgate/eve.json
http:
  listen: 127.0.0.1:9100
log:
  level: info
  format: json
`

func TestDefaultConfigIsValidAndMatchesTheContract(t *testing.T) {
	d := DefaultConfig()
	if err := d.Validate(); err != nil {
		t.Fatal(err)
	}
	c, err := Parse("node.yaml", []byte(contractYAML))
	if err != nil {
		t.Fatal(err)
	}
	d.Name = "gw1"
	if got, want := strings.Join(c.Dataplane.NFQueue.Chains, ","), "FORWARD"; got != want {
		t.Errorf("chains %s", got)
	}
	c.Dataplane.NFQueue.Match, d.Dataplane.NFQueue.Match = nil, nil
	if !equalConfig(c, d) {
		t.Errorf("the contract example differs from the defaults:\n%+v\n%+v", c, d)
	}
}

func equalConfig(a, b Config) bool { return reflect.DeepEqual(a, b) }

func TestValidateNamesTheField(t *testing.T) {
	cases := []struct {
		mod  func(*Config)
		want string
	}{
		{func(c *Config) { c.Name = "" }, "config: name: must be"},
		{func(c *Config) { c.Name = "gw 1" }, "config: name: must be"},
		{func(c *Config) { c.Dataplane.Mode = "xdp" }, `config: dataplane.mode: must be nfqueue or afpacket, got "xdp"`},
		{func(c *Config) { c.Dataplane.Fail = "half" }, `config: dataplane.fail: must be open or closed, got "half"`},
		{func(c *Config) { c.Dataplane.NFQueue.Queues = 0 }, "config: dataplane.nfqueue.queues: must be 1..64, got 0"},
		{func(c *Config) { c.Dataplane.NFQueue.Queues = 65 }, "config: dataplane.nfqueue.queues: must be 1..64, got 65"},
		{func(c *Config) { c.Dataplane.NFQueue.QueueBase = -1 }, "config: dataplane.nfqueue.queue_base: must be 0..65535, got -1"},
		{func(c *Config) { c.Dataplane.NFQueue.QueueBase = 65535 }, "config: dataplane.nfqueue.queue_base: queues 65535..65536 exceed 65535"},
		{func(c *Config) { c.Dataplane.NFQueue.Chains = nil }, "config: dataplane.nfqueue.chains: must name at least one"},
		{func(c *Config) { c.Dataplane.NFQueue.Chains = []string{"FORWARD", "nat"} }, `config: dataplane.nfqueue.chains[1]: must be INPUT, FORWARD or OUTPUT, got "nat"`},
		{func(c *Config) { c.Dataplane.NFQueue.Chains = []string{"INPUT", "INPUT"} }, "config: dataplane.nfqueue.chains[1]: INPUT is listed twice"},
		{func(c *Config) { c.Dataplane.NFQueue.Match = []string{"-j", "ACCEPT"} }, `config: dataplane.nfqueue.match: Match[0] "-j": only match arguments`},
		{func(c *Config) { c.Dataplane.NFQueue.Batch = 0 }, "config: dataplane.nfqueue.batch: must be 1..1024, got 0"},
		{func(c *Config) { c.Dataplane.Mode = "afpacket"; c.Dataplane.AFPacket.Interfaces = []string{"eth0"} }, "config: dataplane.afpacket.interfaces: must list exactly two interfaces, got 1"},
		{func(c *Config) {
			c.Dataplane.Mode = "afpacket"
			c.Dataplane.AFPacket.Interfaces = []string{"eth0", "eth0"}
		}, `config: dataplane.afpacket.interfaces: must be two different interfaces, got "eth0" twice`},
		{func(c *Config) {
			c.Dataplane.Mode = "afpacket"
			c.Dataplane.AFPacket.Interfaces = []string{"eth0", "a/b"}
		}, `config: dataplane.afpacket.interfaces[1]: "a/b" is not an interface name`},
		{func(c *Config) { c.Dataplane.Mode = "afpacket"; c.Dataplane.AFPacket.Fanout = 0 }, "config: dataplane.afpacket.fanout: must be 1..64, got 0"},
		{func(c *Config) { c.Dataplane.Mode = "afpacket"; c.Dataplane.AFPacket.BlockSize = 1000 }, "config: dataplane.afpacket.block_size: must be a multiple of the page size"},
		{func(c *Config) { c.Dataplane.Mode = "afpacket"; c.Dataplane.AFPacket.NumBlocks = 1 }, "config: dataplane.afpacket.num_blocks: must be 2..4096, got 1"},
		{func(c *Config) { c.Patches = "" }, "config: patches: must name the directory"},
		{func(c *Config) { c.Engine.Midstream = "maybe" }, `config: engine.midstream: must be pickup, drop or reset, got "maybe"`},
		{func(c *Config) { c.Engine.Checksums = "yes" }, `config: engine.checksums: must be auto, validate or ignore, got "yes"`},
		{func(c *Config) { c.Engine.Violations = "ignore" }, `config: engine.violations: must be count, alert or block, got "ignore"`},
		{func(c *Config) { c.Engine.MaxFlows = 0 }, "config: engine.max_flows: must be at least 1, got 0"},
		{func(c *Config) { c.Engine.MaxFlowBytes = 10 }, "config: engine.max_flow_bytes: must be at least 512, got 10"},
		{func(c *Config) { c.HTTP.Listen = "9100" }, `config: http.listen: must be host:port, got "9100"`},
		{func(c *Config) { c.HTTP.Listen = "example.test:9100" }, `config: http.listen: host must be an IP address or localhost`},
		{func(c *Config) { c.Log.Level = "trace" }, `config: log.level: must be debug, info, warn or error, got "trace"`},
		{func(c *Config) { c.Log.Format = "xml" }, `config: log.format: must be json or text, got "xml"`},
	}
	for _, tc := range cases {
		c := DefaultConfig()
		tc.mod(&c)
		err := c.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("got %v\nwant an error containing %q", err, tc.want)
		}
	}
	// The other mode's section is not checked.
	c := DefaultConfig()
	c.Dataplane.AFPacket.Interfaces = nil
	if err := c.Validate(); err != nil {
		t.Errorf("afpacket section checked in nfqueue mode: %v", err)
	}
	// Valid variations.
	c = DefaultConfig()
	c.HTTP.Listen, c.EVE, c.Dataplane.Fail = "", "-", "closed"
	c.Dataplane.Mode = ModeAFPacket
	if err := c.Validate(); err != nil {
		t.Error(err)
	}
}

func TestParseReportsFileLineAndField(t *testing.T) {
	for _, tc := range []struct{ yaml, want string }{
		{"name: gw1\ndataplane:\n  nfqueue:\n    queues: 0\n", "config: node.yaml:4: dataplane.nfqueue.queues: must be 1..64, got 0"},
		{"name: gw1\ndataplane:\n  mode: afpacket\n  afpacket:\n    interfaces: [eth0, eth0]\n", "config: node.yaml:5: dataplane.afpacket.interfaces: must be two different"},
		{"name: gw1\ndataplane:\n  nfqueue:\n    chains:\n      - FORWARD\n      - PREROUTING\n", "config: node.yaml:6: dataplane.nfqueue.chains[1]: must be INPUT"},
		{"name: gw1\nengine:\n  max_flow: 10\n", "config: node.yaml:3: field max_flow not found in section engine"},
		{"name: gw1\ndataplane:\n  nfqueue:\n    queues: two\n", "config: node.yaml:4: cannot unmarshal !!str `two` into int"},
		{"name: [\n", "config: node.yaml:1"},
		{"name: gw1\nlog:\n  level: loud\n  format: xml\n", "config: node.yaml:3: log.level: must be"},
	} {
		_, err := Parse("node.yaml", []byte(tc.yaml))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q:\n got %v\nwant %q", tc.yaml, err, tc.want)
		}
	}
	// Both problems are reported, each with its line.
	_, err := Parse("node.yaml", []byte("name: gw1\nlog:\n  level: loud\n  format: xml\n"))
	if err == nil || !strings.Contains(err.Error(), "config: node.yaml:4: log.format") {
		t.Errorf("second problem not reported: %v", err)
	}
	// An empty file is the defaults.
	if _, err := Parse("empty.yaml", nil); err != nil {
		t.Errorf("empty file: %v", err)
	}
}

func TestLoadNamesMissingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "missing.yaml")
	if _, err := Load(path); err == nil || !strings.Contains(err.Error(), "missing.yaml") {
		t.Errorf("got %v", err)
	}
	ok := filepath.Join(t.TempDir(), "node.yaml")
	if err := os.WriteFile(ok, []byte(contractYAML), 0o644); err != nil {
		t.Fatal(err)
	}
	if c, err := Load(ok); err != nil || c.Name != "gw1" {
		t.Errorf("Load: %+v %v", c.Name, err)
	}
}

func TestInlineEngineNeverSkipsOnForgedAcks(t *testing.T) {
	if DefaultConfig().engineConfig(1).Stream.GapOnAck {
		t.Fatal("inline node must clamp acknowledgements of unseen bytes, not skip them")
	}
}
