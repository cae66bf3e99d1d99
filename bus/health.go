package bus

import (
	"sync/atomic"
	"time"
)

// Health is a snapshot of the bus: whether the node's failover protection is
// working, and the counters the node exports as metrics. Counters are
// cumulative since Open.
type Health struct {
	// Connected is true while the client is connected to a NATS server.
	Connected bool
	// Degraded is true when checkpoints were dropped within the last
	// HealthInterval or the client is disconnected: flows of this node may not
	// survive its failure.
	Degraded bool
	// Reason says why Degraded is set ("" when healthy).
	Reason string
	// Routes is the number of routes of the embedded server to its peers
	// (-1 with an external cluster).
	Routes int

	// Checkpoints: accepted by Publish and sent in a batch (Published),
	// tombstones sent, dropped (queue full, disconnected or publish error),
	// replaced by a newer one of the same flow before sending (Coalesced),
	// received from peers and stored (Received), rejected by validation
	// (Invalid), older than the cached one (Stale).
	Published, Tombstones, Dropped, Coalesced uint64
	Received, Invalid, Stale                  uint64
	// SlowConsumerDrops counts messages the client discarded because this
	// node processed received batches or lookups too slowly.
	SlowConsumerDrops uint64
	// Batches and bytes sent and received on checkpoint subjects.
	BatchesOut, BatchesIn uint64
	BytesOut, BytesIn     uint64

	// Cache state.
	CacheEntries int
	CacheBytes   int64
	// CacheEvicted counts entries evicted for space, CacheExpired idle ones.
	CacheEvicted, CacheExpired uint64

	// Pickup outcomes of Resume and Lookup: found in the local cache, answered
	// by a peer, no node had it, no answer within the timeout. BusHits is
	// BusHitsLive (a peer answered from its engine) plus BusHitsCached (from
	// a peer's cache).
	CacheHits, BusHits, Misses, Timeouts uint64
	BusHitsLive, BusHitsCached           uint64
	// DrainLookups counts Resume calls that found a record published by a
	// draining peer and asked the bus for its live state first.
	DrainLookups uint64
	// LookupsServed counts lookups this node's responder answered with a
	// record.
	LookupsServed uint64

	// Hold is the distribution of the time Resume held a flow's packets.
	Hold Histogram
}

// Histogram is a cumulative histogram in the Prometheus layout: Counts[i]
// observations were <= Bounds[i] seconds; Count includes those above the last
// bound. It maps directly onto prometheus.MustNewConstHistogram.
type Histogram struct {
	Bounds []float64
	Counts []uint64
	Count  uint64
	Sum    float64
}

// holdBounds are the upper bounds of the hold-time buckets, in seconds.
var holdBounds = []float64{0.0001, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1}

// histogram records durations lock-free.
type histogram struct {
	buckets [10]atomic.Uint64 // len(holdBounds)+1, the last is +Inf
	count   atomic.Uint64
	sumNs   atomic.Uint64
}

func (h *histogram) observe(d time.Duration) {
	s := d.Seconds()
	i := 0
	for i < len(holdBounds) && s > holdBounds[i] {
		i++
	}
	h.buckets[i].Add(1)
	h.count.Add(1)
	h.sumNs.Add(uint64(d.Nanoseconds()))
}

func (h *histogram) snapshot() Histogram {
	out := Histogram{Bounds: append([]float64(nil), holdBounds...), Counts: make([]uint64, len(holdBounds))}
	var cum uint64
	for i := range holdBounds {
		cum += h.buckets[i].Load()
		out.Counts[i] = cum
	}
	out.Count = h.count.Load()
	out.Sum = float64(h.sumNs.Load()) / 1e9
	return out
}

// stats are the bus counters shared by its parts.
type stats struct {
	published, tombstones, dropped, coalesced atomic.Uint64
	received, invalid, stale                  atomic.Uint64
	batchesOut, batchesIn                     atomic.Uint64
	bytesOut, bytesIn                         atomic.Uint64
	cacheHits, busLive, busCached             atomic.Uint64
	misses, timeouts, drainLookups            atomic.Uint64
	served                                    atomic.Uint64
	// lastDrop is the UnixNano time of the latest drop (0: never).
	lastDrop atomic.Int64
	hold     histogram
}

// drop counts n dropped checkpoints.
func (s *stats) drop(n int) {
	s.dropped.Add(uint64(n))
	s.lastDrop.Store(time.Now().UnixNano())
}

// count counts one lookup or Resume outcome.
func (s *stats) count(o outcome) {
	switch o {
	case outCacheHit:
		s.cacheHits.Add(1)
	case outBusLive:
		s.busLive.Add(1)
	case outBusCached:
		s.busCached.Add(1)
	case outMiss:
		s.misses.Add(1)
	case outTimeout:
		s.timeouts.Add(1)
	}
}

func (s *stats) fill(h *Health) {
	h.Published = s.published.Load()
	h.Tombstones = s.tombstones.Load()
	h.Dropped = s.dropped.Load()
	h.Coalesced = s.coalesced.Load()
	h.Received = s.received.Load()
	h.Invalid = s.invalid.Load()
	h.Stale = s.stale.Load()
	h.BatchesOut = s.batchesOut.Load()
	h.BatchesIn = s.batchesIn.Load()
	h.BytesOut = s.bytesOut.Load()
	h.BytesIn = s.bytesIn.Load()
	h.CacheHits = s.cacheHits.Load()
	h.BusHitsLive = s.busLive.Load()
	h.BusHitsCached = s.busCached.Load()
	h.BusHits = h.BusHitsLive + h.BusHitsCached
	h.DrainLookups = s.drainLookups.Load()
	h.Misses = s.misses.Load()
	h.Timeouts = s.timeouts.Load()
	h.LookupsServed = s.served.Load()
	h.Hold = s.hold.snapshot()
}
