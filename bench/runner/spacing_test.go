package runner

import (
	"net/netip"
	"testing"
)

// TestSpaceTurns checks that the replay order is a permutation of the
// capture that keeps every flow's own order and puts every turn (a change
// of direction within a flow) at least gap frames after the flow's previous
// frame when enough other flows fill the gap.
func TestSpaceTurns(t *testing.T) {
	const flows, perFlow, gap = 40, 6, 8
	var frames []spacedFrame
	key := func(i int) flowKey {
		return flowKey{netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 51, 100, byte(i + 1)}), 40000),
			netip.AddrPortFrom(netip.MustParseAddr("203.0.113.10"), 80), 6}
	}
	// Each flow: request, answer, request, answer... in bursts of two, as
	// a capture with the answer right behind its request.
	for round := 0; round < perFlow/2; round++ {
		for f := 0; f < flows; f++ {
			frames = append(frames, spacedFrame{key: key(f), fromSrc: true}, spacedFrame{key: key(f), fromSrc: false})
		}
	}
	order, sp := spaceTurns(frames, gap)
	if len(order) != len(frames) {
		t.Fatalf("%d frames out, %d in", len(order), len(frames))
	}
	seen := map[int]bool{}
	lastIdx := map[flowKey]int{}
	lastSlot := map[flowKey]int{}
	lastDir := map[flowKey]bool{}
	short := 0
	for slot, i := range order {
		if seen[i] {
			t.Fatalf("frame %d twice", i)
		}
		seen[i] = true
		k := frames[i].key
		if j, ok := lastIdx[k]; ok {
			if j > i {
				t.Fatalf("flow %v: frame %d after %d", k, i, j)
			}
			if lastDir[k] != frames[i].fromSrc && slot-lastSlot[k] < gap {
				short++
			}
		}
		lastIdx[k], lastSlot[k], lastDir[k] = i, slot, frames[i].fromSrc
	}
	if want := flows * (perFlow - 1); sp.Turns != want {
		t.Errorf("turns = %d, want %d", sp.Turns, want)
	}
	if short != sp.Short {
		t.Errorf("short turns: counted %d, reported %d", short, sp.Short)
	}
	// 40 flows fill a gap of 8 everywhere but in the last few frames.
	if sp.Short > gap {
		t.Errorf("%d turns closer than %d frames, want at most %d (the tail)", sp.Short, gap, gap)
	}
	// A gap of 1 keeps the capture's order.
	order, sp = spaceTurns(frames, 1)
	for slot, i := range order {
		if slot != i {
			t.Fatalf("gap 1 moved frame %d to %d", i, slot)
		}
	}
	if sp.Short != 0 {
		t.Errorf("gap 1: %d short turns", sp.Short)
	}
}
