package lab

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"regexp"
)

// Variant is how the gateway nodes sit between the two routers.
type Variant string

const (
	// L3: every node is a routed next hop with two interfaces (one toward
	// each router); patchgate runs its NFQUEUE dataplane there. Without
	// patchgate the node forwards with the kernel.
	L3 Variant = "l3"
	// L2: every node bridges one of N parallel links between the routers
	// (bump in the wire); patchgate runs its AF_PACKET bridge there. Without
	// patchgate a kernel bridge joins the two interfaces.
	L2 Variant = "l2"
)

// Lab limits and defaults, in one place.
const (
	DefaultNodes   = 3
	MaxNodes       = 16
	DefaultClients = 1
	DefaultServers = 1
	// MaxHosts bounds clients and servers each: hosts take .201 to .250 of
	// their LAN (.1 to .200 are left to replayed captures).
	MaxHosts = 50
	// DefaultHashSeed is written to net.ipv4.fib_multipath_hash_seed in both
	// routers, so that they hash a flow's two directions alike.
	DefaultHashSeed = 0x7067
	// DefaultStateRoot holds one directory per lab (lab.json, node configs,
	// logs, pid files). It is on tmpfs, like /run/netns: a reboot clears
	// both together.
	DefaultStateRoot = "/run/patchgate-lab"
	// DefaultPrefixStem starts generated prefixes ("pg" + 4 hex digits).
	DefaultPrefixStem = "pg"
	// DefaultFail is the nodes' overload and shutdown policy.
	DefaultFail = "open"
	// DefaultPatches is the patch directory written into node configs.
	DefaultPatches = "/etc/patchgate/patches"
	// DefaultQueues is the NFQUEUE queues / AF_PACKET fanout workers per node.
	DefaultQueues = 2
	// DefaultMTU is every lab interface's MTU (MinMTU..MaxMTU).
	DefaultMTU = 1500
	MinMTU     = 1280
	MaxMTU     = 9000
	// DefaultMetricsAddr is where each node serves /metrics, /healthz and
	// /readyz, inside its own namespace.
	DefaultMetricsAddr = "127.0.0.1:9100"
)

// prefixRE is what a lab prefix may look like: short, so that names stay
// readable, and without the separator "-".
var prefixRE = regexp.MustCompile(`^[a-z][a-z0-9]{0,11}$`)

// Config describes a lab. Start from DefaultConfig.
type Config struct {
	// Prefix starts the name of every namespace of the lab ("<prefix>-r1");
	// empty means a random one. Two labs with different prefixes never
	// collide: all their interfaces and addresses live in their own
	// namespaces.
	Prefix string `json:"prefix"`
	// Variant is L3 or L2.
	Variant Variant `json:"variant"`
	// Nodes is the number of gateway nodes (ECMP next hops or links).
	Nodes int `json:"nodes"`
	// Clients and Servers are the numbers of host namespaces on each side.
	Clients int `json:"clients"`
	Servers int `json:"servers"`
	// HashSeed is the multipath hash seed of both routers (kernels that have
	// net.ipv4.fib_multipath_hash_seed).
	HashSeed uint32 `json:"hash_seed"`
	// StateRoot is the directory that holds the lab's state directory.
	StateRoot string `json:"state_root"`
	// Binary is the patchgate executable StartNode runs; empty means the
	// running executable.
	Binary string `json:"binary,omitempty"`
	// Patches is the patch directory written into the node configs.
	Patches string `json:"patches"`
	// Fail is the nodes' default policy, "open" or "closed".
	Fail string `json:"fail"`
	// Queues is the number of NFQUEUE queues (L3) or fanout workers (L2) per node.
	Queues int `json:"queues"`
	// MTU is the MTU of every interface in the lab. Generated captures
	// whose frames exceed 1514 bytes need a larger one to be replayed.
	MTU int `json:"mtu"`
}

// DefaultConfig returns a 3-node L3 lab with one client and one server and a
// random prefix.
func DefaultConfig() Config {
	return Config{
		Variant:   L3,
		Nodes:     DefaultNodes,
		Clients:   DefaultClients,
		Servers:   DefaultServers,
		HashSeed:  DefaultHashSeed,
		StateRoot: DefaultStateRoot,
		Patches:   DefaultPatches,
		Fail:      DefaultFail,
		Queues:    DefaultQueues,
		MTU:       DefaultMTU,
	}
}

// Validate reports the first field that is out of range. An empty Prefix is
// valid (Up picks one).
func (c Config) Validate() error {
	switch {
	case c.Prefix != "" && !prefixRE.MatchString(c.Prefix):
		return fmt.Errorf("lab: config: prefix: must match %s, got %q", prefixRE, c.Prefix)
	case c.Variant != L3 && c.Variant != L2:
		return fmt.Errorf("lab: config: variant: must be %q or %q, got %q", L3, L2, c.Variant)
	case c.Nodes < 1 || c.Nodes > MaxNodes:
		return fmt.Errorf("lab: config: nodes: must be 1..%d, got %d", MaxNodes, c.Nodes)
	case c.Clients < 1 || c.Clients > MaxHosts:
		return fmt.Errorf("lab: config: clients: must be 1..%d, got %d", MaxHosts, c.Clients)
	case c.Servers < 1 || c.Servers > MaxHosts:
		return fmt.Errorf("lab: config: servers: must be 1..%d, got %d", MaxHosts, c.Servers)
	case c.StateRoot == "":
		return fmt.Errorf("lab: config: state_root: must not be empty")
	case c.Fail != "open" && c.Fail != "closed":
		return fmt.Errorf("lab: config: fail: must be \"open\" or \"closed\", got %q", c.Fail)
	case c.Queues < 1 || c.Queues > 64:
		return fmt.Errorf("lab: config: queues: must be 1..64, got %d", c.Queues)
	case c.MTU < MinMTU || c.MTU > MaxMTU:
		return fmt.Errorf("lab: config: mtu: must be %d..%d, got %d", MinMTU, MaxMTU, c.MTU)
	case c.Patches == "":
		return fmt.Errorf("lab: config: patches: must not be empty")
	}
	return nil
}

// NewPrefix returns a random lab prefix: DefaultPrefixStem and 4 hex digits.
func NewPrefix() string {
	var b [2]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("lab: crypto/rand: " + err.Error())
	}
	return DefaultPrefixStem + hex.EncodeToString(b[:])
}
