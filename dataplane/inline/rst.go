package inline

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"

	"github.com/patchgate/patchgate/dataplane/decode"
)

// TCP flag bits.
const (
	tcpFIN = 0x01
	tcpSYN = 0x02
	tcpRST = 0x04
	tcpACK = 0x10
)

// ResetTTL is the TTL (hop limit) of injected RST segments.
const ResetTTL = 64

var (
	// ErrNotTCP is returned for packets that are not the first (or only)
	// fragment of a TCP segment: there is nothing to reset.
	ErrNotTCP = errors.New("inline: not a TCP segment")
	// ErrIsReset is returned for RST segments: a RST is never answered.
	ErrIsReset = errors.New("inline: segment is a RST")
	errShort   = errors.New("inline: truncated packet")
)

// Segment is what a RST needs to know about the TCP segment it answers.
type Segment struct {
	Src, Dst         netip.Addr
	SrcPort, DstPort uint16
	Seq, Ack         uint32
	Flags            uint8
	// Len is the sequence space the segment occupies: payload, plus one each
	// for SYN and FIN.
	Len uint32
}

// ParseSegment reads the addresses, ports, sequence numbers and flags of an
// IPv4 or IPv6 packet carrying TCP (IPv6 extension headers are skipped).
func ParseSegment(ip []byte) (Segment, error) {
	var s Segment
	if len(ip) < 1 {
		return s, errShort
	}
	var l4 []byte
	switch ip[0] >> 4 {
	case 4:
		if len(ip) < 20 {
			return s, errShort
		}
		ihl := int(ip[0]&0x0f) * 4
		total := int(binary.BigEndian.Uint16(ip[2:]))
		if ihl < 20 || total < ihl || len(ip) < total {
			return s, errShort
		}
		if ip[9] != 6 || binary.BigEndian.Uint16(ip[6:])&0x1fff != 0 {
			return s, ErrNotTCP
		}
		s.Src = netip.AddrFrom4([4]byte(ip[12:16]))
		s.Dst = netip.AddrFrom4([4]byte(ip[16:20]))
		l4 = ip[ihl:total]
	case 6:
		if len(ip) < 40 {
			return s, errShort
		}
		end := 40 + int(binary.BigEndian.Uint16(ip[4:]))
		if len(ip) < end {
			return s, errShort
		}
		s.Src = netip.AddrFrom16([16]byte(ip[8:24]))
		s.Dst = netip.AddrFrom16([16]byte(ip[24:40]))
		next, off := ip[6], 40
		for next != 6 {
			if off+8 > end {
				return s, errShort
			}
			switch next {
			case 0, 43, 60: // hop-by-hop, routing, destination options
				next, off = ip[off], off+8+int(ip[off+1])*8
			case 44: // fragment: only the first fragment carries the TCP header
				if binary.BigEndian.Uint16(ip[off+2:])&0xfff8 != 0 {
					return s, ErrNotTCP
				}
				next, off = ip[off], off+8
			case 51: // authentication header
				next, off = ip[off], off+(int(ip[off+1])+2)*4
			default:
				return s, ErrNotTCP
			}
		}
		if off > end {
			return s, errShort
		}
		l4 = ip[off:end]
	default:
		return s, fmt.Errorf("inline: IP version %d", ip[0]>>4)
	}
	if len(l4) < 20 {
		return s, errShort
	}
	doff := int(l4[12]>>4) * 4
	if doff < 20 || doff > len(l4) {
		return s, errShort
	}
	s.SrcPort = binary.BigEndian.Uint16(l4[0:])
	s.DstPort = binary.BigEndian.Uint16(l4[2:])
	s.Seq = binary.BigEndian.Uint32(l4[4:])
	s.Ack = binary.BigEndian.Uint32(l4[8:])
	s.Flags = l4[13]
	s.Len = uint32(len(l4) - doff)
	if s.Flags&tcpSYN != 0 {
		s.Len++
	}
	if s.Flags&tcpFIN != 0 {
		s.Len++
	}
	return s, nil
}

// Resets returns the two RST segments that tear down the connection of s when
// the gateway drops s:
//
//   - toDst goes to s's receiver as if sent by s's sender, with sequence
//     number s.Seq: the receiver has not got s, so it expects exactly that
//     number and accepts the RST at once (RFC 5961 3.2).
//   - toSrc goes to s's sender as if sent by s's receiver, with sequence
//     number s.Ack — the next byte the sender expects from its peer. A
//     segment without ACK (a SYN) is answered as RFC 9293 says for a closed
//     port: sequence 0 and an ACK of everything s occupied.
//
// It returns ErrIsReset for a RST.
func (s Segment) Resets() (toDst, toSrc Segment, err error) {
	if s.Flags&tcpRST != 0 {
		return toDst, toSrc, ErrIsReset
	}
	toDst = Segment{Src: s.Src, Dst: s.Dst, SrcPort: s.SrcPort, DstPort: s.DstPort, Seq: s.Seq, Flags: tcpRST}
	if s.Flags&tcpACK != 0 {
		toDst.Ack, toDst.Flags = s.Ack, tcpRST|tcpACK
	}
	toSrc = Segment{Src: s.Dst, Dst: s.Src, SrcPort: s.DstPort, DstPort: s.SrcPort, Ack: s.Seq + s.Len, Flags: tcpRST | tcpACK}
	if s.Flags&tcpACK != 0 {
		toSrc.Seq = s.Ack
	}
	return toDst, toSrc, nil
}

// AppendPacket appends s as an IP packet (IPv4 or IPv6 after s.Src) with a
// bare 20-byte TCP header, window 0 and correct checksums.
func (s Segment) AppendPacket(b []byte) []byte {
	start := len(b)
	if s.Src.Is4() {
		b = append(b, 0x45, 0, 0, 40, 0, 0, 0x40, 0, ResetTTL, 6, 0, 0)
		src, dst := s.Src.As4(), s.Dst.As4()
		b = append(b, src[:]...)
		b = append(b, dst[:]...)
		binary.BigEndian.PutUint16(b[start+10:], decode.InternetChecksum(b[start:start+20]))
	} else {
		b = append(b, 0x60, 0, 0, 0, 0, 20, 6, ResetTTL)
		src, dst := s.Src.As16(), s.Dst.As16()
		b = append(b, src[:]...)
		b = append(b, dst[:]...)
	}
	tcp := len(b)
	b = binary.BigEndian.AppendUint16(b, s.SrcPort)
	b = binary.BigEndian.AppendUint16(b, s.DstPort)
	b = binary.BigEndian.AppendUint32(b, s.Seq)
	b = binary.BigEndian.AppendUint32(b, s.Ack)
	b = append(b, 5<<4, s.Flags, 0, 0, 0, 0, 0, 0)
	binary.BigEndian.PutUint16(b[tcp+16:], decode.TransportChecksum(s.Src, s.Dst, 6, b[tcp:]))
	return b
}

// Resets returns the two RST packets (IP + TCP headers) that tear down the
// connection of ipPacket, which the gateway drops: toDst travels to the
// packet's destination, toSrc back to its source (see Segment.Resets).
func Resets(ipPacket []byte) (toDst, toSrc []byte, err error) {
	s, err := ParseSegment(ipPacket)
	if err != nil {
		return nil, nil, err
	}
	d, r, err := s.Resets()
	if err != nil {
		return nil, nil, err
	}
	return d.AppendPacket(nil), r.AppendPacket(nil), nil
}

// ResetFrames is Resets for an Ethernet frame (802.1Q/802.1ad tags kept):
// toDst carries the frame's addresses, toSrc has them swapped, so each leaves
// through the interface towards its destination.
func ResetFrames(frame []byte) (toDst, toSrc []byte, err error) {
	off := 12
	for {
		if len(frame) < off+2 {
			return nil, nil, errShort
		}
		et := binary.BigEndian.Uint16(frame[off:])
		if et == 0x8100 || et == 0x88a8 {
			off += 4
			continue
		}
		if et != 0x0800 && et != 0x86dd {
			return nil, nil, ErrNotTCP
		}
		off += 2
		break
	}
	s, err := ParseSegment(frame[off:])
	if err != nil {
		return nil, nil, err
	}
	d, r, err := s.Resets()
	if err != nil {
		return nil, nil, err
	}
	toDst = d.AppendPacket(append(make([]byte, 0, off+60), frame[:off]...))
	toSrc = append(make([]byte, 0, off+60), frame[6:12]...)
	toSrc = append(toSrc, frame[0:6]...)
	toSrc = append(toSrc, frame[12:off]...)
	toSrc = r.AppendPacket(toSrc)
	return toDst, toSrc, nil
}
