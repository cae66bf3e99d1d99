package bus

import (
	"sync"
	"time"

	"github.com/patchgate/patchgate/dataplane/checkpoint"
	"github.com/patchgate/patchgate/dataplane/flow"
)

// entryOverhead approximates the memory an entry costs beyond its record
// (map slot, list links, key); it is charged against CacheBytes.
const entryOverhead = 160

// Cache keeps the latest checkpoint of every flow the peers published,
// bounded in entries and bytes (least recently used first out) with idle
// expiry. A record replaces the cached one of the same flow only if it is not
// older: a later incarnation of the flow (greater Created) or the same one
// with at least as many packets — packet counters carry over when a flow moves
// between nodes, so they order the checkpoints of one flow across nodes.
//
// A Cache is safe for concurrent use. Get is called on the packet path (from
// Resume, with a shard of the engine locked): it takes one mutex briefly and
// never blocks on the network.
type Cache struct {
	maxEntries int
	maxBytes   int64
	idle       time.Duration
	now        func() time.Time
	st         *stats

	mu      sync.Mutex
	m       map[flow.Key]*cacheEntry
	head    cacheEntry // sentinel: head.next is the most recently used
	bytes   int64
	evicted uint64
	expired uint64
}

type cacheEntry struct {
	key        flow.Key
	rec        []byte // nil for a tombstone
	origin     string // NodeID of the node that published rec ("" unknown)
	created    int64  // Record.Created of the flow incarnation (UnixNano)
	packets    uint64 // Packets of both directions
	touched    time.Time
	prev, next *cacheEntry
}

func (e *cacheEntry) size() int64 { return int64(len(e.rec)) + entryOverhead }

// newCache returns an empty cache.
func newCache(maxEntries int, maxBytes int64, idle time.Duration, st *stats) *Cache {
	c := &Cache{maxEntries: maxEntries, maxBytes: maxBytes, idle: idle, now: time.Now, st: st,
		m: make(map[flow.Key]*cacheEntry)}
	c.head.next, c.head.prev = &c.head, &c.head
	return c
}

// Get returns the cached checkpoint record of k, or nil. The returned slice
// is shared and must not be modified.
func (c *Cache) Get(k flow.Key) []byte {
	rec, _, _ := c.get(k)
	return rec
}

// get returns k's record and the node that published it, or whether k's
// flow is known to have ended.
func (c *Cache) get(k flow.Key) (rec []byte, origin string, ended bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.m[k]
	if e == nil {
		return nil, "", false
	}
	now := c.now()
	if now.Sub(e.touched) > c.idle {
		c.remove(e)
		c.expired++
		return nil, "", false
	}
	if e.rec == nil {
		return nil, "", true
	}
	e.touched = now
	c.moveFront(e)
	return e.rec, e.origin, false
}

// Len returns the number of cached records and tombstones.
func (c *Cache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}

// Bytes returns the bytes charged against CacheBytes.
func (c *Cache) Bytes() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.bytes
}

// counts returns evicted and expired totals.
func (c *Cache) counts() (evicted, expired uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.evicted, c.expired
}

// offer validates rec and stores it if it is not older than the cached one.
// rec must not be modified afterwards. It reports whether rec was stored.
func (c *Cache) offer(rec []byte) bool { return c.offerFrom("", rec) }

// offerFrom is offer for a record published by node origin.
func (c *Cache) offerFrom(origin string, rec []byte) bool {
	r, err := checkpoint.Unmarshal(rec)
	if err != nil {
		c.st.invalid.Add(1)
		return false
	}
	created := r.Created.UnixNano()
	packets := r.Packets[0] + r.Packets[1]
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	if e := c.m[r.Key]; e != nil {
		newer := created > e.created || created == e.created && e.rec != nil && packets >= e.packets
		if !newer {
			c.st.stale.Add(1)
			return false
		}
		c.bytes -= e.size()
		e.rec, e.origin, e.created, e.packets, e.touched = rec, origin, created, packets, now
		c.bytes += e.size()
		c.moveFront(e)
	} else {
		e := &cacheEntry{key: r.Key, rec: rec, origin: origin, created: created, packets: packets, touched: now}
		c.insert(e)
	}
	c.st.received.Add(1)
	c.shrink(now)
	return true
}

// tombstone marks k's flow as ended: Get returns nil, and records of the same
// incarnation that arrive late are ignored.
func (c *Cache) tombstone(k flow.Key) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	if e := c.m[k]; e != nil {
		c.bytes -= e.size()
		e.rec, e.origin, e.touched = nil, "", now
		c.bytes += e.size()
		c.moveFront(e)
	} else {
		c.insert(&cacheEntry{key: k, touched: now})
	}
	c.shrink(now)
}

// expire drops idle entries; the Bus calls it periodically.
func (c *Cache) expire() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.shrink(c.now())
}

// shrink drops idle entries from the tail, then evicts for space.
func (c *Cache) shrink(now time.Time) {
	for t := c.head.prev; t != &c.head && now.Sub(t.touched) > c.idle; t = c.head.prev {
		c.remove(t)
		c.expired++
	}
	for len(c.m) > c.maxEntries || c.bytes > c.maxBytes {
		t := c.head.prev
		if t == &c.head {
			return
		}
		c.remove(t)
		c.evicted++
	}
}

func (c *Cache) insert(e *cacheEntry) {
	c.m[e.key] = e
	c.bytes += e.size()
	e.prev, e.next = &c.head, c.head.next
	c.head.next.prev = e
	c.head.next = e
}

func (c *Cache) remove(e *cacheEntry) {
	delete(c.m, e.key)
	c.bytes -= e.size()
	e.prev.next, e.next.prev = e.next, e.prev
	e.prev, e.next = nil, nil
}

func (c *Cache) moveFront(e *cacheEntry) {
	if c.head.next == e {
		return
	}
	e.prev.next, e.next.prev = e.next, e.prev
	e.prev, e.next = &c.head, c.head.next
	c.head.next.prev = e
	c.head.next = e
}
