package e2e

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Drain bounds. A drain waits until the node's flows have moved (or the
// node's drain timeout).
const (
	drainBound   = 60 * time.Second // patchctl node drain returns within it
	rejoinBound  = 30 * time.Second
	restoreBound = 20 * time.Second
)

// TestFailoverDrain drains node 1 of a clustered 3-node lab (Raft, bus, route
// controller) under the failover workload: `patchctl node drain` returns
// once the node reports drained, the routers withdraw it (its /routez says
// 503), its flows move to the survivors with no session broken, an exploit
// on a moved benign connection is reset, a flow node 1 blocked before the
// drain stays blocked. `patchctl node undrain` puts it back: /routez 200,
// the routers add it again and it carries flows again.
func TestFailoverDrain(t *testing.T) {
	requireE2E(t)
	fl := startFailoverLab(t, foOptions{sharing: true, cluster: true})
	w := startWorkload(t, fl, defaultWorkload(), failoverKill, 2, 3)
	probes := w.armProbes(failoverKill)
	w.flowing("warm-up", 5, 30*time.Second)
	before := w.routes()
	checkSpread(t, fl, before)
	pick0 := fl.pickups()

	drainAt := time.Now()
	fl.drain(t, failoverKill, true)
	drained := time.Since(drainAt)
	withdrawnAt := fl.waitWithdrawn(t, failoverKill, 10*time.Second)
	w.withdrawn(withdrawnAt)
	if err := probes.movedNow(); err != nil {
		t.Fatal(err)
	}
	o := probes.check()
	if code := fl.routez(failoverKill); code != http.StatusServiceUnavailable {
		t.Errorf("node %d /routez while drained: %d, want 503", failoverKill, code)
	}
	time.Sleep(time.Until(withdrawnAt.Add(failoverAfter)))
	moved := changed(before, w.routes())
	resumed := fl.pickups() - pick0

	fl.drain(t, failoverKill, false)
	if code := fl.routez(failoverKill); code != http.StatusOK {
		t.Errorf("node %d /routez after undrain: %d, want 200", failoverKill, code)
	}
	fl.waitRestored(t, failoverKill)
	w.flowing("undrained", 5, 20*time.Second)
	fl.attracts(t, w, failoverKill)
	broken := w.broken()
	fl.logBusMetrics(t)
	t.Logf("drain: patchctl node drain returned after %v", drained.Round(time.Millisecond))
	summary(t, "drain", w, broken, moved, resumed, withdrawnAt.Sub(drainAt))
	if broken != 0 {
		t.Errorf("%d of %d sessions broke draining node %d", broken, w.total(), failoverKill)
	}
	if moved == 0 {
		t.Errorf("no flow moved off the drained node")
	}
	o.assert(t, failoverKill)
}

// TestFailoverRollingUpgrade upgrades all three nodes of a clustered lab one
// after another under the failover workload: drain (flows move, inspected,
// blocked flow still blocked), SIGTERM, start the node binary from a new
// path (the "new version"), wait until it rejoined the cluster and the bus,
// undrain, wait until the routers use it again. No session breaks over the
// whole procedure.
func TestFailoverRollingUpgrade(t *testing.T) {
	requireE2E(t)
	fl := startFailoverLab(t, foOptions{sharing: true, cluster: true})
	l := fl.l
	cfg := defaultWorkload()
	cfg.BulkBytes, cfg.Bound = 96<<20, 240*time.Second // the transfers run through all three upgrades
	w := startWorkload(t, fl, cfg, 1, 2, 3)
	w.flowing("warm-up", 5, 30*time.Second)
	checkSpread(t, fl, w.routes())

	// The "new version": the same program at a new path, so that each
	// restarted node provably runs it.
	newBin := filepath.Join(t.TempDir(), "patchgate-next")
	data, err := os.ReadFile(patchgateBin)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(newBin, data, 0o755); err != nil {
		t.Fatal(err)
	}
	l.SetBinary(newBin)

	start := time.Now()
	moved, resumed := 0, 0
	var maxWithdrawal time.Duration
	for _, n := range l.Nodes {
		i := n.Index
		probes := w.armProbes(i)
		before := w.routes()
		pick0 := fl.pickups()
		drainAt := time.Now()
		fl.drain(t, i, true)
		withdrawnAt := fl.waitWithdrawn(t, i, 10*time.Second)
		w.withdrawn(withdrawnAt)
		maxWithdrawal = max(maxWithdrawal, withdrawnAt.Sub(drainAt))
		if err := probes.movedNow(); err != nil {
			t.Fatal(err)
		}
		probes.check().assert(t, i)
		moved += changed(before, w.routes())
		resumed += fl.pickups() - pick0

		if err := l.StopNode(i); err != nil {
			t.Fatal(err)
		}
		if err := l.NodeExit(i); err != nil {
			t.Errorf("node %d did not exit cleanly after SIGTERM: %v", i, err)
		}
		if err := l.StartNode(i); err != nil {
			t.Fatal(err)
		}
		if exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", l.NodePID(i))); err != nil || exe != newBin {
			t.Errorf("node %d runs %q (%v), want %s", i, exe, err, newBin)
		}
		fl.waitRejoined(t, i)
		fl.drain(t, i, false)
		fl.waitRestored(t, i)
		w.flowing(fmt.Sprintf("node %d upgraded", i), 5, 20*time.Second)
		t.Logf("node %d upgraded at +%v (withdrawn %v after drain)", i, time.Since(start).Round(time.Millisecond),
			withdrawnAt.Sub(drainAt).Round(time.Millisecond))
	}
	broken := w.broken()
	fl.logBusMetrics(t)
	summary(t, "rolling-upgrade", w, broken, moved, resumed, maxWithdrawal)
	if broken != 0 {
		t.Errorf("%d of %d sessions broke during the rolling upgrade", broken, w.total())
	}
}

// drain runs `patchctl node drain NAME` (on) or `undrain` against another
// node's API; drain returns once the node reports drained.
func (fl *foLab) drain(t *testing.T, i int, on bool) {
	t.Helper()
	cmd := "undrain"
	if on {
		cmd = "drain"
	}
	via := i%len(fl.l.Nodes) + 1
	done := make(chan struct{})
	var out string
	var err error
	go func() {
		defer close(done)
		out, err = fl.c.run(via, "node", cmd, fl.names[i])
	}()
	select {
	case <-done:
	case <-time.After(drainBound):
		t.Fatalf("patchctl node %s %s did not return within %v", cmd, fl.names[i], drainBound)
	}
	if err != nil {
		t.Fatalf("patchctl node %s %s: %v\n%s", cmd, fl.names[i], err, out)
	}
}

// routez returns the status code of node i's GET /routez (0 on error).
func (fl *foLab) routez(i int) int {
	code, _, err := fl.l.NodeGet(i, "/routez")
	if err != nil {
		return 0
	}
	return code
}

// waitRestored waits until the routers have node i in their groups again.
func (fl *foLab) waitRestored(t *testing.T, i int) {
	t.Helper()
	if !waitFor(restoreBound, func() bool { up, _ := fl.w.Up(i); return up }) {
		t.Fatalf("the route controller did not restore node %d within %v", i, restoreBound)
	}
}

// waitRejoined waits until every node's cluster status shows node i alive
// with a leader elected, and the bus routes are complete again.
func (fl *foLab) waitRejoined(t *testing.T, i int) {
	t.Helper()
	var last string
	if !waitFor(rejoinBound, func() bool {
		for _, n := range fl.l.Nodes {
			st, err := fl.c.status(n.Index)
			if err != nil {
				last = err.Error()
				return false
			}
			ok := false
			for _, m := range st.Nodes {
				ok = ok || (m.Name == fl.names[i] && m.Gossip == "alive")
			}
			if st.Leader == "" || !ok {
				last = fmt.Sprintf("node %d sees leader %q, members %+v", n.Index, st.Leader, st.Nodes)
				return false
			}
		}
		return true
	}) {
		t.Fatalf("node %d did not rejoin the cluster within %v: %s", i, rejoinBound, last)
	}
	fl.waitBusRoutes(t, rejoinBound)
}

// attracts checks that node i carries flows again: R1's resilient groups
// give it buckets (they return to it as they go idle) and a new connection
// through it is answered and counted by the node.
func (fl *foLab) attracts(t *testing.T, w *workload, i int) {
	t.Helper()
	var buckets int
	if !waitFor(restoreBound, func() bool {
		out, err := fl.l.Exec(fl.l.R1.NS, "ip", "nexthop", "bucket", "show", "id", "1999")
		buckets = strings.Count(out, fmt.Sprintf("nhid %d ", 1000+i))
		return err == nil && buckets > 0
	}) {
		t.Errorf("node %d holds no bucket of R1's group %v after the undrain: it attracts no flows", i, restoreBound)
		return
	}
	before, _ := metric(fl.l, i, "patchgate_packets_total")
	if err := exploitThrough(w, i); err != nil {
		t.Errorf("node %d after the undrain: %v", i, err)
	}
	after, _ := metric(fl.l, i, "patchgate_packets_total")
	t.Logf("node %d after the undrain: %d of R1's buckets, %v packets for a new connection", i, buckets, after-before)
	if after <= before {
		t.Errorf("node %d saw no packet of a new connection routed to it after the undrain", i)
	}
}
