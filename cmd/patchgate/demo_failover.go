package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/patchgate/patchgate/dataplane"
	"github.com/patchgate/patchgate/dataplane/patch"
)

// metric sums the samples of a metric on node i's /metrics.
func (e *demoEnv) metric(i int, name string) (float64, error) {
	code, body, err := e.l.NodeGet(i, "/metrics")
	if err != nil {
		return 0, err
	}
	if code != 200 {
		return 0, fmt.Errorf("demo: node %d: /metrics: status %d", i, code)
	}
	return sumSamples(metricSamples(body, name)), nil
}

// resumedFlows sums, over the nodes but skip, the moved flows resumed from a
// shared checkpoint (found in the node's cache or asked on the bus).
func (e *demoEnv) resumedFlows(skip int) float64 {
	var total float64
	for _, n := range e.l.Nodes {
		if n.Index == skip {
			continue
		}
		code, body, err := e.l.NodeGet(n.Index, "/metrics")
		if err != nil || code != 200 {
			continue
		}
		for _, s := range metricSamples(body, "patchgate_midstream_total") {
			if s.Labels["outcome"] == "resumed" {
				total += s.Value
			}
		}
	}
	return total
}

// formCluster waits for the cluster to form, pushes the signed patch set v1
// with patchctl, waits for the flow-state bus and starts the route
// controller, and prints the cluster's status.
func (e *demoEnv) formCluster(ctx context.Context, cl *demoCluster, v1Dir string, patches int) error {
	w := e.w
	fmt.Fprintf(w, "   patchgate running on %s as one cluster (Raft + gossip), sharing flow state over embedded NATS\n", nodeList(e.l.Nodes, 0))
	if err := cl.waitCluster(1, nil); err != nil {
		return err
	}
	cmd, err := cl.push(1, v1Dir, 1, "shipped catalog")
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "   %s    # v1: %d patches, signed with the demo's key\n", cmd, patches)
	if err := cl.waitCluster(1, cl.versions("1")); err != nil {
		return err
	}
	if err := cl.waitBus(e, 0); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	if err := cl.startWithdrawal(); err != nil {
		return err
	}
	fmt.Fprintf(w, "   route controller on R1/R2: GET /routez every %v; a 503 (draining) or %d failed checks withdraw a node from resilient nexthop groups\n",
		cl.wcfg.Interval, cl.wcfg.Failures)
	cl.printStatus(2, "v1 applied on every node")
	return nil
}

// clusterKillPhase kills one node mid-traffic with flow sharing on: the
// route controller withdraws it and the other nodes resume its flows from
// shared checkpoints, so its sessions go on, still inspected. Then the node
// restarts, rejoins and is restored to the routers' groups.
func (e *demoEnv) clusterKillPhase(ctx context.Context, o demoOptions, cl *demoCluster, fail func(string, ...any)) error {
	w, l := e.w, e.l
	fmt.Fprintf(w, "\n== killing node %d (SIGKILL) mid-traffic: keep-alive sessions of %d requests %v apart for %v, %d at a time\n",
		o.Kill, demoKillRequests, demoKillPause, o.KillFor, 2*o.Parallel)
	resumedBefore := e.resumedFlows(o.Kill)
	kr, err := e.killUnderTraffic(ctx, o)
	if err != nil {
		return err
	}
	sessions, flows, killAt, hookedAtKill, k := kr.sessions, kr.flows, kr.killAt, kr.hookedAtKill, kr.summary
	if at := cl.withdrawnAfter(o.Kill, killAt); !at.IsZero() {
		fmt.Fprintf(w, "\n   the route controller withdrew n%d from both routers %d ms after the kill; only its flows moved\n",
			o.Kill, at.Sub(killAt).Milliseconds())
	} else {
		fail("the route controller did not withdraw node %d", o.Kill)
	}
	hooked, err := e.hookedPackets(o.Kill)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "   %s resumed %.0f of its flows from checkpoints shared over NATS (no new connection, no reset);\n"+
		"   until the withdrawal, n%d's NFQUEUE rules (fail: closed, no queue bypass) dropped the %d packets of its share\n"+
		"   instead of passing them uninspected; TCP retransmitted them to the node that took each flow over\n",
		nodeList(l.Nodes, o.Kill), e.resumedFlows(o.Kill)-resumedBefore, o.Kill, hooked-hookedAtKill)
	failed := 0
	for _, row := range k.cells {
		for _, c := range row {
			failed += c.failed
		}
	}
	if failed > 0 {
		for _, s := range sessions {
			if s.Err != nil {
				fail("session from %s (node %d) broke around the kill of node %d: %v", s.Local, flows[s.Local], o.Kill, s.Err)
			}
		}
	}

	fmt.Fprintf(w, "\n== restarting node %d: it rejoins the cluster, catches up on the patch set, the controller restores it\n", o.Kill)
	if err := l.StartNode(o.Kill); err != nil {
		return fmt.Errorf("demo: restart node %d: %w", o.Kill, err)
	}
	if err := cl.waitCluster(1, cl.versions("1")); err != nil {
		return err
	}
	if !waitUntil(demoSettle, func() bool { up, _ := cl.wd.Up(o.Kill); return up }) {
		fail("node %d was not restored to the routers' groups after its restart", o.Kill)
	}
	if err := cl.waitBus(e, 0); err != nil {
		return err
	}
	cl.printStatus(1, fmt.Sprintf("n%d back", o.Kill))
	return nil
}

// rolloutCase is an exploit of the patch rolled out as v2: what the nodes
// must do with it under v1 (before) and under v2 (after).
type rolloutCase struct{ before, after *demoCase }

// rolloutCases evaluates the exploit tests of patch id under v1 and under
// the full catalog.
func rolloutCases(full, v1 *patch.Program, id string) ([]rolloutCase, error) {
	var out []rolloutCase
	for _, c := range full.Patches {
		if c.ID != id {
			continue
		}
		for i := range c.Tests {
			tc := &c.Tests[i]
			if !tc.Match {
				continue
			}
			b, err := evalCase(v1, c.Patch, tc)
			if err != nil {
				return nil, err
			}
			a, err := evalCase(full, c.Patch, tc)
			if err != nil {
				return nil, err
			}
			out = append(out, rolloutCase{before: b, after: a})
		}
	}
	return out, nil
}

// demoRolloutRounds is how many times each exploit of the new patch is sent
// after the rollout (from new connections, so through every node).
const demoRolloutRounds = 4

// rolloutPhase shows a newly disclosed CVE: its exploits reach the server
// under v1; patch set v2 adding its patch is canaried on one node with
// patchctl and promoted, under traffic; then every exploit is blocked
// through every node and no session broke.
func (e *demoEnv) rolloutPhase(ctx context.Context, o demoOptions, cl *demoCluster, cases []rolloutCase, fail func(string, ...any)) error {
	w := e.w
	id := cases[0].after.Patch.ID
	fmt.Fprintf(w, "\n== a new CVE: rolling out patch set v2 = v1 + %s (%s) with patchctl, under traffic\n", id, cases[0].after.Patch.Title)
	bgCtx, stopBG := context.WithCancel(ctx)
	defer stopBG()
	bgDone := make(chan []sessionResult, 1)
	go func() { bgDone <- e.benign(bgCtx, 0, demoKillRequests, o.Parallel, demoKillPause) }()

	var before []*demoCase
	for _, c := range cases {
		before = append(before, c.before)
	}
	res := e.conversations(ctx, before, o.Parallel)
	reached := 0
	for _, r := range res {
		if r.Delivered {
			reached++
		}
	}
	fmt.Fprintf(w, "   under v1: %d of %d %s exploits reached the server (the demo's harmless recorder)\n", reached, len(res), id)

	cmd, err := cl.push(1, o.Patches, 2, "add "+id, "--strategy", "canary", "--canary-nodes", cl.names[1])
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "   %s\n", cmd)
	want := cl.versions("1")
	want[cl.names[1]] = "2"
	if err := cl.waitCluster(2, want); err != nil {
		return err
	}
	cl.printStatus(2, "canary: v2 on n1 only")
	if out, err := cl.run(2, "rollout", "promote"); err != nil {
		return fmt.Errorf("demo: patchctl rollout promote: %w: %s", err, out)
	}
	fmt.Fprintf(w, "   $ patchctl rollout promote\n")
	if err := cl.waitCluster(3, cl.versions("2")); err != nil {
		return err
	}
	cl.printStatus(3, "v2 applied on every node")

	var after []*demoCase
	for range demoRolloutRounds {
		for _, c := range cases {
			after = append(after, c.after)
		}
	}
	rec, err := e.record()
	if err != nil {
		return err
	}
	res = e.conversations(ctx, after, o.Parallel)
	flows, err := rec.stop()
	if err != nil {
		return err
	}
	stopBG()
	bg := <-bgDone
	blocked, byNode := 0, map[int][2]int{}
	for _, r := range res {
		n := byNode[flows[r.Local]]
		n[1]++
		if r.Good && r.Case.Want != dataplane.Pass {
			blocked++
			n[0]++
		} else {
			fail("after the rollout: %s", r.describe())
		}
		byNode[flows[r.Local]] = n
	}
	var per []string
	for _, n := range e.l.Nodes {
		per = append(per, fmt.Sprintf("n%d %d/%d", n.Index, byNode[n.Index][0], byNode[n.Index][1]))
	}
	fmt.Fprintf(w, "   under v2: %d of %d %s exploits blocked (through %s)\n", blocked, len(res), id, strings.Join(per, ", "))
	okBG := countOK(bg)
	fmt.Fprintf(w, "   %d keep-alive sessions ran during the rollout: %d ok, %d broken\n", len(bg), okBG, len(bg)-okBG)
	for _, s := range bg {
		if s.Err != nil {
			fail("session from %s broke during the rollout: %v", s.Local, s.Err)
		}
	}
	return nil
}
