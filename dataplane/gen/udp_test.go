package gen

import (
	"bytes"
	"testing"

	"github.com/google/gopacket/layers"

	"github.com/patchgate/patchgate/dataplane"
)

var (
	dnsClient = EP("192.0.2.53:53000")
	dnsServer = EP("203.0.113.53:53")
)

func udpPorts(t *testing.T, p l4Pkt) (src, dst uint16, payload []byte) {
	t.Helper()
	if p.proto != layers.IPProtocolUDP || len(p.data) < 8 {
		t.Fatalf("not a UDP datagram: proto %v len %d", p.proto, len(p.data))
	}
	return uint16(p.data[0])<<8 | uint16(p.data[1]), uint16(p.data[2])<<8 | uint16(p.data[3]), p.data[8:]
}

func TestUDPDatagram(t *testing.T) {
	query := []byte("\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x07example\x04test\x00\x00\x01\x00\x01")
	for _, dir := range []dataplane.Direction{dataplane.ToServer, dataplane.ToClient} {
		f, err := UDPDatagram(dnsClient, dnsServer, dir, query)
		if err != nil {
			t.Fatal(err)
		}
		pk := defrag(t, []ipPkt{decodeFrame(t, layers.LinkTypeEthernet, f)})[0]
		src, dst, pl := udpPorts(t, pk)
		wantSrc, wantDst := dnsClient, dnsServer
		if dir == dataplane.ToClient {
			wantSrc, wantDst = dnsServer, dnsClient
		}
		if src != wantSrc.Port || dst != wantDst.Port || pk.src != wantSrc.Addr || !pk.csumOK || !bytes.Equal(pl, query) {
			t.Fatalf("%v: datagram %d->%d from %v checksum %v payload %q", dir, src, dst, pk.src, pk.csumOK, pl)
		}
		if f.Meta.Dir != dir || f.Meta.Msg != 0 || !f.Meta.Last {
			t.Fatalf("meta %+v", f.Meta)
		}
	}
}

func TestUDPFlowTransforms(t *testing.T) {
	for _, ends := range [][2]Endpoint{{dnsClient, dnsServer}, {EP("[2001:db8::53]:5353"), EP("[2001:db8::1]:53")}} {
		f, err := NewUDPFlow(ends[0], ends[1], DefaultSessionOptions())
		if err != nil {
			t.Fatal(err)
		}
		big := bytes.Repeat([]byte("dns-answer-"), 300)
		f.Send(dataplane.ToServer, []byte("query"))
		f.Send(dataplane.ToClient, big)
		frames, err := f.Frames(
			Fragment(InMessage(dataplane.ToClient, 0), Fragmentation{Size: 1024, Order: FragReverse}),
			Modify(InMessage(dataplane.ToServer, 0), WithBadChecksum()))
		if err != nil {
			t.Fatal(err)
		}
		var pkts []ipPkt
		for _, fr := range frames {
			pkts = append(pkts, decodeFrame(t, layers.LinkTypeEthernet, fr))
		}
		got := defrag(t, pkts)
		if len(got) != 2 || got[0].csumOK || !got[1].csumOK || got[1].frags != 4 {
			t.Fatalf("got %d datagrams, checksums %v %v", len(got), got[0].csumOK, got[1].csumOK)
		}
		if _, _, pl := udpPorts(t, got[1]); !bytes.Equal(pl, big) {
			t.Fatal("reassembled answer differs")
		}
	}
}

func TestUDPOversizedDatagramFails(t *testing.T) {
	f, err := NewUDPFlow(dnsClient, dnsServer, DefaultSessionOptions())
	if err != nil {
		t.Fatal(err)
	}
	f.Send(dataplane.ToServer, make([]byte, MaxDatagramSize+1))
	if _, err := f.Frames(); err == nil {
		t.Fatal("oversized datagram accepted")
	}
}
