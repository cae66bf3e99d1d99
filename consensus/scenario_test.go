package consensus

import (
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"
)

// TestLeaderKill: the leader crashes, the others elect a new one and keep
// committing; the old leader restarts from its data and catches up.
func TestLeaderKill(t *testing.T) {
	tc := makeCluster(t, 3, 3, nil)
	tc.push(1, Plan{}, map[string]int{"X-1": 40})
	tc.ensureSame()
	old := tc.leader()
	tc.stop(old)
	nl := tc.leader(old)
	if nl == old {
		t.Fatal("stopped node still leads")
	}
	tc.push(2, Plan{}, map[string]int{"X-1": 41})
	tc.ensureSame(old)
	tc.start(old)
	tc.ensureSame()
	tc.waitReported(nl, map[string]uint64{"n0": 2, "n1": 2, "n2": 2})
	tc.checkHashes()
	// The restarted node did not bootstrap again: still one configuration of 3.
	srv, _ := tc.node(old).Servers()
	if len(srv) != 3 {
		t.Fatalf("configuration after restart: %+v", srv)
	}
}

// TestFollowerCatchUpFromSnapshot: a follower misses more entries than the
// leader keeps after compaction, so on restart it must install the leader's
// snapshot; its state then equals the leader's.
func TestFollowerCatchUpFromSnapshot(t *testing.T) {
	tc := makeCluster(t, 3, 3, func(c *Config) {
		c.Raft.TrailingLogs = 4
		c.Raft.SnapshotThreshold = 1 << 20 // snapshots only when asked
	})
	tc.push(1, Plan{}, map[string]int{"X-1": 40})
	tc.ensureSame()
	l := tc.leader()
	f := (l + 1) % 3
	lastSeen := tc.node(f).FSM().AppliedIndex()
	tc.stop(f)
	for i := 0; i < 30; i++ {
		tc.write("drain", func(c *Cluster) (uint64, error) {
			return c.SetDrain(tc.cfgs[(l+2)%3].NodeName, i%2 == 0, fmt.Sprint("round ", i), "test")
		})
	}
	tc.push(2, Plan{Strategy: DetectFirst}, map[string]int{"X-1": 40, "X-2": 10})
	l = tc.leader(f)
	if err := tc.node(l).Snapshot(); err != nil {
		t.Fatal(err)
	}
	first, err := tc.node(l).store.FirstIndex()
	if err != nil {
		t.Fatal(err)
	}
	if first <= lastSeen+1 {
		t.Fatalf("leader log starts at %d: the follower (at %d) could catch up without a snapshot", first, lastSeen)
	}
	tc.start(f)
	tc.ensureSame()
	if n := tc.node(f).FSM().restores.Load(); n < 1 {
		t.Fatalf("follower restored %d snapshots", n)
	}
	if a := tc.node(f).FSM().Target(tc.cfgs[f].NodeName); a.Version != 2 || len(a.DetectOnly) != 1 {
		t.Fatalf("follower target after catch-up: %+v", a)
	}
}

// TestPartitions: on five voters, a cut minority (a follower, then the
// leader) cannot commit and keeps its last applied state; the majority goes
// on; after healing everyone converges.
func TestPartitions(t *testing.T) {
	tc := makeCluster(t, 5, 5, nil)
	tc.push(1, Plan{}, map[string]int{"X-1": 40})
	tc.ensureSame()

	l := tc.leader()
	a, b := (l+1)%5, (l+2)%5
	before := tc.node(a).FSM().State()
	tc.node(a).sl.setCut(true)
	tc.node(b).sl.setCut(true)
	tc.push(2, Plan{}, map[string]int{"X-1": 41})
	tc.ensureSame(a, b)
	// Static stability: the cut nodes still hold (and run) version 1.
	for _, i := range []int{a, b} {
		if got := tc.node(i).FSM().State(); !reflect.DeepEqual(got, before) {
			t.Fatalf("n%d state changed while cut off: index %d -> %d", i, before.Index, got.Index)
		}
		if v := tc.node(i).LocalMeta().Version; v != 1 {
			t.Fatalf("n%d reports version %d while cut off", i, v)
		}
		if _, err := tc.node(i).SetDrain("n0", true, "", "x"); !errors.Is(err, ErrNotLeader) {
			t.Fatalf("write on cut n%d: %v", i, err)
		}
	}
	// The minority cannot elect a leader of its own.
	time.Sleep(3 * tc.base.Raft.ElectionTimeout) // give it the chance to try
	for _, i := range []int{a, b} {
		if tc.node(i).IsLeader() {
			t.Fatalf("cut n%d became leader", i)
		}
	}
	tc.node(a).sl.setCut(false)
	tc.node(b).sl.setCut(false)
	tc.ensureSame()

	// Now cut the leader: its writes fail, the other four elect a new leader.
	l = tc.leader()
	tc.node(l).sl.setCut(true)
	idx := tc.node(l).FSM().AppliedIndex()
	_, err := tc.node(l).SetDrain(tc.cfgs[l].NodeName, true, "cut", "x")
	if err == nil {
		t.Fatal("cut leader committed a write")
	}
	nl := tc.leader(l)
	_ = nl
	tc.write("rollback", func(c *Cluster) (uint64, error) { return c.Rollback(1, "test") }, l)
	tc.ensureSame(l)
	if got := tc.node(l).FSM().AppliedIndex(); got != idx {
		t.Fatalf("cut leader applied %d -> %d", idx, got)
	}
	if tc.node(l).FSM().State().Active != 2 {
		t.Fatal("cut leader lost its active version")
	}
	tc.node(l).sl.setCut(false)
	tc.ensureSame()
	for i := 0; i < 5; i++ {
		if tc.node(i).FSM().State().Active != 1 {
			t.Fatalf("n%d did not roll back", i)
		}
	}
	// The failed write never happened anywhere.
	if _, drained := tc.node(l).FSM().State().Drain[tc.cfgs[l].NodeName]; drained {
		t.Fatal("uncommitted write was applied")
	}
}

// TestMembershipChurn: three voters and two non-voters; a crashed voter is
// removed after the grace period and a non-voter promoted; a node that leaves
// gracefully is removed at once; a new node joins as a non-voter.
func TestMembershipChurn(t *testing.T) {
	tc := makeCluster(t, 5, 3, nil)
	l := tc.leader()
	voters := func() (v, nv int, names map[string]bool) {
		srv, err := tc.node(tc.leader()).Servers()
		if err != nil {
			t.Fatal(err)
		}
		names = map[string]bool{}
		for _, s := range srv {
			names[s.ID] = s.Voter
			if s.Voter {
				v++
			} else {
				nv++
			}
		}
		return
	}
	if v, nv, _ := voters(); v != 3 || nv != 2 {
		t.Fatalf("%d voters, %d non-voters", v, nv)
	}
	tc.write("settings", func(c *Cluster) (uint64, error) {
		return c.SetSettings(Settings{DeadServerGrace: time.Second, Overload: FailOpen}, "test")
	})
	tc.push(1, Plan{}, map[string]int{"X-1": 40})

	// Crash a voter that is not the leader.
	var victim int
	_, _, names := voters()
	for i := 0; i < 5; i++ {
		if i != l && names[tc.cfgs[i].NodeName] {
			victim = i
			break
		}
	}
	tc.stop(victim)
	checkFor(t, 20*time.Second, 50*time.Millisecond, func() error {
		v, nv, names := voters()
		if _, in := names[tc.cfgs[victim].NodeName]; in || v != 3 || nv != 1 {
			return fmt.Errorf("voters %d non-voters %d, victim present %v", v, nv, in)
		}
		if _, in := tc.node(tc.leader()).FSM().State().Nodes[tc.cfgs[victim].NodeName]; in {
			return errors.New("victim still in the roster")
		}
		return nil
	})

	// A graceful leave of the remaining non-voter is handled at once.
	_, _, names = voters()
	leaver := -1
	for _, i := range tc.running() {
		if !names[tc.cfgs[i].NodeName] {
			leaver = i
		}
	}
	tc.mu.Lock()
	c := tc.nodes[leaver]
	tc.nodes[leaver] = nil
	tc.mu.Unlock()
	tc.cancel[leaver]()
	if err := c.Leave(2 * time.Second); err != nil {
		t.Fatal(err)
	}
	checkFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		if v, nv, _ := voters(); v != 3 || nv != 0 {
			return fmt.Errorf("voters %d non-voters %d after leave", v, nv)
		}
		return nil
	})

	// The crashed node comes back with its data: it rejoins as a non-voter
	// (three voters are there) and catches up.
	tc.start(victim)
	checkFor(t, 15*time.Second, 20*time.Millisecond, func() error {
		if v, nv, _ := voters(); v != 3 || nv != 1 {
			return fmt.Errorf("voters %d non-voters %d after rejoin", v, nv)
		}
		return nil
	})
	tc.ensureSame()
	tc.push(2, Plan{}, map[string]int{"X-1": 41})
	tc.ensureSame()
}

// TestRolloutThroughCluster: canary on one node, promote, rollback; every
// node's applier sees exactly its assignment and reports it.
func TestRolloutThroughCluster(t *testing.T) {
	tc := makeCluster(t, 3, 3, nil)
	tc.push(1, Plan{}, map[string]int{"X-1": 40})
	l := tc.leader()
	tc.waitReported(l, map[string]uint64{"n0": 1, "n1": 1, "n2": 1})
	tc.push(2, Plan{Strategy: Canary, CanaryNodes: []string{"n1"}}, map[string]int{"X-1": 40, "X-2": 7})
	tc.waitReported(l, map[string]uint64{"n0": 1, "n1": 2, "n2": 1})
	tc.checkHashes()
	tc.write("promote", func(c *Cluster) (uint64, error) { return c.Promote(2, "test") })
	tc.waitReported(l, map[string]uint64{"n0": 2, "n1": 2, "n2": 2})
	tc.write("rollback", func(c *Cluster) (uint64, error) { return c.Rollback(1, "test") })
	tc.waitReported(l, map[string]uint64{"n0": 1, "n1": 1, "n2": 1})
	tc.ensureSame()
	// n1 saw 1, 2, 2 (promote: nothing new for it... same assignment), 1.
	var versions []uint64
	tc.applied[1].mu.Lock()
	for _, a := range tc.applied[1].seen {
		versions = append(versions, a.Version)
	}
	tc.applied[1].mu.Unlock()
	if !reflect.DeepEqual(dedup(versions), []uint64{0, 1, 2, 1}) {
		t.Fatalf("n1 applied %v", versions)
	}
	tc.write("drain", func(c *Cluster) (uint64, error) { return c.SetDrain("n2", true, "maintenance", "test") })
	checkFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		for _, m := range tc.node(0).Members() {
			if m.Name == "n2" && m.Meta.Drained {
				return nil
			}
		}
		return errors.New("n2 does not report drained")
	})
}

func dedup(xs []uint64) []uint64 {
	var out []uint64
	for _, x := range xs {
		if len(out) == 0 || out[len(out)-1] != x {
			out = append(out, x)
		}
	}
	return out
}
