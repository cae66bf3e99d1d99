package decode

import (
	"bytes"
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

var testTime = time.Date(2026, 11, 3, 10, 0, 0, 0, time.UTC)

func TestDecodeLinkTypes(t *testing.T) {
	payload := []byte("GET / HTTP/1.1\r\nHost: example\r\n\r\n")
	v4 := ipv4TCP(t, payload)
	v6 := ipv6TCP(t, payload)
	cases := []struct {
		name  string
		lt    layers.LinkType
		frame []byte
		ipv   uint8
	}{
		{"ethernet/ipv4", layers.LinkTypeEthernet, ether(t, layers.EthernetTypeIPv4, v4), 4},
		{"ethernet/ipv6", layers.LinkTypeEthernet, ether(t, layers.EthernetTypeIPv6, v6), 6},
		{"ethernet/802.1q/ipv4", layers.LinkTypeEthernet, ether(t, layers.EthernetTypeIPv4, v4, layers.EthernetTypeDot1Q), 4},
		{"ethernet/qinq/ipv6", layers.LinkTypeEthernet, ether(t, layers.EthernetTypeIPv6, v6, layers.EthernetTypeQinQ, layers.EthernetTypeDot1Q), 6},
		{"sll/ipv4", layers.LinkTypeLinuxSLL, sll(layers.EthernetTypeIPv4, v4), 4},
		{"sll/ipv6", layers.LinkTypeLinuxSLL, sll(layers.EthernetTypeIPv6, v6), 6},
		{"sll2/ipv4", LinkTypeLinuxSLL2, sll2(layers.EthernetTypeIPv4, v4), 4},
		{"sll2/ipv6", LinkTypeLinuxSLL2, sll2(layers.EthernetTypeIPv6, v6), 6},
		{"raw/ipv4", layers.LinkTypeRaw, v4, 4},
		{"raw/ipv6", layers.LinkTypeRaw, v6, 6},
		{"raw12/ipv4", LinkTypeRawAlt, v4, 4},
		{"ipv4", layers.LinkTypeIPv4, v4, 4},
		{"ipv6", layers.LinkTypeIPv6, v6, 6},
	}
	d := NewDecoder()
	d.VerifyChecksums = true
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.lt == LinkTypeRawAlt && !rawAltIsRaw {
				t.Skip("link type 12 is DLT_LOOP on OpenBSD")
			}
			var p Packet
			if err := d.Decode(tc.lt, tc.frame, testTime, &p); err != nil {
				t.Fatalf("Decode: %v", err)
			}
			want := v4
			src, dst := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("198.51.100.7")
			ttl := uint8(64)
			if tc.ipv == 6 {
				want = v6
				src, dst = netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("2001:db8::2")
				ttl = 61
			}
			if p.IPVersion != tc.ipv || p.Src != src || p.Dst != dst || p.TTL != ttl || p.Proto != ProtoTCP {
				t.Fatalf("network fields: version %d %v -> %v ttl %d proto %d", p.IPVersion, p.Src, p.Dst, p.TTL, p.Proto)
			}
			if !bytes.Equal(p.IP, want) {
				t.Fatalf("IP slice is %d bytes, want the %d-byte IP packet", len(p.IP), len(want))
			}
			if p.SrcPort != 40000 || p.DstPort != 80 || p.Seq != 1000 || p.Ack != 2000 || p.Window != 512 {
				t.Fatalf("TCP fields: %d->%d seq %d ack %d win %d", p.SrcPort, p.DstPort, p.Seq, p.Ack, p.Window)
			}
			if p.Flags != FlagACK|FlagPSH || !p.HasFlag(FlagACK) || p.HasFlag(FlagSYN) {
				t.Fatalf("flags %#x", p.Flags)
			}
			if !bytes.Equal(p.Payload, payload) {
				t.Fatalf("payload %q", p.Payload)
			}
			if !p.IPChecksumOK || !p.L4ChecksumOK || p.IsFragment || p.Truncated {
				t.Fatalf("ipsum %v l4sum %v frag %v trunc %v", p.IPChecksumOK, p.L4ChecksumOK, p.IsFragment, p.Truncated)
			}
			if !p.Timestamp.Equal(testTime) {
				t.Fatalf("timestamp %v", p.Timestamp)
			}
			if p.IPHeaderLen+len(p.L3Payload) != len(p.IP) {
				t.Fatalf("header %d + L3 payload %d != IP %d", p.IPHeaderLen, len(p.L3Payload), len(p.IP))
			}
		})
	}
}

func TestDecodeUnsupportedLinkType(t *testing.T) {
	var p Packet
	err := NewDecoder().Decode(layers.LinkTypePPP, []byte{1, 2, 3}, testTime, &p)
	if !errors.Is(err, ErrUnsupportedLinkType) {
		t.Fatalf("err = %v, want ErrUnsupportedLinkType", err)
	}
	if SupportedLinkType(layers.LinkTypePPP) || !SupportedLinkType(LinkTypeLinuxSLL2) {
		t.Fatal("SupportedLinkType disagrees with Decode")
	}
}

func TestDecodeNonIPPassesUntouched(t *testing.T) {
	arp := serialize(t,
		&layers.Ethernet{SrcMAC: testMAC1, DstMAC: testMAC2, EthernetType: layers.EthernetTypeARP},
		&layers.ARP{AddrType: layers.LinkTypeEthernet, Protocol: layers.EthernetTypeIPv4, HwAddressSize: 6, ProtAddressSize: 4,
			Operation: layers.ARPRequest, SourceHwAddress: testMAC1, SourceProtAddress: testSrc4.To4(),
			DstHwAddress: make([]byte, 6), DstProtAddress: testDst4.To4()})
	llc := append(append(append([]byte{}, testMAC2...), testMAC1...), 0x00, 0x03, 0x42, 0x42, 0x03)
	for name, tc := range map[string]struct {
		lt    layers.LinkType
		frame []byte
	}{
		"arp":       {layers.LinkTypeEthernet, arp},
		"802.3 llc": {layers.LinkTypeEthernet, llc},
		"vlan arp":  {layers.LinkTypeEthernet, ether(t, layers.EthernetTypeARP, make([]byte, 28), layers.EthernetTypeDot1Q)},
		"sll arp":   {layers.LinkTypeLinuxSLL, sll(layers.EthernetTypeARP, make([]byte, 28))},
		"sll2 arp":  {LinkTypeLinuxSLL2, sll2(layers.EthernetTypeARP, make([]byte, 28))},
	} {
		var p Packet
		if err := NewDecoder().Decode(tc.lt, tc.frame, testTime, &p); err != nil {
			t.Errorf("%s: %v", name, err)
		} else if p.IPVersion != 0 {
			t.Errorf("%s: IPVersion %d, want 0", name, p.IPVersion)
		}
	}
}

func TestDecodeTrimsEthernetPadding(t *testing.T) {
	ip := ipv4Hdr(layers.IPProtocolUDP)
	pkt := serialize(t, ip, udpHdr(ip), gopacket.Payload("hi"))
	frame := ether(t, layers.EthernetTypeIPv4, pkt)
	if len(frame) != 60 {
		t.Fatalf("test frame not padded: %d bytes", len(frame))
	}
	d := NewDecoder()
	d.VerifyChecksums = true
	var p Packet
	if err := d.Decode(layers.LinkTypeEthernet, frame, testTime, &p); err != nil {
		t.Fatal(err)
	}
	if len(p.IP) != len(pkt) || string(p.Payload) != "hi" || !p.L4ChecksumOK {
		t.Fatalf("IP %d bytes (want %d), payload %q, checksum ok %v", len(p.IP), len(pkt), p.Payload, p.L4ChecksumOK)
	}
	if p.SrcPort != 5353 || p.DstPort != 53 || p.Proto != ProtoUDP {
		t.Fatalf("UDP %d->%d proto %d", p.SrcPort, p.DstPort, p.Proto)
	}
}

func TestDecodeTruncatedPayload(t *testing.T) {
	pkt := ipv4TCP(t, bytes.Repeat([]byte("x"), 100))
	cut := pkt[:len(pkt)-40] // headers whole, payload cut (snap length)
	d := NewDecoder()
	d.VerifyChecksums = true
	var p Packet
	if err := d.Decode(layers.LinkTypeRaw, cut, testTime, &p); err != nil {
		t.Fatalf("truncated payload must not be an error: %v", err)
	}
	if !p.Truncated || len(p.Payload) != 60 || !p.L4ChecksumOK {
		t.Fatalf("truncated %v payload %d checksum %v", p.Truncated, len(p.Payload), p.L4ChecksumOK)
	}
}

func TestDecodeIPv4Options(t *testing.T) {
	ip := ipv4Hdr(layers.IPProtocolTCP)
	ip.Options = []layers.IPv4Option{{OptionType: 0x94, OptionLength: 4, OptionData: []byte{0, 0}}} // router alert
	pkt := serialize(t, ip, tcpHdr(ip), gopacket.Payload("abc"))
	d := NewDecoder()
	d.VerifyChecksums = true
	var p Packet
	if err := d.Decode(layers.LinkTypeRaw, pkt, testTime, &p); err != nil {
		t.Fatal(err)
	}
	if p.IPHeaderLen != 24 || string(p.Payload) != "abc" || !p.IPChecksumOK || !p.L4ChecksumOK {
		t.Fatalf("hdr %d payload %q ipsum %v l4sum %v", p.IPHeaderLen, p.Payload, p.IPChecksumOK, p.L4ChecksumOK)
	}
}

func TestDecodeChecksums(t *testing.T) {
	ip4 := ipv4Hdr(layers.IPProtocolUDP)
	udp4 := serialize(t, ip4, udpHdr(ip4), gopacket.Payload("query"))
	ip6 := ipv6Hdr(layers.IPProtocolUDP)
	udp6 := serialize(t, ip6, udpHdr(ip6), gopacket.Payload("query"))
	tcp4 := ipv4TCP(t, []byte("data"))
	tcp6 := ipv6TCP(t, []byte("data"))
	flip := func(b []byte, i int) []byte { c := append([]byte(nil), b...); c[i] ^= 0x01; return c }
	zeroUDPSum := func(b []byte, hl int) []byte { c := append([]byte(nil), b...); c[hl+6], c[hl+7] = 0, 0; return c }
	cases := []struct {
		name         string
		pkt          []byte
		ipOK, l4OK   bool
		l4OKNoVerify bool
	}{
		{"tcp4 good", tcp4, true, true, true},
		{"tcp4 payload corrupted", flip(tcp4, len(tcp4)-1), true, false, true},
		{"tcp6 good", tcp6, true, true, true},
		{"tcp6 payload corrupted", flip(tcp6, len(tcp6)-2), true, false, true},
		{"udp4 good", udp4, true, true, true},
		{"udp4 corrupted", flip(udp4, len(udp4)-1), true, false, true},
		{"udp4 no checksum", zeroUDPSum(udp4, 20), true, true, true},
		{"udp6 good", udp6, true, true, true},
		{"udp6 zero checksum is invalid", zeroUDPSum(udp6, 40), true, false, true},
		{"ipv4 header corrupted", flip(tcp4, 8), false, true, true},
	}
	for _, tc := range cases {
		for _, verify := range []bool{true, false} {
			d := NewDecoder()
			d.VerifyChecksums = verify
			var p Packet
			if err := d.Decode(layers.LinkTypeRaw, tc.pkt, testTime, &p); err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
			wantL4 := tc.l4OK
			if !verify {
				wantL4 = tc.l4OKNoVerify
			}
			if p.IPChecksumOK != tc.ipOK || p.L4ChecksumOK != wantL4 {
				t.Errorf("%s (verify=%v): IPChecksumOK %v L4ChecksumOK %v, want %v %v",
					tc.name, verify, p.IPChecksumOK, p.L4ChecksumOK, tc.ipOK, wantL4)
			}
		}
	}
}

func TestDecodeTCPOptions(t *testing.T) {
	opt := func(kind layers.TCPOptionKind, data ...byte) layers.TCPOption {
		return layers.TCPOption{OptionType: kind, OptionLength: uint8(2 + len(data)), OptionData: data}
	}
	ts := []byte{0, 0, 1, 0, 0, 0, 2, 0}
	cases := []struct {
		name string
		opts []layers.TCPOption
		raw  []byte // used instead of opts when set (already padded)
		want TCPOptions
	}{
		{"syn options", []layers.TCPOption{opt(layers.TCPOptionKindMSS, 0x05, 0xb4), opt(layers.TCPOptionKindSACKPermitted),
			opt(layers.TCPOptionKindTimestamps, ts...), {OptionType: layers.TCPOptionKindNop, OptionLength: 1}, opt(layers.TCPOptionKindWindowScale, 7)},
			nil, TCPOptions{MSS: 1460, SACKPermit: true, HasTimestamp: true, TSVal: 256, TSEcr: 512, HasWScale: true, WScale: 7}},
		{"window scale clamped to 14", []layers.TCPOption{opt(layers.TCPOptionKindWindowScale, 15)}, nil,
			TCPOptions{HasWScale: true, WScale: 14}},
		{"wrong-length options ignored", []layers.TCPOption{opt(layers.TCPOptionKindMSS, 5), opt(layers.TCPOptionKindWindowScale, 3, 3)}, nil,
			TCPOptions{}},
		{"zero length stops parsing", nil, []byte{2, 4, 0x02, 0x18, 3, 0, 3, 7}, TCPOptions{MSS: 536}},
		{"overlong option stops parsing", nil, []byte{4, 2, 8, 40, 0, 0, 0, 0}, TCPOptions{SACKPermit: true}},
		{"end of list", nil, []byte{0, 2, 4, 5, 0xb4, 0, 0, 0}, TCPOptions{}},
	}
	for _, tc := range cases {
		ip := ipv4Hdr(layers.IPProtocolTCP)
		tcp := tcpHdr(ip)
		tcp.SYN = true
		tcp.Options = tc.opts
		pkt := serialize(t, ip, tcp)
		if tc.raw != nil {
			// Splice raw option bytes in after the 20-byte TCP header.
			hdr := append([]byte(nil), pkt[:40]...)
			pkt = append(hdr, tc.raw...)
			pkt[2], pkt[3] = 0, byte(len(pkt))
			pkt[32] = byte((20+len(tc.raw))/4) << 4
		}
		var p Packet
		if err := NewDecoder().Decode(layers.LinkTypeRaw, pkt, testTime, &p); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if p.Opts != tc.want {
			t.Errorf("%s: options %+v, want %+v", tc.name, p.Opts, tc.want)
		}
		if len(p.Payload) != 0 {
			t.Errorf("%s: options leaked into payload: %x", tc.name, p.Payload)
		}
	}
}

func TestDecodeFragments(t *testing.T) {
	full := ipv4TCP(t, bytes.Repeat([]byte("A"), 64))
	l4 := full[20:] // TCP header + payload, 84 bytes
	hbh, dst, rt := extHdr(0, 8), extHdr(60, 16), extHdr(43, 8)
	cases := []struct {
		name     string
		pkt      []byte
		frag     Fragment
		proto    uint8
		hdrLen   int
		dataLen  int
		ports    bool
		version  uint8
		dstPort0 bool
	}{
		{"ipv4 first", ipv4Frag(t, layers.IPProtocolTCP, 7, 0, true, l4[:40]), Fragment{ID: 7, Offset: 0, More: true, Proto: 6}, 6, 20, 40, true, 4, false},
		{"ipv4 middle", ipv4Frag(t, layers.IPProtocolTCP, 7, 40, true, l4[40:80]), Fragment{ID: 7, Offset: 40, More: true, Proto: 6}, 6, 20, 40, false, 4, false},
		{"ipv4 last", ipv4Frag(t, layers.IPProtocolTCP, 7, 80, false, l4[80:]), Fragment{ID: 7, Offset: 80, More: false, Proto: 6}, 6, 20, 4, false, 4, false},
		{"ipv4 tiny first", ipv4Frag(t, layers.IPProtocolTCP, 8, 0, true, l4[:8]), Fragment{ID: 8, Offset: 0, More: true, Proto: 6}, 6, 20, 8, false, 4, false},
		{"ipv6 first", ipv6Frag(t, layers.IPProtocolTCP, 0x11223344, 0, true, l4[:40]), Fragment{ID: 0x11223344, Offset: 0, More: true, Proto: 6}, 6, 48, 40, true, 6, false},
		{"ipv6 later", ipv6Frag(t, layers.IPProtocolTCP, 9, 40, false, l4[40:]), Fragment{ID: 9, Offset: 40, More: false, Proto: 6}, 6, 48, 44, false, 6, false},
		{"ipv6 atomic", ipv6Frag(t, layers.IPProtocolTCP, 10, 0, false, l4), Fragment{ID: 10, Offset: 0, More: false, Proto: 6}, 6, 48, len(l4), true, 6, false},
		{"ipv6 chain before fragment", ipv6Frag(t, layers.IPProtocolTCP, 11, 0, true, l4[:40], hbh, dst, rt), Fragment{ID: 11, More: true, Proto: 6}, 6, 80, 40, true, 6, false},
		{"ipv6 later after chain", ipv6Frag(t, layers.IPProtocolTCP, 11, 40, false, l4[40:], hbh, rt), Fragment{ID: 11, Offset: 40, Proto: 6}, 6, 64, 44, false, 6, false},
	}
	d := NewDecoder()
	d.VerifyChecksums = true
	for _, tc := range cases {
		var p Packet
		if err := d.Decode(layers.LinkTypeRaw, tc.pkt, testTime, &p); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if !p.IsFragment || p.Frag != tc.frag || p.IPVersion != tc.version {
			t.Errorf("%s: IsFragment %v Frag %+v version %d, want %+v", tc.name, p.IsFragment, p.Frag, p.IPVersion, tc.frag)
		}
		if p.Proto != tc.proto || p.IPHeaderLen != tc.hdrLen || len(p.L3Payload) != tc.dataLen {
			t.Errorf("%s: proto %d hdr %d data %d, want %d %d %d", tc.name, p.Proto, p.IPHeaderLen, len(p.L3Payload), tc.proto, tc.hdrLen, tc.dataLen)
		}
		if got := p.SrcPort == 40000 && p.DstPort == 80; got != tc.ports {
			t.Errorf("%s: transport decoded %v, want %v", tc.name, got, tc.ports)
		}
		if !tc.ports && (p.SrcPort != 0 || p.Payload != nil) {
			t.Errorf("%s: transport fields set on a fragment without a whole header", tc.name)
		}
		if !p.L4ChecksumOK {
			t.Errorf("%s: fragments must not fail checksum verification", tc.name)
		}
	}
}

func TestDecodeIPv6ExtensionHeaders(t *testing.T) {
	ip := ipv6Hdr(layers.IPProtocolTCP)
	seg := serialize(t, ip, tcpHdr(ip), gopacket.Payload("hello"))[40:]
	build := func(exts ...ext6) []byte {
		first, pre := chain6(exts, byte(layers.IPProtocolTCP))
		return serialize(t, ipv6Hdr(layers.IPProtocol(first)), gopacket.Payload(append(pre, seg...)))
	}
	d := NewDecoder()
	d.VerifyChecksums = true
	var p Packet
	pkt := build(extHdr(0, 8), extHdr(60, 24), extHdr(43, 8), ext6{typ: 51, b: make([]byte, 16)})
	pkt[40+8+24+8+1] = 2 // AH length: (2+2)*4 = 16 bytes
	if err := d.Decode(layers.LinkTypeRaw, pkt, testTime, &p); err != nil {
		t.Fatal(err)
	}
	if p.Proto != ProtoTCP || p.IPHeaderLen != 40+8+24+8+16 || string(p.Payload) != "hello" || !p.L4ChecksumOK {
		t.Fatalf("proto %d hdr %d payload %q checksum %v", p.Proto, p.IPHeaderLen, p.Payload, p.L4ChecksumOK)
	}

	exts := make([]ext6, MaxIPv6ExtHeaders)
	for i := range exts {
		exts[i] = extHdr(60, 8)
	}
	if err := d.Decode(layers.LinkTypeRaw, build(exts...), testTime, &p); err != nil {
		t.Fatalf("chain of %d headers must decode: %v", MaxIPv6ExtHeaders, err)
	}
	exts = append(exts, extHdr(60, 8))
	if err := d.Decode(layers.LinkTypeRaw, build(exts...), testTime, &p); !errors.Is(err, ErrMalformed) {
		t.Fatalf("chain of %d headers: err %v, want ErrMalformed", len(exts), err)
	}

	esp := serialize(t, ipv6Hdr(layers.IPProtocolESP), gopacket.Payload(make([]byte, 24)))
	if err := d.Decode(layers.LinkTypeRaw, esp, testTime, &p); err != nil || p.Proto != 50 || len(p.L3Payload) != 24 {
		t.Fatalf("ESP: err %v proto %d payload %d", err, p.Proto, len(p.L3Payload))
	}
}

func TestDecodeMalformed(t *testing.T) {
	v4 := ipv4TCP(t, []byte("payload"))
	v6 := ipv6TCP(t, []byte("payload"))
	mod := func(b []byte, f func([]byte)) []byte { c := append([]byte(nil), b...); f(c); return c }
	ip := ipv4Hdr(layers.IPProtocolUDP)
	udp := serialize(t, ip, udpHdr(ip), gopacket.Payload("12345678"))
	vlans := ether(t, layers.EthernetTypeIPv4, v4, layers.EthernetTypeQinQ, layers.EthernetTypeDot1Q, layers.EthernetTypeDot1Q,
		layers.EthernetTypeDot1Q, layers.EthernetTypeDot1Q)
	cases := []struct {
		name  string
		lt    layers.LinkType
		frame []byte
	}{
		{"empty", layers.LinkTypeRaw, nil},
		{"short ethernet", layers.LinkTypeEthernet, make([]byte, 10)},
		{"ethertype ipv4 without bytes", layers.LinkTypeEthernet, append(append(append([]byte{}, testMAC2...), testMAC1...), 0x08, 0x00)},
		{"vlan ipv4 without bytes", layers.LinkTypeEthernet, append(append(append([]byte{}, testMAC2...), testMAC1...), 0x81, 0x00, 0, 1, 0x08, 0x00)},
		{"sll2 ipv6 without bytes", LinkTypeLinuxSLL2, sll2(layers.EthernetTypeIPv6, nil)},
		{"too many vlan tags", layers.LinkTypeEthernet, vlans},
		{"short vlan tag", layers.LinkTypeEthernet, append(append(append([]byte{}, testMAC2...), testMAC1...), 0x81, 0x00, 0, 1)},
		{"short sll", layers.LinkTypeLinuxSLL, make([]byte, 15)},
		{"short sll2", LinkTypeLinuxSLL2, make([]byte, 19)},
		{"ipv4 header cut", layers.LinkTypeRaw, v4[:19]},
		{"ipv4 ihl 4", layers.LinkTypeRaw, mod(v4, func(b []byte) { b[0] = 0x44 })},
		{"ipv4 ihl beyond frame", layers.LinkTypeRaw, mod(v4[:24], func(b []byte) { b[0] = 0x4f })},
		{"ipv4 total length below header", layers.LinkTypeRaw, mod(v4, func(b []byte) { b[2], b[3] = 0, 19 })},
		{"ipv4 total length zero", layers.LinkTypeRaw, mod(v4, func(b []byte) { b[2], b[3] = 0, 0 })},
		{"version 6 on ipv4 link", layers.LinkTypeIPv4, v6},
		{"version 4 on ipv6 link", layers.LinkTypeIPv6, v4},
		{"raw version 5", layers.LinkTypeRaw, mod(v4, func(b []byte) { b[0] = 0x55 })},
		{"ipv4 ethertype carrying ipv6", layers.LinkTypeEthernet, ether(t, layers.EthernetTypeIPv4, v6)},
		{"ipv6 header cut", layers.LinkTypeRaw, v6[:39]},
		{"ipv6 jumbo", layers.LinkTypeRaw, mod(v6, func(b []byte) { b[4], b[5], b[6] = 0, 0, 0 })},
		{"tcp header cut", layers.LinkTypeRaw, mod(v4[:30], func(b []byte) { b[2], b[3] = 0, 30 })},
		{"tcp data offset 4", layers.LinkTypeRaw, mod(v4, func(b []byte) { b[32] = 0x40 })},
		{"tcp data offset beyond packet", layers.LinkTypeRaw, mod(v4, func(b []byte) { b[32] = 0xf0 })},
		{"tcp missing", layers.LinkTypeRaw, mod(v4[:20], func(b []byte) { b[2], b[3] = 0, 20 })},
		{"udp header cut", layers.LinkTypeRaw, mod(udp[:25], func(b []byte) { b[2], b[3] = 0, 25 })},
		{"udp length below 8", layers.LinkTypeRaw, mod(udp, func(b []byte) { b[24], b[25] = 0, 7 })},
		{"udp length beyond ip", layers.LinkTypeRaw, mod(udp, func(b []byte) { b[24], b[25] = 0, 17 })},
	}
	// IPv4 option whose length runs past the header.
	ipo := ipv4Hdr(layers.IPProtocolTCP)
	ipo.Options = []layers.IPv4Option{{OptionType: 0x94, OptionLength: 4, OptionData: []byte{0, 0}}}
	withOpt := serialize(t, ipo, tcpHdr(ipo))
	cases = append(cases, struct {
		name  string
		lt    layers.LinkType
		frame []byte
	}{"ipv4 option overruns header", layers.LinkTypeRaw, mod(withOpt, func(b []byte) { b[21] = 8 })})
	// Hop-by-hop after another extension header; truncated extension header.
	seg := v6[40:]
	hbhLate := serialize(t, ipv6Hdr(60), gopacket.Payload(append([]byte{0, 0, 1, 4, 0, 0, 0, 0, 6, 0, 1, 4, 0, 0, 0, 0}, seg...)))
	extCut := serialize(t, ipv6Hdr(60), gopacket.Payload([]byte{6, 3, 1, 4, 0, 0, 0, 0}))
	twoFrag := serialize(t, ipv6Hdr(44), gopacket.Payload(append(fragHdr6(44, 1, 0, true), fragHdr6(6, 1, 0, true)...)))
	cases = append(cases, []struct {
		name  string
		lt    layers.LinkType
		frame []byte
	}{
		{"ipv6 hop-by-hop not first", layers.LinkTypeRaw, hbhLate},
		{"ipv6 extension header cut", layers.LinkTypeRaw, extCut},
		{"ipv6 two fragment headers", layers.LinkTypeRaw, twoFrag},
	}...)

	d := NewDecoder()
	for _, tc := range cases {
		var p Packet
		err := d.Decode(tc.lt, tc.frame, testTime, &p)
		if !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: err = %v, want ErrMalformed", tc.name, err)
		}
	}
}

func TestDecodeReusesPacket(t *testing.T) {
	d := NewDecoder()
	var p Packet
	if err := d.Decode(layers.LinkTypeRaw, ipv4TCP(t, []byte("x")), testTime, &p); err != nil {
		t.Fatal(err)
	}
	if err := d.DecodeIP(serialize(t, ipv6Hdr(layers.IPProtocolNoNextHeader)), testTime, &p); err != nil {
		t.Fatal(err)
	}
	if p.SrcPort != 0 || p.Payload != nil || p.Proto != 59 || p.IPVersion != 6 {
		t.Fatalf("fields of the previous packet survived: %+v", p)
	}
}
