package e2e

import (
	"bufio"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/patchgate/patchgate/deploy/lab"
)

// partitionHold is how long the partition lasts with traffic running.
const partitionHold = 5 * time.Second

// TestFailoverBusPartition partitions node 1 from the bus under the failover
// workload: iptables in node 1's namespace resets every packet to or from
// the NATS route port (lab.BusClusterPort) for 5 s. The partitioned node
// keeps inspecting its own flows (an exploit through it is reset), it
// reports degraded failover protection (patchgate_bus_healthy 0 and the
// /readyz line), and no session breaks. After healing, the routes come back
// and the node is healthy again; then node 1 is killed, and its flows —
// checkpointed again since the heal — move without a break, still inspected
// (exploit reset, blocked flow still blocked).
func TestFailoverBusPartition(t *testing.T) {
	requireE2E(t)
	fl := startFailoverLab(t, foOptions{sharing: true})
	l := fl.l
	w := startWorkload(t, fl, defaultWorkload(), failoverKill, 2, 3)
	w.flowing("warm-up", 5, 30*time.Second)
	checkSpread(t, fl, w.routes())

	partAt := time.Now()
	partitionBus(t, l, failoverKill, true)
	t.Logf("node %d partitioned from the bus at %s", failoverKill, partAt.Format("15:04:05.000"))
	healed := false
	t.Cleanup(func() {
		if !healed {
			partitionBus(t, l, failoverKill, false)
		}
	})
	var degradedAfter time.Duration
	if !waitFor(15*time.Second, func() bool {
		v, err := metric(l, failoverKill, "patchgate_bus_healthy")
		return err == nil && v == 0
	}) {
		routes, _ := metric(l, failoverKill, "patchgate_bus_routes")
		_, body, _ := l.NodeGet(failoverKill, "/readyz")
		t.Errorf("node %d does not report degraded failover protection (patchgate_bus_healthy) while partitioned: routes %v, /readyz %q",
			failoverKill, routes, body)
	} else {
		degradedAfter = time.Since(partAt)
		if _, body, err := l.NodeGet(failoverKill, "/readyz"); err != nil || !strings.Contains(string(body), "degraded") {
			t.Errorf("node %d /readyz while partitioned: %q, %v; want a degraded line", failoverKill, body, err)
		}
	}
	// The partitioned node still inspects the flows it carries.
	if err := exploitThrough(w, failoverKill); err != nil {
		t.Errorf("while partitioned: %v", err)
	}
	time.Sleep(time.Until(partAt.Add(partitionHold))) // traffic keeps flowing through the partition
	w.flowing("partitioned", 3, 20*time.Second)

	partitionBus(t, l, failoverKill, false)
	healed = true
	healAt := time.Now()
	t.Logf("partition healed at %s", healAt.Format("15:04:05.000"))
	fl.waitBusRoutes(t, 20*time.Second)
	if !waitFor(20*time.Second, func() bool {
		v, err := metric(l, failoverKill, "patchgate_bus_healthy")
		return err == nil && v == 1
	}) {
		t.Errorf("node %d still reports degraded failover protection after the partition healed", failoverKill)
	}
	recovered := time.Since(healAt)
	t.Logf("partition: degraded after %v, healthy again %v after healing", degradedAfter.Round(time.Millisecond), recovered.Round(time.Millisecond))

	// Every session answers a few more requests: its flow was checkpointed
	// again after the heal. Then node 1 dies.
	probes := w.armProbes(failoverKill)
	w.flowing("healed", 5, 20*time.Second)
	before := w.routes()
	pick0 := fl.pickups()
	killAt := time.Now()
	if err := l.KillNode(failoverKill); err != nil {
		t.Fatal(err)
	}
	withdrawnAt := fl.waitWithdrawn(t, failoverKill, 10*time.Second)
	w.withdrawn(withdrawnAt)
	t.Logf("node %d killed at %s, withdrawn at %s", failoverKill, killAt.Format("15:04:05.000"), withdrawnAt.Format("15:04:05.000"))
	if err := probes.movedNow(); err != nil {
		t.Fatal(err)
	}
	o := probes.check()
	time.Sleep(time.Until(withdrawnAt.Add(failoverAfter)))
	moved := changed(before, w.routes())
	resumed := fl.pickups() - pick0
	broken := w.broken()
	fl.logBusMetrics(t)
	summary(t, "bus-partition", w, broken, moved, resumed, withdrawnAt.Sub(killAt))
	if broken != 0 {
		t.Errorf("%d of %d sessions broke (partition of node %d, heal, kill)", broken, w.total(), failoverKill)
	}
	o.assert(t, failoverKill)
}

// partitionBus cuts (on) or heals node i's bus routes: in its namespace,
// every TCP packet to or from port lab.BusClusterPort (but resets) is
// rejected with a reset, so route connections close at once on both sides and reconnecting
// fails until healed. Nothing else of the node is touched (health checks,
// forwarded traffic).
func partitionBus(t *testing.T, l *lab.Lab, i int, on bool) {
	t.Helper()
	op := "-I"
	if !on {
		op = "-D"
	}
	port := strconv.Itoa(lab.BusClusterPort)
	for _, chain := range []string{"INPUT", "OUTPUT"} {
		for _, dir := range []string{"--dport", "--sport"} {
			// Resets pass (--tcp-flags RST NONE matches the others), or the
			// rules would swallow the resets REJECT sends and the route
			// connections would linger like after a silent drop.
			if _, err := l.Exec(l.Nodes[i-1].NS, "iptables-legacy", op, chain, "-p", "tcp", dir, port, "--tcp-flags", "RST", "NONE",
				"-m", "comment", "--comment", "pg-bus-partition", "-j", "REJECT", "--reject-with", "tcp-reset"); err != nil {
				t.Fatalf("partition node %d (%v): %v", i, on, err)
			}
		}
	}
}

// exploitThrough opens a new connection through node, sends a benign request
// and then an exploit, which must be reset.
func exploitThrough(w *workload, node int) error {
	l := w.fl.l
	c, s1 := l.Clients[0], l.Servers[0]
	dst := netip.AddrPortFrom(s1.Addr4, 80)
	ports, err := portsVia(l, c.Addr4, dst, node, 1, &w.nextPort)
	if err != nil {
		return err
	}
	conn, err := dialPort(c.NS, ports[0], dst.String())
	if err != nil {
		return err
	}
	rc := &rawConn{Conn: conn, r: bufio.NewReader(conn), host: s1.Addr4.String()}
	defer rc.Close()
	if err := rc.get("/probe/inspect/benign"); err != nil {
		return err
	}
	err = rc.get("/probe/inspect/exploit", shellshock)
	if !(outcome{ClientErr: err}).reset() {
		if err == nil {
			return fmt.Errorf("the exploit through node %d was answered", node)
		}
		return fmt.Errorf("the exploit through node %d was not reset: %w", node, err)
	}
	return nil
}
