package tls

import (
	"testing"

	"github.com/patchgate/patchgate/dataplane"
	"github.com/patchgate/patchgate/dataplane/analyzer"
)

type nopSink struct{}

func (nopSink) Event(analyzer.Event)                          {}
func (nopSink) Boundary(dataplane.Direction)                  {}
func (nopSink) Violation(dataplane.Direction, string, string) {}

// BenchmarkHandshake parses a whole TLS 1.2 handshake on a fresh analyzer.
func BenchmarkHandshake(b *testing.B) {
	conv := tls12Handshake(0x0303, suiteAES128SHA)
	total := 0
	for _, c := range conv {
		total += len(c.data)
	}
	b.SetBytes(int64(total))
	b.ReportAllocs()
	for b.Loop() {
		a := New()
		for _, c := range conv {
			if err := a.Feed(c.dir, c.data, nopSink{}); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// BenchmarkEncryptedRecords measures the steady state: 16 KiB application
// data records arriving in 1448-byte segments.
func BenchmarkEncryptedRecords(b *testing.B) {
	a := New()
	for _, c := range tls12Handshake(0x0303, suiteAES128SHA) {
		if err := a.Feed(c.dir, c.data, nopSink{}); err != nil {
			b.Fatal(err)
		}
	}
	var stream []byte
	for range 8 {
		stream = append(stream, rec(ContentApplicationData, 0x0303, opaque(16384))...)
	}
	b.SetBytes(int64(len(stream)))
	b.ReportAllocs()
	segs := 0
	for b.Loop() {
		for p := stream; len(p) > 0; {
			n := min(len(p), 1448)
			if err := a.Feed(dataplane.ToClient, p[:n], nopSink{}); err != nil {
				b.Fatal(err)
			}
			p = p[n:]
			segs++
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(segs), "ns/segment")
}

// BenchmarkMarshalState exports the state at a record boundary.
func BenchmarkMarshalState(b *testing.B) {
	a := New()
	for _, c := range tls12Handshake(0x0303, suiteAES128SHA) {
		_ = a.Feed(c.dir, c.data, nopSink{})
	}
	buf := a.MarshalState(nil)
	b.ReportAllocs()
	for b.Loop() {
		buf = a.MarshalState(buf[:0])
	}
	b.ReportMetric(float64(len(buf)), "state-bytes")
}
