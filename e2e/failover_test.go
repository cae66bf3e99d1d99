package e2e

import (
	"testing"
	"time"
)

// Failover scenario bounds.
const (
	failoverAfter = 5 * time.Second // traffic kept going after the withdrawal
	failoverKill  = 1               // the node killed, drained or partitioned
)

// shellshock is a request header the shipped CVE-2014-6271 patch resets.
const shellshock = "User-Agent: () { :; }; /bin/id"

// TestFailoverNodeKill is the shared-flow-state acceptance test for a node
// crash: a 3-node L3 lab whose nodes share flow checkpoints over an embedded
// NATS cluster, the lab's route controller health-checking every node from
// R1. The failover workload runs (510 HTTP and 24 TLS keep-alive sessions at
// 10 requests/s from 4 client addresses over IPv4 and IPv6, 2 downloads and
// 2 uploads rate-limited to last through the event); node 1 is SIGKILLed and
// the controller withdraws it from the routers' resilient nexthop groups, so
// only its flows move. No session breaks (no error, no new connection, no
// gap over 2 s), an exploit on a benign connection that moved off node 1 is
// reset by the survivor, and a flow node 1 blocked before the kill stays
// blocked. The same scenario without the bus (the survivors pick moved
// flows up mid-stream) is the baseline: what breaks is logged, not asserted.
func TestFailoverNodeKill(t *testing.T) {
	requireE2E(t)
	t.Run("sharing", func(t *testing.T) {
		r := runNodeKill(t, true)
		if r.broken != 0 {
			t.Errorf("%d of %d sessions broke with flow sharing on", r.broken, r.sessions)
		}
		if r.resumed == 0 {
			t.Errorf("the survivors resumed no moved flow from a checkpoint")
		}
		r.probes.assert(t, failoverKill)
	})
	t.Run("baseline", func(t *testing.T) {
		r := runNodeKill(t, false)
		t.Logf("baseline without flow sharing: %d of %d sessions broke (%d moved); moved connection: benign %v, exploit reset %v; blocked flow: %v; "+
			"exploit cut across the move: reset %v, reached the server %v",
			r.broken, r.sessions, r.moved, r.probes.benignErr, r.probes.exploitReset, r.probes.blockedErr, r.probes.splitReset, r.probes.splitServed)
	})
}

// eventResult is what one failover scenario measured.
type eventResult struct {
	sessions, broken, moved, resumed int
	withdrawal                       time.Duration
	probes                           probeOutcome
}

// runNodeKill runs the kill scenario with the bus on (sharing) or off.
func runNodeKill(t *testing.T, sharing bool) eventResult {
	fl := startFailoverLab(t, foOptions{sharing: sharing})
	w := startWorkload(t, fl, defaultWorkload(), failoverKill, 2, 3)
	probes := w.armProbes(failoverKill)
	w.flowing("warm-up", 5, 30*time.Second)
	before := w.routes()
	checkSpread(t, fl, before)
	pick0 := fl.pickups()

	killAt := time.Now()
	if err := fl.l.KillNode(failoverKill); err != nil {
		t.Fatal(err)
	}
	withdrawnAt := fl.waitWithdrawn(t, failoverKill, 10*time.Second)
	w.withdrawn(withdrawnAt)
	if withdrawnAt.Before(killAt) {
		t.Fatalf("node %d was withdrawn before the kill (%v)", failoverKill, killAt.Sub(withdrawnAt))
	}
	r := eventResult{sessions: w.total(), withdrawal: withdrawnAt.Sub(killAt)}
	t.Logf("node %d killed at %s, withdrawn at %s", failoverKill, killAt.Format("15:04:05.000"), withdrawnAt.Format("15:04:05.000"))
	if err := probes.movedNow(); err != nil {
		t.Fatal(err)
	}
	r.probes = probes.check()
	time.Sleep(time.Until(withdrawnAt.Add(failoverAfter))) // traffic keeps flowing on the survivors
	r.moved = changed(before, w.routes())
	r.resumed = fl.pickups() - pick0
	r.broken = w.broken()
	fl.logBusMetrics(t)
	summary(t, map[bool]string{true: "kill/sharing", false: "kill/baseline"}[sharing], w, r.broken, r.moved, r.resumed, r.withdrawal)
	return r
}

// checkSpread logs the flows per node and fails when a node carries none.
func checkSpread(t *testing.T, fl *foLab, devs []string) {
	t.Helper()
	per := perNode(devs)
	t.Logf("flows per node: %v", per)
	for _, n := range fl.l.Nodes {
		if per[n.Role] == 0 {
			t.Errorf("no flow crosses node %d (%v): the routers do not spread flows", n.Index, per)
		}
	}
}
