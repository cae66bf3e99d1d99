package engine

import (
	"sync/atomic"

	"github.com/patchgate/patchgate/dataplane"
	"github.com/patchgate/patchgate/dataplane/flow"
)

type counters struct {
	packets, bytes, alerts, panics atomic.Uint64
	verdicts                       [3]atomic.Uint64
	reasons                        [dataplane.NumReasons]atomic.Uint64
}

// Stats is a snapshot of an engine's counters.
type Stats struct {
	Packets uint64
	Bytes   uint64
	// Verdicts counts packets per verdict (indexed by dataplane.Verdict).
	Verdicts [3]uint64
	// Reasons counts non-pass verdicts per reason (indexed by dataplane.Reason).
	Reasons [dataplane.NumReasons]uint64
	Alerts  uint64
	// PatchAlerts counts alerts per patch id (and built-in detection id).
	PatchAlerts map[string]uint64
	// Violations counts analyzer-reported protocol violations per code.
	Violations map[string]uint64
	// Panics counts packets whose processing hit a bug (dropped, node kept running).
	Panics uint64
	// AnalyzerErrors counts flows whose analyzer gave up.
	AnalyzerErrors uint64
	// Gaps counts stream holes skipped because the receiver acknowledged
	// bytes never seen (capture loss; stream.Config.GapOnAck).
	Gaps uint64
	// FlowsCreated, Pickups (mid-stream) and Resumed (from checkpoints).
	FlowsCreated, Pickups, Resumed uint64
	// PredicateErrors counts predicate evaluations that failed at run time.
	PredicateErrors uint64
	// Flows aggregates the shards' flow tables.
	Flows flow.Stats
	// Fragments are the fragment reassembler's counters.
	Fragments any
	// PatchSet is the version in force.
	PatchSet uint64
}

// Stats returns a snapshot of the engine's counters.
func (e *Engine) Stats() Stats {
	st := Stats{
		Packets: e.global.packets.Load(), Bytes: e.global.bytes.Load(), Alerts: e.global.alerts.Load(),
		Panics: e.global.panics.Load(), PatchAlerts: map[string]uint64{}, Violations: map[string]uint64{}, PatchSet: e.prog.Load().Version,
	}
	for i := range st.Verdicts {
		st.Verdicts[i] = e.global.verdicts[i].Load()
	}
	for i := range st.Reasons {
		st.Reasons[i] = e.global.reasons[i].Load()
	}
	for _, s := range e.shards {
		s.mu.Lock()
		for k, v := range s.patchAlerts {
			st.PatchAlerts[k] += v
		}
		for k, v := range s.violations {
			st.Violations[k] += v
		}
		st.AnalyzerErrors += s.anErrors
		st.Gaps += s.gaps
		st.FlowsCreated += s.flows
		st.Pickups += s.pickups
		st.Resumed += s.resumed
		st.PredicateErrors += s.runner.Errors
		ts := s.table.Stats()
		s.mu.Unlock()
		st.Flows.Flows += ts.Flows
		st.Flows.Bytes += ts.Bytes
		st.Flows.Inserted += ts.Inserted
		st.Flows.Expired += ts.Expired
		st.Flows.Removed += ts.Removed
		st.Flows.Refused += ts.Refused
		st.Flows.MaxFlows += ts.MaxFlows
		st.Flows.MaxBytesC += ts.MaxBytesC
		for c := range ts.PerClass {
			st.Flows.PerClass[c] += ts.PerClass[c]
			st.Flows.Evicted[c] += ts.Evicted[c]
		}
	}
	e.fragMu.Lock()
	st.Fragments = e.frag.Stats()
	e.fragMu.Unlock()
	return st
}
