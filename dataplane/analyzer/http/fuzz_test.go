package http

import (
	"bytes"
	"reflect"
	"testing"

	"github.com/patchgate/patchgate/dataplane"
)

// fuzzConv turns fuzz input into a conversation: the first cut bytes go to the
// server, the rest to the client.
func fuzzConv(data []byte, cut uint16) []chunk {
	n := int(cut) % (len(data) + 1)
	return []chunk{{dataplane.ToServer, string(data[:n])}, {dataplane.ToClient, string(data[n:])}}
}

// playSegments feeds every chunk in pieces of seg bytes.
func playSegments(t testing.TB, cfg Config, conv []chunk, seg int) []record {
	a := newAnalyzer(t, cfg)
	var p player
	for _, c := range conv {
		b := []byte(c.data)
		for len(b) > 0 {
			n := min(seg, len(b))
			p.feed(a, c.dir, b[:n])
			b = b[n:]
		}
	}
	p.end(a)
	return p.rec.recs
}

// FuzzHTTP feeds arbitrary bytes to both directions (with small limits so that
// every limit is reachable) and checks that the analyzer never panics, that
// segmentation does not change the outcome, and that a checkpoint taken at an
// arbitrary byte resumes exactly.
func FuzzHTTP(f *testing.F) {
	for _, tc := range cases() {
		var srv, cli bytes.Buffer
		for _, c := range tc.conv {
			if c.dir == dataplane.ToServer {
				srv.WriteString(c.data)
			} else {
				cli.WriteString(c.data)
			}
		}
		f.Add(append(srv.Bytes(), cli.Bytes()...), uint16(srv.Len()), uint8(3), uint16(srv.Len()/2))
	}
	f.Fuzz(func(t *testing.T, data []byte, cut uint16, seg uint8, at uint16) {
		if len(data) > 4096 {
			return
		}
		cfg := testConfig()
		conv := fuzzConv(data, cut)
		want := playWhole(t, cfg, conv)
		if got := playSegments(t, cfg, conv, int(seg%16)+1); !reflect.DeepEqual(got, want) {
			t.Fatalf("segments of %d bytes differ:\n%s", seg%16+1, diffSummaries(want, got))
		}
		k := int(at) % (len(data) + 1)
		if got := playHandover(t, cfg, conv, k); !reflect.DeepEqual(got, want) {
			t.Fatalf("handover at %d differs:\n%s", k, diffSummaries(want, got))
		}
	})
}

// FuzzUnmarshalState checks that arbitrary state records never panic the
// analyzer, and that an accepted record is restored exactly and stays usable.
func FuzzUnmarshalState(f *testing.F) {
	for _, tc := range cases()[:20] {
		states := statesOf(&testing.T{}, tc)
		for i := 0; i < len(states); i += 11 {
			f.Add(states[i])
		}
	}
	f.Fuzz(func(t *testing.T, rec []byte) {
		a := newAnalyzer(t, testConfig())
		if a.UnmarshalState(rec) != nil {
			return
		}
		st := a.MarshalState(nil)
		b := newAnalyzer(t, testConfig())
		if err := b.UnmarshalState(st); err != nil {
			t.Fatalf("re-exported state refused: %v", err)
		}
		if again := b.MarshalState(nil); !bytes.Equal(again, st) {
			t.Fatalf("state not restored exactly")
		}
		var sink recorder
		for _, d := range []dataplane.Direction{dataplane.ToServer, dataplane.ToClient} {
			b.Feed(d, []byte("0\r\n\r\nGET /x HTTP/1.1\r\nA: b\r\n c\r\n\r\nHTTP/1.1 200 OK\r\n\r\n"), &sink)
			b.Gap(d, 3, &sink)
			b.Feed(d, []byte("x\r\n\r\n"), &sink)
			b.End(d, &sink)
		}
	})
}
