package evasion

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/google/gopacket/layers"

	"github.com/patchgate/patchgate/dataplane/engine"
	"github.com/patchgate/patchgate/dataplane/gen"
)

// benchFlood feeds b.N flood packets from src to an engine with the given
// caps and reports packets per second.
func benchFlood(b *testing.B, src *floodSource, mod func(*engine.Config)) {
	e := newEngine(b, catalog(b), mod, nil)
	w := e.NewWorker()
	frames := make([][]byte, 4096)
	for i := range frames {
		frames[i] = src.next()
	}
	ts := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		ts = ts.Add(time.Microsecond)
		w.Process(layers.LinkTypeEthernet, frames[i%len(frames)], ts)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "pkts/s")
}

// BenchmarkSYNFlood: SYNs from random sources into a 1000-flow table that
// evicts the oldest half-open flow for every new one.
func BenchmarkSYNFlood(b *testing.B) {
	s, err := gen.NewTCPSession(gen.EP("198.18.0.1:1024"), gen.EP("198.51.100.20:80"), gen.DefaultSessionOptions())
	if err != nil {
		b.Fatal(err)
	}
	syns, err := s.Frames()
	if err != nil {
		b.Fatal(err)
	}
	src := &floodSource{tmpl: syns[0].Data, l3: 14, rng: rand.New(rand.NewPCG(1, 2))}
	benchFlood(b, src, func(c *engine.Config) { c.Flow.MaxFlows = 1000; c.Flow.MaxBytes = 1 << 20 })
}

// BenchmarkFragmentFlood: first fragments of datagrams never completed, into
// a reassembler holding 64 partial datagrams.
func BenchmarkFragmentFlood(b *testing.B) {
	benchFlood(b, fragTrainSource(b, 3), fragFloodConfig)
}
