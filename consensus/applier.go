package consensus

import (
	"context"
	"time"
)

// WatchAssignment calls apply with this node's Assignment every time it
// changes (and once at the start), until ctx ends. When apply succeeds the
// assignment is reported in the gossiped metadata (ReportApplied); when it
// fails, it is retried after retry. The node layer passes a function that
// compiles the version and swaps the data plane's program.
//
// Static stability: nothing here ever clears what was applied. A node that
// loses the leader or quorum keeps its FSM state, so its assignment and its
// data plane stay as they were until new entries arrive.
func (c *Cluster) WatchAssignment(ctx context.Context, retry time.Duration, apply func(Assignment) error) {
	var (
		last    Assignment
		applied bool
		timer   <-chan time.Time
	)
	for {
		ch := c.fsm.Changed()
		a := c.fsm.Target(c.cfg.NodeName)
		if !applied || !a.Equal(last) {
			if err := apply(a); err != nil {
				c.log.Warn("consensus: applying assignment failed", "version", a.Version, "err", err)
				timer = time.After(retry)
			} else {
				last, applied, timer = a, true, nil
				c.ReportApplied(a)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-c.stop:
			return
		case <-ch:
		case <-timer:
		}
	}
}
