package inline

import (
	"bytes"
	"errors"
	"net"
	"net/netip"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/patchgate/patchgate/dataplane/decode"
)

// tcpPacket serialises an IP/TCP packet with gopacket (checksums computed).
func tcpPacket(t *testing.T, v6 bool, flags func(*layers.TCP), payload []byte) []byte {
	t.Helper()
	tcp := &layers.TCP{SrcPort: 40000, DstPort: 80, Seq: 1000, Ack: 5000, Window: 512}
	flags(tcp)
	var ipl gopacket.SerializableLayer
	if v6 {
		ip := &layers.IPv6{Version: 6, HopLimit: 63, NextHeader: layers.IPProtocolTCP,
			SrcIP: net.ParseIP("2001:db8:1::2"), DstIP: net.ParseIP("2001:db8:2::2")}
		tcp.SetNetworkLayerForChecksum(ip)
		ipl = ip
	} else {
		ip := &layers.IPv4{Version: 4, TTL: 63, Protocol: layers.IPProtocolTCP,
			SrcIP: net.IPv4(198, 18, 1, 2), DstIP: net.IPv4(198, 18, 2, 2)}
		tcp.SetNetworkLayerForChecksum(ip)
		ipl = ip
	}
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true},
		ipl, tcp, gopacket.Payload(payload)); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// decoded is what a test checks in a RST.
type decoded struct {
	src, dst         string
	sport, dport     uint16
	seq, ack         uint32
	rst, ackFlag     bool
	ttl              uint8
	payload, options int
}

// decodeRST decodes a RST with gopacket, verifies both checksums by
// recomputing them with gopacket, and returns its fields.
func decodeRST(t *testing.T, b []byte, first gopacket.LayerType) decoded {
	t.Helper()
	p := gopacket.NewPacket(b, first, gopacket.Default)
	if el := p.ErrorLayer(); el != nil {
		t.Fatalf("gopacket cannot decode the RST: %v", el.Error())
	}
	tcp, _ := p.Layer(layers.LayerTypeTCP).(*layers.TCP)
	if tcp == nil {
		t.Fatal("no TCP layer")
	}
	var d decoded
	var netl gopacket.NetworkLayer
	var src, dst []byte
	switch ip := p.NetworkLayer().(type) {
	case *layers.IPv4:
		d.src, d.dst, d.ttl, netl = ip.SrcIP.String(), ip.DstIP.String(), ip.TTL, ip
		if ip.Length != 40 || ip.Flags&layers.IPv4DontFragment == 0 {
			t.Errorf("IPv4 length %d flags %v", ip.Length, ip.Flags)
		}
		// Re-serialise the header with gopacket's checksum and compare.
		want := ip.Checksum
		hb := gopacket.NewSerializeBuffer()
		c := *ip
		if err := c.SerializeTo(hb, gopacket.SerializeOptions{ComputeChecksums: true}); err != nil {
			t.Fatal(err)
		}
		if c.Checksum != want {
			t.Errorf("IPv4 checksum %#04x, gopacket computes %#04x", want, c.Checksum)
		}
		src, dst = ip.SrcIP.To4(), ip.DstIP.To4()
	case *layers.IPv6:
		d.src, d.dst, d.ttl, netl = ip.SrcIP.String(), ip.DstIP.String(), ip.HopLimit, ip
		if ip.Length != 20 {
			t.Errorf("IPv6 payload length %d", ip.Length)
		}
		src, dst = ip.SrcIP, ip.DstIP
	default:
		t.Fatalf("network layer %T", ip)
	}
	want := tcp.Checksum
	c := *tcp
	if err := c.SetNetworkLayerForChecksum(netl); err != nil {
		t.Fatal(err)
	}
	tb := gopacket.NewSerializeBuffer()
	if err := c.SerializeTo(tb, gopacket.SerializeOptions{ComputeChecksums: true}); err != nil {
		t.Fatal(err)
	}
	if c.Checksum != want {
		t.Errorf("TCP checksum %#04x, gopacket computes %#04x", want, c.Checksum)
	}
	// And the project's own verifier agrees (a correct checksum sums to 0).
	seg := b[len(b)-20:]
	sa, _ := netip.AddrFromSlice(src)
	da, _ := netip.AddrFromSlice(dst)
	if got := decode.TransportChecksum(sa.Unmap(), da.Unmap(), 6, seg); got != 0 {
		t.Errorf("TCP checksum does not verify (residue %#04x)", got)
	}
	d.sport, d.dport = uint16(tcp.SrcPort), uint16(tcp.DstPort)
	d.seq, d.ack, d.rst, d.ackFlag = tcp.Seq, tcp.Ack, tcp.RST, tcp.ACK
	d.payload, d.options = len(tcp.Payload), len(tcp.Options)
	if tcp.SYN || tcp.FIN || tcp.PSH || tcp.Window != 0 {
		t.Errorf("unexpected flags/window: %+v", tcp)
	}
	return d
}

func TestResetsBothFamilies(t *testing.T) {
	payload := []byte("GET / HTTP/1.1\r\nUser-Agent: () { :; }; echo\r\n\r\n")
	for _, v6 := range []bool{false, true} {
		name, first, cli, srv := "ipv4", layers.LayerTypeIPv4, "198.18.1.2", "198.18.2.2"
		if v6 {
			name, first, cli, srv = "ipv6", layers.LayerTypeIPv6, "2001:db8:1::2", "2001:db8:2::2"
		}
		t.Run(name, func(t *testing.T) {
			pkt := tcpPacket(t, v6, func(c *layers.TCP) { c.ACK, c.PSH = true, true }, payload)
			toDst, toSrc, err := Resets(pkt)
			if err != nil {
				t.Fatal(err)
			}
			// To the server, as if from the client: seq = the dropped packet's seq.
			d := decodeRST(t, toDst, first)
			want := decoded{src: cli, dst: srv, sport: 40000, dport: 80, seq: 1000, ack: 5000, rst: true, ackFlag: true, ttl: ResetTTL}
			if d != want {
				t.Errorf("RST to server:\n got %+v\nwant %+v", d, want)
			}
			// To the client, as if from the server: seq = the dropped packet's ack.
			d = decodeRST(t, toSrc, first)
			want = decoded{src: srv, dst: cli, sport: 80, dport: 40000, seq: 5000, ack: 1000 + uint32(len(payload)), rst: true, ackFlag: true, ttl: ResetTTL}
			if d != want {
				t.Errorf("RST to client:\n got %+v\nwant %+v", d, want)
			}
		})
	}
}

func TestResetsOfSYN(t *testing.T) {
	pkt := tcpPacket(t, false, func(c *layers.TCP) { c.SYN, c.Ack = true, 0 }, nil)
	toDst, toSrc, err := Resets(pkt)
	if err != nil {
		t.Fatal(err)
	}
	d := decodeRST(t, toDst, layers.LayerTypeIPv4)
	if d.seq != 1000 || d.ackFlag {
		t.Errorf("RST to server: %+v", d)
	}
	d = decodeRST(t, toSrc, layers.LayerTypeIPv4)
	if d.seq != 0 || !d.ackFlag || d.ack != 1001 {
		t.Errorf("RST to client: want seq 0 ack 1001, got %+v", d)
	}
}

func TestResetFramesKeepVLANAndSwapMACs(t *testing.T) {
	ipPkt := tcpPacket(t, true, func(c *layers.TCP) { c.ACK = true }, []byte("x"))
	l2 := []byte{
		0x02, 0, 0, 0, 0, 0xbb, // dst (server side)
		0x02, 0, 0, 0, 0, 0xaa, // src (client)
		0x81, 0x00, 0x00, 0x2a, // 802.1Q VLAN 42
		0x86, 0xdd,
	}
	frame := append(append([]byte{}, l2...), ipPkt...)
	toDst, toSrc, err := ResetFrames(frame)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(toDst[:18], l2) {
		t.Errorf("toDst L2 header % x, want % x", toDst[:18], l2)
	}
	if !bytes.Equal(toSrc[0:6], l2[6:12]) || !bytes.Equal(toSrc[6:12], l2[0:6]) || !bytes.Equal(toSrc[12:18], l2[12:18]) {
		t.Errorf("toSrc L2 header % x", toSrc[:18])
	}
	for _, f := range [][]byte{toDst, toSrc} {
		p := gopacket.NewPacket(f, layers.LayerTypeEthernet, gopacket.Default)
		if p.ErrorLayer() != nil || p.Layer(layers.LayerTypeDot1Q) == nil || p.Layer(layers.LayerTypeTCP) == nil {
			t.Fatalf("frame does not decode as Ethernet/802.1Q/IPv6/TCP: %v", p)
		}
		decodeRST(t, f[18:], layers.LayerTypeIPv6)
	}
}

func TestResetsRefuses(t *testing.T) {
	rst := tcpPacket(t, false, func(c *layers.TCP) { c.RST = true }, nil)
	if _, _, err := Resets(rst); !errors.Is(err, ErrIsReset) {
		t.Errorf("RST: got %v, want ErrIsReset", err)
	}
	udp := tcpPacket(t, false, func(*layers.TCP) {}, nil)
	udp[9] = 17
	if _, _, err := Resets(udp); !errors.Is(err, ErrNotTCP) {
		t.Errorf("UDP: got %v, want ErrNotTCP", err)
	}
	frag := tcpPacket(t, false, func(c *layers.TCP) { c.ACK = true }, nil)
	frag[7] = 8 // fragment offset 64 bytes
	if _, _, err := Resets(frag); !errors.Is(err, ErrNotTCP) {
		t.Errorf("non-first fragment: got %v, want ErrNotTCP", err)
	}
	full := tcpPacket(t, true, func(c *layers.TCP) { c.ACK = true }, []byte("abc"))
	for n := 0; n < len(full); n++ {
		if _, _, err := Resets(full[:n]); err == nil {
			t.Fatalf("truncated to %d bytes: no error", n)
		}
	}
	if _, _, err := ResetFrames(make([]byte, 14)); !errors.Is(err, ErrNotTCP) {
		t.Errorf("non-IP frame: got %v", err)
	}
}

func TestParseFailPolicy(t *testing.T) {
	for in, want := range map[string]FailPolicy{"open": FailOpen, "closed": FailClosed} {
		got, err := ParseFailPolicy(in)
		if err != nil || got != want || got.String() != in {
			t.Errorf("%q: %v %v", in, got, err)
		}
	}
	if _, err := ParseFailPolicy("half"); err == nil {
		t.Error("bad policy accepted")
	}
}
