package gen

import (
	"testing"

	"github.com/patchgate/patchgate/dataplane"
)

func BenchmarkSessionFrames(b *testing.B) {
	s, err := NewTCPSession(cli4, srv4, DefaultSessionOptions())
	if err != nil {
		b.Fatal(err)
	}
	payload := make([]byte, 64<<10)
	s.Send(dataplane.ToServer, payload[:1024])
	s.Send(dataplane.ToClient, payload)
	s.Close(dataplane.ToServer)
	b.SetBytes(int64(1024 + len(payload)))
	b.ReportAllocs()
	var frames int
	for b.Loop() {
		f, err := s.Frames()
		if err != nil {
			b.Fatal(err)
		}
		frames = len(f)
	}
	b.ReportMetric(float64(frames)*float64(b.N)/b.Elapsed().Seconds(), "frames/s")
}

func BenchmarkMix(b *testing.B) {
	var c *Capture
	for b.Loop() {
		var err error
		if c, _, err = Mix(MixOptions{Seed: 1}); err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(c.Bytes())
	b.ReportMetric(float64(len(c.Frames)), "frames/op")
}
