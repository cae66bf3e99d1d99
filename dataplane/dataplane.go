// Package dataplane holds the small vocabulary shared by every stage of the
// packet path: directions, verdicts and drop reasons. The stages themselves live
// in sub-packages (source, decode, defrag, flow, stream, analyzer, patch, engine);
// none of them imports anything from the cluster packages.
package dataplane

import "fmt"

// Direction is the direction of a packet or byte stream within a flow.
type Direction uint8

const (
	// ToServer is client → server (the side that sent the SYN, or the side
	// talking to the lower, well-known port when a flow is picked up mid-stream).
	ToServer Direction = 0
	// ToClient is server → client.
	ToClient Direction = 1
)

// Reverse returns the opposite direction.
func (d Direction) Reverse() Direction { return d ^ 1 }

func (d Direction) String() string {
	if d == ToServer {
		return "to_server"
	}
	return "to_client"
}

// Verdict is what happens to a packet.
type Verdict uint8

const (
	// Pass forwards the packet unchanged.
	Pass Verdict = iota
	// Drop discards the packet silently.
	Drop
	// Reset discards the packet and tears the flow down with a RST to both ends.
	Reset
)

func (v Verdict) String() string {
	switch v {
	case Pass:
		return "pass"
	case Drop:
		return "drop"
	case Reset:
		return "reset"
	}
	return fmt.Sprintf("verdict(%d)", uint8(v))
}

// Stronger returns the stronger of two verdicts (Reset > Drop > Pass).
func (v Verdict) Stronger(o Verdict) Verdict {
	if o > v {
		return o
	}
	return v
}

// Reason says why the engine chose a verdict other than the patch decision.
// It labels drop counters; the zero value means "no special reason".
type Reason uint8

// Drop reasons. Keep ReasonNames in step.
const (
	ReasonNone              Reason = iota
	ReasonPatch                    // a virtual patch matched in enforce mode
	ReasonBlockedFlow              // the flow was blocked earlier
	ReasonMalformed                // the packet could not be decoded
	ReasonBadChecksum              // IP/TCP/UDP checksum invalid (the server would drop it too)
	ReasonFragOverlap              // overlapping IP fragments with different bytes
	ReasonFragLimit                // fragment reassembly memory or count limit reached
	ReasonTCPOverlap               // retransmitted/overlapping TCP data differs from the first copy
	ReasonTCPWindow                // TCP data outside the receiver's window
	ReasonTCPState                 // TCP segment invalid for the connection state (no ACK, after FIN, PAWS, ...)
	ReasonTCPBuffer                // out-of-order buffer limit reached
	ReasonMidstream                // flow first seen mid-stream and the policy refuses it
	ReasonFlowLimit                // flow table full and no flow could be evicted
	ReasonAnalyzerViolation        // protocol violation an analyzer treats as an attack (smuggling, limits)
	ReasonLowTTL                   // TTL too low to reach the server (insertion attempt)
	ReasonTCPUrgent                // urgent data the server would remove from the stream
	numReasons
)

// ReasonNames are the metric label values of the reasons, indexed by Reason.
var ReasonNames = [numReasons]string{
	"none", "patch", "blocked_flow", "malformed", "bad_checksum", "frag_overlap",
	"frag_limit", "tcp_overlap", "tcp_window", "tcp_state", "tcp_buffer",
	"midstream", "flow_limit", "analyzer_violation", "low_ttl", "tcp_urgent",
}

// NumReasons is the number of defined reasons, for sizing counter arrays.
const NumReasons = int(numReasons)

func (r Reason) String() string {
	if int(r) < len(ReasonNames) {
		return ReasonNames[r]
	}
	return fmt.Sprintf("reason(%d)", uint8(r))
}
