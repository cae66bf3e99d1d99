package decode

import (
	"encoding/binary"
	"net/netip"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

// IPv6 next-header values the decoder walks through.
const (
	ipv6HopByHop   = 0
	ipv6Routing    = 43
	ipv6Fragment   = 44
	ipv6AH         = 51
	ipv6DestOpts   = 60
	ipv6HeaderLen  = 40
	ipv6FragHdrLen = 8
)

// MaxIPv6ExtHeaders bounds the IPv6 extension header chain. RFC 8200 section
// 4.1 lists at most six distinct headers in a datagram (destination options
// may appear twice); eight leaves room for AH and an extra option header. A
// longer chain only serves to push the transport header past middleboxes.
const MaxIPv6ExtHeaders = 8

// ipv6Layer decodes an IPv6 header and its extension header chain into the
// Decoder's current Packet.
type ipv6Layer struct {
	d       *Decoder
	next    gopacket.LayerType
	payload []byte
}

func (l *ipv6Layer) CanDecode() gopacket.LayerClass    { return layers.LayerTypeIPv6 }
func (l *ipv6Layer) NextLayerType() gopacket.LayerType { return l.next }
func (l *ipv6Layer) LayerPayload() []byte              { return l.payload }

func (l *ipv6Layer) DecodeFromBytes(data []byte, _ gopacket.DecodeFeedback) error {
	l.next, l.payload = gopacket.LayerTypeZero, nil
	p := l.d.p
	if len(data) < ipv6HeaderLen {
		return errIPv6Short
	}
	if data[0]>>4 != 6 {
		return errIPVersion
	}
	plen := int(binary.BigEndian.Uint16(data[4:6]))
	nh := data[6]
	if plen == 0 && nh == ipv6HopByHop {
		// RFC 2675 jumbogram (or a zero length no receiver accepts).
		return errIPv6Jumbo
	}
	ip := data
	if total := ipv6HeaderLen + plen; total <= len(data) {
		ip = data[:total]
	} else {
		p.Truncated = true
	}
	p.IPVersion = 6
	p.IP = ip
	p.TTL = data[7]
	p.Src = netip.AddrFrom16([16]byte(data[8:24]))
	p.Dst = netip.AddrFrom16([16]byte(data[24:40]))

	off := ipv6HeaderLen
	fragData := 0 // offset of the fragment data when a fragment header was seen
	for n := 0; ; n++ {
		if !isIPv6ExtHeader(nh) {
			break
		}
		if n >= MaxIPv6ExtHeaders {
			return errIPv6ExtChain
		}
		if nh == ipv6Fragment {
			if p.IsFragment {
				return errIPv6FragTwice
			}
			if len(ip) < off+ipv6FragHdrLen {
				return errIPv6ExtShort
			}
			fo := binary.BigEndian.Uint16(ip[off+2 : off+4])
			p.IsFragment = true
			p.Frag = Fragment{
				ID:     binary.BigEndian.Uint32(ip[off+4 : off+8]),
				Offset: uint32(fo &^ 7),
				More:   fo&1 != 0,
				Proto:  ip[off],
			}
			nh = ip[off]
			off += ipv6FragHdrLen
			fragData = off
			if p.Frag.Offset != 0 {
				// Non-first fragment: the rest is opaque fragment data.
				p.Proto = nh
				p.IPHeaderLen = off
				p.L3Payload = ip[off:]
				return nil
			}
			continue
		}
		if nh == ipv6HopByHop && off != ipv6HeaderLen {
			return errIPv6HopByHop // RFC 8200 section 4.1: only right after the IPv6 header
		}
		if len(ip) < off+2 {
			return errIPv6ExtShort
		}
		var hl int
		if nh == ipv6AH {
			hl = (int(ip[off+1]) + 2) * 4 // RFC 4302: length in 4-byte units minus 2
		} else {
			hl = (int(ip[off+1]) + 1) * 8 // RFC 8200: length in 8-byte units minus 1
		}
		if len(ip) < off+hl {
			return errIPv6ExtShort
		}
		nh = ip[off]
		off += hl
	}
	p.Proto = nh
	if p.IsFragment {
		p.IPHeaderLen = fragData
		p.L3Payload = ip[fragData:]
	} else {
		p.IPHeaderLen = off
		p.L3Payload = ip[off:]
	}
	l.next = l.d.transportLayer(nh)
	l.payload = ip[off:]
	return nil
}

// isIPv6ExtHeader reports whether nh names an extension header the decoder
// walks over. ESP (50) is not walked: what follows it is encrypted.
func isIPv6ExtHeader(nh uint8) bool {
	switch nh {
	case ipv6HopByHop, ipv6Routing, ipv6Fragment, ipv6AH, ipv6DestOpts:
		return true
	}
	return false
}
