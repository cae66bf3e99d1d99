package e2e

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/patchgate/patchgate/deploy/lab"
)

// Failover scenario sizes and bounds.
const (
	failoverSessions = 150
	failoverWarmup   = 3 * time.Second
	failoverAfter    = 5 * time.Second // traffic kept going after the withdrawal
	failoverKill     = 1               // the node killed
	// failoverBound stops the sessions whatever happens.
	failoverBound = 40 * time.Second
)

// shellshock is a request header the shipped CVE-2014-6271 patch resets.
const shellshock = "User-Agent: () { :; }; /bin/id"

// TestFailoverNodeKill is the shared-flow-state acceptance test for a node
// crash: a 3-node L3 lab whose nodes share flow checkpoints over an embedded
// NATS cluster (bus on each node's R1-side address, static routes to the
// others), the lab's route controller health-checking every node from R1.
// 150 HTTP keep-alive sessions (a request every 100 ms, a third over IPv6)
// run through the lab; node 1 is SIGKILLed; the controller withdraws it from
// both routers' resilient nexthop groups, so only its flows move. No session
// breaks (no error, no new connection, no gap over 2 s), and an exploit sent
// on a connection that moved off node 1 is reset by the survivor. The same
// scenario without the bus (the survivors pick moved flows up mid-stream) is
// the baseline: how many sessions break is logged, not asserted.
func TestFailoverNodeKill(t *testing.T) {
	requireE2E(t)
	t.Run("sharing", func(t *testing.T) {
		r := runFailover(t, true)
		if r.broken != 0 {
			t.Errorf("%d of %d sessions broke with flow sharing on", r.broken, r.sessions)
		}
		if r.movedErr != nil {
			t.Errorf("a benign request on the connection moved off node %d failed: %v", failoverKill, r.movedErr)
		}
		if r.pickedUp == 0 {
			t.Errorf("the survivors resumed no moved flow from a checkpoint")
		}
		if !r.exploitReset {
			t.Errorf("the exploit sent on the connection moved off node %d was not reset: %v", failoverKill, r.exploitErr)
		}
	})
	t.Run("baseline", func(t *testing.T) {
		r := runFailover(t, false)
		t.Logf("baseline without flow sharing: %d of %d sessions broke; moved connection: benign %v, exploit reset %v",
			r.broken, r.sessions, r.movedErr, r.exploitReset)
	})
}

// failoverResult is what one failover scenario measured.
type failoverResult struct {
	sessions, broken int
	withdrawal       time.Duration
	movedErr         error // benign request on the moved raw connection
	exploitReset     bool
	exploitErr       error
	pickedUp         int // survivors' pickups from a checkpoint (cache or bus)
}

// runFailover runs the kill scenario with the bus on (sharing) or off.
func runFailover(t *testing.T, sharing bool) failoverResult {
	l := upLab(t, lab.L3, "open")
	if err := l.ClusterRoutes(); err != nil {
		t.Fatal(err)
	}
	wcfg := lab.DefaultWithdrawalConfig()
	for _, n := range l.Nodes {
		f, err := l.DefaultNodeFile(n.Index)
		if err != nil {
			t.Fatal(err)
		}
		if f.HTTP.Listen, err = l.HealthListen(n.Index, wcfg.HealthPort); err != nil {
			t.Fatal(err)
		}
		f.Engine.Midstream = "pickup"
		if sharing {
			if f.Bus, err = l.DefaultBusFile(n.Index); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := l.WriteNodeConfig(n.Index, f); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range l.Nodes {
		if err := l.StartNode(n.Index); err != nil {
			t.Fatal(err)
		}
	}
	if sharing {
		var last string
		ok := waitFor(20*time.Second, func() bool {
			for _, n := range l.Nodes {
				v, err := metric(l, n.Index, "patchgate_bus_routes")
				if err != nil || v < float64(len(l.Nodes)-1) {
					last = fmt.Sprintf("node %d: bus routes %v, %v", n.Index, v, err)
					return false
				}
			}
			return true
		})
		if !ok {
			t.Fatalf("the bus cluster did not form: %s", last)
		}
	}

	w, err := l.StartWithdrawal(wcfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)
	// Every node must be in the routers' groups (and have passed checks for a
	// while) before the sessions start, or they would not spread.
	if !waitFor(20*time.Second, func() bool {
		for _, n := range l.Nodes {
			if up, since := w.Up(n.Index); !up || (!since.IsZero() && time.Since(since) < time.Second) {
				return false
			}
		}
		return true
	}) {
		t.Fatalf("not every node stayed in the routers' groups before the kill")
	}
	srv := startHTTPServer(t, l.Servers[0].NS)
	_ = srv
	host4 := l.Servers[0].Addr4.String()
	host6 := l.Servers[0].Addr6.String()

	// A raw keep-alive connection known to cross the node to be killed.
	ports := portsByNode(t, l, l.Clients[0].NS, net.JoinHostPort(host4, "80"))
	moved, err := dialFrom(l.Clients[0].NS, ports[failoverKill], host4)
	if err != nil {
		t.Fatal(err)
	}
	defer moved.Close()
	if err := moved.get("/fo/moved/before"); err != nil {
		t.Fatalf("moved connection before the kill: %v", err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), failoverBound)
	defer cancel()
	sessions := make([]*kaSession, failoverSessions)
	var wg sync.WaitGroup
	for i := range sessions {
		ns := l.Clients[i%len(l.Clients)].NS
		url := "http://" + host4
		if i%3 == 2 {
			url = "http://[" + host6 + "]"
		}
		sessions[i] = newKASession(i, ns, url)
		wg.Add(1)
		go func(s *kaSession, delay time.Duration) {
			defer wg.Done()
			select {
			case <-time.After(delay):
			case <-ctx.Done():
				return
			}
			s.run(ctx, sessionInterval)
		}(sessions[i], time.Duration(i)*time.Second/failoverSessions)
	}
	stop := func() {
		cancel()
		wg.Wait()
	}
	defer stop()

	time.Sleep(failoverWarmup) // traffic flows through every node before the kill
	locals := make([]netip.AddrPort, len(sessions))
	for i, s := range sessions {
		locals[i] = s.localAddr()
	}
	perNode := map[string]int{}
	if devs, err := nextHopDevs(l, locals, l.Servers[0].Addr4, l.Servers[0].Addr6); err != nil {
		t.Logf("sessions per node unknown: %v", err)
	} else {
		for _, d := range devs {
			perNode[d]++
		}
		t.Logf("sessions per node before the kill: %v", perNode)
		for _, n := range l.Nodes {
			if perNode[n.Role] == 0 {
				t.Errorf("no session crosses node %d (%v): the routers do not spread flows", n.Index, perNode)
			}
		}
	}
	killAt := time.Now()
	if err := l.KillNode(failoverKill); err != nil {
		t.Fatal(err)
	}
	if !waitFor(10*time.Second, func() bool { up, _ := w.Up(failoverKill); return !up }) {
		t.Fatalf("the route controller did not withdraw node %d", failoverKill)
	}
	if err := w.Err(); err != nil {
		t.Fatal(err)
	}
	_, withdrawnAt := w.Up(failoverKill)
	if withdrawnAt.Before(killAt) {
		t.Fatalf("node %d was withdrawn before the kill (%v)", failoverKill, killAt.Sub(withdrawnAt))
	}
	res := failoverResult{sessions: failoverSessions, withdrawal: withdrawnAt.Sub(killAt)}
	t.Logf("sharing %v: node %d withdrawn %v after SIGKILL", sharing, failoverKill, res.withdrawal.Round(time.Millisecond))

	// The connection that crossed node 1 now crosses a survivor.
	res.movedErr = moved.get("/fo/moved/after")
	res.exploitErr = moved.get("/fo/moved/exploit", shellshock)
	res.exploitReset = outcome{ClientErr: res.exploitErr}.reset()

	time.Sleep(time.Until(killAt.Add(res.withdrawal + failoverAfter)))
	stop()
	for _, s := range sessions {
		if why := s.broken(); why != "" {
			res.broken++
			if res.broken <= 5 {
				t.Logf("session %d (%s) broken: %s", s.id, s.url, why)
			}
		}
	}
	for _, n := range l.Nodes {
		if n.Index == failoverKill {
			continue
		}
		for _, o := range []string{"cache_hit", "bus_hit"} {
			if v, err := metric(l, n.Index, `patchgate_bus_pickups_total{node="`+n.Name+`",outcome="`+o+`"}`); err == nil {
				res.pickedUp += int(v)
			}
		}
		if _, body, err := l.NodeGet(n.Index, "/metrics"); err == nil {
			for _, line := range strings.Split(string(body), "\n") {
				if strings.HasPrefix(line, "patchgate_bus_pickups_total") || strings.HasPrefix(line, "patchgate_bus_lookups") {
					t.Logf("node %d: %s", n.Index, line)
				}
			}
		}
	}
	t.Logf("sharing %v: %d of %d sessions broken", sharing, res.broken, res.sessions)
	return res
}
