package defrag

import (
	"encoding/binary"
	"net"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/patchgate/patchgate/dataplane/decode"
)

var (
	src4 = net.IP{192, 0, 2, 10}
	dst4 = net.IP{198, 51, 100, 20}
	src6 = net.ParseIP("2001:db8::10")
	dst6 = net.ParseIP("2001:db8::20")
	t0   = time.Date(2026, 11, 3, 12, 0, 0, 0, time.UTC)
)

func serialize(tb testing.TB, ls ...gopacket.SerializableLayer) []byte {
	tb.Helper()
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ls...); err != nil {
		tb.Fatalf("serialize: %v", err)
	}
	return append([]byte(nil), buf.Bytes()...)
}

// pattern returns n bytes that differ from their neighbours.
func pattern(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = seed + byte(i*7)
	}
	return b
}

// datagram4 returns an unfragmented IPv4/TCP datagram and its transport bytes.
func datagram4(tb testing.TB, id uint16, payload []byte) (full, l4 []byte) {
	ip := &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Id: id, Protocol: layers.IPProtocolTCP, SrcIP: src4, DstIP: dst4}
	tcp := &layers.TCP{SrcPort: 1234, DstPort: 80, Seq: 1, ACK: true, PSH: true, Window: 100}
	_ = tcp.SetNetworkLayerForChecksum(ip)
	full = serialize(tb, ip, tcp, gopacket.Payload(payload))
	return full, full[20:]
}

// frag4 serialises an IPv4 fragment of the datagram with identifier id.
func frag4(tb testing.TB, id uint16, proto layers.IPProtocol, off int, more bool, data []byte) []byte {
	ip := &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Id: id, Protocol: proto, SrcIP: src4, DstIP: dst4, FragOffset: uint16(off / 8)}
	if more {
		ip.Flags = layers.IPv4MoreFragments
	}
	return serialize(tb, ip, gopacket.Payload(data))
}

// ext6 is an IPv6 option-style extension header (type and total length).
type ext6 struct {
	typ byte
	n   int
}

// chain returns the extension header bytes linked in order, the last one
// pointing to last, and the type of the first.
func chain(exts []ext6, last byte) (byte, []byte) {
	if len(exts) == 0 {
		return last, nil
	}
	var out []byte
	for i, e := range exts {
		h := make([]byte, e.n)
		h[0] = last
		if i+1 < len(exts) {
			h[0] = exts[i+1].typ
		}
		h[1] = byte(e.n/8 - 1)
		if e.typ != 43 {
			h[2], h[3] = 1, byte(e.n-4) // PadN
		}
		out = append(out, h...)
	}
	return exts[0].typ, out
}

// datagram6 returns an unfragmented IPv6/TCP datagram with extension
// headers exts, and its transport bytes.
func datagram6(tb testing.TB, payload []byte, exts ...ext6) (full, l4 []byte) {
	ip := &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: layers.IPProtocolTCP, SrcIP: src6, DstIP: dst6}
	tcp := &layers.TCP{SrcPort: 1234, DstPort: 443, Seq: 1, ACK: true, Window: 100}
	_ = tcp.SetNetworkLayerForChecksum(ip)
	l4 = serialize(tb, ip, tcp, gopacket.Payload(payload))[40:]
	first, pre := chain(exts, byte(layers.IPProtocolTCP))
	full = serialize(tb, &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: layers.IPProtocol(first), SrcIP: src6, DstIP: dst6},
		gopacket.Payload(append(pre, l4...)))
	return full, l4
}

// frag6 serialises an IPv6 fragment (the fragment header is built by hand:
// gopacket cannot serialise one) with extension headers exts before it.
func frag6(tb testing.TB, id uint32, next byte, off int, more bool, data []byte, exts ...ext6) []byte {
	first, pre := chain(exts, 44)
	fh := make([]byte, 8)
	fh[0] = next
	fo := uint16(off) &^ 7
	if more {
		fo |= 1
	}
	binary.BigEndian.PutUint16(fh[2:4], fo)
	binary.BigEndian.PutUint32(fh[4:8], id)
	body := append(append(pre, fh...), data...)
	return serialize(tb, &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: layers.IPProtocol(first), SrcIP: src6, DstIP: dst6},
		gopacket.Payload(body))
}

// piece is a fragment's place in the transport bytes.
type piece struct {
	off, n int
	more   bool
}

// split cuts l4 into fragments of size n (a multiple of 8).
func split(l4 []byte, n int) []piece {
	var ps []piece
	for off := 0; off < len(l4); off += n {
		end := min(off+n, len(l4))
		ps = append(ps, piece{off, end - off, end < len(l4)})
	}
	return ps
}

// harness decodes fragments and feeds them to a Reassembler.
type harness struct {
	tb  testing.TB
	r   *Reassembler
	dec *decode.Decoder
	p   decode.Packet
}

func newHarness(tb testing.TB, cfg Config) *harness {
	d := decode.NewDecoder()
	d.VerifyChecksums = true
	return &harness{tb: tb, r: New(cfg), dec: d}
}

// feed decodes an IP packet stamped at ts and processes it.
func (h *harness) feed(pkt []byte, ts time.Time) Result {
	h.tb.Helper()
	if err := h.dec.DecodeIP(pkt, ts, &h.p); err != nil {
		h.tb.Fatalf("decode fragment: %v", err)
	}
	return h.r.Process(&h.p)
}

// checkDatagram asserts that a Complete result equals want and decodes as
// a whole datagram with valid checksums.
func (h *harness) checkDatagram(res Result, want []byte) {
	h.tb.Helper()
	if res.Action != Complete {
		h.tb.Fatalf("result %v (%v), want complete", res.Action, res.Reason)
	}
	if string(res.Datagram) != string(want) {
		h.tb.Fatalf("reassembled datagram differs from the original:\n got %x\nwant %x", res.Datagram, want)
	}
	var p decode.Packet
	if err := h.dec.DecodeIP(res.Datagram, t0, &p); err != nil {
		h.tb.Fatalf("reassembled datagram does not decode: %v", err)
	}
	if p.IsFragment || !p.IPChecksumOK || !p.L4ChecksumOK || p.SrcPort != 1234 {
		h.tb.Fatalf("reassembled: fragment %v ipsum %v l4sum %v port %d", p.IsFragment, p.IPChecksumOK, p.L4ChecksumOK, p.SrcPort)
	}
}
