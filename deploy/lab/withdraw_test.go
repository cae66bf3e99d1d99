package lab

import (
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestWithdrawalConfigValidate(t *testing.T) {
	if err := DefaultWithdrawalConfig().Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	for field, mut := range map[string]func(*WithdrawalConfig){
		"Interval":   func(c *WithdrawalConfig) { c.Interval = time.Millisecond },
		"Failures":   func(c *WithdrawalConfig) { c.Failures = 0 },
		"HealthPort": func(c *WithdrawalConfig) { c.HealthPort = 70000 },
		"Buckets":    func(c *WithdrawalConfig) { c.Buckets = 1 },
	} {
		c := DefaultWithdrawalConfig()
		mut(&c)
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), field) {
			t.Errorf("%s: got %v, want an error naming it", field, err)
		}
	}
}

// routeState is what a fake node's /routez answers: 503 while draining is
// set (counting those answers), else 200.
type routeState struct {
	draining  atomic.Bool
	withdraws atomic.Int64
}

// healthServer serves /healthz and /routez on node i's R1-side address until
// stopped (rs nil: /routez always announces).
func healthServer(t *testing.T, l *Lab, i int, rs *routeState) func() {
	t.Helper()
	addr, err := l.HealthListen(i, DefaultHealthPort)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := Listen(l.Nodes[i-1].NS, "tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/routez" && rs != nil && rs.draining.Load() {
			rs.withdraws.Add(1)
			http.Error(w, "withdraw: draining", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})}
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(ln) }()
	var once sync.Once
	stop := func() { once.Do(func() { srv.Close(); <-done }) }
	t.Cleanup(stop)
	return stop
}

// flowDevs asks R1 which link each TCP flow from client 1 (source ports
// 40000+k, half IPv6) to server 1 port 80 takes.
func flowDevs(t *testing.T, l *Lab, flows int) []string {
	t.Helper()
	var in strings.Builder
	c, s := l.Clients[0], l.Servers[0]
	for k := 0; k < flows; k++ {
		src, dst := c.Addr4, s.Addr4
		if k%2 == 1 {
			src, dst = c.Addr6, s.Addr6
		}
		fmt.Fprintf(&in, "route get %s from %s iif lan ipproto tcp sport %d dport 80\n", dst, src, 40000+k)
	}
	out, err := runInput([]byte(in.String()), "ip", "-n", l.R1.NS, "-batch", "-")
	if err != nil {
		t.Fatal(err)
	}
	var devs []string
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || line[0] == ' ' || line[0] == '\t' {
			continue
		}
		for j := 0; j+1 < len(f); j++ {
			if f[j] == "dev" {
				devs = append(devs, f[j+1])
				break
			}
		}
	}
	if len(devs) != flows {
		t.Fatalf("route get: %d answers for %d flows:\n%s", len(devs), flows, out)
	}
	return devs
}

// TestWithdrawal checks the route controller: a node whose /healthz stops
// answering leaves both routers' resilient groups (v4 and v6) within a
// second, only its flows move, flows still cross the lab, and the node is
// restored when healthy again.
func TestWithdrawal(t *testing.T) {
	requireRoot(t)
	l := up(t, testConfig(t, L3, 3))
	stops := make([]func(), len(l.Nodes))
	drain3 := &routeState{}
	for _, n := range l.Nodes {
		var rs *routeState
		if n.Index == 3 {
			rs = drain3
		}
		stops[n.Index-1] = healthServer(t, l, n.Index, rs)
	}
	cfg := DefaultWithdrawalConfig()
	var mu sync.Mutex
	changed := map[int]time.Time{}
	withdrawsSeen := int64(-1) // 503 answers of node 3 when it was withdrawn
	cfg.OnChange = func(node int, up bool, at time.Time) {
		mu.Lock()
		defer mu.Unlock()
		changed[node] = at
		if node == 3 && !up {
			withdrawsSeen = drain3.withdraws.Load()
		}
	}
	w, err := l.StartWithdrawal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)
	const flows = 64
	before := flowDevs(t, l, flows)

	groups := func(ns string) string {
		out4, err := l.Exec(ns, "ip", "nexthop", "show", "id", "1999")
		if err != nil {
			t.Fatal(err)
		}
		out6, err := l.Exec(ns, "ip", "nexthop", "show", "id", "2999")
		if err != nil {
			t.Fatal(err)
		}
		return out4 + out6
	}
	for _, ns := range []string{"r1", "r2"} {
		if g := groups(ns); !strings.Contains(g, "group 1001/1002/1003 ") || !strings.Contains(g, "group 2001/2002/2003 ") {
			t.Fatalf("%s groups: %s", ns, g)
		}
	}

	stopAt := time.Now()
	stops[1]()
	waitUntil(t, 5*time.Second, "node 2 withdrawn", func() bool {
		mu.Lock()
		defer mu.Unlock()
		_, ok := changed[2] // set by OnChange, which runs after Up changed
		return ok
	})
	mu.Lock()
	t.Logf("node 2 withdrawn %v after its health endpoint closed", changed[2].Sub(stopAt).Round(time.Millisecond))
	mu.Unlock()
	if err := w.Err(); err != nil {
		t.Fatal(err)
	}
	for _, ns := range []string{"r1", "r2"} {
		if g := groups(ns); !strings.Contains(g, "group 1001/1003 ") || !strings.Contains(g, "group 2001/2003 ") {
			t.Fatalf("%s groups after withdrawal: %s", ns, g)
		}
	}
	after := flowDevs(t, l, flows)
	moved := 0
	for k := range before {
		switch {
		case before[k] == "n2" && after[k] == "n2":
			t.Errorf("flow %d still takes the withdrawn node", k)
		case before[k] == "n2":
			moved++
		case before[k] != after[k]:
			t.Errorf("flow %d moved from %s to %s, though its node is healthy", k, before[k], after[k])
		}
	}
	if moved == 0 {
		t.Errorf("no flow took node 2 before: %v", before)
	}
	echoTCP(t, l.Servers[0].NS, ":7003")
	for k := 0; k < 8; k++ {
		addr := l.Servers[0].Addr4.String()
		if k%2 == 1 {
			addr = l.Servers[0].Addr6.String()
		}
		if err := tcpRoundTrip(l.Clients[0].NS, net.JoinHostPort(addr, "7003"), "after withdrawal"); err != nil {
			t.Fatalf("flow %d after withdrawal: %v", k, err)
		}
	}

	stops[1] = healthServer(t, l, 2, nil)
	waitUntil(t, 5*time.Second, "node 2 restored", func() bool { up, _ := w.Up(2); return up })
	for _, ns := range []string{"r1", "r2"} {
		if g := groups(ns); !strings.Contains(g, "group 1001/1002/1003 ") {
			t.Fatalf("%s groups after restore: %s", ns, g)
		}
	}

	// Drain: node 3's /routez answers 503 while its /healthz stays fine; the
	// controller withdraws it at the first 503, not after Failures of them,
	// and restores it once it announces again.
	drain3.draining.Store(true)
	var seen int64
	waitUntil(t, 5*time.Second, "draining node 3 withdrawn", func() bool {
		mu.Lock()
		defer mu.Unlock()
		seen = withdrawsSeen // set by OnChange, which runs after Up changed
		return seen >= 0
	})
	if seen != 1 {
		t.Errorf("node 3 withdrawn after %d answers 503, want the first", seen)
	}
	for _, ns := range []string{"r1", "r2"} {
		if g := groups(ns); !strings.Contains(g, "group 1001/1002 ") || !strings.Contains(g, "group 2001/2002 ") {
			t.Fatalf("%s groups with node 3 draining: %s", ns, g)
		}
	}
	drain3.draining.Store(false)
	waitUntil(t, 5*time.Second, "undrained node 3 restored", func() bool { up, _ := w.Up(3); return up })
	if err := w.Err(); err != nil {
		t.Fatal(err)
	}
}

// waitUntil polls cond every 20 ms for at most timeout.
func waitUntil(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
