package gen

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net/netip"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/patchgate/patchgate/dataplane"
)

// ipPkt is one decoded IP packet or fragment.
type ipPkt struct {
	meta       FrameMeta
	v6         bool
	src, dst   netip.Addr
	ttl        uint8
	proto      layers.IPProtocol
	fragmented bool // IPv4 MF/offset, or an IPv6 fragment header
	v4DF       bool
	id         uint32
	off        int
	more       bool
	l4         []byte
}

// decodeFrame decodes a frame with gopacket and checks the IPv4 header
// checksum with an independent implementation.
func decodeFrame(t testing.TB, link layers.LinkType, f Frame) ipPkt {
	t.Helper()
	var first gopacket.Decoder = layers.LayerTypeEthernet
	if link == layers.LinkTypeRaw {
		first = layers.LinkTypeRaw
	}
	p := gopacket.NewPacket(f.Data, first, gopacket.Default)
	if el := p.ErrorLayer(); el != nil && p.NetworkLayer() == nil {
		t.Fatalf("frame does not decode: %v", el.Error())
	}
	out := ipPkt{meta: f.Meta}
	switch ip := p.NetworkLayer().(type) {
	case *layers.IPv4:
		if c := onesSum(0, ip.Contents); c != 0xffff {
			t.Fatalf("IPv4 header checksum invalid")
		}
		out.src, _ = netip.AddrFromSlice(ip.SrcIP)
		out.dst, _ = netip.AddrFromSlice(ip.DstIP)
		out.ttl, out.proto, out.id = ip.TTL, ip.Protocol, uint32(ip.Id)
		out.off, out.more = int(ip.FragOffset)*8, ip.Flags&layers.IPv4MoreFragments != 0
		out.v4DF = ip.Flags&layers.IPv4DontFragment != 0
		out.fragmented = out.off != 0 || out.more
		out.l4 = ip.Payload
	case *layers.IPv6:
		out.v6 = true
		out.src, _ = netip.AddrFromSlice(ip.SrcIP)
		out.dst, _ = netip.AddrFromSlice(ip.DstIP)
		out.ttl, out.proto = ip.HopLimit, ip.NextHeader
		pl := ip.Payload
		if ip.NextHeader == layers.IPProtocolIPv6Fragment {
			if len(pl) < 8 {
				t.Fatalf("short IPv6 fragment header")
			}
			out.fragmented = true
			out.proto = layers.IPProtocol(pl[0])
			om := binary.BigEndian.Uint16(pl[2:])
			out.off, out.more = int(om>>3)*8, om&1 != 0
			out.id = binary.BigEndian.Uint32(pl[4:])
			pl = pl[8:]
		}
		out.l4 = pl
	default:
		t.Fatalf("no IP layer in frame %+v", f.Meta)
	}
	return out
}

// onesSum adds b to a ones' complement sum.
func onesSum(sum uint32, b []byte) uint16 {
	for len(b) >= 2 {
		sum += uint32(b[0])<<8 | uint32(b[1])
		b = b[2:]
	}
	if len(b) == 1 {
		sum += uint32(b[0]) << 8
	}
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	return uint16(sum)
}

// l4ChecksumOK verifies a TCP or UDP checksum over the pseudo-header.
func l4ChecksumOK(src, dst netip.Addr, proto layers.IPProtocol, l4 []byte) bool {
	var ph []byte
	ph = append(ph, src.AsSlice()...)
	ph = append(ph, dst.AsSlice()...)
	if src.Is4() {
		ph = append(ph, 0, byte(proto), byte(len(l4)>>8), byte(len(l4)))
	} else {
		ph = binary.BigEndian.AppendUint32(ph, uint32(len(l4)))
		ph = append(ph, 0, 0, 0, byte(proto))
	}
	var sum uint32
	for i := 0; i+1 < len(ph); i += 2 {
		sum += uint32(ph[i])<<8 | uint32(ph[i+1])
	}
	return onesSum(sum, l4) == 0xffff
}

// l4Pkt is a complete transport packet (after IP reassembly).
type l4Pkt struct {
	meta     FrameMeta
	src, dst netip.Addr
	ttl      uint8
	proto    layers.IPProtocol
	csumOK   bool
	data     []byte
	frags    int
}

// defrag reassembles IP fragments (from the frames given, first copy of a
// byte wins) and returns transport packets in completion order.
func defrag(t testing.TB, pkts []ipPkt) []l4Pkt {
	t.Helper()
	type key struct {
		src, dst netip.Addr
		id       uint32
	}
	type train struct {
		bytes map[int]byte
		total int
		n     int
	}
	trains := map[key]*train{}
	var out []l4Pkt
	for _, p := range pkts {
		if !p.fragmented {
			out = append(out, l4Pkt{meta: p.meta, src: p.src, dst: p.dst, ttl: p.ttl, proto: p.proto,
				csumOK: l4ChecksumOK(p.src, p.dst, p.proto, p.l4), data: p.l4, frags: 0})
			continue
		}
		if p.off%8 != 0 {
			t.Fatalf("fragment offset %d not a multiple of 8", p.off)
		}
		k := key{p.src, p.dst, p.id}
		tr := trains[k]
		if tr == nil {
			tr = &train{bytes: map[int]byte{}, total: -1}
			trains[k] = tr
		}
		tr.n++
		for i, b := range p.l4 {
			if _, ok := tr.bytes[p.off+i]; !ok {
				tr.bytes[p.off+i] = b
			}
		}
		if !p.more {
			tr.total = p.off + len(p.l4)
		}
		if tr.total >= 0 && len(tr.bytes) >= tr.total {
			data := make([]byte, tr.total)
			for i := range data {
				data[i] = tr.bytes[i]
			}
			out = append(out, l4Pkt{meta: p.meta, src: p.src, dst: p.dst, ttl: p.ttl, proto: p.proto,
				csumOK: l4ChecksumOK(p.src, p.dst, p.proto, data), data: data, frags: tr.n})
			delete(trains, k)
		}
	}
	return out
}

// tcpSeg is a parsed TCP segment.
type tcpSeg struct {
	l4Pkt
	seq, ack uint32
	flags    Flags
	window   uint16
	opts     []layers.TCPOption
	payload  []byte
}

func parseTCP(t testing.TB, p l4Pkt) tcpSeg {
	t.Helper()
	pk := gopacket.NewPacket(p.data, layers.LayerTypeTCP, gopacket.Default)
	tl, ok := pk.Layer(layers.LayerTypeTCP).(*layers.TCP)
	if !ok {
		t.Fatalf("no TCP layer: %v", pk.ErrorLayer())
	}
	var f Flags
	for _, b := range []struct {
		on bool
		f  Flags
	}{{tl.FIN, FIN}, {tl.SYN, SYN}, {tl.RST, RST}, {tl.PSH, PSH}, {tl.ACK, ACK}, {tl.URG, URG}} {
		if b.on {
			f |= b.f
		}
	}
	return tcpSeg{l4Pkt: p, seq: tl.Seq, ack: tl.Ack, flags: f, window: tl.Window, opts: tl.Options, payload: tl.Payload}
}

// decodeTCP decodes, defragments (skipping decoy frames when genuineOnly)
// and parses every frame of a TCP output.
func decodeTCP(t testing.TB, link layers.LinkType, frames []Frame, genuineOnly bool) []tcpSeg {
	t.Helper()
	var pkts []ipPkt
	for _, f := range frames {
		if genuineOnly && f.Meta.Decoy {
			continue
		}
		pkts = append(pkts, decodeFrame(t, link, f))
	}
	var segs []tcpSeg
	for _, p := range defrag(t, pkts) {
		segs = append(segs, parseTCP(t, p))
	}
	return segs
}

// streams rebuilds both byte streams from segments a receiver accepts (valid
// checksum, ACK flag, not a decoy), relative to the ISNs; overlapping
// accepted bytes must agree.
func streams(t testing.TB, segs []tcpSeg, clientISN, serverISN uint32) [2][]byte {
	t.Helper()
	isn := [2]uint32{clientISN, serverISN}
	var got [2]map[uint32]byte
	got[0], got[1] = map[uint32]byte{}, map[uint32]byte{}
	for _, s := range segs {
		if !s.csumOK || s.flags&ACK == 0 || s.meta.Decoy || len(s.payload) == 0 {
			continue
		}
		d := s.meta.Dir
		for i, b := range s.payload {
			rel := s.seq + uint32(i) - (isn[d] + 1)
			if old, ok := got[d][rel]; ok && old != b {
				t.Fatalf("%v: genuine overlapping bytes differ at %d", d, rel)
			}
			got[d][rel] = b
		}
	}
	var out [2][]byte
	for d := range got {
		out[d] = make([]byte, len(got[d]))
		for rel, b := range got[d] {
			if int(rel) >= len(out[d]) {
				t.Fatalf("%v: hole in stream before byte %d", dataplane.Direction(d), rel)
			}
			out[d][rel] = b
		}
	}
	return out
}

func mustSession(t testing.TB, client, server Endpoint, o SessionOptions) *TCPSession {
	t.Helper()
	s, err := NewTCPSession(client, server, o)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func mustFrames(t testing.TB, s *TCPSession, ts ...Transform) []Frame {
	t.Helper()
	f, err := s.Frames(ts...)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func equalStreams(t testing.TB, got [2][]byte, want [2][]byte) {
	t.Helper()
	for d := range got {
		if !bytes.Equal(got[d], want[d]) {
			t.Fatalf("%v stream: got %d bytes %q..., want %d bytes", dataplane.Direction(d), len(got[d]), trunc(got[d]), len(want[d]))
		}
	}
}

func trunc(b []byte) string {
	if len(b) > 40 {
		return fmt.Sprintf("%s", b[:40])
	}
	return string(b)
}
