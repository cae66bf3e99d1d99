package inline

import (
	"sync/atomic"

	"github.com/patchgate/patchgate/dataplane"
)

// Stats is a snapshot of a backend's counters.
type Stats struct {
	// Packets and Bytes count what the backend received from the kernel.
	Packets, Bytes uint64
	// Verdicts counts applied verdicts, indexed by dataplane.Verdict.
	Verdicts [3]uint64
	// ResetsSent counts RST segments injected (two per reset packet).
	ResetsSent uint64
	// Errors counts failed verdicts, forwards and RST injections.
	Errors uint64
	// Bypassed counts packets let through uninspected because the node was
	// overloaded (fail-open), over all units. For NFQUEUE it is an estimate
	// (the kernel does not count packets it lets through a full queue).
	Bypassed uint64
	// Units are the per-queue (NFQUEUE) or per-ring (AF_PACKET) counters.
	Units []UnitStats
}

// UnitStats are the counters of one kernel queue or ring.
type UnitStats struct {
	// Name identifies the unit in metrics: "queue-3" or "eth0-1".
	Name string
	// Packets received from this unit.
	Packets uint64
	// KernelDropped counts packets the kernel dropped because the unit
	// overflowed (NFQUEUE: queue or socket buffer full with fail-closed;
	// AF_PACKET: ring full), read from the kernel's own counters.
	KernelDropped uint64
	// Bypassed counts packets let through uninspected because the node was
	// overloaded (fail-open only).
	Bypassed uint64
}

// Counters are the totals a backend keeps while running. They are safe for
// concurrent use; the zero value is ready.
type Counters struct {
	packets, bytes atomic.Uint64
	verdicts       [3]atomic.Uint64
	resets, errors atomic.Uint64
}

// Received counts one packet of n bytes.
func (c *Counters) Received(n int) {
	c.packets.Add(1)
	c.bytes.Add(uint64(n))
}

// Applied counts one applied verdict.
func (c *Counters) Applied(v dataplane.Verdict) {
	if int(v) < len(c.verdicts) {
		c.verdicts[v].Add(1)
	}
}

// ResetSent counts injected RST segments.
func (c *Counters) ResetSent(n int) { c.resets.Add(uint64(n)) }

// Error counts a failed verdict, forward or injection.
func (c *Counters) Error() { c.errors.Add(1) }

// Snapshot returns the totals (Units left empty).
func (c *Counters) Snapshot() Stats {
	s := Stats{Packets: c.packets.Load(), Bytes: c.bytes.Load(), ResetsSent: c.resets.Load(), Errors: c.errors.Load()}
	for i := range s.Verdicts {
		s.Verdicts[i] = c.verdicts[i].Load()
	}
	return s
}
