package bus

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/patchgate/patchgate/dataplane/flow"
)

// BenchmarkPublishAcrossRoute measures the checkpoints per second a publisher
// sustains into its embedded server with the subscribing cache on another
// server of the cluster (one route hop), with ~200-byte records over 10,000
// flows. The publisher is paced so that its queue never overflows: the figure
// is delivered throughput, not drops.
//
//	go test -run '^$' -bench PublishAcrossRoute -benchtime 200000x ./bus/
func BenchmarkPublishAcrossRoute(b *testing.B) {
	for _, size := range []int{200, 1000} {
		b.Run(fmt.Sprintf("record=%dB", size), func(b *testing.B) {
			benchPublish(b, size)
		})
	}
}

func benchPublish(b *testing.B, size int) {
	buses := startCluster(b, 2, func(_ int, c *Config) {
		c.Logf = nil
		c.FlushInterval = DefaultFlushInterval
		c.LookupTimeout = DefaultLookupTimeout
	})
	pub, sub := buses[0], buses[1]
	const flows = 10000
	keys := make([]flow.Key, flows)
	recs := make([][]byte, flows)
	for i := range keys {
		keys[i] = testKey(i)
		recs[i] = testRecord(keys[i], 1, 1, size)
	}
	h0p, h0s := pub.Health(), sub.Health()
	q := pub.Publisher().q
	b.SetBytes(int64(size))
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		for len(q) > cap(q)/2 {
			runtime.Gosched()
		}
		pub.Publish(keys[i%flows], recs[i%flows])
	}
	// Delivered: stored or found equal-or-older on the subscriber, or
	// replaced within a batch on the publisher.
	deadline := time.Now().Add(time.Minute)
	var got uint64
	for {
		hp, hs := pub.Health(), sub.Health()
		got = hs.Received - h0s.Received + hs.Stale - h0s.Stale + hp.Coalesced - h0p.Coalesced
		if got >= uint64(b.N) || time.Now().After(deadline) {
			break
		}
		if hp.Dropped != h0p.Dropped {
			b.Fatalf("publisher dropped %d records", hp.Dropped-h0p.Dropped)
		}
		time.Sleep(time.Millisecond)
	}
	el := time.Since(start)
	b.StopTimer()
	hp := pub.Health()
	if got < uint64(b.N) {
		b.Fatalf("delivered %d of %d within a minute", got, b.N)
	}
	b.ReportMetric(float64(b.N)/el.Seconds(), "checkpoints/s")
	b.ReportMetric(float64(hp.BytesOut-h0p.BytesOut)/el.Seconds(), "wire-bytes/s")
	b.ReportMetric(float64(hp.Published-h0p.Published)/float64(max(hp.BatchesOut-h0p.BatchesOut, 1)), "records/batch")
}

// BenchmarkResumeCacheHit is the packet-path cost of a pickup answered by the
// local cache.
func BenchmarkResumeCacheHit(b *testing.B) {
	c := testConfig(b, "bench")
	c.Logf = nil
	c.Server.ClusterPort = 0
	bus := openBus(b, c)
	k := testKey(1)
	bus.cache.offer(testRecord(k, 1, 1, 200))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if bus.Resume(k) == nil {
			b.Fatal("miss")
		}
	}
}
