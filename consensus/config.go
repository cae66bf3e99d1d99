package consensus

import (
	"fmt"
	"log/slog"
	"net"
	"regexp"
	"time"

	"github.com/patchgate/patchgate/consensus/patchset"
)

// Defaults, in one place. Raft timings are hashicorp/raft's own defaults;
// gossip timings are tuned for a data center (sub-millisecond RTT, rare loss):
// see README.md for the detection time they give.
const (
	DefaultVoters            = 3
	DefaultApplyTimeout      = 10 * time.Second
	DefaultReconcileInterval = 5 * time.Second
	DefaultJoinRetryInterval = 2 * time.Second

	DefaultHeartbeatTimeout   = 1000 * time.Millisecond
	DefaultElectionTimeout    = 1000 * time.Millisecond
	DefaultLeaderLeaseTimeout = 500 * time.Millisecond
	DefaultCommitTimeout      = 5 * time.Millisecond
	DefaultSnapshotInterval   = 120 * time.Second
	DefaultSnapshotThreshold  = 8192
	DefaultTrailingLogs       = 10240
	DefaultSnapshotRetain     = 2
	DefaultTransportTimeout   = 10 * time.Second
	DefaultTransportMaxPool   = 3

	DefaultProbeInterval           = 500 * time.Millisecond
	DefaultProbeTimeout            = 250 * time.Millisecond
	DefaultSuspicionMult           = 3
	DefaultSuspicionMaxTimeoutMult = 4
	DefaultGossipInterval          = 100 * time.Millisecond
	DefaultGossipNodes             = 3
	DefaultRetransmitMult          = 4
	DefaultPushPullInterval        = 15 * time.Second
	DefaultTCPTimeout              = 5 * time.Second
	DefaultDeadNodeReclaimTime     = 30 * time.Second
)

// RaftTuning are the raft timings and log compaction settings.
type RaftTuning struct {
	HeartbeatTimeout   time.Duration
	ElectionTimeout    time.Duration
	LeaderLeaseTimeout time.Duration
	CommitTimeout      time.Duration
	// SnapshotInterval and SnapshotThreshold decide when a node snapshots;
	// TrailingLogs how many entries stay after a snapshot (a follower further
	// behind catches up with the snapshot); SnapshotRetain how many
	// snapshot files are kept.
	SnapshotInterval  time.Duration
	SnapshotThreshold uint64
	TrailingLogs      uint64
	SnapshotRetain    int
	// TransportTimeout bounds one raft RPC (snapshots scale it up); MaxPool is
	// the number of pooled connections per peer.
	TransportTimeout time.Duration
	MaxPool          int
}

// GossipTuning are the memberlist (SWIM) timings.
type GossipTuning struct {
	ProbeInterval           time.Duration
	ProbeTimeout            time.Duration
	SuspicionMult           int
	SuspicionMaxTimeoutMult int
	GossipInterval          time.Duration
	GossipNodes             int
	RetransmitMult          int
	PushPullInterval        time.Duration
	TCPTimeout              time.Duration
	// DeadNodeReclaimTime lets a dead node's name rejoin from a new address.
	DeadNodeReclaimTime time.Duration
}

// Config configures a cluster member.
type Config struct {
	// NodeName is unique in the cluster; it is also the raft server id.
	NodeName string
	// ClusterName separates clusters sharing a network: gossip from another
	// cluster name is ignored.
	ClusterName string
	// DataDir holds the raft log (raft.db) and snapshots.
	DataDir string
	// RaftBind is the raft listen address (host:port; port 0 picks one).
	// RaftAdvertise is what peers dial ("": the bound address, which then must
	// not be unspecified like 0.0.0.0).
	RaftBind      string
	RaftAdvertise string
	// GossipBind / GossipAdvertise are the same for memberlist (TCP and UDP).
	GossipBind      string
	GossipAdvertise string
	// Seeds are gossip addresses of existing members to join through.
	Seeds []string
	// BootstrapExpect, when non-zero, bootstraps a brand-new cluster once
	// this many nodes with the same BootstrapExpect and no raft state see each
	// other. Set it on the first servers only; a node with raft state never
	// bootstraps.
	BootstrapExpect int
	// Voters is the number of raft voters (1, 3 or 5); further nodes join as
	// non-voters.
	Voters int
	// APIAddr and BusAddr are advertised in the node metadata.
	APIAddr string
	BusAddr string
	// TrustedKeys verify pushed patch sets on the leader.
	TrustedKeys patchset.KeySet
	// TestPatchSets makes the leader run every pushed patch set's embedded
	// tests before committing it (compilation always runs).
	TestPatchSets bool
	// ApplyTimeout bounds a write on the leader.
	ApplyTimeout time.Duration
	// ReconcileInterval is how often the leader reconciles raft membership
	// with gossip membership (events trigger it too).
	ReconcileInterval time.Duration
	// JoinRetryInterval spaces attempts to join the seeds.
	JoinRetryInterval time.Duration
	Raft              RaftTuning
	Gossip            GossipTuning
	// UnsafeNoSync skips fsync of the raft log: tests only.
	UnsafeNoSync bool
	// Logger receives raft, memberlist and cluster logs at LogLevel and above
	// (nil: discard).
	Logger   *slog.Logger
	LogLevel slog.Level
}

// DefaultConfig returns production settings; set NodeName, DataDir and the
// addresses.
func DefaultConfig() Config {
	return Config{
		ClusterName:       "patchgate",
		RaftBind:          "127.0.0.1:7300",
		GossipBind:        "127.0.0.1:7301",
		Voters:            DefaultVoters,
		TestPatchSets:     true,
		ApplyTimeout:      DefaultApplyTimeout,
		ReconcileInterval: DefaultReconcileInterval,
		JoinRetryInterval: DefaultJoinRetryInterval,
		LogLevel:          slog.LevelInfo,
		Raft: RaftTuning{
			HeartbeatTimeout: DefaultHeartbeatTimeout, ElectionTimeout: DefaultElectionTimeout,
			LeaderLeaseTimeout: DefaultLeaderLeaseTimeout, CommitTimeout: DefaultCommitTimeout,
			SnapshotInterval: DefaultSnapshotInterval, SnapshotThreshold: DefaultSnapshotThreshold,
			TrailingLogs: DefaultTrailingLogs, SnapshotRetain: DefaultSnapshotRetain,
			TransportTimeout: DefaultTransportTimeout, MaxPool: DefaultTransportMaxPool,
		},
		Gossip: GossipTuning{
			ProbeInterval: DefaultProbeInterval, ProbeTimeout: DefaultProbeTimeout,
			SuspicionMult: DefaultSuspicionMult, SuspicionMaxTimeoutMult: DefaultSuspicionMaxTimeoutMult,
			GossipInterval: DefaultGossipInterval, GossipNodes: DefaultGossipNodes,
			RetransmitMult: DefaultRetransmitMult, PushPullInterval: DefaultPushPullInterval,
			TCPTimeout: DefaultTCPTimeout, DeadNodeReclaimTime: DefaultDeadNodeReclaimTime,
		},
	}
}

// FastConfig is DefaultConfig with short timeouts for in-process test
// clusters on loopback: random ports, elections in a few hundred ms, failure detection
// in well under a second, no fsync.
func FastConfig() Config {
	c := DefaultConfig()
	c.RaftBind, c.GossipBind = "127.0.0.1:0", "127.0.0.1:0"
	c.ApplyTimeout = 5 * time.Second
	c.ReconcileInterval = 200 * time.Millisecond
	c.JoinRetryInterval = 100 * time.Millisecond
	c.UnsafeNoSync = true
	c.Raft.HeartbeatTimeout = 300 * time.Millisecond
	c.Raft.ElectionTimeout = 300 * time.Millisecond
	c.Raft.LeaderLeaseTimeout = 200 * time.Millisecond
	c.Raft.CommitTimeout = 5 * time.Millisecond
	c.Raft.TransportTimeout = 2 * time.Second
	c.Gossip.ProbeInterval = 100 * time.Millisecond
	c.Gossip.ProbeTimeout = 50 * time.Millisecond
	c.Gossip.GossipInterval = 20 * time.Millisecond
	c.Gossip.PushPullInterval = time.Second
	c.Gossip.TCPTimeout = time.Second
	c.Gossip.DeadNodeReclaimTime = time.Second
	return c
}

var nodeNameRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$`)

// Validate reports the first wrong field and why.
func (c *Config) Validate() error {
	bad := func(field, format string, args ...any) error {
		return fmt.Errorf("consensus: config: %s: %s", field, fmt.Sprintf(format, args...))
	}
	if !nodeNameRe.MatchString(c.NodeName) {
		return bad("NodeName", "%q must be 1-63 letters, digits, '.', '_' or '-'", c.NodeName)
	}
	if c.ClusterName == "" {
		return bad("ClusterName", "empty")
	}
	if c.DataDir == "" {
		return bad("DataDir", "empty")
	}
	for _, a := range []struct {
		field, addr string
		opt         bool
	}{{"RaftBind", c.RaftBind, false}, {"GossipBind", c.GossipBind, false},
		{"RaftAdvertise", c.RaftAdvertise, true}, {"GossipAdvertise", c.GossipAdvertise, true}} {
		if a.opt && a.addr == "" {
			continue
		}
		if _, _, err := net.SplitHostPort(a.addr); err != nil {
			return bad(a.field, "%q is not host:port: %v", a.addr, err)
		}
	}
	for i, s := range c.Seeds {
		if _, _, err := net.SplitHostPort(s); err != nil {
			return bad(fmt.Sprintf("Seeds[%d]", i), "%q is not host:port: %v", s, err)
		}
	}
	if c.Voters != 1 && c.Voters != 3 && c.Voters != 5 {
		return bad("Voters", "%d: use 1 (development), 3 or 5", c.Voters)
	}
	if c.BootstrapExpect < 0 || c.BootstrapExpect > c.Voters {
		return bad("BootstrapExpect", "%d outside 0..Voters (%d)", c.BootstrapExpect, c.Voters)
	}
	for _, d := range []struct {
		field string
		v     time.Duration
	}{{"ApplyTimeout", c.ApplyTimeout}, {"ReconcileInterval", c.ReconcileInterval},
		{"JoinRetryInterval", c.JoinRetryInterval},
		{"Raft.HeartbeatTimeout", c.Raft.HeartbeatTimeout}, {"Raft.ElectionTimeout", c.Raft.ElectionTimeout},
		{"Raft.LeaderLeaseTimeout", c.Raft.LeaderLeaseTimeout}, {"Raft.CommitTimeout", c.Raft.CommitTimeout},
		{"Raft.SnapshotInterval", c.Raft.SnapshotInterval}, {"Raft.TransportTimeout", c.Raft.TransportTimeout},
		{"Gossip.ProbeInterval", c.Gossip.ProbeInterval}, {"Gossip.ProbeTimeout", c.Gossip.ProbeTimeout},
		{"Gossip.GossipInterval", c.Gossip.GossipInterval}, {"Gossip.PushPullInterval", c.Gossip.PushPullInterval},
		{"Gossip.TCPTimeout", c.Gossip.TCPTimeout}} {
		if d.v <= 0 {
			return bad(d.field, "%v must be positive", d.v)
		}
	}
	if c.Raft.LeaderLeaseTimeout > c.Raft.HeartbeatTimeout {
		return bad("Raft.LeaderLeaseTimeout", "%v exceeds HeartbeatTimeout %v", c.Raft.LeaderLeaseTimeout, c.Raft.HeartbeatTimeout)
	}
	if c.Raft.ElectionTimeout < c.Raft.HeartbeatTimeout {
		return bad("Raft.ElectionTimeout", "%v is below HeartbeatTimeout %v", c.Raft.ElectionTimeout, c.Raft.HeartbeatTimeout)
	}
	if c.Raft.SnapshotThreshold == 0 || c.Raft.TrailingLogs == 0 {
		return bad("Raft.SnapshotThreshold", "SnapshotThreshold and TrailingLogs must be positive")
	}
	if c.Raft.SnapshotRetain < 1 {
		return bad("Raft.SnapshotRetain", "%d must be at least 1", c.Raft.SnapshotRetain)
	}
	if c.Raft.MaxPool < 1 {
		return bad("Raft.MaxPool", "%d must be at least 1", c.Raft.MaxPool)
	}
	if c.Gossip.ProbeTimeout >= c.Gossip.ProbeInterval {
		return bad("Gossip.ProbeTimeout", "%v must be below ProbeInterval %v", c.Gossip.ProbeTimeout, c.Gossip.ProbeInterval)
	}
	if c.Gossip.SuspicionMult < 1 || c.Gossip.SuspicionMaxTimeoutMult < 1 || c.Gossip.GossipNodes < 1 || c.Gossip.RetransmitMult < 1 {
		return bad("Gossip.SuspicionMult", "SuspicionMult, SuspicionMaxTimeoutMult, GossipNodes and RetransmitMult must be at least 1")
	}
	return nil
}
