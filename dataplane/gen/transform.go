package gen

// Mod changes one segment's fields or knobs.
type Mod func(*Segment)

// WithTTL sets the segment's IPv4 TTL / IPv6 hop limit. A decoy with a TTL
// lower than the hop count to the server is seen by the gateway only.
func WithTTL(ttl uint8) Mod { return func(s *Segment) { s.TTL = ttl } }

// WithBadChecksum corrupts the segment's transport checksum.
func WithBadChecksum() Mod { return func(s *Segment) { s.BadChecksum = true } }

// WithoutAck clears the ACK flag: data without ACK, which an established
// receiver discards. Its ACK number is sent as zero.
func WithoutAck() Mod {
	return func(s *Segment) {
		s.Flags &^= ACK
		s.Ack, s.KeepAck = 0, true
	}
}

// Modify applies mods to the chosen segments in place, e.g.
// Modify(Nth(2), WithBadChecksum()) corrupts the third data segment and
// Modify(Nth(0), WithoutAck()) sends it without the ACK flag.
func Modify(sel Selector, mods ...Mod) Transform {
	return func(segs []Segment) []Segment {
		idx := dataIndexes(segs)
		for i := range segs {
			if sel(segs[i], idx[i]) {
				for _, m := range mods {
					m(&segs[i])
				}
			}
		}
		return segs
	}
}

// Drop removes the chosen segments (packet loss, or a capture that starts
// after the handshake).
func Drop(sel Selector) Transform {
	return func(segs []Segment) []Segment {
		idx := dataIndexes(segs)
		out := segs[:0:0]
		for i := range segs {
			if !sel(segs[i], idx[i]) {
				out = append(out, segs[i])
			}
		}
		return out
	}
}

// Duplicate sends each chosen segment twice in a row.
func Duplicate(sel Selector) Transform {
	return func(segs []Segment) []Segment {
		idx := dataIndexes(segs)
		out := make([]Segment, 0, len(segs)+len(segs)/2)
		for i := range segs {
			out = append(out, segs[i])
			if sel(segs[i], idx[i]) {
				out = append(out, segs[i])
			}
		}
		return out
	}
}

// Decoy inserts, just before each chosen segment, an insertion decoy: the
// same sequence numbers with different bytes, marked Decoy, changed by mods
// so that the server rejects it while a naive gateway might not. Examples:
// Decoy(sel, WithTTL(1)) (low-TTL insertion), Decoy(sel, WithBadChecksum()),
// Decoy(sel, WithoutAck()).
func Decoy(sel Selector, mods ...Mod) Transform {
	return func(segs []Segment) []Segment {
		idx := dataIndexes(segs)
		out := make([]Segment, 0, len(segs)+len(segs)/2)
		for i := range segs {
			if sel(segs[i], idx[i]) {
				d := segs[i]
				d.Payload, _ = alter(d.Payload, 0)
				d.Decoy = true
				for _, m := range mods {
					m(&d)
				}
				out = append(out, d)
			}
			out = append(out, segs[i])
		}
		return out
	}
}

// OverlapOptions shape the copies Overlap sends.
type OverlapOptions struct {
	// Different gives the copy different bytes (and marks it Decoy); the
	// copy otherwise repeats the original bytes.
	Different bool
	// CopyFirst sends the copy before the original; it then arrives out of
	// order and the original overlaps it.
	CopyFirst bool
}

// Overlap sends, next to each chosen data segment, a copy of its second half
// (the whole segment when it is one byte long) so the two overlap in
// sequence space.
func Overlap(sel Selector, o OverlapOptions) Transform {
	return func(segs []Segment) []Segment {
		idx := dataIndexes(segs)
		out := make([]Segment, 0, len(segs)+len(segs)/2)
		for i := range segs {
			s := segs[i]
			if idx[i] < 0 || !sel(s, idx[i]) {
				out = append(out, s)
				continue
			}
			half := len(s.Payload) / 2
			c := s
			c.Flags &^= SYN | FIN
			c.Seq = s.Seq + uint32(half)
			c.Payload = s.Payload[half:]
			if o.Different {
				c.Payload, _ = alter(c.Payload, 0)
				c.Decoy = true
			}
			if o.CopyFirst {
				out = append(out, c, s)
			} else {
				out = append(out, s, c)
			}
		}
		return out
	}
}

// Reorder shuffles data segments deterministically: within each burst of
// data segments from one direction (pure ACKs of the other direction
// interleaved are left in place), groups of window consecutive segments are
// permuted, never left in their original order. A window below 2 changes
// nothing. Decoys and copies already in the list are shuffled too: apply
// Reorder before Decoy or Overlap to keep those next to their originals.
func Reorder(seed uint64, window int) Transform {
	return func(segs []Segment) []Segment {
		if window < 2 {
			return segs
		}
		r := newRNG(seed)
		pos := make([]int, 0, window)
		group := make([]Segment, 0, window)
		for i := 0; i < len(segs); {
			if len(segs[i].Payload) == 0 {
				i++
				continue
			}
			dir := segs[i].Dir
			pos = pos[:0]
			j := i
			for ; j < len(segs); j++ {
				s := &segs[j]
				if len(s.Payload) > 0 && s.Dir == dir {
					pos = append(pos, j)
					if len(pos) == window {
						permute(segs, pos, group, r)
						pos = pos[:0]
					}
					continue
				}
				if len(s.Payload) == 0 && s.Dir != dir && s.Flags == ACK {
					continue // the receiver's pure ACK stays where it is
				}
				break
			}
			permute(segs, pos, group, r)
			i = j
		}
		return segs
	}
}

// permute shuffles segs at positions pos; an identity result is rotated by
// one so the order always changes.
func permute(segs []Segment, pos []int, group []Segment, r *rng) {
	if len(pos) < 2 {
		return
	}
	group = group[:0]
	for _, p := range pos {
		group = append(group, segs[p])
	}
	perm := make([]int, len(pos))
	for i := range perm {
		perm[i] = i
	}
	r.shuffle(len(perm), func(i, j int) { perm[i], perm[j] = perm[j], perm[i] })
	identity := true
	for i, p := range perm {
		identity = identity && i == p
	}
	if identity {
		perm = append(perm[1:], perm[0])
	}
	for i, p := range pos {
		segs[p] = group[perm[i]]
	}
}
