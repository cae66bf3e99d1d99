package node

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/patchgate/patchgate/bus"
)

// busCollector exports the flow-state bus's Health as Prometheus metrics at
// scrape time (registered only when the bus is enabled).
type busCollector struct {
	b *bus.Bus

	checkpoints, batches, bytes, cacheEntries, cacheBytes *prometheus.Desc
	cacheRemoved, pickups, served, hold, healthy, routes  *prometheus.Desc
	slow, busHits, drainLookups                           *prometheus.Desc
}

func newBusCollector(b *bus.Bus) *busCollector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("patchgate_bus_"+name, help, labels, nil)
	}
	return &busCollector{
		b: b,
		checkpoints: d("checkpoints_total", "Flow checkpoints by outcome: published, tombstones, dropped (queue full or bus down), "+
			"coalesced (replaced before sending), received (cached from peers), invalid, stale.", "outcome"),
		batches:      d("batches_total", "Checkpoint batches sent (out) and received (in).", "dir"),
		bytes:        d("bytes_total", "Bytes of checkpoint batches sent (out) and received (in).", "dir"),
		cacheEntries: d("cache_entries", "Checkpoints in the cache."),
		cacheBytes:   d("cache_bytes", "Accounted memory of the checkpoint cache."),
		cacheRemoved: d("cache_removed_total", "Cache entries removed, by reason (evicted, expired).", "reason"),
		pickups: d("pickups_total", "Lookups of unknown mid-stream flows by outcome (cache_hit, bus_hit, miss, timeout); "+
			"a miss or timeout falls back to engine.midstream.", "outcome"),
		served:  d("lookups_served_total", "Peers' lookups this node answered with a checkpoint."),
		hold:    d("hold_seconds", "Time the node held a flow's packets while looking up its checkpoint."),
		healthy: d("healthy", "1 when failover protection works, 0 when degraded (disconnected, missing routes or recent drops)."),
		routes:  d("routes", "Routes of the embedded server to peer servers (-1 with an external cluster)."),
		slow:    d("slow_consumer_drops_total", "Bus messages discarded because this node processed them too slowly."),
		busHits: d("bus_hits_total", "Pickups answered by a peer (outcome bus_hit of pickups_total), by reply: live "+
			"(from the engine of the node holding the flow) or cached (from a peer's cache).", "reply"),
		drainLookups: d("drain_lookups_total", "Pickups whose cached checkpoint came from a draining peer, "+
			"refreshed by a lookup of that peer's live state."),
	}
}

// Describe implements prometheus.Collector.
func (c *busCollector) Describe(ch chan<- *prometheus.Desc) { prometheus.DescribeByCollect(c, ch) }

// Collect implements prometheus.Collector.
func (c *busCollector) Collect(ch chan<- prometheus.Metric) {
	h := c.b.Health()
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge := func(d *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v)
	}
	for _, o := range []struct {
		name string
		v    uint64
	}{{"published", h.Published}, {"tombstones", h.Tombstones}, {"dropped", h.Dropped}, {"coalesced", h.Coalesced},
		{"received", h.Received}, {"invalid", h.Invalid}, {"stale", h.Stale}} {
		counter(c.checkpoints, o.v, o.name)
	}
	counter(c.batches, h.BatchesOut, "out")
	counter(c.batches, h.BatchesIn, "in")
	counter(c.bytes, h.BytesOut, "out")
	counter(c.bytes, h.BytesIn, "in")
	gauge(c.cacheEntries, float64(h.CacheEntries))
	gauge(c.cacheBytes, float64(h.CacheBytes))
	counter(c.cacheRemoved, h.CacheEvicted, "evicted")
	counter(c.cacheRemoved, h.CacheExpired, "expired")
	counter(c.pickups, h.CacheHits, "cache_hit")
	counter(c.pickups, h.BusHits, "bus_hit")
	counter(c.pickups, h.Misses, "miss")
	counter(c.pickups, h.Timeouts, "timeout")
	counter(c.served, h.LookupsServed)
	counter(c.busHits, h.BusHitsLive, "live")
	counter(c.busHits, h.BusHitsCached, "cached")
	counter(c.drainLookups, h.DrainLookups)
	buckets := make(map[float64]uint64, len(h.Hold.Bounds))
	for i, b := range h.Hold.Bounds {
		buckets[b] = h.Hold.Counts[i]
	}
	ch <- prometheus.MustNewConstHistogram(c.hold, h.Hold.Count, h.Hold.Sum, buckets)
	healthy := 1.0
	if h.Degraded {
		healthy = 0
	}
	gauge(c.healthy, healthy)
	gauge(c.routes, float64(h.Routes))
	counter(c.slow, h.SlowConsumerDrops)
}
