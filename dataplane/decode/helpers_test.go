package decode

import (
	"encoding/binary"
	"net"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

var (
	testSrc4 = net.IP{192, 0, 2, 1}
	testDst4 = net.IP{198, 51, 100, 7}
	testSrc6 = net.ParseIP("2001:db8::1")
	testDst6 = net.ParseIP("2001:db8::2")
	testMAC1 = net.HardwareAddr{0x02, 0, 0, 0, 0, 1}
	testMAC2 = net.HardwareAddr{0x02, 0, 0, 0, 0, 2}
)

// serialize builds a packet from gopacket layers with lengths and checksums fixed.
func serialize(tb testing.TB, ls ...gopacket.SerializableLayer) []byte {
	tb.Helper()
	buf := gopacket.NewSerializeBuffer()
	opts := gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}
	if err := gopacket.SerializeLayers(buf, opts, ls...); err != nil {
		tb.Fatalf("serialize: %v", err)
	}
	return append([]byte(nil), buf.Bytes()...)
}

func ipv4Hdr(proto layers.IPProtocol) *layers.IPv4 {
	return &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Id: 0x1234, Protocol: proto, SrcIP: testSrc4, DstIP: testDst4}
}

func ipv6Hdr(next layers.IPProtocol) *layers.IPv6 {
	return &layers.IPv6{Version: 6, HopLimit: 61, NextHeader: next, SrcIP: testSrc6, DstIP: testDst6}
}

func tcpHdr(net gopacket.NetworkLayer) *layers.TCP {
	t := &layers.TCP{SrcPort: 40000, DstPort: 80, Seq: 1000, Ack: 2000, ACK: true, PSH: true, Window: 512, Urgent: 0}
	if err := t.SetNetworkLayerForChecksum(net); err != nil {
		panic(err)
	}
	return t
}

func udpHdr(net gopacket.NetworkLayer) *layers.UDP {
	u := &layers.UDP{SrcPort: 5353, DstPort: 53}
	if err := u.SetNetworkLayerForChecksum(net); err != nil {
		panic(err)
	}
	return u
}

// ipv4TCP returns a raw IPv4/TCP packet carrying payload.
func ipv4TCP(tb testing.TB, payload []byte) []byte {
	ip := ipv4Hdr(layers.IPProtocolTCP)
	return serialize(tb, ip, tcpHdr(ip), gopacket.Payload(payload))
}

// ipv6TCP returns a raw IPv6/TCP packet carrying payload.
func ipv6TCP(tb testing.TB, payload []byte) []byte {
	ip := ipv6Hdr(layers.IPProtocolTCP)
	return serialize(tb, ip, tcpHdr(ip), gopacket.Payload(payload))
}

// ether prefixes an Ethernet header (and optional VLAN tags given as
// TPID/VID pairs) to an IP packet; the serializer pads to 60 bytes.
func ether(tb testing.TB, ethType layers.EthernetType, ipPacket []byte, tags ...layers.EthernetType) []byte {
	outer := ethType
	if len(tags) > 0 {
		outer = tags[0]
	}
	ls := []gopacket.SerializableLayer{&layers.Ethernet{SrcMAC: testMAC1, DstMAC: testMAC2, EthernetType: outer}}
	for i := range tags {
		next := ethType
		if i+1 < len(tags) {
			next = tags[i+1]
		}
		ls = append(ls, &layers.Dot1Q{VLANIdentifier: uint16(100 + i), Type: next})
	}
	ls = append(ls, gopacket.Payload(ipPacket))
	return serialize(tb, ls...)
}

// sll prefixes a Linux SLL header to an IP packet.
func sll(ethType layers.EthernetType, ipPacket []byte) []byte {
	h := make([]byte, 16, 16+len(ipPacket))
	binary.BigEndian.PutUint16(h[0:2], 0) // to us
	binary.BigEndian.PutUint16(h[2:4], 1) // ARPHRD_ETHER
	binary.BigEndian.PutUint16(h[4:6], 6)
	copy(h[6:12], testMAC1)
	binary.BigEndian.PutUint16(h[14:16], uint16(ethType))
	return append(h, ipPacket...)
}

// sll2 prefixes a Linux SLL2 header to an IP packet.
func sll2(ethType layers.EthernetType, ipPacket []byte) []byte {
	h := make([]byte, 20, 20+len(ipPacket))
	binary.BigEndian.PutUint16(h[0:2], uint16(ethType))
	binary.BigEndian.PutUint32(h[4:8], 3) // ifindex
	binary.BigEndian.PutUint16(h[8:10], 1)
	h[10] = 4 // outgoing
	h[11] = 6
	copy(h[12:18], testMAC1)
	return append(h, ipPacket...)
}

// ipv4Frag returns an IPv4 fragment carrying data at byte offset off.
func ipv4Frag(tb testing.TB, proto layers.IPProtocol, id uint16, off int, more bool, data []byte) []byte {
	ip := ipv4Hdr(proto)
	ip.Id = id
	ip.FragOffset = uint16(off / 8)
	if more {
		ip.Flags = layers.IPv4MoreFragments
	}
	return serialize(tb, ip, gopacket.Payload(data))
}

// ext6 is an IPv6 extension header for test packets; its first byte (next
// header) is filled in when the chain is built.
type ext6 struct {
	typ byte
	b   []byte
}

// extHdr returns an IPv6 extension header of type typ and total length
// (a multiple of 8); option headers are filled with one PadN option.
func extHdr(typ byte, length int) ext6 {
	h := make([]byte, length)
	h[1] = byte(length/8 - 1)
	if typ == 0 || typ == 60 {
		h[2] = 1 // PadN covering the rest
		h[3] = byte(length - 4)
	}
	return ext6{typ: typ, b: h}
}

// chain6 links extension headers ending in last and returns the first type.
func chain6(exts []ext6, last byte) (byte, []byte) {
	var out []byte
	for i, e := range exts {
		h := append([]byte(nil), e.b...)
		h[0] = last
		if i+1 < len(exts) {
			h[0] = exts[i+1].typ
		}
		out = append(out, h...)
	}
	if len(exts) == 0 {
		return last, nil
	}
	return exts[0].typ, out
}

// fragHdr6 returns an IPv6 fragment header (gopacket cannot serialise one).
func fragHdr6(next layers.IPProtocol, id uint32, off int, more bool) []byte {
	fh := make([]byte, 8)
	fh[0] = byte(next)
	fo := uint16(off) &^ 7
	if more {
		fo |= 1
	}
	binary.BigEndian.PutUint16(fh[2:4], fo)
	binary.BigEndian.PutUint32(fh[4:8], id)
	return fh
}

// ipv6Frag returns an IPv6 fragment carrying data at byte offset off, with
// the extension headers exts before the fragment header.
func ipv6Frag(tb testing.TB, next layers.IPProtocol, id uint32, off int, more bool, data []byte, exts ...ext6) []byte {
	first, pre := chain6(exts, byte(layers.IPProtocolIPv6Fragment))
	body := append(append(pre, fragHdr6(next, id, off, more)...), data...)
	return serialize(tb, ipv6Hdr(layers.IPProtocol(first)), gopacket.Payload(body))
}
