package gen

import (
	"strings"

	"github.com/patchgate/patchgate/dataplane"
)

// Flags are TCP header flags, in their wire bit positions.
type Flags uint8

// TCP flags.
const (
	FIN Flags = 1 << iota
	SYN
	RST
	PSH
	ACK
	URG
)

func (f Flags) String() string {
	names := [...]string{"FIN", "SYN", "RST", "PSH", "ACK", "URG"}
	var b strings.Builder
	for i, n := range names {
		if f&(1<<i) != 0 {
			if b.Len() > 0 {
				b.WriteByte('|')
			}
			b.WriteString(n)
		}
	}
	if b.Len() == 0 {
		return "none"
	}
	return b.String()
}

// Segment is one transport packet of a flow before serialisation: a TCP
// segment of a TCPSession or a datagram of a UDPFlow (which ignores the TCP
// fields). Sessions produce segments; transforms rewrite them; Frames
// serialises them. Transforms must not modify Payload bytes in place, since
// segments share them with the session: they replace the slice instead.
type Segment struct {
	Dir     dataplane.Direction
	Seq     uint32 // sequence number of the first byte (or of the SYN/FIN)
	Ack     uint32 // recomputed when serialising unless KeepAck is set
	Flags   Flags
	Window  uint16 // window field as sent
	TSVal   uint32 // TCP timestamp option value, when timestamps are on
	TSEcr   uint32 // TCP timestamp echo reply
	Payload []byte
	// Msg is the index of the message this segment carries bytes of, among
	// the messages of its direction; -1 for segments without payload.
	Msg int

	// Per-segment knobs.

	// TTL overrides the session's IPv4 TTL or IPv6 hop limit when non-zero.
	TTL uint8
	// BadChecksum corrupts the transport checksum.
	BadChecksum bool
	// Decoy marks bytes that are not the genuine stream's. Decoys do not
	// advance the ACKs the other side sends.
	Decoy bool
	// KeepAck sends Ack as set instead of recomputing it from what the other
	// side has received.
	KeepAck bool
	// Frag, when non-nil, splits the IP packet into fragments.
	Frag *Fragmentation
}

// end returns the sequence number following the segment (SYN and FIN count
// as one byte each).
func (s *Segment) end() uint32 {
	n := uint32(len(s.Payload))
	if s.Flags&SYN != 0 {
		n++
	}
	if s.Flags&FIN != 0 {
		n++
	}
	return s.Seq + n
}

// accepted reports whether the receiving host would take the segment's
// sequence space: decoys, corrupted segments and data without ACK (RFC 9293
// §3.10.7.4: segments without ACK are dropped in synchronised states) are not.
func (s *Segment) accepted() bool {
	if s.Decoy || s.BadChecksum {
		return false
	}
	return s.Flags&(ACK|SYN) != 0
}

// Transform rewrites a segment list; it returns the new list (it may reuse
// the input's backing array). Transforms compose: Frames applies them in the
// order given.
type Transform func([]Segment) []Segment

// Selector chooses the segments a transform touches. dataIndex is the index
// of s among the non-decoy segments that carry payload, counted in the list
// the transform receives, or -1 when s carries no payload or is a decoy.
type Selector func(s Segment, dataIndex int) bool

// AllSegments selects every segment, including handshake and pure ACKs.
func AllSegments() Selector { return func(Segment, int) bool { return true } }

// DataSegments selects every non-decoy segment that carries payload.
func DataSegments() Selector { return func(_ Segment, k int) bool { return k >= 0 } }

// Nth selects the data segments with the given data indexes (0-based).
func Nth(idx ...int) Selector {
	return func(_ Segment, k int) bool {
		for _, i := range idx {
			if k >= 0 && k == i {
				return true
			}
		}
		return false
	}
}

// InMessage selects the data segments carrying bytes of message msg of
// direction dir.
func InMessage(dir dataplane.Direction, msg int) Selector {
	return func(s Segment, k int) bool { return k >= 0 && s.Dir == dir && s.Msg == msg }
}

// Dir selects the data segments of one direction.
func Dir(dir dataplane.Direction) Selector {
	return func(s Segment, k int) bool { return k >= 0 && s.Dir == dir }
}

// dataIndexes returns, for each segment, its index among the non-decoy
// segments with payload, or -1.
func dataIndexes(segs []Segment) []int {
	idx := make([]int, len(segs))
	k := 0
	for i := range segs {
		if len(segs[i].Payload) > 0 && !segs[i].Decoy {
			idx[i] = k
			k++
		} else {
			idx[i] = -1
		}
	}
	return idx
}
