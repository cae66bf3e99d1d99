package defrag

import (
	"bytes"
	"encoding/binary"
	"time"

	"github.com/patchgate/patchgate/dataplane"
	"github.com/patchgate/patchgate/dataplane/decode"
)

// Sizes and limits of the datagram buffer.
const (
	ipv6HeaderLen  = 40
	fragHeaderLen  = 8
	maxDatagramLen = 65535 // IPv4 total length / IPv6 payload length field
	// maxHeaderCopy bounds the header kept from a first fragment: 60 bytes
	// for IPv4; for IPv6 the unfragmentable part (fixed header, hop-by-hop,
	// routing, destination options), which must fit in every fragment of the
	// datagram (RFC 8200 section 4.5) and in practice is far smaller.
	maxHeaderCopy = 2048
	// datagramOverhead is the memory charged per datagram beyond its
	// buffers: the struct, its map entry and list links.
	datagramOverhead = 256
	spanSize         = 16
	minBufferCap     = 1024
	minSpanCap       = 4
)

// span is a received byte range [start, end) of the datagram payload.
type span struct{ start, end int }

// datagram is a datagram being reassembled, or a tombstone (dead) that
// drops the later fragments of a poisoned or evicted one.
type datagram struct {
	key      key
	version  uint8
	deadline time.Time
	dead     bool
	reason   dataplane.Reason

	hdr   []byte // header of the offset-0 fragment, rebuilt for the output
	data  []byte // payload bytes by offset; len is the highest end received
	spans []span // received ranges, sorted, merged, non-adjacent
	total int    // payload length once the last fragment arrived, else -1
	frags int
	cost  int // bytes charged to the reassembler

	prev, next *datagram
}

// payloadLimit is the largest payload end a datagram with a header of
// hdrLen bytes (IPv6: without the fragment header) may have.
func payloadLimit(version uint8, hdrLen int) int {
	if version == 4 {
		return maxDatagramLen - hdrLen
	}
	return maxDatagramLen - (hdrLen - ipv6HeaderLen)
}

// compare checks data, to be placed at off, against the bytes already
// received. at is the payload offset of the first differing byte, or -1;
// dup reports whether data overlaps received bytes at all.
func (dg *datagram) compare(off int, data []byte) (at int, dup bool) {
	end := off + len(data)
	for _, s := range dg.spans {
		if s.end <= off {
			continue
		}
		if s.start >= end {
			break
		}
		lo, hi := max(off, s.start), min(end, s.end)
		dup = true
		old, neu := dg.data[lo:hi], data[lo-off:hi-off]
		if !bytes.Equal(old, neu) {
			for i := range old {
				if old[i] != neu[i] {
					return lo + i, true
				}
			}
		}
	}
	return -1, dup
}

// transportHeaderEnd is the payload offset where the transport header ends,
// as far as it is known from the bytes received and data at off.
func (dg *datagram) transportHeaderEnd(off int, data []byte) int {
	if dg.key.proto != decode.ProtoTCP {
		return 8 // UDP header; the fixed part of ICMP and most others
	}
	const doffAt = 12
	var b byte
	switch {
	case dg.has(doffAt):
		b = dg.data[doffAt]
	case off <= doffAt && doffAt < off+len(data):
		b = data[doffAt-off]
	default:
		return 20
	}
	return max(20, int(b>>4)*4)
}

// has reports whether payload byte i was received.
func (dg *datagram) has(i int) bool {
	for _, s := range dg.spans {
		if i >= s.start && i < s.end {
			return true
		}
	}
	return false
}

// maxEnd is the highest payload offset received.
func (dg *datagram) maxEnd() int {
	if len(dg.spans) == 0 {
		return 0
	}
	return dg.spans[len(dg.spans)-1].end
}

// bufferCap and spanCap give the capacities insert grows to; growth uses
// them to charge memory before it is allocated.
func bufferCap(cur, end int) int {
	if end <= cur {
		return cur
	}
	return max(end, min(2*cur, maxDatagramLen), minBufferCap)
}

func spanCap(cur, n int) int {
	if n < cur {
		return cur
	}
	return max(2*cur, minSpanCap)
}

// growth is the extra memory insert will allocate for data ending at end.
func (dg *datagram) growth(end int) int {
	return bufferCap(cap(dg.data), end) - cap(dg.data) +
		(spanCap(cap(dg.spans), len(dg.spans))-cap(dg.spans))*spanSize
}

// footprint is the memory a live datagram holds.
func (dg *datagram) footprint() int {
	return datagramOverhead + cap(dg.data) + cap(dg.hdr) + cap(dg.spans)*spanSize
}

// insert stores data at off (overlapping bytes are known to be equal) and
// merges its range into the span list.
func (dg *datagram) insert(off int, data []byte) {
	end := off + len(data)
	if c := bufferCap(cap(dg.data), end); c > cap(dg.data) {
		nb := make([]byte, len(dg.data), c)
		copy(nb, dg.data)
		dg.data = nb
	}
	if end > len(dg.data) {
		dg.data = dg.data[:end]
	}
	copy(dg.data[off:end], data)

	if c := spanCap(cap(dg.spans), len(dg.spans)); c > cap(dg.spans) {
		ns := make([]span, len(dg.spans), c)
		copy(ns, dg.spans)
		dg.spans = ns
	}
	i := 0
	for i < len(dg.spans) && dg.spans[i].end < off {
		i++
	}
	lo, hi, j := off, end, i
	for j < len(dg.spans) && dg.spans[j].start <= end {
		lo, hi = min(lo, dg.spans[j].start), max(hi, dg.spans[j].end)
		j++
	}
	if i == j {
		dg.spans = append(dg.spans, span{})
		copy(dg.spans[i+1:], dg.spans[i:])
	} else {
		dg.spans = append(dg.spans[:i+1], dg.spans[j:]...)
	}
	dg.spans[i] = span{lo, hi}
}

// setHeader keeps the header of the offset-0 fragment: the IPv4 header, or
// the IPv6 unfragmentable part with the next-header field that named the
// fragment header rewritten to the fragment header's next header.
func (dg *datagram) setHeader(p *decode.Packet, hdrLen int) bool {
	if hdrLen < 0 || hdrLen > len(p.IP) {
		return false
	}
	hdr := append([]byte(nil), p.IP[:hdrLen]...)
	if dg.version == 6 {
		pos, off := 6, ipv6HeaderLen // next-header byte of the fixed header
		for i := 0; off < hdrLen; i++ {
			if i >= decode.MaxIPv6ExtHeaders || off+2 > hdrLen {
				return false
			}
			n := (int(hdr[off+1]) + 1) * 8
			if hdr[pos] == 51 { // AH counts 4-byte units, minus 2
				n = (int(hdr[off+1]) + 2) * 4
			}
			pos, off = off, off+n
		}
		if off != hdrLen || hdr[pos] != 44 {
			return false
		}
		hdr[pos] = p.Frag.Proto
	}
	dg.hdr = hdr
	return true
}

// complete reports whether the whole payload and the header are present.
func (dg *datagram) complete() bool {
	return dg.total >= 0 && dg.hdr != nil && len(dg.spans) == 1 &&
		dg.spans[0].start == 0 && dg.spans[0].end == dg.total
}

// build appends the reassembled datagram to dst.
func (dg *datagram) build(dst []byte) []byte {
	h := len(dst)
	dst = append(dst, dg.hdr...)
	hdr := dst[h:]
	if dg.version == 4 {
		binary.BigEndian.PutUint16(hdr[2:4], uint16(len(dg.hdr)+dg.total))
		ff := binary.BigEndian.Uint16(hdr[6:8]) & 0x4000 // keep DF; clear MF and offset
		binary.BigEndian.PutUint16(hdr[6:8], ff)
		hdr[10], hdr[11] = 0, 0
		binary.BigEndian.PutUint16(hdr[10:12], decode.InternetChecksum(hdr))
	} else {
		binary.BigEndian.PutUint16(hdr[4:6], uint16(len(dg.hdr)-ipv6HeaderLen+dg.total))
	}
	return append(dst, dg.data[:dg.total]...)
}

// release drops the buffers of a datagram.
func (dg *datagram) release() {
	dg.hdr, dg.data, dg.spans = nil, nil, nil
}

// list is an intrusive doubly linked list of datagrams, oldest first.
type list struct {
	head, tail *datagram
	n          int
}

func (l *list) push(dg *datagram) {
	dg.prev, dg.next = l.tail, nil
	if l.tail != nil {
		l.tail.next = dg
	} else {
		l.head = dg
	}
	l.tail = dg
	l.n++
}

func (l *list) remove(dg *datagram) {
	if dg.prev != nil {
		dg.prev.next = dg.next
	} else {
		l.head = dg.next
	}
	if dg.next != nil {
		dg.next.prev = dg.prev
	} else {
		l.tail = dg.prev
	}
	dg.prev, dg.next = nil, nil
	l.n--
}
