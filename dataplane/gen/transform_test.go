package gen

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/google/gopacket/layers"

	"github.com/patchgate/patchgate/dataplane"
)

// exchange builds a session with two requests and two responses.
func exchange(t testing.TB, client, server Endpoint, o SessionOptions) (*TCPSession, [2][]byte) {
	t.Helper()
	s := mustSession(t, client, server, o)
	req1 := []byte("GET /a HTTP/1.1\r\nHost: example.test\r\n\r\n")
	resp1 := []byte("HTTP/1.1 200 OK\r\nContent-Length: 300\r\n\r\n" + string(bytes.Repeat([]byte("0123456789"), 30)))
	req2 := []byte("POST /b HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello")
	resp2 := []byte("HTTP/1.1 204 No Content\r\n\r\n")
	s.Send(dataplane.ToServer, req1)
	s.Send(dataplane.ToClient, resp1)
	s.Send(dataplane.ToServer, req2)
	s.Send(dataplane.ToClient, resp2)
	s.Close(dataplane.ToServer)
	return s, [2][]byte{append(req1, req2...), append(resp1, resp2...)}
}

// contentPreserving lists transforms after which the genuine frames still
// carry exactly the bytes sent.
func contentPreserving() map[string][]Transform {
	return map[string][]Transform{
		"none":                    nil,
		"reorder":                 {Reorder(7, 4)},
		"duplicate":               {Duplicate(DataSegments())},
		"overlap same":            {Overlap(DataSegments(), OverlapOptions{})},
		"overlap same copy first": {Overlap(DataSegments(), OverlapOptions{CopyFirst: true})},
		"overlap different":       {Overlap(Nth(1, 3), OverlapOptions{Different: true})},
		"overlap different first": {Overlap(Nth(1, 3), OverlapOptions{Different: true, CopyFirst: true})},
		"decoy low ttl":           {Decoy(DataSegments(), WithTTL(1))},
		"decoy bad checksum":      {Decoy(Nth(0, 2), WithBadChecksum())},
		"decoy without ack":       {Decoy(Nth(0), WithoutAck())},
		"fragment in order":       {Fragment(DataSegments(), Fragmentation{Size: 16})},
		"fragment reverse":        {Fragment(DataSegments(), Fragmentation{Size: 24, Order: FragReverse})},
		"fragment shuffled":       {Fragment(AllSegments(), Fragmentation{Size: 8, Order: FragShuffled, Seed: 3})},
		"fragment overlap after":  {Fragment(Nth(0), Fragmentation{Size: 16, Overlap: true, OverlapIndex: 2})},
		"fragment overlap first":  {Fragment(Nth(0), Fragmentation{Size: 16, Overlap: true, OverlapIndex: 2, OverlapFirst: true})},
		"everything": {Reorder(1, 3), Duplicate(Nth(2)), Overlap(Nth(4), OverlapOptions{Different: true}),
			Decoy(Nth(1), WithTTL(2)), Fragment(Nth(3, 5), Fragmentation{Size: 8, Order: FragReverse})},
	}
}

func TestContentPreservingTransformsRoundTrip(t *testing.T) {
	type variant struct {
		name           string
		client, server Endpoint
		link           layers.LinkType
		segSize        int
	}
	variants := []variant{
		{"v4 eth", cli4, srv4, layers.LinkTypeEthernet, 64},
		{"v6 eth", cli6, srv6, layers.LinkTypeEthernet, 64},
		{"v4 raw", cli4, srv4, layers.LinkTypeRaw, 33},
		{"v6 raw 1-byte", cli6, srv6, layers.LinkTypeRaw, 1},
	}
	for _, v := range variants {
		for name, ts := range contentPreserving() {
			t.Run(v.name+"/"+name, func(t *testing.T) {
				o := DefaultSessionOptions()
				o.SegmentSize, o.LinkType = v.segSize, v.link
				s, want := exchange(t, v.client, v.server, o)
				frames := mustFrames(t, s, ts...)
				all := decodeTCP(t, v.link, frames, false)
				for _, sg := range all {
					// A decoy fragment sent first wins a first-copy reassembly
					// and spoils the genuine checksum: a receiver drops it.
					wantOK := !(sg.meta.Decoy && name == "decoy bad checksum") &&
						!(sg.frags > 0 && name == "fragment overlap first")
					if sg.csumOK != wantOK {
						t.Fatalf("frame %+v checksum valid=%v", sg.meta, sg.csumOK)
					}
				}
				genuine := decodeTCP(t, v.link, frames, true)
				equalStreams(t, streams(t, genuine, o.ClientISN, o.ServerISN), want)
			})
		}
	}
}

func TestDecoysCarryDifferentBytesAtTheSameSequence(t *testing.T) {
	s, _ := exchange(t, cli4, srv4, DefaultSessionOptions())
	frames := mustFrames(t, s, Decoy(InMessage(dataplane.ToServer, 1), WithTTL(1)))
	segs := decodeTCP(t, layers.LinkTypeEthernet, frames, false)
	found := false
	for i, sg := range segs {
		if !sg.meta.Decoy {
			continue
		}
		found = true
		orig := segs[i+1]
		if sg.ttl != 1 || orig.ttl != DefaultTTL {
			t.Fatalf("decoy TTL %d, original %d", sg.ttl, orig.ttl)
		}
		if sg.seq != orig.seq || len(sg.payload) != len(orig.payload) || bytes.Equal(sg.payload, orig.payload) {
			t.Fatalf("decoy must cover the original's sequence range with different bytes")
		}
		if sg.meta.Msg != 1 || sg.meta.Dir != dataplane.ToServer {
			t.Fatalf("decoy meta %+v", sg.meta)
		}
	}
	if !found {
		t.Fatal("no decoy emitted")
	}
}

func TestBadChecksumInPlaceIsNotAcknowledged(t *testing.T) {
	o := DefaultSessionOptions()
	o.SegmentSize = 10
	s := mustSession(t, cli4, srv4, o)
	s.Send(dataplane.ToServer, []byte("0123456789abcdefghij0123456789"))
	segs := decodeTCP(t, layers.LinkTypeEthernet, mustFrames(t, s, Modify(Nth(1), WithBadChecksum())), false)
	bad := 0
	for _, sg := range segs {
		if !sg.csumOK {
			bad++
			if string(sg.payload) != "abcdefghij" {
				t.Fatalf("wrong segment corrupted: %q", sg.payload)
			}
		}
		// The server never got bytes 10..19, so it never acknowledges past 10.
		if sg.meta.Dir == dataplane.ToClient && sg.flags&SYN == 0 && sg.ack != o.ClientISN+1+10 {
			t.Fatalf("server acks %d, want the duplicate ACK %d", sg.ack-o.ClientISN-1, 10)
		}
	}
	if bad != 1 {
		t.Fatalf("%d corrupted frames, want 1", bad)
	}
}

func TestWithoutAckClearsTheFlag(t *testing.T) {
	s := mustSession(t, cli4, srv4, DefaultSessionOptions())
	s.Send(dataplane.ToServer, []byte("data"))
	segs := decodeTCP(t, layers.LinkTypeEthernet, mustFrames(t, s, Modify(Nth(0), WithoutAck())), false)
	d := segs[3]
	if d.flags != PSH || d.ack != 0 || string(d.payload) != "data" {
		t.Fatalf("segment flags %v ack %d payload %q", d.flags, d.ack, d.payload)
	}
}

func TestReorderIsDeterministicAndChangesOrder(t *testing.T) {
	o := DefaultSessionOptions()
	o.SegmentSize, o.AckEvery = 10, 1000
	s := mustSession(t, cli4, srv4, o)
	s.Send(dataplane.ToServer, bytes.Repeat([]byte("x"), 200))
	order := func(seed uint64) []uint32 {
		var seqs []uint32
		for _, sg := range decodeTCP(t, layers.LinkTypeEthernet, mustFrames(t, s, Reorder(seed, 5)), false) {
			if len(sg.payload) > 0 {
				seqs = append(seqs, sg.seq-o.ClientISN-1)
			}
		}
		return seqs
	}
	a, b, c := order(1), order(1), order(2)
	if fmt.Sprint(a) != fmt.Sprint(b) {
		t.Fatal("same seed, different order")
	}
	if fmt.Sprint(a) == fmt.Sprint(c) {
		t.Fatal("different seeds, same order")
	}
	for w := 0; w < len(a); w += 5 {
		inOrder := true
		for i := w; i < w+5; i++ {
			inOrder = inOrder && a[i] == uint32(i*10)
			if a[i]/50 != uint32(w/5) {
				t.Fatalf("segment %d moved out of its window: %v", a[i], a)
			}
		}
		if inOrder {
			t.Fatalf("window %d left in order: %v", w/5, a)
		}
	}
}

func TestOverlapCopyCoversTheSecondHalf(t *testing.T) {
	o := DefaultSessionOptions()
	o.SegmentSize = 8
	s := mustSession(t, cli4, srv4, o)
	s.Send(dataplane.ToServer, []byte("ABCDEFGH"))
	for _, copyFirst := range []bool{false, true} {
		segs := decodeTCP(t, layers.LinkTypeEthernet,
			mustFrames(t, s, Overlap(Nth(0), OverlapOptions{Different: true, CopyFirst: copyFirst})), false)
		var data []tcpSeg
		for _, sg := range segs {
			if len(sg.payload) > 0 {
				data = append(data, sg)
			}
		}
		orig, cp := data[0], data[1]
		if copyFirst {
			orig, cp = cp, orig
		}
		if string(orig.payload) != "ABCDEFGH" || orig.meta.Decoy {
			t.Fatalf("copyFirst=%v original %q", copyFirst, orig.payload)
		}
		if cp.seq != orig.seq+4 || string(cp.payload) != "XXXX" || !cp.meta.Decoy {
			t.Fatalf("copyFirst=%v copy at +%d %q decoy=%v", copyFirst, cp.seq-orig.seq, cp.payload, cp.meta.Decoy)
		}
	}
}

func TestDropRemovesSegments(t *testing.T) {
	s, _ := exchange(t, cli4, srv4, DefaultSessionOptions())
	handshake := func(sg Segment, _ int) bool {
		return sg.Flags&SYN != 0 || (sg.Seq == DefaultClientISN+1 && len(sg.Payload) == 0 && sg.Flags == ACK)
	}
	frames := mustFrames(t, s, Drop(handshake))
	segs := decodeTCP(t, layers.LinkTypeEthernet, frames, false)
	if segs[0].flags&SYN != 0 || len(segs[0].payload) == 0 {
		t.Fatalf("capture should start with data, starts with %v", segs[0].flags)
	}
}

func TestLastMarksMessageBoundaries(t *testing.T) {
	o := DefaultSessionOptions()
	o.SegmentSize = 7
	for name, ts := range map[string][]Transform{
		"plain":    nil,
		"reorder":  {Reorder(3, 3)},
		"fragment": {Fragment(DataSegments(), Fragmentation{Size: 8, Order: FragShuffled, Seed: 9})},
	} {
		s, _ := exchange(t, cli4, srv4, o)
		frames := mustFrames(t, s, ts...)
		for _, msg := range []int{0, 1} {
			cut := -1
			for i, f := range frames {
				if f.Meta.Last && f.Meta.Dir == dataplane.ToServer && f.Meta.Msg == msg {
					if cut >= 0 {
						t.Fatalf("%s: two Last frames for message %d", name, msg)
					}
					cut = i
				}
			}
			segs := decodeTCP(t, layers.LinkTypeEthernet, frames[:cut+1], true)
			got := streams(t, segs, o.ClientISN, o.ServerISN)[dataplane.ToServer]
			want := "GET /a HTTP/1.1\r\nHost: example.test\r\n\r\n"
			if msg == 1 {
				want += "POST /b HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello"
			}
			if string(got) != want {
				t.Fatalf("%s: cut after message %d holds %q", name, msg, got)
			}
		}
	}
}

func TestSameInputsGiveIdenticalBytes(t *testing.T) {
	build := func() []Frame {
		s, _ := exchange(t, cli6, srv6, DefaultSessionOptions())
		return mustFrames(t, s, Reorder(5, 3), Duplicate(Nth(1)),
			Fragment(Nth(0), Fragmentation{Size: 16, Order: FragShuffled, Seed: 4, Overlap: true, OverlapIndex: 2}))
	}
	a, b := build(), build()
	if len(a) != len(b) {
		t.Fatalf("%d vs %d frames", len(a), len(b))
	}
	for i := range a {
		if !bytes.Equal(a[i].Data, b[i].Data) || !a[i].CI.Timestamp.Equal(b[i].CI.Timestamp) || a[i].Meta != b[i].Meta {
			t.Fatalf("frame %d differs", i)
		}
	}
}
