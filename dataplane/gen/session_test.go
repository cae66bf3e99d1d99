package gen

import (
	"bytes"
	"encoding/binary"
	"strings"
	"testing"

	"github.com/google/gopacket/layers"

	"github.com/patchgate/patchgate/dataplane"
)

var (
	cli4 = EP("192.0.2.10:40000")
	srv4 = EP("198.51.100.20:80")
	cli6 = EP("[2001:db8::10]:40000")
	srv6 = EP("[2001:db8::20]:443")
)

func optionKinds(opts []layers.TCPOption) []layers.TCPOptionKind {
	var k []layers.TCPOptionKind
	for _, o := range opts {
		k = append(k, o.OptionType)
	}
	return k
}

func TestHandshakeCarriesConfiguredOptions(t *testing.T) {
	o := DefaultSessionOptions()
	o.MSS, o.WindowScale = 536, 3
	s := mustSession(t, cli4, srv4, o)
	segs := decodeTCP(t, layers.LinkTypeEthernet, mustFrames(t, s), false)
	if len(segs) != 3 {
		t.Fatalf("handshake is %d segments, want 3", len(segs))
	}
	syn, synack, ack := segs[0], segs[1], segs[2]
	if syn.flags != SYN || synack.flags != SYN|ACK || ack.flags != ACK {
		t.Fatalf("flags %v %v %v", syn.flags, synack.flags, ack.flags)
	}
	if syn.seq != o.ClientISN || synack.seq != o.ServerISN || synack.ack != o.ClientISN+1 ||
		ack.seq != o.ClientISN+1 || ack.ack != o.ServerISN+1 {
		t.Fatalf("handshake numbers wrong: %+v %+v %+v", syn, synack, ack)
	}
	for _, sg := range []tcpSeg{syn, synack} {
		var mss uint16
		var ws int = -1
		var sack, ts bool
		for _, op := range sg.opts {
			switch op.OptionType {
			case layers.TCPOptionKindMSS:
				mss = binary.BigEndian.Uint16(op.OptionData)
			case layers.TCPOptionKindWindowScale:
				ws = int(op.OptionData[0])
			case layers.TCPOptionKindSACKPermitted:
				sack = true
			case layers.TCPOptionKindTimestamps:
				ts = true
			}
		}
		if mss != 536 || ws != 3 || !sack || !ts {
			t.Fatalf("SYN options %v: mss %d ws %d sack %v ts %v", optionKinds(sg.opts), mss, ws, sack, ts)
		}
		if !sg.csumOK {
			t.Fatal("handshake checksum invalid")
		}
	}
	if sg := segs[2]; len(sg.opts) != 3 || sg.opts[2].OptionType != layers.TCPOptionKindTimestamps {
		t.Fatalf("ACK options %v, want NOP NOP TS", optionKinds(sg.opts))
	}
	if segs[0].src != cli4.Addr || segs[0].dst != srv4.Addr || segs[1].src != srv4.Addr {
		t.Fatal("addresses not in the direction of the segment")
	}
}

func TestHandshakeWithoutOptions(t *testing.T) {
	o := DefaultSessionOptions()
	o.MSS, o.WindowScale, o.SACKPermitted, o.Timestamps = 0, -1, false, false
	segs := decodeTCP(t, layers.LinkTypeEthernet, mustFrames(t, mustSession(t, cli4, srv4, o)), false)
	for _, sg := range segs {
		if len(sg.opts) != 0 {
			t.Fatalf("%v carries options %v", sg.flags, optionKinds(sg.opts))
		}
	}
}

func TestSendSegmentsWithContinuousSequenceNumbers(t *testing.T) {
	o := DefaultSessionOptions()
	o.SegmentSize = 1000
	s := mustSession(t, cli4, srv4, o)
	msg := bytes.Repeat([]byte("abcdefghij"), 450) // 4500 bytes: 5 segments
	if m := s.Send(dataplane.ToServer, msg); m != 0 {
		t.Fatalf("first message index %d", m)
	}
	segs := decodeTCP(t, layers.LinkTypeEthernet, mustFrames(t, s), false)[3:]
	next := o.ClientISN + 1
	var data []tcpSeg
	for _, sg := range segs {
		if sg.meta.Dir == dataplane.ToServer {
			if sg.seq != next {
				t.Fatalf("seq %d, want %d", sg.seq, next)
			}
			next += uint32(len(sg.payload))
			data = append(data, sg)
			continue
		}
		// The server's pure ACKs acknowledge exactly what it has received.
		if sg.flags != ACK || sg.ack != next {
			t.Fatalf("server ACK %v ack %d, want ACK %d", sg.flags, sg.ack, next)
		}
	}
	if len(data) != 5 {
		t.Fatalf("%d data segments, want 5", len(data))
	}
	for i, sg := range data {
		if (sg.flags&PSH != 0) != (i == 4) {
			t.Fatalf("segment %d flags %v: PSH only on the last", i, sg.flags)
		}
		if sg.meta.Msg != 0 {
			t.Fatalf("segment %d Msg %d", i, sg.meta.Msg)
		}
	}
	if len(segs)-len(data) != 3 { // after segments 2, 4 and the message end
		t.Fatalf("%d pure ACKs, want 3 (every 2 segments and at the end)", len(segs)-len(data))
	}
}

func TestSendRespectsTheReceiveWindow(t *testing.T) {
	o := DefaultSessionOptions()
	o.Window, o.WindowScale, o.SegmentSize, o.AckEvery = 1200, -1, 500, 100
	s := mustSession(t, cli4, srv4, o)
	s.Send(dataplane.ToServer, make([]byte, 10000))
	acked := o.ClientISN + 1
	for _, sg := range decodeTCP(t, layers.LinkTypeEthernet, mustFrames(t, s), false) {
		if sg.meta.Dir == dataplane.ToClient && sg.flags&ACK != 0 {
			acked = sg.ack
			continue
		}
		if end := sg.seq + uint32(len(sg.payload)); int32(end-acked) > int32(o.Window) {
			t.Fatalf("segment ends %d bytes past the last ACK, window %d", end-acked, o.Window)
		}
	}
}

func TestSequenceWraparound(t *testing.T) {
	o := DefaultSessionOptions()
	o.ClientISN, o.ServerISN, o.SegmentSize = 0xffffff00, 0xfffffff0, 100
	s := mustSession(t, cli6, srv6, o)
	req, resp := bytes.Repeat([]byte("q"), 1000), bytes.Repeat([]byte("r"), 700)
	s.Send(dataplane.ToServer, req)
	s.Send(dataplane.ToClient, resp)
	s.Close(dataplane.ToClient)
	segs := decodeTCP(t, layers.LinkTypeEthernet, mustFrames(t, s), false)
	equalStreams(t, streams(t, segs, o.ClientISN, o.ServerISN), [2][]byte{req, resp})
}

func TestMidstreamHasNoHandshake(t *testing.T) {
	o := DefaultSessionOptions()
	o.Midstream = true
	s := mustSession(t, cli4, srv4, o)
	s.Send(dataplane.ToServer, []byte("GET / HTTP/1.1\r\n\r\n"))
	segs := decodeTCP(t, layers.LinkTypeEthernet, mustFrames(t, s), false)
	if segs[0].flags&SYN != 0 || segs[0].seq != o.ClientISN+1 || segs[0].ack != o.ServerISN+1 {
		t.Fatalf("first segment %v seq %d ack %d", segs[0].flags, segs[0].seq, segs[0].ack)
	}
}

func TestCloseAndReset(t *testing.T) {
	s := mustSession(t, cli4, srv4, DefaultSessionOptions())
	s.Send(dataplane.ToServer, []byte("hello"))
	s.Close(dataplane.ToClient)
	segs := decodeTCP(t, layers.LinkTypeEthernet, mustFrames(t, s), false)
	tail := segs[len(segs)-3:]
	if tail[0].meta.Dir != dataplane.ToClient || tail[0].flags != FIN|ACK ||
		tail[1].meta.Dir != dataplane.ToServer || tail[1].flags != FIN|ACK || tail[1].ack != tail[0].seq+1 ||
		tail[2].flags != ACK || tail[2].ack != tail[1].seq+1 {
		t.Fatalf("close sequence wrong: %+v", tail)
	}

	r := mustSession(t, cli4, srv4, DefaultSessionOptions())
	r.Send(dataplane.ToServer, []byte("hello"))
	r.Reset(dataplane.ToClient)
	rs := decodeTCP(t, layers.LinkTypeEthernet, mustFrames(t, r), false)
	last := rs[len(rs)-1]
	if last.flags != RST|ACK || last.meta.Dir != dataplane.ToClient || len(last.opts) != 0 {
		t.Fatalf("reset segment %v options %v", last.flags, optionKinds(last.opts))
	}
}

func TestRawIPLinkAndTTL(t *testing.T) {
	o := DefaultSessionOptions()
	o.LinkType, o.TTL = layers.LinkTypeRaw, 9
	s := mustSession(t, cli4, srv4, o)
	c, err := s.Capture()
	if err != nil {
		t.Fatal(err)
	}
	if c.LinkType != layers.LinkTypeRaw || c.Frames[0].Data[0]>>4 != 4 {
		t.Fatalf("raw IP capture starts with %x", c.Frames[0].Data[:1])
	}
	p := decodeFrame(t, layers.LinkTypeRaw, c.Frames[0])
	if p.ttl != 9 || !p.v4DF {
		t.Fatalf("TTL %d DF %v", p.ttl, p.v4DF)
	}
}

func TestOptionsAndEndpointsAreValidated(t *testing.T) {
	bad := []struct {
		name string
		mod  func(*SessionOptions)
		want string
	}{
		{"segment size", func(o *SessionOptions) { o.SegmentSize = MaxSegmentSize + 1 }, "SegmentSize"},
		{"window scale", func(o *SessionOptions) { o.WindowScale = 15 }, "WindowScale"},
		{"ack every", func(o *SessionOptions) { o.AckEvery = -1 }, "AckEvery"},
		{"link type", func(o *SessionOptions) { o.LinkType = layers.LinkTypeLinuxSLL }, "LinkType"},
	}
	for _, b := range bad {
		o := DefaultSessionOptions()
		b.mod(&o)
		if _, err := NewTCPSession(cli4, srv4, o); err == nil || !strings.Contains(err.Error(), b.want) {
			t.Errorf("%s: error %v, want mention of %s", b.name, err, b.want)
		}
	}
	if _, err := NewTCPSession(cli4, srv6, DefaultSessionOptions()); err == nil {
		t.Error("mixed address families accepted")
	}
	if _, err := NewTCPSession(Endpoint{}, srv4, DefaultSessionOptions()); err == nil {
		t.Error("missing address accepted")
	}
}

func TestZeroOptionsMeanDefaults(t *testing.T) {
	s := mustSession(t, cli4, srv4, SessionOptions{WindowScale: -1})
	s.Send(dataplane.ToServer, make([]byte, 3000))
	segs := decodeTCP(t, layers.LinkTypeEthernet, mustFrames(t, s), false)
	if segs[3].window != DefaultWindow || len(segs[3].payload) != DefaultMSS || segs[3].ttl != DefaultTTL {
		t.Fatalf("window %d payload %d ttl %d", segs[3].window, len(segs[3].payload), segs[3].ttl)
	}
}
