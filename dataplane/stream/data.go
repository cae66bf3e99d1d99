package stream

import (
	"bytes"
	"sort"

	"github.com/patchgate/patchgate/dataplane"
)

// data processes the payload of a segment from dir starting at seq.
// It reports false (with the drop result) when the segment must be dropped.
func (c *Conn) data(dir dataplane.Direction, seq uint32, data []byte, deliver Receiver) (Result, bool) {
	var res Result
	h := &c.Half[dir]
	end := seq + uint32(len(data))

	// Bytes before Next were forwarded already: they must be the same bytes.
	if seqLT(seq, h.Next) {
		retStart := h.Next - uint32(len(h.retained))
		from, to := seq, end
		if seqLT(from, retStart) {
			from = retStart
		}
		if seqLT(h.Next, to) {
			to = h.Next
		}
		if seqLT(from, to) {
			if !bytes.Equal(h.retained[from-retStart:to-retStart], data[from-seq:to-seq]) {
				res.Verdict, res.Reason, res.Evasion = dataplane.Drop, dataplane.ReasonTCPOverlap, true
				return res, false
			}
		}
		// Bytes below retStart were acknowledged: the receiver discards them.
		if seqLEQ(end, h.Next) {
			return res, true
		}
		data = data[h.Next-seq:]
		seq = h.Next
	}

	// Bytes overlapping buffered out-of-order segments must match them too.
	for i := range h.ooo {
		s := &h.ooo[i]
		sEnd := s.seq + uint32(len(s.data))
		if seqLEQ(sEnd, seq) {
			continue
		}
		if seqLEQ(end, s.seq) {
			break
		}
		from, to := seq, end
		if seqLT(from, s.seq) {
			from = s.seq
		}
		if seqLT(sEnd, to) {
			to = sEnd
		}
		if !bytes.Equal(s.data[from-s.seq:to-s.seq], data[from-seq:to-seq]) {
			res.Verdict, res.Reason, res.Evasion = dataplane.Drop, dataplane.ReasonTCPOverlap, true
			return res, false
		}
	}

	if seq != h.Next {
		return c.buffer(h, seq, data)
	}

	// In order: this segment plus any buffered segments it makes contiguous.
	total := len(data)
	reach := end
	for _, s := range h.ooo {
		if seqLT(reach, s.seq) {
			break
		}
		if sEnd := s.seq + uint32(len(s.data)); seqLT(reach, sEnd) {
			total += int(sEnd - reach)
			reach = sEnd
		}
	}
	if len(h.retained)+total > c.cfg.MaxRetained {
		res.Verdict, res.Reason = dataplane.Drop, dataplane.ReasonTCPBuffer
		return res, false
	}
	h.retained = append(h.retained, data...)
	h.Next = end
	deliver.Data(dir, data)
	c.drain(dir, deliver)
	return res, true
}

// drain delivers buffered segments that are now in order.
func (c *Conn) drain(dir dataplane.Direction, deliver Receiver) {
	h := &c.Half[dir]
	n := 0
	for _, s := range h.ooo {
		sEnd := s.seq + uint32(len(s.data))
		if seqLT(h.Next, s.seq) {
			break
		}
		n++
		h.oooBytes -= len(s.data)
		if seqLT(h.Next, sEnd) {
			tail := s.data[h.Next-s.seq:]
			h.retained = append(h.retained, tail...)
			h.Next = sEnd
			deliver.Data(dir, tail)
		}
	}
	if n > 0 {
		h.ooo = append(h.ooo[:0], h.ooo[n:]...)
	}
}

// skip moves direction dir's stream up to seq, which its receiver
// acknowledged although the gateway never saw some bytes before it: each hole
// is reported as a gap, and the buffered segments between and after the holes
// are delivered in order.
func (c *Conn) skip(dir dataplane.Direction, seq uint32, deliver Receiver) {
	h := &c.Half[dir]
	for seqLT(h.Next, seq) {
		holeEnd := seq
		if len(h.ooo) > 0 && seqLT(h.ooo[0].seq, holeEnd) {
			holeEnd = h.ooo[0].seq
		}
		deliver.Gap(dir, int(holeEnd-h.Next))
		// The bytes before the hole can no longer be compared with what the
		// receiver got: they are no longer retained.
		h.retained = h.retained[:0]
		h.Next = holeEnd
		c.drain(dir, deliver)
	}
}

// buffer stores the parts of an out-of-order segment not already buffered.
func (c *Conn) buffer(h *Half, seq uint32, data []byte) (Result, bool) {
	var res Result
	end := seq + uint32(len(data))
	type piece struct{ from, to uint32 }
	var pieces [4]piece
	ps := pieces[:0]
	cur := seq
	add := 0
	for _, s := range h.ooo {
		sEnd := s.seq + uint32(len(s.data))
		if seqLEQ(sEnd, cur) {
			continue
		}
		if seqLEQ(end, s.seq) {
			break
		}
		if seqLT(cur, s.seq) {
			ps = append(ps, piece{cur, s.seq})
			add += int(s.seq - cur)
		}
		cur = sEnd
		if !seqLT(cur, end) {
			break
		}
	}
	if seqLT(cur, end) {
		ps = append(ps, piece{cur, end})
		add += int(end - cur)
	}
	if len(ps) == 0 {
		return res, true
	}
	if h.oooBytes+add > c.cfg.MaxOutOfOrder || len(h.ooo)+len(ps) > c.cfg.MaxSegments {
		res.Verdict, res.Reason = dataplane.Drop, dataplane.ReasonTCPBuffer
		return res, false
	}
	for _, p := range ps {
		h.ooo = append(h.ooo, segment{seq: p.from, data: append([]byte(nil), data[p.from-seq:p.to-seq]...)})
	}
	h.oooBytes += add
	next := h.Next
	sort.Slice(h.ooo, func(i, j int) bool { return int32(h.ooo[i].seq-next) < int32(h.ooo[j].seq-next) })
	return res, true
}
