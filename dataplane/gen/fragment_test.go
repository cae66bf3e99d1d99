package gen

import (
	"bytes"
	"strings"
	"testing"

	"github.com/google/gopacket/layers"

	"github.com/patchgate/patchgate/dataplane"
)

// fragsOf decodes the frames of segment seg.
func fragsOf(t *testing.T, frames []Frame, seg int) []ipPkt {
	t.Helper()
	var out []ipPkt
	for _, f := range frames {
		if f.Meta.Segment == seg {
			out = append(out, decodeFrame(t, layers.LinkTypeEthernet, f))
		}
	}
	return out
}

func TestIPv4FragmentFields(t *testing.T) {
	s := mustSession(t, cli4, srv4, DefaultSessionOptions())
	s.Send(dataplane.ToServer, bytes.Repeat([]byte("a"), 100)) // 32-byte header + 100 = 132 bytes
	frames := mustFrames(t, s, Fragment(Nth(0), Fragmentation{Size: 40}))
	fr := fragsOf(t, frames, 3)
	if len(fr) != 4 {
		t.Fatalf("%d fragments, want 4", len(fr))
	}
	for i, p := range fr {
		if p.off != i*40 || p.more != (i < 3) || p.id != fr[0].id || p.v4DF || p.meta.Fragment != i {
			t.Fatalf("fragment %d: off %d more %v id %d DF %v", i, p.off, p.more, p.id, p.v4DF)
		}
	}
	if len(fr[3].l4) != 12 {
		t.Fatalf("last fragment carries %d bytes, want 12", len(fr[3].l4))
	}
	// The unfragmented segments of the session keep DF and distinct IDs.
	other := fragsOf(t, frames, 2)[0]
	if !other.v4DF || other.id == fr[0].id {
		t.Fatalf("unfragmented packet DF %v id %d", other.v4DF, other.id)
	}
}

func TestFragmentOrders(t *testing.T) {
	s := mustSession(t, cli4, srv4, DefaultSessionOptions())
	s.Send(dataplane.ToServer, bytes.Repeat([]byte("a"), 200))
	offsets := func(f Fragmentation) []int {
		var o []int
		for _, p := range fragsOf(t, mustFrames(t, s, Fragment(Nth(0), f)), 3) {
			o = append(o, p.off)
		}
		return o
	}
	rev := offsets(Fragmentation{Size: 64, Order: FragReverse})
	if len(rev) != 4 || rev[0] != 192 || rev[3] != 0 {
		t.Fatalf("reverse order %v", rev)
	}
	a, b := offsets(Fragmentation{Size: 8, Order: FragShuffled, Seed: 1}), offsets(Fragmentation{Size: 8, Order: FragShuffled, Seed: 1})
	if len(a) != 29 || !equalInts(a, b) {
		t.Fatalf("shuffle not deterministic: %v %v", a, b)
	}
	sorted := true
	for i := range a {
		sorted = sorted && a[i] == i*8
	}
	if sorted {
		t.Fatal("shuffled fragments came out in order")
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestOverlappingDecoyFragment(t *testing.T) {
	for _, first := range []bool{true, false} {
		s := mustSession(t, cli6, srv6, DefaultSessionOptions())
		s.Send(dataplane.ToServer, []byte("GET /vulnerable HTTP/1.1\r\n\r\n"))
		frames := mustFrames(t, s, Fragment(Nth(0), Fragmentation{Size: 16, Overlap: true, OverlapIndex: 2, OverlapFirst: first}))
		fr := fragsOf(t, frames, 3)
		if len(fr) != 5 { // 60 bytes in 16-byte fragments, plus the decoy
			t.Fatalf("%d fragments, want 5", len(fr))
		}
		var genuine, decoy ipPkt
		for i, p := range fr {
			if p.off != 32 {
				continue
			}
			if p.meta.Decoy {
				decoy = p
				if (i == 2) != first {
					t.Fatalf("first=%v: decoy at position %d", first, i)
				}
			} else {
				genuine = p
			}
		}
		if decoy.id != genuine.id || len(decoy.l4) != len(genuine.l4) || bytes.Equal(decoy.l4, genuine.l4) || decoy.more != genuine.more {
			t.Fatalf("decoy %q must overlap genuine %q exactly with different bytes", decoy.l4, genuine.l4)
		}
	}
}

func TestIPv6FragmentHeaders(t *testing.T) {
	s := mustSession(t, cli6, srv6, DefaultSessionOptions())
	s.Send(dataplane.ToServer, bytes.Repeat([]byte("b"), 50))
	s.Send(dataplane.ToServer, []byte("atomic"))
	frames := mustFrames(t, s,
		Fragment(InMessage(dataplane.ToServer, 0), Fragmentation{Size: 32}),
		Fragment(InMessage(dataplane.ToServer, 1), Fragmentation{Atomic: true}))
	var first, atomic []ipPkt
	for _, f := range frames {
		p := decodeFrame(t, layers.LinkTypeEthernet, f)
		switch {
		case f.Meta.Msg == 0 && p.fragmented:
			first = append(first, p)
		case f.Meta.Msg == 1 && p.fragmented:
			atomic = append(atomic, p)
		}
	}
	if len(first) != 3 || first[0].proto != layers.IPProtocolTCP || first[1].off != 32 || !first[1].more || first[2].more {
		t.Fatalf("fragments of message 0: %+v", first)
	}
	if len(atomic) != 1 || atomic[0].off != 0 || atomic[0].more || first[0].id == atomic[0].id {
		t.Fatalf("atomic fragment: %+v", atomic)
	}
	segs := decodeTCP(t, layers.LinkTypeEthernet, frames, true)
	if got := streams(t, segs, DefaultClientISN, DefaultServerISN)[0]; string(got) != strings.Repeat("b", 50)+"atomic" {
		t.Fatalf("reassembled %q", got)
	}
}

func TestFragmentationErrors(t *testing.T) {
	for _, c := range []struct {
		name     string
		client   Endpoint
		server   Endpoint
		f        Fragmentation
		contains string
	}{
		{"size not multiple of 8", cli4, srv4, Fragmentation{Size: 12}, "multiple of 8"},
		{"zero size", cli4, srv4, Fragmentation{}, "multiple of 8"},
		{"atomic on IPv4", cli4, srv4, Fragmentation{Atomic: true}, "IPv6"},
		{"overlap index out of range", cli4, srv4, Fragmentation{Size: 64, Overlap: true, OverlapIndex: 5}, "OverlapIndex"},
		{"overlap of header only", cli4, srv4, Fragmentation{Size: 8, Overlap: true, OverlapIndex: 1}, "no payload"},
	} {
		s := mustSession(t, c.client, c.server, DefaultSessionOptions())
		s.Send(dataplane.ToServer, []byte("payload"))
		_, err := s.Frames(Fragment(Nth(0), c.f))
		if err == nil || !strings.Contains(err.Error(), c.contains) || !strings.HasPrefix(err.Error(), "dataplane/gen: segment 3: ") {
			t.Errorf("%s: error %v", c.name, err)
		}
	}
}
