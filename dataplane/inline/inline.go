// Package inline holds what the inline packet backends share: the Backend and
// Inspector interfaces, the overload/shutdown policy, counters, the RST
// builder that turns a Reset verdict into a RST for each end of the flow, and
// helpers to run code and commands inside a network namespace.
//
// The backends themselves live in sub-packages: inline/nfqueue (L3, the node
// is a routed hop, packets come from iptables' NFQUEUE target) and
// inline/afpacket (L2, the node bridges two interfaces with TPACKET_V3 rings).
package inline

import (
	"context"
	"fmt"
	"time"

	"github.com/google/gopacket/layers"

	"github.com/patchgate/patchgate/dataplane/engine"
)

// Inspector decides the fate of one packet. *engine.Worker implements it.
// An Inspector is used by one goroutine at a time; a backend asks for one per
// worker goroutine.
type Inspector interface {
	// Process inspects one frame of link type lt and returns the verdict. The
	// frame is only valid during the call.
	Process(lt layers.LinkType, frame []byte, ts time.Time) engine.Result
}

var _ Inspector = (*engine.Worker)(nil)

// Backend moves packets between the kernel and the inspection engine.
type Backend interface {
	// Run attaches to the kernel (rules, queues, rings), inspects packets until
	// ctx is cancelled, then detaches and leaves the kernel as the backend's
	// FailPolicy says. It returns once nothing of the backend runs any more.
	// Run is called once.
	Run(ctx context.Context) error
	// Ready reports whether the backend is attached and forwarding packets.
	// Safe for concurrent use.
	Ready() bool
	// Stats returns a snapshot of the backend's counters. Safe for concurrent use.
	Stats() Stats
}

// FailPolicy says what happens to traffic the node cannot inspect: packets
// that overflow the kernel queue or ring, and all traffic once the node stops.
type FailPolicy uint8

const (
	// FailOpen lets uninspected traffic through: availability over inspection.
	FailOpen FailPolicy = iota
	// FailClosed drops uninspected traffic: inspection over availability.
	FailClosed
)

func (f FailPolicy) String() string {
	if f == FailClosed {
		return "closed"
	}
	return "open"
}

// ParseFailPolicy parses "open" or "closed".
func ParseFailPolicy(s string) (FailPolicy, error) {
	switch s {
	case "open":
		return FailOpen, nil
	case "closed":
		return FailClosed, nil
	}
	return 0, fmt.Errorf("inline: fail policy %q is not one of open, closed", s)
}
