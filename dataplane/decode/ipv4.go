package decode

import (
	"encoding/binary"
	"net/netip"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

const (
	ipv4MinHeaderLen = 20
	ipv4FlagMF       = 0x2000
	ipv4OffsetMask   = 0x1fff
)

// ipv4Layer decodes an IPv4 header into the Decoder's current Packet and
// trims the packet to its total length.
type ipv4Layer struct {
	d       *Decoder
	next    gopacket.LayerType
	payload []byte
}

func (l *ipv4Layer) CanDecode() gopacket.LayerClass    { return layers.LayerTypeIPv4 }
func (l *ipv4Layer) NextLayerType() gopacket.LayerType { return l.next }
func (l *ipv4Layer) LayerPayload() []byte              { return l.payload }

func (l *ipv4Layer) DecodeFromBytes(data []byte, _ gopacket.DecodeFeedback) error {
	l.next, l.payload = gopacket.LayerTypeZero, nil
	p := l.d.p
	if len(data) < ipv4MinHeaderLen {
		return errIPv4Short
	}
	if data[0]>>4 != 4 {
		return errIPVersion
	}
	ihl := int(data[0]&0x0f) * 4
	if ihl < ipv4MinHeaderLen {
		return errIPv4IHL
	}
	if len(data) < ihl {
		return errIPv4Short
	}
	total := int(binary.BigEndian.Uint16(data[2:4]))
	if total < ihl {
		// Includes total length 0, which some capture stacks write for TSO
		// super-frames; no receiver accepts it on the wire.
		return errIPv4TotalLen
	}
	if ihl > ipv4MinHeaderLen && !validIPv4Options(data[ipv4MinHeaderLen:ihl]) {
		return errIPv4Option
	}
	ip := data
	if total <= len(data) {
		ip = data[:total] // drop link-layer padding
	} else {
		p.Truncated = true
	}
	p.IPVersion = 4
	p.IP = ip
	p.IPHeaderLen = ihl
	p.TTL = data[8]
	p.Proto = data[9]
	p.Src = netip.AddrFrom4([4]byte(data[12:16]))
	p.Dst = netip.AddrFrom4([4]byte(data[16:20]))
	p.IPChecksumOK = fold(sum32(data[:ihl], 0)) == 0xffff
	p.L3Payload = ip[ihl:]

	ff := binary.BigEndian.Uint16(data[6:8])
	more := ff&ipv4FlagMF != 0
	offset := uint32(ff&ipv4OffsetMask) * 8
	if more || offset != 0 {
		p.IsFragment = true
		p.Frag = Fragment{
			ID:     uint32(binary.BigEndian.Uint16(data[4:6])),
			Offset: offset,
			More:   more,
			Proto:  p.Proto,
		}
		if offset != 0 {
			return nil // the transport header is in the first fragment only
		}
	}
	l.next = l.d.transportLayer(p.Proto)
	l.payload = p.L3Payload
	return nil
}

// validIPv4Options checks the type-length structure of IPv4 options (RFC 791
// section 3.1): end-of-list and no-op are one byte, every other option has a
// length byte of at least 2 that stays inside the header. Receivers discard
// packets that break it, so the decoder reports them as malformed. The loop
// advances at least one byte per step over at most 40 bytes.
func validIPv4Options(opts []byte) bool {
	for i := 0; i < len(opts); {
		switch opts[i] {
		case 0: // end of option list; the rest is padding
			return true
		case 1: // no operation
			i++
			continue
		}
		if i+1 >= len(opts) {
			return false
		}
		n := int(opts[i+1])
		if n < 2 || i+n > len(opts) {
			return false
		}
		i += n
	}
	return true
}
