package consensus

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/memberlist"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
)

// logCacheSize is the number of recent log entries kept in memory, so
// replication does not read (and decode) them back from bolt.
const logCacheSize = 512

// Cluster is one member of a patchgate cluster: a raft server (log in
// raft-boltdb, file snapshots, TCP transport) holding the FSM, and a
// memberlist agent for discovery and failure detection. The raft leader
// reconciles raft membership with gossip: new members join as voters up to
// Config.Voters, then as non-voters; servers failed for longer than the
// cluster's DeadServerGrace (or gone with a graceful leave) are removed.
//
// Concurrency: every method is safe for concurrent use.
type Cluster struct {
	cfg   Config
	log   *slog.Logger
	fsm   *FSM
	raft  *raft.Raft
	store *raftboltdb.BoltStore
	snaps *raft.FileSnapshotStore
	trans *raft.NetworkTransport
	sl    *streamLayer
	ml    *memberlist.Memberlist
	meta  *metaDelegate
	mem   *members

	gossipAddr string
	savedPeers []string // reconcile loop only

	pokeCh   chan struct{}
	stop     chan struct{}
	wg       sync.WaitGroup
	shutOnce sync.Once
	shutErr  error

	reconcileMu sync.Mutex
	failedSince map[string]time.Time // leader-local; reset on leadership change
}

// Start opens the node's data, starts raft and gossip, and joins the seeds in
// the background. A node without raft state bootstraps only when
// BootstrapExpect is set and that many new nodes see each other; a node with
// state restarts from it and catches up with the leader.
func Start(cfg Config) (*Cluster, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	c := &Cluster{
		cfg: cfg, log: cfg.Logger, pokeCh: make(chan struct{}, 1),
		stop: make(chan struct{}), failedSince: map[string]time.Time{},
	}
	if c.log == nil {
		c.log = discardLogger
	}
	c.log = c.log.With("node", cfg.NodeName)
	ok := false
	defer func() {
		if !ok {
			c.closeAll()
		}
	}()
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("consensus: data dir: %w", err)
	}
	c.fsm = NewFSM(c.log)
	hl := newHclog(c.log, "raft", hclogLevel(cfg.LogLevel))
	var err error
	c.store, err = raftboltdb.New(raftboltdb.Options{Path: filepath.Join(cfg.DataDir, "raft.db"), NoSync: cfg.UnsafeNoSync})
	if err != nil {
		return nil, fmt.Errorf("consensus: open raft log: %w", err)
	}
	c.snaps, err = raft.NewFileSnapshotStoreWithLogger(cfg.DataDir, cfg.Raft.SnapshotRetain, hl.Named("snapshot"))
	if err != nil {
		return nil, fmt.Errorf("consensus: snapshot store: %w", err)
	}
	c.sl, err = newStreamLayer(cfg.RaftBind, cfg.RaftAdvertise)
	if err != nil {
		return nil, err
	}
	c.trans = raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream: c.sl, MaxPool: cfg.Raft.MaxPool, Timeout: cfg.Raft.TransportTimeout, Logger: hl.Named("transport"),
	})
	hasState, err := raft.HasExistingState(c.store, c.store, c.snaps)
	if err != nil {
		return nil, fmt.Errorf("consensus: read raft state: %w", err)
	}
	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(cfg.NodeName)
	rc.HeartbeatTimeout = cfg.Raft.HeartbeatTimeout
	rc.ElectionTimeout = cfg.Raft.ElectionTimeout
	rc.LeaderLeaseTimeout = cfg.Raft.LeaderLeaseTimeout
	rc.CommitTimeout = cfg.Raft.CommitTimeout
	rc.SnapshotInterval = cfg.Raft.SnapshotInterval
	rc.SnapshotThreshold = cfg.Raft.SnapshotThreshold
	rc.TrailingLogs = cfg.Raft.TrailingLogs
	rc.Logger = hl
	notify := make(chan bool, 8)
	rc.NotifyCh = notify
	logs, err := raft.NewLogCache(logCacheSize, c.store)
	if err != nil {
		return nil, fmt.Errorf("consensus: log cache: %w", err)
	}
	c.raft, err = raft.NewRaft(rc, c.fsm, logs, c.store, c.snaps, c.trans)
	if err != nil {
		return nil, fmt.Errorf("consensus: start raft: %w", err)
	}

	c.mem = newMembers(c.poke)
	c.meta = &metaDelegate{meta: NodeMeta{
		RaftAddr: string(c.trans.LocalAddr()), APIAddr: cfg.APIAddr, BusAddr: cfg.BusAddr,
		Health: "ok", Expect: cfg.BootstrapExpect, HasState: hasState,
	}}
	mc, err := c.memberlistConfig()
	if err != nil {
		return nil, err
	}
	c.ml, err = memberlist.Create(mc)
	if err != nil {
		return nil, fmt.Errorf("consensus: start gossip: %w", err)
	}
	ln := c.ml.LocalNode() // read once: memberlist updates it without a lock
	c.gossipAddr = net.JoinHostPort(ln.Addr.String(), strconv.Itoa(int(ln.Port)))
	ok = true

	c.wg.Add(3)
	go c.watchLeadership(notify)
	go c.reconcileLoop()
	go c.joinLoop()
	if !hasState && cfg.BootstrapExpect > 0 {
		c.wg.Add(1)
		go c.bootstrapLoop()
	}
	c.log.Info("consensus: started", "raft", c.trans.LocalAddr(), "gossip", c.GossipAddr(), "existing_state", hasState)
	return c, nil
}

func hclogLevel(l slog.Level) hclog.Level {
	switch {
	case l < slog.LevelDebug:
		return hclog.Trace
	case l < slog.LevelInfo:
		return hclog.Debug
	case l < slog.LevelWarn:
		return hclog.Info
	case l < slog.LevelError:
		return hclog.Warn
	}
	return hclog.Error
}

func (c *Cluster) memberlistConfig() (*memberlist.Config, error) {
	cfg := c.cfg
	mc := memberlist.DefaultLANConfig()
	mc.Name = cfg.NodeName
	mc.Label = "patchgate/" + cfg.ClusterName
	host, port, err := splitHostPort(cfg.GossipBind)
	if err != nil {
		return nil, fmt.Errorf("consensus: GossipBind: %w", err)
	}
	mc.BindAddr, mc.BindPort = host, port
	mc.AdvertisePort = port
	if cfg.GossipAdvertise != "" {
		h, p, err := splitHostPort(cfg.GossipAdvertise)
		if err != nil {
			return nil, fmt.Errorf("consensus: GossipAdvertise: %w", err)
		}
		mc.AdvertiseAddr, mc.AdvertisePort = h, p
	}
	g := cfg.Gossip
	mc.ProbeInterval, mc.ProbeTimeout = g.ProbeInterval, g.ProbeTimeout
	mc.SuspicionMult, mc.SuspicionMaxTimeoutMult = g.SuspicionMult, g.SuspicionMaxTimeoutMult
	mc.GossipInterval, mc.GossipNodes, mc.RetransmitMult = g.GossipInterval, g.GossipNodes, g.RetransmitMult
	mc.PushPullInterval, mc.TCPTimeout = g.PushPullInterval, g.TCPTimeout
	mc.DeadNodeReclaimTime = g.DeadNodeReclaimTime
	mc.GossipToTheDeadTime = 2 * g.PushPullInterval
	mc.Delegate = c.meta
	mc.Events = c.mem
	mc.LogOutput = &levelWriter{l: c.log, component: "memberlist", min: c.cfg.LogLevel}
	return mc, nil
}

func splitHostPort(a string) (string, int, error) {
	h, p, err := net.SplitHostPort(a)
	if err != nil {
		return "", 0, err
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < 0 || port > 65535 {
		return "", 0, fmt.Errorf("bad port in %q", a)
	}
	if h == "" {
		h = "0.0.0.0"
	}
	return h, port, nil
}

// poke asks the reconciler (and the bootstrapper) to look at membership now.
func (c *Cluster) poke() {
	select {
	case c.pokeCh <- struct{}{}:
	default:
	}
}

// watchLeadership consumes raft's leadership notifications (raft blocks on
// them) and wakes the reconciler on every change.
func (c *Cluster) watchLeadership(ch <-chan bool) {
	defer c.wg.Done()
	for {
		select {
		case <-c.stop:
			return
		case leader := <-ch:
			c.reconcileMu.Lock()
			c.failedSince = map[string]time.Time{}
			c.reconcileMu.Unlock()
			c.log.Info("consensus: leadership changed", "leader", leader)
			c.poke()
		}
	}
}

// joinLoop joins the seeds, retrying until one answers or the node stops.
func (c *Cluster) joinLoop() {
	defer c.wg.Done()
	seeds := append(slices.Clone(c.cfg.Seeds), loadPeers(c.cfg.DataDir)...)
	if len(seeds) == 0 {
		return
	}
	for {
		n, err := c.ml.Join(seeds)
		if n > 0 {
			c.log.Info("consensus: joined", "contacted", n)
			return
		}
		c.log.Info("consensus: join failed, retrying", "seeds", seeds, "err", err)
		select {
		case <-c.stop:
			return
		case <-time.After(c.cfg.JoinRetryInterval):
		}
	}
}

// bootstrapLoop bootstraps a brand-new cluster once exactly BootstrapExpect
// new nodes with the same expectation see each other. It gives up as soon as
// any member reports raft state (the cluster exists: its leader adds us).
func (c *Cluster) bootstrapLoop() {
	defer c.wg.Done()
	tick := time.NewTicker(c.cfg.JoinRetryInterval)
	defer tick.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-tick.C:
		}
		done, err := c.tryBootstrap()
		if err != nil {
			c.log.Warn("consensus: bootstrap", "err", err)
		}
		if done {
			return
		}
	}
}

func (c *Cluster) tryBootstrap() (bool, error) {
	var servers []raft.Server
	for _, n := range c.ml.Members() {
		m, ok := c.mem.get(n.Name)
		if n.Name == c.cfg.NodeName {
			m, ok = Member{Name: n.Name, State: MemberAlive, Meta: c.meta.get()}, true
		}
		if !ok || m.State != MemberAlive || m.Meta.RaftAddr == "" {
			continue
		}
		if m.Meta.HasState {
			c.log.Info("consensus: an existing cluster was found; waiting to be added", "member", n.Name)
			return true, nil
		}
		if m.Meta.Expect != c.cfg.BootstrapExpect {
			continue
		}
		servers = append(servers, raft.Server{Suffrage: raft.Voter, ID: raft.ServerID(n.Name), Address: raft.ServerAddress(m.Meta.RaftAddr)})
	}
	if len(servers) != c.cfg.BootstrapExpect {
		return false, nil
	}
	c.log.Info("consensus: bootstrapping a new cluster", "servers", len(servers))
	err := c.raft.BootstrapCluster(raft.Configuration{Servers: servers}).Error()
	if err != nil && !errors.Is(err, raft.ErrCantBootstrap) {
		return false, fmt.Errorf("consensus: bootstrap: %w", err)
	}
	c.UpdateMeta(func(m *NodeMeta) { m.HasState = true })
	return true, nil
}

// FSM returns the node's state machine (its applied state).
func (c *Cluster) FSM() *FSM { return c.fsm }

// Name returns the node name.
func (c *Cluster) Name() string { return c.cfg.NodeName }

// RaftAddr returns the advertised raft address.
func (c *Cluster) RaftAddr() string { return string(c.trans.LocalAddr()) }

// GossipAddr returns the advertised gossip address.
func (c *Cluster) GossipAddr() string { return c.gossipAddr }

// IsLeader reports whether this node is the raft leader.
func (c *Cluster) IsLeader() bool { return c.raft.State() == raft.Leader }

// RaftState returns the raft role: "Leader", "Follower", "Candidate", "Shutdown".
func (c *Cluster) RaftState() string { return c.raft.State().String() }

// Leader returns the leader's id and raft address as this node knows them
// (empty when unknown).
func (c *Cluster) Leader() (id, raftAddr string) {
	addr, sid := c.raft.LeaderWithID()
	return string(sid), string(addr)
}

// Stats returns raft's counters (applied_index, last_log_index, term, ...).
func (c *Cluster) Stats() map[string]string { return c.raft.Stats() }

// Server is a member of the raft configuration.
type Server struct {
	ID      string
	Address string
	Voter   bool
	Leader  bool
}

// Servers returns the raft configuration as this node knows it.
func (c *Cluster) Servers() ([]Server, error) {
	f := c.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return nil, fmt.Errorf("consensus: configuration: %w", err)
	}
	lid, _ := c.Leader()
	var out []Server
	for _, s := range f.Configuration().Servers {
		out = append(out, Server{ID: string(s.ID), Address: string(s.Address), Voter: s.Suffrage == raft.Voter, Leader: string(s.ID) == lid})
	}
	return out, nil
}

// Members returns every node seen through gossip, including dead and departed
// ones, sorted by name; the local node is included.
func (c *Cluster) Members() []Member {
	out := c.mem.list()
	suspect := map[string]bool{}
	for _, n := range c.ml.Members() {
		if n.State == memberlist.StateSuspect {
			suspect[n.Name] = true
		}
	}
	for i := range out {
		if out[i].Name == c.cfg.NodeName {
			out[i].Meta = c.meta.get()
		}
		if suspect[out[i].Name] && out[i].State == MemberAlive {
			out[i].State = MemberSuspect
		}
	}
	return out
}

// LocalMeta returns the metadata this node gossips.
func (c *Cluster) LocalMeta() NodeMeta { return c.meta.get() }

// UpdateMeta changes the gossiped metadata and broadcasts it.
func (c *Cluster) UpdateMeta(f func(*NodeMeta)) {
	c.meta.update(f)
	if err := c.ml.UpdateNode(c.cfg.Gossip.TCPTimeout); err != nil {
		c.log.Info("consensus: metadata broadcast incomplete", "err", err)
	}
}

// ReportApplied records in the gossiped metadata that the node's data plane
// now runs a (called by the node after its atomic program swap).
func (c *Cluster) ReportApplied(a Assignment) {
	c.UpdateMeta(func(m *NodeMeta) { m.Version, m.Hash, m.Drained = a.Version, a.ContentHash, a.Drained })
}

// Leave leaves gracefully: leadership is handed over if this node leads, the
// cluster is told through gossip (the leader then removes this server at
// once), and the node shuts down.
func (c *Cluster) Leave(timeout time.Duration) error {
	if c.IsLeader() {
		if err := c.raft.LeadershipTransfer().Error(); err != nil {
			c.log.Info("consensus: leadership transfer before leave failed", "err", err)
		}
	}
	if err := c.ml.Leave(timeout); err != nil {
		c.log.Info("consensus: gossip leave", "err", err)
	}
	return c.Shutdown()
}

// Shutdown stops the node without leaving (to the others it looks failed
// until it comes back). The data stays; Start with the same Config resumes.
func (c *Cluster) Shutdown() error {
	c.shutOnce.Do(func() {
		close(c.stop)
		c.shutErr = c.closeAll()
		c.wg.Wait()
	})
	return c.shutErr
}

func (c *Cluster) closeAll() error {
	var errs []error
	if c.raft != nil {
		if err := c.raft.Shutdown().Error(); err != nil {
			errs = append(errs, err)
		}
	}
	if c.ml != nil {
		if err := c.ml.Shutdown(); err != nil {
			errs = append(errs, err)
		}
	}
	if c.trans != nil {
		c.trans.Close()
	} else if c.sl != nil {
		c.sl.Close()
	}
	if c.store != nil {
		if err := c.store.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("consensus: shutdown: %w", err)
	}
	return nil
}
