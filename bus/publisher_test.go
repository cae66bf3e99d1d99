package bus

import (
	"sync/atomic"
	"testing"
	"time"
)

// A full queue drops (and counts) instead of blocking, and marks the bus
// degraded.
func TestPublishQueueFullDrops(t *testing.T) {
	st := &stats{}
	conn := &atomic.Bool{}
	conn.Store(true)
	// No batching goroutine: nothing drains the queue.
	p := &Publisher{q: make(chan pubItem, 2), st: st, connected: conn}
	k := testKey(1)
	rec := testRecord(k, 1, 1, 200)
	for i := 0; i < 5; i++ {
		p.Publish(k, rec)
	}
	p.Delete(k)
	p.PublishOwned(k, rec)
	if d := st.dropped.Load(); d != 5 {
		t.Errorf("dropped %d, want 5 (queue of 2, 7 offered)", d)
	}
	if st.lastDrop.Load() == 0 {
		t.Error("drop time not recorded (Health would not report degraded)")
	}
	conn.Store(false)
	<-p.q
	p.Publish(k, rec)
	if d := st.dropped.Load(); d != 6 || len(p.q) != 1 {
		t.Errorf("disconnected publish queued: dropped %d, queued %d", d, len(p.q))
	}
	// The queued record is a copy: changing the caller's buffer after
	// Publish does not change it.
	it := <-p.q
	rec[0] = 'X'
	if it.rec[0] == 'X' {
		t.Error("Publish kept the caller's buffer")
	}
}

// Records of one flow published in a burst are coalesced: only the latest is
// sent.
func TestPublisherCoalesces(t *testing.T) {
	buses := startCluster(t, 2, func(_ int, c *Config) {
		c.FlushInterval = 300 * time.Millisecond
		c.BatchRecords = 1000
	})
	a, b := buses[0], buses[1]
	before := a.Health()
	k := testKey(17)
	for p := uint64(1); p <= 10; p++ {
		a.Publish(k, testRecord(k, 1, p, 200))
	}
	waitFor(t, 5*time.Second, func() error {
		if rec := b.Cache().Get(k); rec == nil || recordPackets(t, rec) != 10 {
			return errNotYet
		}
		return nil
	})
	h := a.Health()
	if got := h.Coalesced - before.Coalesced; got != 9 {
		t.Errorf("coalesced %d of 10 records in one flush window, want 9", got)
	}
}
