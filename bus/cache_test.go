package bus

import (
	"testing"
	"time"
)

// fakeClock is a settable time source.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }

func newTestCache(entries int, bytes int64, idle time.Duration) (*Cache, *fakeClock, *stats) {
	st := &stats{}
	c := newCache(entries, bytes, idle, st)
	clk := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	c.now = clk.now
	return c, clk, st
}

func TestCacheOrderingAndTombstones(t *testing.T) {
	c, _, st := newTestCache(100, 1<<20, time.Hour)
	k := testKey(1)
	if !c.offer(testRecord(k, 100, 5, 200)) {
		t.Fatal("first record refused")
	}
	if c.offer(testRecord(k, 100, 4, 200)) {
		t.Error("record with fewer packets of the same incarnation accepted")
	}
	if c.offer(testRecord(k, 99, 50, 200)) {
		t.Error("record of an older incarnation accepted")
	}
	if !c.offer(testRecord(k, 100, 5, 210)) {
		t.Error("record with equal packets (verdict change) refused")
	}
	if !c.offer(testRecord(k, 100, 6, 200)) {
		t.Error("newer record refused")
	}
	if st.stale.Load() != 2 || st.received.Load() != 3 {
		t.Errorf("stale %d received %d, want 2 and 3", st.stale.Load(), st.received.Load())
	}

	c.tombstone(k)
	if rec, _, ended := c.get(k); rec != nil || !ended {
		t.Errorf("after tombstone: rec %v ended %v", rec != nil, ended)
	}
	if c.offer(testRecord(k, 100, 9, 200)) {
		t.Error("late record of the ended incarnation resurrected the flow")
	}
	if !c.offer(testRecord(k, 200, 1, 200)) {
		t.Error("new incarnation after tombstone refused")
	}

	bad := testRecord(testKey(2), 1, 1, 200)
	bad[10] ^= 1
	if c.offer(bad) || st.invalid.Load() != 1 {
		t.Error("corrupt record accepted or not counted")
	}
}

func TestCacheBoundsAndExpiry(t *testing.T) {
	c, clk, _ := newTestCache(10, 1<<20, time.Minute)
	for i := 0; i < 10; i++ {
		c.offer(testRecord(testKey(i), 1, 1, 200))
	}
	c.Get(testKey(0)) // most recently used now
	c.offer(testRecord(testKey(10), 1, 1, 200))
	if c.Len() != 10 || c.Get(testKey(1)) != nil || c.Get(testKey(0)) == nil {
		t.Errorf("LRU eviction: len %d, key1 present %v, key0 present %v",
			c.Len(), c.Get(testKey(1)) != nil, c.Get(testKey(0)) != nil)
	}

	// Byte bound: each entry costs its record plus the overhead.
	per := int64(len(testRecord(testKey(0), 1, 1, 1000))) + entryOverhead
	cb, _, _ := newTestCache(1000, 3*per, time.Minute)
	for i := 0; i < 5; i++ {
		cb.offer(testRecord(testKey(i), 1, 1, 1000))
	}
	if cb.Len() != 3 || cb.Bytes() != 3*per {
		t.Errorf("byte bound: len %d bytes %d, want 3 and %d", cb.Len(), cb.Bytes(), 3*per)
	}
	if ev, _ := cb.counts(); ev != 2 {
		t.Errorf("evicted %d, want 2", ev)
	}

	// Idle expiry: untouched entries go, touched ones stay.
	clk.t = clk.t.Add(40 * time.Second)
	c.Get(testKey(5))
	clk.t = clk.t.Add(30 * time.Second)
	c.expire()
	if c.Len() != 1 || c.Get(testKey(5)) == nil {
		t.Errorf("after expiry: len %d, touched entry present %v", c.Len(), c.Get(testKey(5)) != nil)
	}
	clk.t = clk.t.Add(2 * time.Minute)
	if c.Get(testKey(5)) != nil {
		t.Error("expired entry returned by Get")
	}
	if _, ex := c.counts(); ex != 10 {
		t.Errorf("expired %d, want 10", ex)
	}
	if c.Bytes() != 0 {
		t.Errorf("empty cache charges %d bytes", c.Bytes())
	}
}
