package node

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/gopacket/layers"

	"github.com/patchgate/patchgate/consensus"
	"github.com/patchgate/patchgate/dataplane/engine"
	"github.com/patchgate/patchgate/dataplane/flow"
	"github.com/patchgate/patchgate/dataplane/inline"
)

// Defaults of the drain section.
const (
	DefaultDrainQuiet   = 2 * time.Second
	DefaultDrainTimeout = 30 * time.Second
)

// drainTick is how often the drain controller looks at the drain request,
// the packets of the node's flows and the peers' drain state.
const drainTick = 100 * time.Millisecond

// drainMetaEvery bounds how often a changed flows-remaining count is
// gossiped (a phase change is gossiped at once).
const drainMetaEvery = time.Second

// drainPublishBudget bounds one publication of every flow's checkpoint.
const drainPublishBudget = 10 * time.Second

// clusterSyncWait bounds how long a node with a cluster section withholds
// its route announcement at start while it does not know its drain flag
// (not caught up with the cluster's log); after it, the node announces
// anyway (it inspects with the program in force) and warns.
const clusterSyncWait = 30 * time.Second

// DrainConfig is the `drain:` section: how a drained node decides that its
// flows have moved to the other nodes.
type DrainConfig struct {
	// Quiet: the node reports drained once none of its flows sent a packet
	// through it for this long (the routers have converged).
	Quiet time.Duration `yaml:"quiet"`
	// Timeout: the node reports drained after this long even if packets
	// still arrive (flows then left are counted in the status).
	Timeout time.Duration `yaml:"timeout"`
}

// DefaultDrainConfig returns a 2 s quiet period and a 30 s timeout.
func DefaultDrainConfig() DrainConfig {
	return DrainConfig{Quiet: DefaultDrainQuiet, Timeout: DefaultDrainTimeout}
}

// validate appends problems of the section to bad (paths under drain.).
func (c DrainConfig) validate(bad func(path, format string, args ...any)) {
	if c.Quiet < 10*time.Millisecond || c.Quiet > time.Minute {
		bad("drain.quiet", "must be within 10ms..1m, got %v", c.Quiet)
	}
	if c.Timeout < c.Quiet || c.Timeout > time.Hour {
		bad("drain.timeout", "must be within drain.quiet..1h, got %v", c.Timeout)
	}
}

// DrainPhase is where a node is in a drain. A route controller or a BGP
// speaker announces the node's next hop only in PhaseAnnounce (see /routez).
type DrainPhase string

// Drain phases.
const (
	// PhaseAnnounce: the node attracts traffic (not drained).
	PhaseAnnounce DrainPhase = "announce"
	// PhaseDraining: the node asks to be withdrawn and still forwards and
	// inspects the packets of its flows until they have moved.
	PhaseDraining DrainPhase = "draining"
	// PhaseDrained: no packet of its flows for the quiet period (or the
	// drain timeout passed): the node can be stopped.
	PhaseDrained DrainPhase = "drained"
)

// DrainStatus is a node's drain state.
type DrainStatus struct {
	Phase DrainPhase
	// FlowsRemaining counts the flows that sent a packet through the node
	// within the last quiet period while draining (0 when announcing).
	FlowsRemaining int
	// Since is when the current phase began.
	Since time.Time
	// Requested says who asked for the drain: "cluster" (patchctl node
	// drain), "local" (Node.Drain) or "" when announcing.
	Requested string
	// TimedOut is set when the node reported drained at the drain timeout
	// with flows still sending.
	TimedOut bool
	// Shared is true when the node shares its flows' state on the bus; when
	// false its flows are taken over by the other nodes with their
	// configured mid-stream policy (resynchronise, reset or drop).
	Shared bool
}

// String is the status line of /readyz and the logs.
func (s DrainStatus) String() string {
	switch s.Phase {
	case PhaseAnnounce:
		return "announce"
	case PhaseDraining:
		return fmt.Sprintf("draining (%s request): %d flows still sending%s", s.Requested, s.FlowsRemaining, s.how())
	}
	to := ""
	if s.TimedOut {
		to = " at the drain timeout"
	}
	return fmt.Sprintf("drained%s (%s request): %d flows still sending%s", to, s.Requested, s.FlowsRemaining, s.how())
}

func (s DrainStatus) how() string {
	if s.Shared {
		return "; flow state shared on the bus"
	}
	return "; no bus: moved flows are handled by the mid-stream policy"
}

// drainer tracks a node's drain. The packet path calls saw through the
// inspector wrapper only while active is set; the rest runs on the drain
// controller goroutine (step) and the readers (status). It is safe for
// concurrent use.
type drainer struct {
	cfg    DrainConfig
	active atomic.Bool  // draining or drained: track and publish every packet's flow
	local  atomic.Bool  // Node.Drain(true)
	last   atomic.Int64 // UnixNano of the latest packet while active
	// synced is set once the node knows its drain flag (always without a
	// cluster section); started is when the drain controller began.
	synced  atomic.Bool
	started time.Time

	mu        sync.Mutex
	st        DrainStatus
	seen      map[flow.Key]int64 // flow -> UnixNano of its latest packet while active
	metaSent  DrainStatus
	metaAt    time.Time
	peersSent []string
}

func newDrainer(cfg DrainConfig, shared bool) *drainer {
	d := &drainer{cfg: cfg, seen: map[flow.Key]int64{}}
	d.st = DrainStatus{Phase: PhaseAnnounce, Since: time.Now(), Shared: shared}
	return d
}

// saw records a packet of flow k (packet path, while active).
func (d *drainer) saw(k flow.Key) {
	now := time.Now().UnixNano()
	d.last.Store(now)
	d.mu.Lock()
	d.seen[k] = now
	d.mu.Unlock()
}

// status returns the current drain state.
func (d *drainer) status() DrainStatus {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.st
}

// transition is what step asks the node to do after a phase change.
type transition uint8

const (
	noChange transition = iota
	startedDraining
	becameDrained
	undrained
)

// step advances the drain state at time now given whether a drain is
// requested (and by whom).
func (d *drainer) step(now time.Time, requested string) transition {
	d.mu.Lock()
	defer d.mu.Unlock()
	if requested == "" {
		if d.st.Phase == PhaseAnnounce {
			return noChange
		}
		d.active.Store(false)
		clear(d.seen)
		d.st = DrainStatus{Phase: PhaseAnnounce, Since: now, Shared: d.st.Shared}
		return undrained
	}
	if d.st.Phase == PhaseAnnounce {
		d.st = DrainStatus{Phase: PhaseDraining, Since: now, Requested: requested, Shared: d.st.Shared}
		d.last.Store(0)
		d.active.Store(true)
		return startedDraining
	}
	d.st.Requested = requested
	cut := now.Add(-d.cfg.Quiet).UnixNano()
	for k, t := range d.seen {
		if t < cut {
			delete(d.seen, k)
		}
	}
	d.st.FlowsRemaining = len(d.seen)
	if d.st.Phase != PhaseDraining {
		return noChange
	}
	quietFrom := d.st.Since
	if l := d.last.Load(); l != 0 && time.Unix(0, l).After(quietFrom) {
		quietFrom = time.Unix(0, l)
	}
	switch {
	case now.Sub(quietFrom) >= d.cfg.Quiet:
		d.st.Phase, d.st.Since = PhaseDrained, now
		return becameDrained
	case now.Sub(d.st.Since) >= d.cfg.Timeout:
		d.st.Phase, d.st.Since, d.st.TimedOut = PhaseDrained, now, true
		return becameDrained
	}
	return noChange
}

// drainInspector is the inspector the backend runs: the engine's worker,
// plus, while the node drains, a checkpoint of the packet's flow published
// after every packet (so that the peers' caches follow the exact state of
// flows the node still forwards while the routers converge).
type drainInspector struct {
	w *engine.Worker
	n *Node
}

// Process implements inline.Inspector.
func (i *drainInspector) Process(lt layers.LinkType, frame []byte, ts time.Time) engine.Result {
	r := i.w.Process(lt, frame, ts)
	if i.n.drain.active.Load() && r.Flow.A.IsValid() {
		i.n.drain.saw(r.Flow)
		if i.n.bus != nil {
			if rec, err := i.n.eng.Export(r.Flow); err == nil {
				i.n.bus.PublishOwned(r.Flow, rec)
			}
		}
	}
	return r
}

// newInspector returns an inspector for one backend worker.
func (n *Node) newInspector() inline.Inspector {
	return &drainInspector{w: n.eng.NewWorker(), n: n}
}

// Drain requests (on) or cancels a local drain, independent of the
// cluster's drain flag: the node drains while either asks for it.
func (n *Node) Drain(on bool) { n.drain.local.Store(on) }

// DrainStatus returns the node's drain state.
func (n *Node) DrainStatus() DrainStatus { return n.drain.status() }

// Announce reports whether the node's next hop should be announced to the
// routers (ready and not draining) and, when not, why.
func (n *Node) Announce() (bool, string) {
	if !n.Ready() {
		return false, "not ready"
	}
	if !n.drain.synced.Load() {
		return false, "not synced with the cluster"
	}
	if st := n.drain.status(); st.Phase != PhaseAnnounce {
		return false, string(st.Phase)
	}
	return true, ""
}

// drainRequest says who asks the node to drain ("" nobody).
func (n *Node) drainRequest() string {
	if ag := n.Agent(); ag != nil && ag.Applied().Drained {
		return "cluster"
	}
	if n.drain.local.Load() {
		return "local"
	}
	return ""
}

// drainLoop runs the drain controller until ctx ends.
func (n *Node) drainLoop(ctx context.Context) {
	n.drain.started = time.Now()
	t := time.NewTicker(drainTick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			n.drainStep(ctx, now)
		}
	}
}

// drainStep is one round of the drain controller.
func (n *Node) drainStep(ctx context.Context, now time.Time) {
	if !n.drain.synced.Load() {
		n.checkSynced(now)
	}
	switch n.drain.step(now, n.drainRequest()) {
	case startedDraining:
		st := n.drain.status()
		n.log.Info("drain: draining, /routez withdraws the node", "requested", st.Requested,
			"shared", st.Shared, "midstream_policy", n.cfg.Engine.Midstream, "quiet", n.cfg.Drain.Quiet, "timeout", n.cfg.Drain.Timeout)
		n.syncDrainMeta(now, true)
		n.publishAll(ctx, "start")
	case becameDrained:
		st := n.drain.status()
		n.publishAll(ctx, "end")
		if st.TimedOut {
			n.log.Warn("drain: drain timeout passed with flows still sending; reporting drained", "flows_remaining", st.FlowsRemaining)
		} else {
			n.log.Info("drain: drained, no packet of the node's flows for the quiet period", "quiet", n.cfg.Drain.Quiet)
		}
		n.syncDrainMeta(now, true)
	case undrained:
		n.log.Info("drain: undrained, /routez announces the node again")
		n.syncDrainMeta(now, true)
	default:
		n.syncDrainMeta(now, false)
	}
	n.syncDrainingPeers()
}

// checkSynced sets drain.synced once the node knows its drain flag: no
// cluster section, or a leader is known, the local log is applied up to the
// commit index the leader sent, and the agent applied this node's
// assignment from that state. After clusterSyncWait it gives up waiting.
func (n *Node) checkSynced(now time.Time) {
	if n.cfg.Cluster == nil {
		n.drain.synced.Store(true)
		return
	}
	if ag := n.Agent(); ag != nil {
		cl := ag.Cluster()
		st := cl.Stats()
		commit, err1 := strconv.ParseUint(st["commit_index"], 10, 64)
		applied, err2 := strconv.ParseUint(st["applied_index"], 10, 64)
		if id, _ := cl.Leader(); id != "" && err1 == nil && err2 == nil && commit > 0 && applied >= commit &&
			ag.Applied().Drained == cl.FSM().Target(cl.Name()).Drained {
			n.drain.synced.Store(true)
			n.log.Info("drain: caught up with the cluster, the route announcement follows the drain flag",
				"drained", ag.Applied().Drained)
			return
		}
	}
	if now.Sub(n.drain.started) >= clusterSyncWait {
		n.drain.synced.Store(true)
		n.log.Warn("drain: not caught up with the cluster; announcing the route with the drain state known locally", "waited", clusterSyncWait)
	}
}

// publishAll publishes the current checkpoint of every flow the engine
// holds (waiting for room in the publisher's queue, within
// drainPublishBudget), so that the peers can resume any of them exactly.
func (n *Node) publishAll(ctx context.Context, when string) {
	if n.bus == nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, drainPublishBudget)
	defer cancel()
	keys := n.eng.FlowKeys()
	sent := 0
	for _, k := range keys {
		rec, err := n.eng.Export(k)
		if err != nil {
			continue // the flow ended meanwhile
		}
		if err := n.bus.PublishWait(ctx, k, rec); err != nil {
			n.log.Warn("drain: publishing the flows' checkpoints stopped", "when", when, "sent", sent, "flows", len(keys), "err", err)
			return
		}
		sent++
	}
	n.log.Info("drain: published the checkpoints of all flows", "when", when, "flows", sent)
}

// syncDrainMeta gossips the drain phase (at once when it changed, or
// force) and the flows remaining (at most every drainMetaEvery).
func (n *Node) syncDrainMeta(now time.Time, force bool) {
	ag := n.Agent()
	if ag == nil {
		return
	}
	st := n.drain.status()
	n.drain.mu.Lock()
	sent, at := n.drain.metaSent, n.drain.metaAt
	n.drain.mu.Unlock()
	switch {
	case force || st.Phase != sent.Phase:
	case st.FlowsRemaining != sent.FlowsRemaining && now.Sub(at) >= drainMetaEvery:
	default:
		return
	}
	ag.Cluster().UpdateMeta(func(m *consensus.NodeMeta) {
		m.DrainPhase, m.DrainFlows = string(st.Phase), st.FlowsRemaining
	})
	n.drain.mu.Lock()
	n.drain.metaSent, n.drain.metaAt = st, now
	n.drain.mu.Unlock()
}

// syncDrainingPeers tells the bus which peers are draining: those the
// replicated state flags drained and those gossiping a draining or drained
// phase (a local drain).
func (n *Node) syncDrainingPeers() {
	ag := n.Agent()
	if n.bus == nil || ag == nil {
		return
	}
	cl := ag.Cluster()
	peers := drainingPeers(cl.Members(), cl.Name(), func(name string) bool { return cl.FSM().Target(name).Drained })
	n.drain.mu.Lock()
	same := slices.Equal(peers, n.drain.peersSent)
	n.drain.peersSent = peers
	n.drain.mu.Unlock()
	if !same {
		n.bus.SetDraining(peers)
		n.log.Info("drain: draining peers", "peers", peers)
	}
}

// drainingPeers returns the sorted names of the members other than self
// that are draining: flagged in the replicated state (flagged) or gossiping
// a phase other than announce.
func drainingPeers(members []consensus.Member, self string, flagged func(string) bool) []string {
	var out []string
	for _, m := range members {
		if m.Name == self {
			continue
		}
		p := DrainPhase(m.Meta.DrainPhase)
		if m.Meta.Drained || p == PhaseDraining || p == PhaseDrained || flagged(m.Name) {
			out = append(out, m.Name)
		}
	}
	slices.Sort(out)
	return out
}

// routez serves the node's route announcement: 200 "announce" while the
// node is ready and not draining, else 503 "withdraw: REASON" (draining,
// drained, not ready). It is what a route controller or a BGP speaker next
// to the node follows: announce the node's next hop on 200, withdraw it on
// the first 503; a refused or timed-out request means the node is dead
// (withdraw after the controller's failure count).
func (n *Node) routez(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	if ok, why := n.Announce(); !ok {
		http.Error(w, "withdraw: "+why, http.StatusServiceUnavailable)
		return
	}
	fmt.Fprintln(w, "announce")
}
