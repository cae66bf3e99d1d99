package node

import (
	"context"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"strings"
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

// idleBackend is a backend that feeds nothing: the bus tests drive the
// node's engine with their own workers.
type idleBackend struct{}

func (idleBackend) Run(ctx context.Context) error { <-ctx.Done(); return nil }
func (idleBackend) Ready() bool                   { return true }
func (idleBackend) Stats() inline.Stats           { return inline.Stats{} }

const shellshock = "GET /cgi-bin/x HTTP/1.1\r\nHost: example.test\r\nUser-Agent: () { :; }; /bin/id\r\n\r\n"

// newBusNode builds a node with the bus enabled on random loopback ports,
// routed to routes; it is closed when the test ends.
func newBusNode(t *testing.T, name string, routes ...string) *Node {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Name = name
	cfg.Patches = catalog(t)
	cfg.EVE = ""
	cfg.HTTP.Listen = ""
	cfg.Bus.Enabled = true
	cfg.Bus.Listen = "127.0.0.1:0"
	cfg.Bus.ClusterListen = "127.0.0.1:0"
	cfg.Bus.Routes = routes
	cfg.Bus.LookupTimeout = 500 * time.Millisecond
	n, err := New(cfg, Options{
		Logger:  slog.New(slog.DiscardHandler),
		Backend: func(Config, func() inline.Inspector, *slog.Logger) (inline.Backend, error) { return idleBackend{}, nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.closeFiles)
	return n
}

// waitUntil polls f every 5 ms for at most 10 s.
func waitUntil(t *testing.T, what string, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// httpFrames returns the frames of a TCP session client -> server:80 with the
// given request/response exchanges.
func httpFrames(t *testing.T, client string, msgs ...string) []gen.Frame {
	t.Helper()
	s, err := gen.NewTCPSession(gen.EP(client), gen.EP("203.0.113.2:80"), gen.DefaultSessionOptions())
	if err != nil {
		t.Fatal(err)
	}
	for i, m := range msgs {
		dir := dataplane.ToServer
		if i%2 == 1 {
			dir = dataplane.ToClient
		}
		s.Send(dir, []byte(m))
	}
	frames, err := s.Frames()
	if err != nil {
		t.Fatal(err)
	}
	return frames
}

func process(w *engine.Worker, frames []gen.Frame) []engine.Result {
	out := make([]engine.Result, 0, len(frames))
	for _, f := range frames {
		out = append(out, w.Process(layers.LinkTypeEthernet, f.Data, f.CI.Timestamp))
	}
	return out
}

// routedPair starts two bus nodes routed together and waits until each
// caches a checkpoint the other published (route interest propagated).
func routedPair(t *testing.T) (a, b *Node) {
	t.Helper()
	a = newBusNode(t, "gw-a")
	b = newBusNode(t, "gw-b", a.Bus().Server().ClusterAddr())
	waitUntil(t, "routes are up", func() bool {
		return a.Bus().Server().NumRoutes() == 1 && b.Bus().Server().NumRoutes() == 1
	})
	for i, p := range [][2]*Node{{a, b}, {b, a}} {
		from, to := p[0], p[1]
		res := process(from.Engine().NewWorker(), httpFrames(t, fmt.Sprintf("192.0.2.%d:1000", 10+i), "GET / HTTP/1.1\r\nHost: a\r\n\r\n"))
		k := res[0].Flow
		rec, err := from.Engine().Export(k)
		if err != nil {
			t.Fatal(err)
		}
		waitUntil(t, "a warm-up checkpoint crossed the bus", func() bool {
			from.Bus().Publish(k, rec)
			time.Sleep(5 * time.Millisecond)
			return to.Bus().Cache().Get(k) != nil
		})
	}
	return a, b
}

// waitCached waits until b caches a checkpoint of k as recent as a's live
// state of the flow.
func waitCached(t *testing.T, a, b *Node, k flow.Key) {
	t.Helper()
	live, err := a.Engine().Export(k)
	if err != nil {
		t.Fatal(err)
	}
	want, err := checkpoint.Unmarshal(live)
	if err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "b caches a's latest checkpoint", func() bool {
		rec := b.Bus().Cache().Get(k)
		if rec == nil {
			return false
		}
		got, err := checkpoint.Unmarshal(rec)
		return err == nil && got.Packets == want.Packets && got.Blocked == want.Blocked
	})
}

// TestBusMovesFlowBetweenNodes: the first half of a session runs through node
// A, the rest through node B, which resumes it from A's checkpoint and blocks
// an exploit sent after the move.
func TestBusMovesFlowBetweenNodes(t *testing.T) {
	a, b := routedPair(t)
	frames := httpFrames(t, "198.51.100.1:40001",
		"GET / HTTP/1.1\r\nHost: example.test\r\n\r\n", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
		shellshock, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
	cut := -1
	for i, f := range frames {
		if f.Meta.Dir == dataplane.ToClient && f.Meta.Last {
			cut = i
			break
		}
	}
	resA := process(a.Engine().NewWorker(), frames[:cut+1])
	for i, r := range resA {
		if r.Verdict != dataplane.Pass {
			t.Fatalf("node A: frame %d of the benign half: %+v", i, r)
		}
	}
	k := resA[0].Flow
	waitCached(t, a, b, k)
	before := b.Engine().Stats()
	blocked := false
	for _, r := range process(b.Engine().NewWorker(), frames[cut+1:]) {
		blocked = blocked || r.Verdict != dataplane.Pass
	}
	st := b.Engine().Stats()
	if st.Resumed-before.Resumed != 1 || st.Pickups != before.Pickups {
		t.Fatalf("node B: resumed %d pickups %d, want 1 resumed and no pickup", st.Resumed-before.Resumed, st.Pickups-before.Pickups)
	}
	if !blocked {
		t.Fatal("node B did not block the exploit sent after the move")
	}
	if h := b.Bus().Health(); h.CacheHits+h.BusHits == 0 {
		t.Fatalf("node B resumed without a cache or bus hit: %+v", h)
	}
	if h := a.Bus().Health(); h.Published == 0 || h.Degraded {
		t.Fatalf("node A: published %d degraded %v (%s)", h.Published, h.Degraded, h.Reason)
	}

	// A peer's live flow is also answered on request (a flow B's cache
	// lacks): A's responder exports it from its engine.
	res := process(a.Engine().NewWorker(), httpFrames(t, "198.51.100.1:40002", "GET / HTTP/1.1\r\nHost: a\r\n\r\n"))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	rec, err := b.Bus().Lookup(ctx, res[0].Flow)
	if err != nil || rec == nil {
		t.Fatalf("lookup of A's live flow: %v (record %d bytes)", err, len(rec))
	}
	if a.Bus().Health().LookupsServed == 0 {
		t.Fatal("A served no lookup")
	}
}

// TestBusKeepsBlockedFlowBlocked: a flow blocked on node A stays blocked on
// node B after it moved.
func TestBusKeepsBlockedFlowBlocked(t *testing.T) {
	a, b := routedPair(t)
	frames := httpFrames(t, "198.51.100.1:40003", shellshock, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
	w := a.Engine().NewWorker()
	cut := -1
	var k flow.Key
	for i, f := range frames {
		r := w.Process(layers.LinkTypeEthernet, f.Data, f.CI.Timestamp)
		k = r.Flow
		if r.Verdict != dataplane.Pass {
			cut = i
			break
		}
	}
	if cut < 0 || cut+1 >= len(frames) {
		t.Fatalf("node A did not block the exploit before the end (cut %d of %d)", cut, len(frames))
	}
	waitCached(t, a, b, k)
	for i, r := range process(b.Engine().NewWorker(), frames[cut+1:]) {
		if r.Verdict == dataplane.Pass {
			t.Fatalf("node B passed frame %d of a flow blocked on A: %+v", cut+1+i, r)
		}
	}
	if st := b.Engine().Stats(); st.Resumed != 1 || st.Pickups != 0 {
		t.Fatalf("node B: resumed %d pickups %d", st.Resumed, st.Pickups)
	}
}

// TestBusDownNodeKeepsInspecting: with the bus down the node still inspects
// and blocks, counts the checkpoints it drops, and reports its failover
// protection degraded (metrics, /readyz, API health).
func TestBusDownNodeKeepsInspecting(t *testing.T) {
	n := newBusNode(t, "gw-down")
	n.Bus().Server().Shutdown()
	waitUntil(t, "the client sees the bus down", func() bool { return !n.Bus().Health().Connected })
	blocked := false
	for _, r := range process(n.Engine().NewWorker(), httpFrames(t, "198.51.100.1:40004", shellshock)) {
		blocked = blocked || r.Verdict != dataplane.Pass
	}
	if !blocked {
		t.Fatal("the exploit passed with the bus down")
	}
	h := n.Bus().Health()
	if h.Dropped == 0 || !h.Degraded {
		t.Fatalf("dropped %d degraded %v", h.Dropped, h.Degraded)
	}
	if got := n.view.Health(); got != "degraded" {
		t.Fatalf("API health %q, want degraded", got)
	}
	srv := httptest.NewServer(n.Handler())
	defer srv.Close()
	code, body := get(t, srv.URL+"/readyz")
	if code != 200 || !strings.Contains(body, "failover protection degraded") {
		t.Fatalf("/readyz %d %q", code, body)
	}
	_, metrics := get(t, srv.URL+"/metrics")
	for _, want := range []string{
		`patchgate_bus_healthy{node="gw-down"} 0`,
		`patchgate_bus_hold_seconds_bucket{node="gw-down",le="0.02"}`,
		`patchgate_bus_pickups_total{node="gw-down",outcome="cache_hit"} 0`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if strings.Contains(metrics, `patchgate_bus_checkpoints_total{node="gw-down",outcome="dropped"} 0`) {
		t.Error("metrics show no dropped checkpoints")
	}
}

func TestBusConfig(t *testing.T) {
	cfg, err := Parse("n.yaml", []byte("bus:\n  enabled: true\n  lookup_timeout: 50ms\n  routes: [192.0.2.12:6222]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Bus.LookupTimeout != 50*time.Millisecond || cfg.Bus.Listen != DefaultBusConfig().Listen {
		t.Fatalf("bus section %+v", cfg.Bus)
	}
	bc, err := cfg.Bus.busConfig(cfg.Name)
	if err != nil || bc.NodeID != cfg.Name || bc.Server.Routes[0] != "192.0.2.12:6222" || bc.LookupTimeout != 50*time.Millisecond {
		t.Fatalf("bus.Config %+v, %v", bc, err)
	}
	for _, c := range []struct{ yaml, path string }{
		{"bus:\n  enabled: true\n  listen: nope\n", "bus.listen"},
		{"bus:\n  enabled: true\n  cluster_listen: 127.0.0.1:x\n", "bus.cluster_listen"},
		{"bus:\n  enabled: true\n  lookup_timeout: 10s\n", "bus.lookup_timeout"},
		{"bus:\n  enabled: true\n  shards: 0\n", "bus.shards"},
		{"bus:\n  enabled: true\n  urls: [nats://192.0.2.1:4222]\n  routes: [192.0.2.2:6222]\n", "bus.routes"},
		{"bus:\n  enabled: true\n  auth: {user: u}\n", "bus.auth.user"},
		{"bus:\n  enabled: true\n  tls: {ca_file: /nonexistent/ca.pem}\n", "bus.tls.ca_file"},
		{"bus:\n  enabled: true\n  cluster_advertise: nope\n", "bus.cluster_advertise"},
	} {
		_, err := Parse("n.yaml", []byte(c.yaml))
		if err == nil || !strings.Contains(err.Error(), c.path+":") {
			t.Errorf("%q: error %v, want one naming %s", c.yaml, err, c.path)
		}
	}
	// Disabled, the section is not checked.
	if _, err := Parse("n.yaml", []byte("bus:\n  listen: nope\n")); err != nil {
		t.Fatal(err)
	}
}

func TestBusRoutesFromMembership(t *testing.T) {
	ms := []consensus.Member{
		{Name: "gw1", State: consensus.MemberAlive, Meta: consensus.NodeMeta{BusAddr: "192.0.2.11:6222"}},
		{Name: "gw2", State: consensus.MemberAlive, Meta: consensus.NodeMeta{BusAddr: "192.0.2.12:6222"}},
		{Name: "gw3", State: consensus.MemberSuspect, Meta: consensus.NodeMeta{BusAddr: "192.0.2.13:6222"}},
		{Name: "gw4", State: consensus.MemberDead, Meta: consensus.NodeMeta{BusAddr: "192.0.2.14:6222"}},
		{Name: "gw5", State: consensus.MemberLeft, Meta: consensus.NodeMeta{BusAddr: "192.0.2.15:6222"}},
		{Name: "ctl", State: consensus.MemberAlive},
	}
	got := busRoutes(ms, "gw1", []string{"192.0.2.12:6222", "192.0.2.20:6222"})
	want := []string{"192.0.2.12:6222", "192.0.2.13:6222", "192.0.2.20:6222"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("routes %v, want %v", got, want)
	}
}
