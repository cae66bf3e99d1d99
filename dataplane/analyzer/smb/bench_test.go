package smb

import (
	"testing"

	"github.com/patchgate/patchgate/dataplane"
	"github.com/patchgate/patchgate/dataplane/analyzer"
)

type nopSink struct{ events int }

func (s *nopSink) Event(analyzer.Event)                          { s.events++ }
func (s *nopSink) Boundary(dataplane.Direction)                  {}
func (s *nopSink) Violation(dataplane.Direction, string, string) {}

// feedSegments feeds b in MSS-sized pieces.
func feedSegments(b *testing.B, a *Analyzer, dir dataplane.Direction, data []byte, s analyzer.Sink) {
	for len(data) > 0 {
		n := min(len(data), 1460)
		if err := a.Feed(dir, data[:n], s); err != nil {
			b.Fatal(err)
		}
		data = data[n:]
	}
}

// BenchmarkWriteStream measures throughput on 1 MiB SMB2 WRITEs.
func BenchmarkWriteStream(b *testing.B) {
	msg := nb(writeReq(h2{mid: 1}, 0, make([]byte, 1<<20)))
	a, s := New(), &nopSink{}
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		feedSegments(b, a, dataplane.ToServer, msg, s)
	}
}

// BenchmarkSmallMessages measures the cost per message of compounded small
// requests (the header-parsing path).
func BenchmarkSmallMessages(b *testing.B) {
	msg := nb(compound(h2{cmd: 5, mid: 1}.bytes(), readReq(h2{mid: 2}, 4096, 0), h2{cmd: 6, mid: 3}.bytes()))
	a, s := New(), &nopSink{}
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		feedSegments(b, a, dataplane.ToServer, msg, s)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(3*b.N), "ns/message")
}

// BenchmarkTransFragments measures SMB1 transaction aggregation with the FEA walk.
func BenchmarkTransFragments(b *testing.B) {
	k := k1{mid: 1}
	data := feaList(-1, fea("user.a", make([]byte, 3000)), fea("user.b", make([]byte, 3000)))
	msg := cat(nb(trans2Primary(k, 0, uint16(len(data)), []uint16{trans2Open2}, nil, data[:3000])),
		nb(trans2Secondary(k, 0, uint16(len(data)), 0, 3000, nil, data[3000:])))
	a, s := New(), &nopSink{}
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		feedSegments(b, a, dataplane.ToServer, msg, s)
	}
}

// BenchmarkMarshalState measures a checkpoint of an analyzer mid-transaction.
func BenchmarkMarshalState(b *testing.B) {
	s := streams()["eternalblue"]
	a, r := New(), &nopSink{}
	_ = a.Feed(s[0].dir, s[0].data, r)
	_ = a.Feed(s[1].dir, s[1].data[:100], r)
	buf := a.MarshalState(nil)
	b.ReportAllocs()
	b.ReportMetric(float64(len(buf)), "bytes/state")
	for i := 0; i < b.N; i++ {
		buf = a.MarshalState(buf[:0])
	}
}
