package node

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"sync"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/patchgate/patchgate/api"
	"github.com/patchgate/patchgate/consensus"
	"github.com/patchgate/patchgate/consensus/patchset"
	"github.com/patchgate/patchgate/dataplane/engine"
	"github.com/patchgate/patchgate/dataplane/patch"
)

// DefaultApplyRetry spaces attempts to apply an assignment that failed.
const DefaultApplyRetry = 2 * time.Second

// ClusterConfig is the optional `cluster:` section. When present the node
// joins the cluster, serves the control API, and enforces the patch-set
// version the cluster assigns to it (the local `patches` directory is then
// only the boot program, in force until the first assignment).
type ClusterConfig struct {
	// NodeID is the node's name in the cluster ("": the node's name).
	NodeID      string `yaml:"node_id"`
	ClusterName string `yaml:"cluster_name"`
	DataDir     string `yaml:"data_dir"`
	// RaftAddr / GossipAddr are listen addresses; the *Advertise ones what
	// peers dial ("": the listen address).
	RaftAddr        string   `yaml:"raft_addr"`
	RaftAdvertise   string   `yaml:"raft_advertise"`
	GossipAddr      string   `yaml:"gossip_addr"`
	GossipAdvertise string   `yaml:"gossip_advertise"`
	Seeds           []string `yaml:"seeds"`
	// BootstrapExpect is set (to the same value) on the first servers of a
	// brand-new cluster only.
	BootstrapExpect int `yaml:"bootstrap_expect"`
	Voters          int `yaml:"voters"`
	// TrustedKeys are public key files (patchctl keygen); a patch set signed
	// by any other key is refused, by the leader and by every node.
	TrustedKeys []string `yaml:"trusted_keys"`
	// TestPatchSets makes the leader run embedded patch tests before commit.
	TestPatchSets bool `yaml:"test_patch_sets"`
	// API configures the control API (token, TLS, rate limit).
	API api.Config `yaml:"api"`

	// Tuning overrides the consensus timings (tests: consensus.FastConfig).
	Tuning *consensus.Config `yaml:"-"`
	// Keys, when set, replaces TrustedKeys (embedding and tests).
	Keys patchset.KeySet `yaml:"-"`
}

// DefaultClusterConfig returns the defaults of the cluster section.
func DefaultClusterConfig() ClusterConfig {
	d := consensus.DefaultConfig()
	return ClusterConfig{ClusterName: d.ClusterName, DataDir: "/var/lib/patchgate/cluster",
		RaftAddr: d.RaftBind, GossipAddr: d.GossipBind, Voters: d.Voters, TestPatchSets: true, API: api.DefaultConfig()}
}

// validate appends problems of the section to bad (paths under cluster.).
func (c *ClusterConfig) validate(bad func(path, format string, args ...any)) {
	if c.DataDir == "" {
		bad("cluster.data_dir", "must be set")
	}
	for _, a := range []struct{ path, v string }{{"cluster.raft_addr", c.RaftAddr}, {"cluster.gossip_addr", c.GossipAddr}} {
		if _, _, err := net.SplitHostPort(a.v); err != nil {
			bad(a.path, "%q is not host:port", a.v)
		}
	}
	if len(c.TrustedKeys) == 0 && len(c.Keys) == 0 {
		bad("cluster.trusted_keys", "must name at least one public key file: nodes refuse unsigned patch sets")
	}
	if err := c.API.Validate(); err != nil {
		bad("cluster.api", "%v", err)
	}
}

// consensusConfig builds the consensus configuration.
func (c *ClusterConfig) consensusConfig(name string, keys patchset.KeySet, apiAddr string, log *slog.Logger) (consensus.Config, error) {
	cc := consensus.DefaultConfig()
	if c.Tuning != nil {
		cc = *c.Tuning
	}
	cc.NodeName = c.NodeID
	if cc.NodeName == "" {
		cc.NodeName = name
	}
	if c.ClusterName != "" {
		cc.ClusterName = c.ClusterName
	}
	cc.DataDir = c.DataDir
	cc.RaftBind, cc.RaftAdvertise = c.RaftAddr, c.RaftAdvertise
	cc.GossipBind, cc.GossipAdvertise = c.GossipAddr, c.GossipAdvertise
	cc.Seeds, cc.BootstrapExpect = c.Seeds, c.BootstrapExpect
	if c.Voters != 0 {
		cc.Voters = c.Voters
	}
	cc.TrustedKeys, cc.TestPatchSets, cc.APIAddr = keys, c.TestPatchSets, apiAddr
	cc.Logger = log
	if err := cc.Validate(); err != nil {
		return cc, fmt.Errorf("node: cluster: %w", err)
	}
	return cc, nil
}

// Agent connects a node's engine to the cluster: it runs the cluster member,
// serves the API, and applies the assigned patch set off the packet path.
// Its methods are safe for concurrent use.
type Agent struct {
	cl   *consensus.Cluster
	api  *api.Server
	eng  *engine.Engine
	keys patchset.KeySet
	log  *slog.Logger

	mu      sync.Mutex
	applied consensus.Assignment
	cache   map[string]*patch.Program // by version|hash|detect, last few

	cancel context.CancelFunc
	done   chan struct{}
}

// StartAgent starts the cluster member named name, the API (local and alerts
// may be nil) and the applier for eng (nil: a member without a data plane,
// which still verifies and compiles every assigned version).
func StartAgent(cfg ClusterConfig, name string, eng *engine.Engine, local api.Local, alerts *api.AlertHub, log *slog.Logger) (*Agent, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	keys := cfg.Keys
	if len(keys) == 0 {
		var err error
		if keys, err = patchset.LoadKeySet(cfg.TrustedKeys...); err != nil {
			return nil, fmt.Errorf("node: cluster: trusted_keys: %w", err)
		}
	}
	srv, err := api.New(cfg.API, log)
	if err != nil {
		return nil, fmt.Errorf("node: cluster: %w", err)
	}
	cc, err := cfg.consensusConfig(name, keys, srv.Addr(), log)
	if err != nil {
		srv.Stop()
		return nil, err
	}
	cl, err := consensus.Start(cc)
	if err != nil {
		srv.Stop()
		return nil, fmt.Errorf("node: cluster: %w", err)
	}
	cl.UpdateMeta(func(m *consensus.NodeMeta) { m.Health = "ok" })
	a := &Agent{cl: cl, api: srv, eng: eng, keys: keys, log: log, cache: map[string]*patch.Program{}, done: make(chan struct{})}
	srv.Serve(cl, local, alerts)
	ctx, cancel := context.WithCancel(context.Background())
	a.cancel = cancel
	go func() {
		defer close(a.done)
		a.watch(ctx, DefaultApplyRetry)
	}()
	return a, nil
}

// watch applies this node's assignment whenever the replicated state changes
// it (consensus.Cluster.WatchAssignment does the same, but reports the
// applied version synchronously, and a gossip broadcast can take tens of
// milliseconds: here reporting runs beside the applier, latest value wins, so
// the next version is never delayed by the report of the previous one).
func (a *Agent) watch(ctx context.Context, retry time.Duration) {
	report := make(chan consensus.Assignment, 1)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-ctx.Done():
				return
			case as := <-report:
				a.cl.ReportApplied(as)
			}
		}
	}()
	defer wg.Wait()
	var (
		last    consensus.Assignment
		applied bool
		timer   <-chan time.Time
	)
	fsm, name := a.cl.FSM(), a.cl.Name()
	for {
		ch := fsm.Changed()
		as := fsm.Target(name)
		if !applied || !as.Equal(last) {
			if err := a.Apply(as); err != nil {
				a.log.Warn("node: applying the assigned patch set failed; the program in force stays", "version", as.Version, "err", err)
				timer = time.After(retry)
			} else {
				last, applied, timer = as, true, nil
				select { // replace a report not yet sent
				case <-report:
				default:
				}
				report <- as
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-ch:
		case <-timer:
		}
	}
}

// Cluster returns the cluster member.
func (a *Agent) Cluster() *consensus.Cluster { return a.cl }

// APIAddr returns the API's advertised address.
func (a *Agent) APIAddr() string { return a.api.Addr() }

// Applied returns the last assignment applied to the engine.
func (a *Agent) Applied() consensus.Assignment {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.applied
}

// Apply makes the engine enforce assignment as: the version's bundle is
// taken from the replicated history, verified against this node's trusted
// keys and its content hash, compiled with the detect-only patches in detect
// mode, and swapped in with one atomic pointer store. Version 0 (nothing
// committed yet) keeps the program in force. On any error the program in
// force stays (static stability).
func (a *Agent) Apply(as consensus.Assignment) error {
	if as.Version == 0 {
		a.mu.Lock()
		a.applied = as
		a.mu.Unlock()
		return nil
	}
	key := fmt.Sprintf("%d|%s|%v", as.Version, as.ContentHash, as.DetectOnly)
	a.mu.Lock()
	prog := a.cache[key]
	a.mu.Unlock()
	if prog == nil {
		var err error
		if prog, err = a.compile(as); err != nil {
			return err
		}
	}
	if a.eng != nil {
		a.eng.SetProgram(prog)
	}
	a.mu.Lock()
	a.applied = as
	if len(a.cache) >= 4 {
		clear(a.cache)
	}
	a.cache[key] = prog
	a.mu.Unlock()
	a.log.Info("node: patch set applied", "version", as.Version, "hash", as.ContentHash, "detect_only", len(as.DetectOnly), "drained", as.Drained)
	return nil
}

func (a *Agent) compile(as consensus.Assignment) (*patch.Program, error) {
	st := a.cl.FSM().State()
	rec := st.Record(as.Version)
	if rec == nil || len(rec.Bundle) == 0 {
		return nil, fmt.Errorf("node: cluster: version %d: bundle not in the replicated history", as.Version)
	}
	b, err := patchset.Unmarshal(rec.Bundle)
	if err != nil {
		return nil, fmt.Errorf("node: cluster: %w", err)
	}
	if err := b.Verify(a.keys); err != nil {
		return nil, fmt.Errorf("node: cluster: %w", err)
	}
	if b.ContentHash() != as.ContentHash || b.Version() != as.Version {
		return nil, fmt.Errorf("node: cluster: version %d: bundle hash %s, assignment says %s", as.Version, b.ContentHash(), as.ContentHash)
	}
	ps, err := b.Patches()
	if err != nil {
		return nil, fmt.Errorf("node: cluster: %w", err)
	}
	for _, p := range ps {
		if slices.Contains(as.DetectOnly, p.ID) {
			p.Mode = patch.Detect
		}
	}
	prog, err := patch.Compile(as.Version, ps)
	if err != nil {
		return nil, fmt.Errorf("node: cluster: version %d: %w", as.Version, err)
	}
	return prog, nil
}

// Stop stops the applier and the API, then leaves the cluster gracefully
// (leave=true) or just shuts the member down. The engine keeps the program
// in force.
func (a *Agent) Stop(leave bool) error {
	a.cancel()
	<-a.done
	a.api.Stop()
	if leave {
		return a.cl.Leave(5 * time.Second)
	}
	return a.cl.Shutdown()
}

// UnmarshalYAML decodes the section over DefaultClusterConfig.
func (c *ClusterConfig) UnmarshalYAML(n *yaml.Node) error {
	type plain ClusterConfig
	d := plain(DefaultClusterConfig())
	if err := n.Decode(&d); err != nil {
		return err
	}
	*c = ClusterConfig(d)
	return nil
}
