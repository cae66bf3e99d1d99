package decode

import (
	"encoding/binary"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

const (
	tcpMinHeaderLen = 20
	udpHeaderLen    = 8

	// maxWScale is the largest window scale shift RFC 7323 section 2.3 allows;
	// receivers use 14 when a larger value is offered.
	maxWScale = 14
)

// TCP option kinds (RFC 9293, RFC 7323, RFC 2018).
const (
	tcpOptEnd       = 0
	tcpOptNOP       = 1
	tcpOptMSS       = 2
	tcpOptWScale    = 3
	tcpOptSACKPerm  = 4
	tcpOptTimestamp = 8
)

// tcpLayer decodes a TCP header into the Decoder's current Packet.
type tcpLayer struct{ d *Decoder }

func (l *tcpLayer) CanDecode() gopacket.LayerClass    { return layers.LayerTypeTCP }
func (l *tcpLayer) NextLayerType() gopacket.LayerType { return gopacket.LayerTypeZero }
func (l *tcpLayer) LayerPayload() []byte              { return nil }

func (l *tcpLayer) DecodeFromBytes(data []byte, _ gopacket.DecodeFeedback) error {
	d := l.d
	p := d.p
	if len(data) < tcpMinHeaderLen {
		return d.l4Fail(errTCPShort)
	}
	doff := int(data[12]>>4) * 4
	if doff < tcpMinHeaderLen {
		return d.l4Fail(errTCPDataOffset)
	}
	if doff > len(data) {
		return d.l4Fail(errTCPShort)
	}
	p.SrcPort = binary.BigEndian.Uint16(data[0:2])
	p.DstPort = binary.BigEndian.Uint16(data[2:4])
	p.Seq = binary.BigEndian.Uint32(data[4:8])
	p.Ack = binary.BigEndian.Uint32(data[8:12])
	p.Flags = data[13]
	p.Window = binary.BigEndian.Uint16(data[14:16])
	p.Urgent = binary.BigEndian.Uint16(data[18:20])
	parseTCPOptions(data[tcpMinHeaderLen:doff], &p.Opts)
	p.Payload = data[doff:]
	if d.VerifyChecksums && !p.IsFragment && !p.Truncated {
		p.L4ChecksumOK = TransportChecksum(p.Src, p.Dst, ProtoTCP, data) == 0
	}
	d.l4Done = true
	return nil
}

// parseTCPOptions fills o from the option bytes of a TCP header. Like common
// receivers it stops at the first option whose length is impossible and
// ignores options whose length does not match their kind, so a bad option
// never makes the packet malformed. At most 40 bytes; each step advances.
func parseTCPOptions(b []byte, o *TCPOptions) {
	for i := 0; i < len(b); {
		kind := b[i]
		if kind == tcpOptEnd {
			return
		}
		if kind == tcpOptNOP {
			i++
			continue
		}
		if i+1 >= len(b) {
			return
		}
		n := int(b[i+1])
		if n < 2 || i+n > len(b) {
			return
		}
		v := b[i+2 : i+n]
		switch {
		case kind == tcpOptMSS && n == 4:
			o.MSS = binary.BigEndian.Uint16(v)
		case kind == tcpOptWScale && n == 3:
			o.HasWScale = true
			o.WScale = min(v[0], maxWScale)
		case kind == tcpOptSACKPerm && n == 2:
			o.SACKPermit = true
		case kind == tcpOptTimestamp && n == 10:
			o.HasTimestamp = true
			o.TSVal = binary.BigEndian.Uint32(v[0:4])
			o.TSEcr = binary.BigEndian.Uint32(v[4:8])
		}
		i += n
	}
}

// udpLayer decodes a UDP header into the Decoder's current Packet.
type udpLayer struct{ d *Decoder }

func (l *udpLayer) CanDecode() gopacket.LayerClass    { return layers.LayerTypeUDP }
func (l *udpLayer) NextLayerType() gopacket.LayerType { return gopacket.LayerTypeZero }
func (l *udpLayer) LayerPayload() []byte              { return nil }

func (l *udpLayer) DecodeFromBytes(data []byte, _ gopacket.DecodeFeedback) error {
	d := l.d
	p := d.p
	if len(data) < udpHeaderLen {
		return d.l4Fail(errUDPShort)
	}
	ulen := int(binary.BigEndian.Uint16(data[4:6]))
	seg := data
	if !p.IsFragment {
		// In a first fragment the length covers the whole datagram; it is
		// checked after reassembly.
		switch {
		case ulen < udpHeaderLen:
			return errUDPLength
		case ulen <= len(data):
			seg = data[:ulen] // receivers ignore bytes past the UDP length
		case !p.Truncated:
			return errUDPLength
		}
	}
	p.SrcPort = binary.BigEndian.Uint16(data[0:2])
	p.DstPort = binary.BigEndian.Uint16(data[2:4])
	p.Payload = seg[udpHeaderLen:]
	if d.VerifyChecksums && !p.IsFragment && !p.Truncated {
		if binary.BigEndian.Uint16(data[6:8]) == 0 {
			// No checksum: allowed over IPv4, forbidden over IPv6 (RFC 8200 8.1).
			p.L4ChecksumOK = p.IPVersion == 4
		} else {
			p.L4ChecksumOK = TransportChecksum(p.Src, p.Dst, ProtoUDP, seg) == 0
		}
	}
	d.l4Done = true
	return nil
}
