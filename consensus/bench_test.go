package consensus

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/patchgate/patchgate/consensus/patchset"
)

// benchConfig: production raft timings and an fsync'ed raft-boltdb log, on
// loopback with random ports.
func benchConfig(c *Config) {
	d := DefaultConfig()
	c.Raft = d.Raft
	c.UnsafeNoSync = false
	c.Logger = nil
}

// waitApplied blocks until every running node has applied index.
func (tc *testCluster) waitApplied(index uint64) {
	for _, i := range tc.running() {
		f := tc.node(i).FSM()
		for {
			ch := f.Changed()
			if f.AppliedIndex() >= index {
				break
			}
			select {
			case <-ch:
			case <-time.After(10 * time.Second):
				tc.t.Fatalf("n%d did not apply %d", i, index)
			}
		}
	}
}

func reportPercentiles(b *testing.B, name string, d []time.Duration) {
	if len(d) == 0 {
		return
	}
	slices.Sort(d)
	p := func(q float64) float64 {
		return float64(d[min(len(d)-1, int(q*float64(len(d))))].Microseconds()) / 1000
	}
	b.ReportMetric(p(0.50), name+"-p50-ms")
	b.ReportMetric(p(0.99), name+"-p99-ms")
}

// BenchmarkApplyToAllNodes measures the time from Apply on the leader to
// "applied on all nodes" in clusters of 3 and 5 voters (raft-boltdb with
// fsync, loopback): a small command (a drain flag) and a patch-set push of the
// shipped catalog (a bundle of about 1.3 MB).
func BenchmarkApplyToAllNodes(b *testing.B) {
	for _, bc := range []struct {
		nodes int
		kind  string
	}{{3, "drain"}, {5, "drain"}, {3, "push-catalog"}} {
		kind := bc.kind
		b.Run(fmt.Sprintf("%d-nodes/%s", bc.nodes, kind), func(b *testing.B) {
			tc := makeCluster(b, bc.nodes, bc.nodes, benchConfig)
			l := tc.leader()
			c := tc.node(l)
			var pushes []Command
			if kind == "push-catalog" {
				for i := 0; i < b.N; i++ {
					bd, err := patchset.Build("../patches", uint64(i+1), testKey, patchset.Meta{Time: t0})
					if err != nil {
						b.Fatal(err)
					}
					data, _ := bd.Marshal()
					cmd, err := NewPushCommand(data, Plan{}, "bench")
					if err != nil {
						b.Fatal(err)
					}
					pushes = append(pushes, cmd)
				}
				b.SetBytes(int64(len(pushes[0].Push.Bundle)))
			}
			var commit, all []time.Duration
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				cmd := Command{Type: CmdDrain, Drain: &DrainCmd{Node: c.Name(), Drained: i%2 == 0}}
				if kind == "push-catalog" {
					cmd = pushes[i]
				}
				start := time.Now()
				idx, err := c.Apply(cmd)
				if err != nil {
					b.Fatal(err)
				}
				commit = append(commit, time.Since(start))
				tc.waitApplied(idx)
				all = append(all, time.Since(start))
			}
			b.StopTimer()
			reportPercentiles(b, "commit", commit)
			reportPercentiles(b, "all-nodes", all)
		})
	}
}

// BenchmarkFailureDetection measures how long the other members of a 3-node
// cluster take to declare a crashed node dead with the data-center gossip
// tuning of DefaultConfig.
func BenchmarkFailureDetection(b *testing.B) {
	tc := makeCluster(b, 3, 3, func(c *Config) {
		c.Gossip = DefaultConfig().Gossip
		c.Logger = nil
	})
	var took []time.Duration
	for i := 0; i < b.N; i++ {
		victim := 2
		tc.stop(victim)
		start := time.Now()
		checkFor(b, 30*time.Second, 5*time.Millisecond, func() error {
			for _, j := range tc.running() {
				for _, m := range tc.node(j).Members() {
					if m.Name == tc.cfgs[victim].NodeName && m.State != MemberDead {
						return fmt.Errorf("n%d sees the victim %s", j, m.State)
					}
				}
			}
			return nil
		})
		took = append(took, time.Since(start))
		tc.start(victim)
		checkFor(b, 30*time.Second, 20*time.Millisecond, func() error {
			for _, j := range tc.running() {
				for _, m := range tc.node(j).Members() {
					if m.Name == tc.cfgs[victim].NodeName && m.State != MemberAlive {
						return fmt.Errorf("n%d sees the victim %s", j, m.State)
					}
				}
			}
			return nil
		})
	}
	reportPercentiles(b, "detect", took)
	slices.Sort(took)
	b.ReportMetric(float64(took[len(took)-1].Milliseconds()), "detect-max-ms")
}
