package gen

import (
	"encoding/binary"
	"fmt"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

// FragOrder is the order in which the fragments of one packet are emitted.
type FragOrder uint8

// Fragment orders.
const (
	FragInOrder  FragOrder = iota // offset 0 first
	FragReverse                   // last fragment first
	FragShuffled                  // seeded shuffle (Fragmentation.Seed)
)

// ipv6FragHeaderLen is the size of the IPv6 fragment extension header.
const ipv6FragHeaderLen = 8

// Fragmentation splits a segment's IP packet into fragments: the transport
// header and payload are cut into Size-byte pieces, each sent with the IP
// header (IPv4 MF/offset, or an IPv6 fragment header).
type Fragmentation struct {
	// Size is the number of transport bytes per fragment, a positive
	// multiple of 8 as fragment offsets are counted in 8-byte units.
	Size int
	// Order is the emission order of the fragments.
	Order FragOrder
	// Seed drives FragShuffled.
	Seed uint64
	// Overlap adds a decoy fragment covering the same range as fragment
	// OverlapIndex (in offset order) with different payload bytes; transport
	// header bytes in that range are kept. OverlapFirst sends the decoy just
	// before the genuine fragment, otherwise just after it. Reassembly ends
	// when the last genuine fragment arrives, so with the decoy after and
	// OverlapIndex emitted last a receiver completes the packet first.
	Overlap      bool
	OverlapIndex int
	OverlapFirst bool
	// Atomic (IPv6 only) sends the whole packet as one fragment: a fragment
	// header with offset 0 and M=0 (RFC 6946). Size is ignored.
	Atomic bool
}

func (f *Fragmentation) validate(v6 bool) error {
	switch {
	case f.Atomic && !v6:
		return fmt.Errorf("atomic fragments exist only in IPv6")
	case f.Atomic:
		return nil
	case f.Size <= 0 || f.Size%8 != 0:
		return fmt.Errorf("fragment size %d is not a positive multiple of 8", f.Size)
	case f.Order > FragShuffled:
		return fmt.Errorf("unknown fragment order %d", f.Order)
	case f.OverlapIndex < 0:
		return fmt.Errorf("negative OverlapIndex %d", f.OverlapIndex)
	}
	return nil
}

// Fragment makes the chosen segments travel as IP fragments.
func Fragment(sel Selector, f Fragmentation) Transform {
	return Modify(sel, func(s *Segment) {
		c := f
		s.Frag = &c
	})
}

// fragPiece is one fragment before serialisation.
type fragPiece struct {
	off   int // byte offset within the transport data
	data  []byte
	more  bool
	decoy bool
}

// appendFragments emits l4 (transport header of hdrLen bytes + payload) as
// fragments of network's packet.
func (e *encoder) appendFragments(frames []Frame, meta FrameMeta, seg *Segment,
	network gopacket.SerializableLayer, l4 []byte, hdrLen int) ([]Frame, error) {
	f := seg.Frag
	var pieces []fragPiece
	if f.Atomic {
		pieces = []fragPiece{{off: 0, data: l4}}
	} else {
		for off := 0; off < len(l4); off += f.Size {
			end := min(off+f.Size, len(l4))
			pieces = append(pieces, fragPiece{off: off, data: l4[off:end], more: end < len(l4)})
		}
	}
	var decoy *fragPiece
	if f.Overlap {
		if f.OverlapIndex >= len(pieces) {
			return nil, fmt.Errorf("OverlapIndex %d but only %d fragments", f.OverlapIndex, len(pieces))
		}
		g := pieces[f.OverlapIndex]
		alt, changed := alter(g.data, hdrLen-g.off)
		if !changed {
			return nil, errNoPayloadToAlter
		}
		decoy = &fragPiece{off: g.off, data: alt, more: g.more, decoy: true}
	}
	switch f.Order {
	case FragReverse:
		for i, j := 0, len(pieces)-1; i < j; i, j = i+1, j-1 {
			pieces[i], pieces[j] = pieces[j], pieces[i]
		}
	case FragShuffled:
		r := newRNG(f.Seed)
		r.shuffle(len(pieces), func(i, j int) { pieces[i], pieces[j] = pieces[j], pieces[i] })
	}
	if decoy != nil {
		for i := range pieces {
			if pieces[i].off != decoy.off {
				continue
			}
			at := i + 1
			if f.OverlapFirst {
				at = i
			}
			pieces = append(pieces[:at], append([]fragPiece{*decoy}, pieces[at:]...)...)
			break
		}
	}
	link := e.linkLayer(seg.Dir)
	id := e.fragID[seg.Dir]
	e.fragID[seg.Dir]++
	for n, p := range pieces {
		var data []byte
		var err error
		if ip6, ok := network.(*layers.IPv6); ok {
			v := *ip6
			v.NextHeader = layers.IPProtocolIPv6Fragment
			hdr := make([]byte, ipv6FragHeaderLen+len(p.data))
			hdr[0] = byte(ip6.NextHeader)
			om := uint16(p.off/8) << 3
			if p.more {
				om |= 1
			}
			binary.BigEndian.PutUint16(hdr[2:], om)
			binary.BigEndian.PutUint32(hdr[4:], id)
			copy(hdr[ipv6FragHeaderLen:], p.data)
			data, err = e.build(link, &v, gopacket.Payload(hdr))
		} else {
			v := *network.(*layers.IPv4)
			v.Flags = 0
			if p.more {
				v.Flags = layers.IPv4MoreFragments
			}
			v.FragOffset = uint16(p.off / 8)
			data, err = e.build(link, &v, gopacket.Payload(p.data))
		}
		if err != nil {
			return nil, err
		}
		m := meta
		m.Fragment = n
		m.Decoy = meta.Decoy || p.decoy
		frames = append(frames, newFrame(data, m))
	}
	return frames, nil
}

// alter returns a copy of p with every byte from index from on replaced by a
// different one ('X', or 'Y' where the byte already is 'X'), and whether any
// byte changed.
func alter(p []byte, from int) ([]byte, bool) {
	q := append([]byte(nil), p...)
	from = max(from, 0)
	for i := from; i < len(q); i++ {
		if q[i] == 'X' {
			q[i] = 'Y'
		} else {
			q[i] = 'X'
		}
	}
	return q, from < len(q)
}
