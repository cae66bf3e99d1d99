package engine

import (
	"net/netip"
	"sync"
	"time"

	"github.com/patchgate/patchgate/dataplane"
)

// Alert is one match of a virtual patch, or an evasion or protocol violation
// detected by the engine itself.
type Alert struct {
	Time   time.Time
	FlowID uint64
	// Src/Dst are the endpoints of the packet that raised the alert.
	Src, Dst netip.AddrPort
	Proto    uint8
	AppProto string
	Dir      dataplane.Direction
	// Blocked is true when the alert's action blocked traffic (EVE "blocked"),
	// false for detect-mode or alert-action matches (EVE "allowed").
	Blocked bool
	Verdict dataplane.Verdict

	SID       int
	PatchID   string
	Signature string
	Category  string
	Severity  string
	CVE       []string
	// Event is the event name the patch matched on, or the violation code.
	Event string
	// PatchSet is the version of the patch set that produced the alert.
	PatchSet uint64
}

// AlertSink receives alerts. Alert is called from the goroutine processing the
// packet (one per shard); implementations must be safe for concurrent use and
// must not retain a after returning unless they copy it.
type AlertSink interface {
	Alert(a *Alert)
}

// AlertFunc adapts a function to AlertSink.
type AlertFunc func(a *Alert)

// Alert implements AlertSink.
func (f AlertFunc) Alert(a *Alert) { f(a) }

// AlertRecorder is an AlertSink that keeps copies of every alert (tests, replay
// summaries).
type AlertRecorder struct {
	mu     sync.Mutex
	alerts []Alert
}

// Alert implements AlertSink.
func (r *AlertRecorder) Alert(a *Alert) {
	r.mu.Lock()
	c := *a
	c.CVE = append([]string(nil), a.CVE...)
	r.alerts = append(r.alerts, c)
	r.mu.Unlock()
}

// Alerts returns a copy of the recorded alerts.
func (r *AlertRecorder) Alerts() []Alert {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Alert(nil), r.alerts...)
}

// Reset forgets the recorded alerts.
func (r *AlertRecorder) Reset() {
	r.mu.Lock()
	r.alerts = nil
	r.mu.Unlock()
}

// Built-in signatures for what the engine detects itself. Their signature ids
// sit below any CVE-derived id (those are YYYY*1000000+N).
const builtinSIDBase = 1000000

type builtin struct {
	sid      int
	id       string
	title    string
	category string
	severity string
}

var reasonSigs = map[dataplane.Reason]builtin{
	dataplane.ReasonTCPOverlap:  {builtinSIDBase + 1, "patchgate.tcp_overlap", "TCP retransmission or overlap with different data (evasion)", "evasion", "high"},
	dataplane.ReasonFragOverlap: {builtinSIDBase + 2, "patchgate.frag_overlap", "IP fragments overlap with different data (evasion)", "evasion", "high"},
	dataplane.ReasonLowTTL:      {builtinSIDBase + 3, "patchgate.low_ttl", "TCP data with a TTL too low to reach the server (insertion)", "evasion", "medium"},
	dataplane.ReasonTCPUrgent:   {builtinSIDBase + 4, "patchgate.tcp_urgent", "TCP urgent data the server would remove from the stream (evasion)", "evasion", "medium"},
}

// violationSig returns the built-in signature of an analyzer violation code.
func violationSig(code string) builtin {
	// Stable signature ids per code, derived from the code's hash so analyzers
	// can add codes without a central table.
	h := uint32(2166136261)
	for i := 0; i < len(code); i++ {
		h ^= uint32(code[i])
		h *= 16777619
	}
	return builtin{builtinSIDBase + 1000 + int(h%899000), code, "protocol violation: " + code, "protocol-violation", "medium"}
}
