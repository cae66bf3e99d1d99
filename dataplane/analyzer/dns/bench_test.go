package dns

import (
	"testing"

	"github.com/patchgate/patchgate/dataplane"
	"github.com/patchgate/patchgate/dataplane/analyzer"
)

type nopSink struct{}

func (nopSink) Event(analyzer.Event)                          {}
func (nopSink) Boundary(dataplane.Direction)                  {}
func (nopSink) Violation(dataplane.Direction, string, string) {}

// BenchmarkUDPResponse parses a typical response with eight records.
func BenchmarkUDPResponse(b *testing.B) {
	msg := fullResponse()
	a := NewUDP()
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	for b.Loop() {
		_ = a.Feed(dataplane.ToClient, msg, nopSink{})
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/message")
}

// BenchmarkTCPStream parses a stream of responses delivered in 1460-byte
// segments, so most messages are reassembled across segments.
func BenchmarkTCPStream(b *testing.B) {
	var stream []byte
	for range 50 {
		stream = append(stream, tcpFrame(fullResponse())...)
	}
	a := NewTCP()
	b.SetBytes(int64(len(stream)))
	b.ReportAllocs()
	for b.Loop() {
		for i := 0; i < len(stream); i += 1460 {
			_ = a.Feed(dataplane.ToClient, stream[i:min(i+1460, len(stream))], nopSink{})
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*50), "ns/message")
}

// BenchmarkSIGRedResponse parses a 65 KB response carrying one huge SIG record.
func BenchmarkSIGRedResponse(b *testing.B) {
	msg := cat(hdr(1, flagsResponse, 1, 1, 0, 0), question(wname("a.example"), TypeSIG, 1),
		rr(ptr(12), TypeSIG, 1, 0, sigRdata(TypeA, ptr(12), 65000)))
	frame := tcpFrame(msg)
	a := NewTCP()
	b.SetBytes(int64(len(frame)))
	b.ReportAllocs()
	for b.Loop() {
		_ = a.Feed(dataplane.ToClient, frame, nopSink{})
	}
}
