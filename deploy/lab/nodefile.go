package lab

import (
	"fmt"
	"net/netip"
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
	// Cluster, when set, makes the node a cluster member (node.ClusterConfig).
	Cluster *ClusterFile `yaml:"cluster,omitempty"`
	// Bus, when set, is the node's shared flow-state section (node.BusConfig).
	Bus *BusFile `yaml:"bus,omitempty"`
}

// ClusterFile is the node file's cluster section (node/CLUSTER.md). Empty
// fields are left out, so the node's defaults (node.DefaultClusterConfig)
// apply. In the lab the addresses are a node's own namespace addresses: in
// the L3 variant its R1-side address 198.18.i.2, which the other nodes reach
// once ClusterRoutes has been applied (see README "Clusters in the lab").
type ClusterFile struct {
	NodeID          string   `yaml:"node_id,omitempty"`
	ClusterName     string   `yaml:"cluster_name,omitempty"`
	DataDir         string   `yaml:"data_dir,omitempty"`
	RaftAddr        string   `yaml:"raft_addr,omitempty"`
	GossipAddr      string   `yaml:"gossip_addr,omitempty"`
	Seeds           []string `yaml:"seeds,omitempty"`
	BootstrapExpect int      `yaml:"bootstrap_expect,omitempty"`
	Voters          int      `yaml:"voters,omitempty"`
	TrustedKeys     []string `yaml:"trusted_keys,omitempty"`
	// TestPatchSets nil keeps the default (the leader runs embedded tests).
	TestPatchSets *bool          `yaml:"test_patch_sets,omitempty"`
	API           ClusterAPIFile `yaml:"api"`
}

// ClusterAPIFile is cluster.api: the control API's listen address and bearer
// token (api.Config).
type ClusterAPIFile struct {
	Listen    string `yaml:"listen,omitempty"`
	Advertise string `yaml:"advertise,omitempty"`
	Token     string `yaml:"token,omitempty"`
}

// Ports of the lab's cluster services on a node's address.
const (
	ClusterRaftPort   = 7300
	ClusterGossipPort = 7301
	ClusterAPIPort    = 7400
)

// ClusterAddr is where node i's cluster services listen and peers reach
// them: its R1-side address (L3 variant only; L2 nodes have no address).
func (l *Lab) ClusterAddr(i int) (netip.Addr, error) {
	n, err := l.Node(i)
	if err != nil {
		return netip.Addr{}, err
	}
	if l.Variant != L3 || !n.In.Addr4.IsValid() {
		return netip.Addr{}, fmt.Errorf("lab: node %d: cluster addresses need the L3 variant (L2 nodes have no address)", i)
	}
	return n.In.Addr4.Addr(), nil
}

// DefaultClusterFile returns node i's cluster section for a brand-new
// cluster of every lab node: raft, gossip and API on ClusterAddr(i), the
// other nodes' gossip addresses as seeds, bootstrap_expect and voters 3
// (5 in a lab of 5 nodes or more), data in the lab directory, the given bearer
// token and trusted public key files.
func (l *Lab) DefaultClusterFile(i int, token string, trustedKeys ...string) (*ClusterFile, error) {
	addr, err := l.ClusterAddr(i)
	if err != nil {
		return nil, err
	}
	n, _ := l.Node(i)
	voters := 3 // a brand-new cluster needs 3 or 5 voters; more nodes join as non-voters
	if len(l.Nodes) >= 5 {
		voters = 5
	}
	f := &ClusterFile{
		NodeID:          n.Name,
		DataDir:         l.nodePath(i, "cluster"),
		RaftAddr:        netip.AddrPortFrom(addr, ClusterRaftPort).String(),
		GossipAddr:      netip.AddrPortFrom(addr, ClusterGossipPort).String(),
		BootstrapExpect: voters,
		Voters:          voters,
		TrustedKeys:     trustedKeys,
		API:             ClusterAPIFile{Listen: netip.AddrPortFrom(addr, ClusterAPIPort).String(), Token: token},
	}
	for _, o := range l.Nodes {
		if o.Index == i {
			continue
		}
		oa, err := l.ClusterAddr(o.Index)
		if err != nil {
			return nil, err
		}
		f.Seeds = append(f.Seeds, netip.AddrPortFrom(oa, ClusterGossipPort).String())
	}
	return f, nil
}

// Patchctl runs the patchctl binary bin in node i's namespace against node
// i's cluster API (ClusterAddr(i), ClusterAPIPort) with the bearer token and
// a 20 s timeout, and returns its combined output. The command's own
// arguments come first; the global flags follow them.
func (l *Lab) Patchctl(i int, bin, token string, args ...string) (string, error) {
	addr, err := l.ClusterAddr(i)
	if err != nil {
		return "", err
	}
	argv := append(append([]string{bin}, args...), "--server", netip.AddrPortFrom(addr, ClusterAPIPort).String(),
		"--token", token, "--timeout", "20s")
	return l.Exec(l.Nodes[i-1].NS, argv...)
}

// ClusterRoutes lets the nodes reach each other's ClusterAddr: every node
// gets a route to the other nodes' R1-side subnets through R1, which already
// forwards between its links (L3 variant). The nodes' own traffic is never
// queued to patchgate (NFQUEUE sits on FORWARD only).
func (l *Lab) ClusterRoutes() error {
	for _, n := range l.Nodes {
		if _, err := l.ClusterAddr(n.Index); err != nil {
			return err
		}
		for _, o := range l.Nodes {
			if o.Index == n.Index {
				continue
			}
			dst := o.In.Addr4.Masked().String()
			gw := l.R1.Links[n.Index-1].Addr4.Addr().String()
			if _, err := l.Exec(n.NS, "ip", "route", "replace", dst, "via", gw, "dev", n.In.Name); err != nil {
				return fmt.Errorf("lab: node %d: cluster route: %w", n.Index, err)
			}
		}
	}
	return nil
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
