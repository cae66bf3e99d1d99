package dns

import (
	"reflect"
	"testing"

	"github.com/patchgate/patchgate/dataplane"
)

func fuzzSeeds(f *testing.F) {
	f.Add(fullResponse(), uint16(0))
	f.Add(tcpStream(), uint16(30))
	f.Add(cat(hdr(1, flagsQuery, 1, 0, 0, 1), question(wname("example.com"), TypeTKEY, 255),
		rr(ptr(12), TypeTXT, 255, 0, []byte{1, 'x'})), uint16(3))
	f.Add(cat(hdr(1, flagsResponse, 1, 1, 0, 0), question(wname("a"), TypeSIG, 1),
		rr(ptr(12), TypeSIG, 1, 0, sigRdata(1, ptr(12), 40))), uint16(1))
}

// FuzzDNS feeds arbitrary bytes as a UDP datagram and as a TCP stream split at
// an arbitrary point with the state exported and imported there. The analyzer
// must not panic, must respect its limits, and the split stream must give the
// events of the whole one.
func FuzzDNS(f *testing.F) {
	fuzzSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte, split uint16) {
		if len(data) > 16<<10 {
			// Keeps each run fast: the recording sink formats every event.
			return
		}
		s := parseUDP(dataplane.ToClient, data)
		if len(s.msgs) != 1 || s.boundaries != 1 {
			t.Fatalf("udp: %d messages", len(s.msgs))
		}
		m := s.msgs[0]
		if len(m.RRs) > MaxRRs || len(m.RRs) > m.RRCount || len(s.recs) != len(m.RRs) || len(m.Questions) > MaxQuestions ||
			m.MaxNameLength > MaxNameLength || m.MaxNameJumps > MaxNameJumps || m.Malformed != (m.MalformedReason != "") ||
			m.Malformed != (len(s.violations) == 1) {
			t.Fatalf("udp invariants broken: %+v", m)
		}
		for _, r := range m.RRs {
			if r.Name == "" || len(r.Name) > 4*MaxNameLength {
				t.Fatalf("bad owner name %q", r.Name)
			}
		}

		whole := &recSink{}
		feedAll(NewTCP(), dataplane.ToServer, whole, data)
		k := int(split) % (len(data) + 1)
		a, s2 := NewTCP(), &recSink{}
		feedAll(a, dataplane.ToServer, s2, data[:k])
		b := NewTCP()
		if err := b.UnmarshalState(a.MarshalState(nil)); err != nil {
			t.Fatal(err)
		}
		feedAll(b, dataplane.ToServer, s2, data[k:])
		if !reflect.DeepEqual(s2.log, whole.log) {
			t.Fatalf("split at %d differs", k)
		}
		if n := cap(b.dirs[0].buf); n > MaxMessageSize {
			t.Fatalf("buffer %d", n)
		}
		_ = DetectUDP(probe(53, data))
		_ = DetectTCP(probe(53, data))
	})
}

// FuzzState feeds arbitrary state records: UnmarshalState must not panic, and
// an accepted record must round-trip.
func FuzzState(f *testing.F) {
	a := NewTCP()
	feedAll(a, dataplane.ToClient, &recSink{}, tcpStream()[:50])
	f.Add(a.MarshalState(nil), true)
	f.Add(NewUDP().MarshalState(nil), false)
	f.Fuzz(func(t *testing.T, st []byte, tcp bool) {
		a := NewUDP()
		if tcp {
			a = NewTCP()
		}
		if err := a.UnmarshalState(st); err != nil {
			return
		}
		out := a.MarshalState(nil)
		b := NewUDP()
		if tcp {
			b = NewTCP()
		}
		if err := b.UnmarshalState(out); err != nil {
			t.Fatalf("re-import: %v", err)
		}
		if again := b.MarshalState(nil); !reflect.DeepEqual(again, out) {
			t.Fatal("state not stable")
		}
		// The restored analyzer must keep working.
		feedAll(b, dataplane.ToClient, &recSink{}, tcpStream())
	})
}
