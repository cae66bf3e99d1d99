package runner

import "container/heap"

// DefaultTurnGap is the number of frames the replay puts between a frame
// and the previous frame of its flow when the direction changes (a "turn":
// the answer to a request, the ACK of a segment). At the rates where the
// nodes saturate (tens of thousands of packets per second) 128 frames are
// several milliseconds: longer than an AF_PACKET ring holds a frame (its
// block retire timeout, 1 ms) and than a NFQUEUE batch waits.
//
// Why: a replay is open-loop. On a wire an answer cannot reach a bump in
// the wire before the node forwarded what it answers, but tcpreplay sends
// a flow's SYN-ACK a few microseconds after its SYN whatever happened to
// the SYN. The L2 node reads each interface through its own rings and
// workers, so the SYN-ACK (from the server side) was often inspected
// before the SYN (from the client side, still in its ring): the normaliser
// dropped it as out of state (tcp_state), the flow was then picked up
// midstream or dropped, and exploits in it went unseen (61/70 in a quick
// run). Spacing the turns restores the causality a real network has; it
// changes no frame, only the order of frames of different flows.
const DefaultTurnGap = 128

// spacing is what spaceTurns did to a capture.
type spacing struct {
	// Gap is the turn gap in frames.
	Gap int
	// Turns are the direction changes within flows; Short those still
	// closer than Gap (at the end of the capture, where too few flows
	// remain to fill the gap).
	Turns, Short int
	// LoopShort are flows whose last frame and first frame come closer
	// than Gap across the loop boundary (tcpreplay --loop replays the
	// capture again: the end of one pass meets the start of the next).
	LoopShort int
}

// spacedFrame is one frame to schedule.
type spacedFrame struct {
	key     flowKey
	fromSrc bool // direction: the frame goes from key.a to key.b
}

// spaceTurns returns a new order of the frames (indices into frames) in
// which a frame whose direction differs from its flow's previous frame
// comes at least gap positions after it, keeping every flow's own order
// and otherwise the original order as far as possible (list scheduling:
// at each position the eligible frame that came first in the original).
func spaceTurns(frames []spacedFrame, gap int) ([]int, spacing) {
	sp := spacing{Gap: gap}
	flows := map[flowKey]*flowQ{}
	var order []*flowQ
	for i, f := range frames {
		q := flows[f.key]
		if q == nil {
			q = &flowQ{}
			flows[f.key] = q
			order = append(order, q)
		}
		q.idx = append(q.idx, i)
	}
	head := func(q *flowQ) int { return q.idx[q.pos] }
	ready := &intHeap{less: func(a, b *flowQ) bool { return head(a) < head(b) }}
	waiting := &intHeap{less: func(a, b *flowQ) bool {
		if a.eligible != b.eligible {
			return a.eligible < b.eligible
		}
		return head(a) < head(b)
	}}
	for _, q := range order {
		heap.Push(waiting, q)
	}
	out := make([]int, 0, len(frames))
	for slot := 0; len(out) < len(frames); slot++ {
		for waiting.Len() > 0 && waiting.items[0].(*flowQ).eligible <= slot {
			heap.Push(ready, heap.Pop(waiting))
		}
		var q *flowQ
		if ready.Len() > 0 {
			q = heap.Pop(ready).(*flowQ)
		} else {
			q = heap.Pop(waiting).(*flowQ) // nothing eligible: the tail
		}
		i := head(q)
		dir := frames[i].fromSrc
		if q.started && dir != q.lastDir {
			sp.Turns++
			if slot-q.lastSlot < gap {
				sp.Short++
			}
		}
		out = append(out, i)
		q.started, q.lastDir, q.lastSlot = true, dir, slot
		if q.pos++; q.pos < len(q.idx) {
			q.eligible = slot + 1
			if frames[head(q)].fromSrc != dir {
				q.eligible = slot + gap
			}
			heap.Push(waiting, q)
		}
	}
	// Across the loop boundary: a flow's first frame in the next pass
	// comes len − last + first positions after its last frame.
	first := map[flowKey]int{}
	last := map[flowKey]int{}
	for slot, i := range out {
		k := frames[i].key
		if _, ok := first[k]; !ok {
			first[k] = slot
		}
		last[k] = slot
	}
	for k, f := range first {
		if len(out)-last[k]+f < gap {
			sp.LoopShort++
		}
	}
	return out, sp
}

// flowQ is one flow's frames while spaceTurns schedules them.
type flowQ struct {
	idx      []int // frame indices, original order
	pos      int
	lastDir  bool
	lastSlot int
	started  bool
	eligible int
}

// intHeap is a heap of flow queues ordered by less.
type intHeap struct {
	items []any
	less  func(a, b *flowQ) bool
}

func (h *intHeap) Len() int { return len(h.items) }
func (h *intHeap) Less(i, j int) bool {
	return h.less(h.items[i].(*flowQ), h.items[j].(*flowQ))
}
func (h *intHeap) Swap(i, j int) { h.items[i], h.items[j] = h.items[j], h.items[i] }
func (h *intHeap) Push(x any)    { h.items = append(h.items, x) }
func (h *intHeap) Pop() any {
	n := len(h.items)
	x := h.items[n-1]
	h.items = h.items[:n-1]
	return x
}

// spacedKey returns a frame's flow and direction for spaceTurns.
func spacedKey(data []byte) (spacedFrame, bool) {
	src, dst, proto, ok := frameTuple(data)
	if !ok {
		return spacedFrame{}, false
	}
	k := keyOf(src, dst, proto)
	return spacedFrame{key: k, fromSrc: k.a == src}, true
}
