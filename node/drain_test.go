package node

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/gopacket/layers"

	"github.com/patchgate/patchgate/consensus"
	"github.com/patchgate/patchgate/dataplane"
	"github.com/patchgate/patchgate/dataplane/checkpoint"
	"github.com/patchgate/patchgate/dataplane/engine"
	"github.com/patchgate/patchgate/dataplane/flow"
	"github.com/patchgate/patchgate/dataplane/gen"
	"github.com/patchgate/patchgate/dataplane/inline"
)

// drainQuiet is the quiet period of the drain tests' nodes.
const drainQuiet = 300 * time.Millisecond

// startDrainCluster runs n bus-sharing cluster nodes (startBusCluster) with
// the HTTP endpoint on loopback and a short drain quiet period.
func startDrainCluster(t *testing.T, n int) []*Node {
	t.Helper()
	return startBusCluster(t, "gw-d", n, func(cfg *Config) {
		cfg.HTTP.Listen = "127.0.0.1:0"
		cfg.Drain = DrainConfig{Quiet: drainQuiet, Timeout: 20 * time.Second}
		cfg.Bus.LookupTimeout = 500 * time.Millisecond
	})
}

// setDrain sets or clears node's drain flag through the raft leader.
func setDrain(t *testing.T, nodes []*Node, node string, on bool) {
	t.Helper()
	pollFor(t, 10*time.Second, func() error {
		for _, nd := range nodes {
			if cl := nd.Agent().Cluster(); cl.IsLeader() {
				_, err := cl.SetDrain(node, on, "test", "tester")
				return err
			}
		}
		return fmt.Errorf("no leader")
	})
}

// longRequest is a benign request of several segments.
var longRequest = "GET /big HTTP/1.1\r\nHost: example.test\r\nX-Pad: " + strings.Repeat("p", 5000) + "\r\n\r\n"

// TestDrainMovesFlowsExactly: node A holds a flow in the middle of a
// request and a flow it blocked; A is drained (patchctl node drain); it
// withdraws (/routez 503), keeps forwarding stragglers and publishes their
// state; node B takes the flows over and inspects them exactly as an
// undisturbed engine does (the exploit sent after the move is blocked), the
// blocked flow stays blocked; A goes announce → draining → drained and,
// undrained, announces again.
func TestDrainMovesFlowsExactly(t *testing.T) {
	nodes := startDrainCluster(t, 2)
	a, b := nodes[0], nodes[1]
	routez := func(nd *Node) (int, string) { return get(t, "http://"+nd.HTTPAddr()+"/routez") }
	pollFor(t, 10*time.Second, func() error { // once A caught up with the cluster's log
		if code, body := routez(a); code != 200 || body != "announce\n" {
			return fmt.Errorf("/routez before the drain: %d %q", code, body)
		}
		return nil
	})

	// Flow 1: mid-request on A. Flow 2: blocked on A.
	frames := httpFrames(t, "198.51.100.7:41001", longRequest, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
		shellshock, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
	var mid []int // frames carrying the long request
	for i, f := range frames {
		if f.Meta.Dir == dataplane.ToServer && f.Meta.Msg == 0 {
			mid = append(mid, i)
		}
	}
	if len(mid) < 3 {
		t.Fatalf("the long request takes %d segments, want 3 or more", len(mid))
	}
	cutA, cutB := mid[0]+1, mid[1]+1 // A: up to the 1st segment, then the 2nd as a straggler while draining
	blockedFrames := httpFrames(t, "198.51.100.7:41002", shellshock, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")

	ref, err := engine.New(a.cfg.engineConfig(1), a.prog, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := process(ref.NewWorker(), frames)

	insA := a.newInspector()
	run := func(ins inline.Inspector, fs []gen.Frame) []engine.Result {
		out := make([]engine.Result, 0, len(fs))
		for _, f := range fs {
			out = append(out, ins.Process(layers.LinkTypeEthernet, f.Data, f.CI.Timestamp))
		}
		return out
	}
	got := run(insA, frames[:cutA])
	k := got[0].Flow
	blockCut := -1
	var kBlocked flow.Key
	for i, f := range blockedFrames {
		r := insA.Process(layers.LinkTypeEthernet, f.Data, f.CI.Timestamp)
		kBlocked = r.Flow
		if r.Verdict != dataplane.Pass {
			blockCut = i
			break
		}
	}
	if blockCut < 0 || blockCut+1 >= len(blockedFrames) {
		t.Fatalf("A did not block flow 2 before its end (cut %d of %d)", blockCut, len(blockedFrames))
	}

	// Drain A; record the phases it goes through.
	var mu sync.Mutex
	var phases []DrainPhase
	stop := make(chan struct{})
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		for {
			p := a.DrainStatus().Phase
			mu.Lock()
			if len(phases) == 0 || phases[len(phases)-1] != p {
				phases = append(phases, p)
			}
			mu.Unlock()
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	}()
	setDrain(t, nodes, a.cfg.Name, true)
	pollFor(t, 10*time.Second, func() error {
		if p := a.DrainStatus().Phase; p != PhaseDraining {
			return fmt.Errorf("A is %s", p)
		}
		return nil
	})
	if code, body := routez(a); code != 503 || !strings.Contains(body, "withdraw: draining") {
		t.Fatalf("/routez while draining: %d %q", code, body)
	}
	// A straggler reaches A while the routers converge; B learns that A
	// drains (from the replicated flag) and caches A's state of both flows.
	got = append(got, run(insA, frames[cutA:cutB])...)
	pollFor(t, 10*time.Second, func() error {
		if !b.Bus().IsDraining(a.cfg.Name) {
			return fmt.Errorf("B does not know that A drains")
		}
		return nil
	})
	waitCached(t, a, b, k)
	waitCached(t, a, b, kBlocked)

	// The routers moved the flows to B.
	insB := b.newInspector()
	before := b.Engine().Stats()
	got = append(got, run(insB, frames[cutB:])...)
	for i := range want {
		if got[i].Verdict != want[i].Verdict || got[i].Reason != want[i].Reason {
			t.Errorf("frame %d: %v/%v after the move, undisturbed engine %v/%v", i,
				got[i].Verdict, got[i].Reason, want[i].Verdict, want[i].Reason)
		}
	}
	if !slices.ContainsFunc(got[cutB:], func(r engine.Result) bool { return r.Verdict != dataplane.Pass }) {
		t.Error("B did not block the exploit sent after the move")
	}
	// Exactly: B's state of the flow is the undisturbed engine's.
	recB, err := b.Engine().Export(k)
	if err != nil {
		t.Fatal(err)
	}
	recRef, err := ref.Export(k)
	if err != nil {
		t.Fatal(err)
	}
	gotRec, err1 := checkpoint.Unmarshal(recB)
	wantRec, err2 := checkpoint.Unmarshal(recRef)
	if err1 != nil || err2 != nil {
		t.Fatal(err1, err2)
	}
	if !bytes.Equal(gotRec.Stream, wantRec.Stream) || !bytes.Equal(gotRec.AnalyzerState, wantRec.AnalyzerState) ||
		gotRec.Packets != wantRec.Packets || gotRec.Blocked != wantRec.Blocked || gotRec.Midstream {
		t.Errorf("B's flow state differs from the undisturbed engine's: packets %v/%v blocked %v/%v midstream %v",
			gotRec.Packets, wantRec.Packets, gotRec.Blocked, wantRec.Blocked, gotRec.Midstream)
	}
	for i, r := range run(insB, blockedFrames[blockCut+1:]) {
		if r.Verdict == dataplane.Pass {
			t.Errorf("B passed frame %d of the flow blocked on A", blockCut+1+i)
		}
	}
	st := b.Engine().Stats()
	if st.Resumed-before.Resumed != 2 || st.Pickups != before.Pickups {
		t.Errorf("B resumed %d flows and picked up %d, want 2 and 0", st.Resumed-before.Resumed, st.Pickups-before.Pickups)
	}
	if h := b.Bus().Health(); h.DrainLookups == 0 {
		t.Errorf("B resumed the draining node's flows without asking for their live state: %+v", h)
	}

	// No more packets on A: drained after the quiet period.
	pollFor(t, 10*time.Second, func() error {
		if st := a.DrainStatus(); st.Phase != PhaseDrained || st.TimedOut {
			return fmt.Errorf("A: %s", st)
		}
		return nil
	})
	if code, body := routez(a); code != 503 || !strings.Contains(body, "withdraw: drained") {
		t.Fatalf("/routez when drained: %d %q", code, body)
	}
	srv := httptest.NewServer(a.Handler())
	defer srv.Close()
	if _, body := get(t, srv.URL+"/readyz"); !strings.Contains(body, "drained (cluster request)") {
		t.Errorf("/readyz when drained: %q", body)
	}
	_, metrics := get(t, srv.URL+"/metrics")
	for _, m := range []string{`patchgate_drain_state{node="gw-d0",phase="drained"} 1`,
		`patchgate_drain_state{node="gw-d0",phase="announce"} 0`, `patchgate_drain_flows_remaining{node="gw-d0"} 0`} {
		if !strings.Contains(metrics, m) {
			t.Errorf("A's metrics lack %s", m)
		}
	}
	_, metrics = get(t, "http://"+b.HTTPAddr()+"/metrics")
	for _, m := range []string{`patchgate_midstream_total{node="gw-d1",outcome="resumed"} 2`,
		`patchgate_midstream_total{node="gw-d1",outcome="resync"} 0`, `patchgate_bus_drain_lookups_total{node="gw-d1"} 2`} {
		if !strings.Contains(metrics, m) {
			t.Errorf("B's metrics lack %s", m)
		}
	}
	// Peers see the phase in A's gossiped metadata, and in the API status.
	pollFor(t, 10*time.Second, func() error {
		for _, m := range b.Agent().Cluster().Members() {
			if m.Name == a.cfg.Name && m.Meta.DrainPhase == string(PhaseDrained) && m.Meta.Drained {
				return nil
			}
		}
		return fmt.Errorf("B does not see A drained")
	})
	if ph, _ := a.view.Drain(); ph != string(PhaseDrained) {
		t.Errorf("API drain phase %q", ph)
	}

	setDrain(t, nodes, a.cfg.Name, false)
	pollFor(t, 10*time.Second, func() error {
		if code, _ := routez(a); code != 200 {
			return fmt.Errorf("/routez %d", code)
		}
		if b.Bus().IsDraining(a.cfg.Name) {
			return fmt.Errorf("B still thinks A drains")
		}
		return nil
	})
	close(stop)
	<-watched
	mu.Lock()
	defer mu.Unlock()
	if w := []DrainPhase{PhaseAnnounce, PhaseDraining, PhaseDrained, PhaseAnnounce}; !slices.Equal(phases, w) {
		t.Errorf("phases %v, want %v", phases, w)
	}
}

// A local drain of a node without the bus: the node withdraws and reports
// that moved flows are handled by the mid-stream policy; traffic that keeps
// arriving holds the drain until the timeout.
func TestDrainWithoutBusTimesOut(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Name = "gw-solo"
	cfg.Patches = catalog(t)
	cfg.EVE, cfg.HTTP.Listen = "", ""
	cfg.Drain = DrainConfig{Quiet: drainQuiet, Timeout: 3 * drainQuiet}
	n, err := New(cfg, Options{Logger: slog.New(slog.DiscardHandler),
		Backend: func(Config, func() inline.Inspector, *slog.Logger) (inline.Backend, error) { return idleBackend{}, nil }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.closeFiles)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go n.drainLoop(ctx)
	srv := httptest.NewServer(n.Handler())
	defer srv.Close()

	ins := n.newInspector()
	frames := httpFrames(t, "198.51.100.8:42001", longRequest)
	i := 0
	next := func() { // the flow's next packet, then retransmissions of its last
		f := frames[min(i, len(frames)-1)]
		ins.Process(layers.LinkTypeEthernet, f.Data, f.CI.Timestamp)
		i++
	}
	next()
	n.Drain(true)
	// Packets keep coming (the routers never converge): drained at the
	// timeout, with the flow counted as remaining.
	pollFor(t, 10*time.Second, func() error {
		next()
		st := n.DrainStatus()
		if st.Phase != PhaseDrained {
			return fmt.Errorf("%s", st)
		}
		if !st.TimedOut || st.FlowsRemaining != 1 || st.Shared || st.Requested != "local" {
			t.Fatalf("drained %+v, want timed out with 1 flow remaining, not shared, local", st)
		}
		return nil
	})
	code, body := get(t, srv.URL+"/routez")
	if code != 503 || body != "withdraw: drained\n" {
		t.Fatalf("/routez %d %q", code, body)
	}
	if _, body := get(t, srv.URL+"/readyz"); !strings.Contains(body, "mid-stream policy") || !strings.Contains(body, "drain timeout") {
		t.Errorf("/readyz %q", body)
	}
	n.Drain(false)
	pollFor(t, 10*time.Second, func() error {
		if st := n.DrainStatus(); st.Phase != PhaseAnnounce || st.FlowsRemaining != 0 {
			return fmt.Errorf("%s", st)
		}
		return nil
	})
	if code, _ := get(t, srv.URL+"/routez"); code != 200 {
		t.Fatalf("/routez after undrain: %d", code)
	}
}

func TestDrainConfig(t *testing.T) {
	cfg, err := Parse("n.yaml", []byte("drain:\n  quiet: 500ms\n"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Drain.Quiet != 500*time.Millisecond || cfg.Drain.Timeout != DefaultDrainTimeout {
		t.Fatalf("drain section %+v", cfg.Drain)
	}
	for _, c := range []struct{ yaml, path string }{
		{"drain:\n  quiet: 0s\n", "drain.quiet"},
		{"drain:\n  timeout: 1s\n", "drain.timeout"},
		{"drain:\n  timeout: 2h\n", "drain.timeout"},
	} {
		if _, err := Parse("n.yaml", []byte(c.yaml)); err == nil || !strings.Contains(err.Error(), c.path+":") {
			t.Errorf("%q: error %v, want one naming %s", c.yaml, err, c.path)
		}
	}
}

func TestDrainingPeers(t *testing.T) {
	ms := []consensus.Member{
		{Name: "gw1", Meta: consensus.NodeMeta{DrainPhase: "draining"}},
		{Name: "gw2", Meta: consensus.NodeMeta{DrainPhase: "announce"}},
		{Name: "gw3", Meta: consensus.NodeMeta{Drained: true}},
		{Name: "gw4"},
		{Name: "gw5", Meta: consensus.NodeMeta{DrainPhase: "drained"}},
		{Name: "self", Meta: consensus.NodeMeta{DrainPhase: "draining"}},
	}
	got := drainingPeers(ms, "self", func(n string) bool { return n == "gw4" })
	if w := []string{"gw1", "gw3", "gw4", "gw5"}; !slices.Equal(got, w) {
		t.Fatalf("draining peers %v, want %v", got, w)
	}
}
