package bus

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/patchgate/patchgate/dataplane/flow"
)

// Publisher sends flow checkpoints to the bus without ever blocking its
// caller: Publish and Delete copy the record into a bounded queue and return;
// one goroutine batches the queued records per shard subject (the latest
// record of a flow replaces an earlier one still in the batch) and sends a
// batch when it reaches BatchRecords or BatchBytes, or FlushInterval after its
// first record. When the queue is full or the connection is down, records are
// dropped and counted, and Health reports the bus degraded.
//
// Publish and Delete are safe for concurrent use and are meant to be called
// from engine.Hooks.Boundary, with a shard of the engine locked.
type Publisher struct {
	nc        *nats.Conn
	node      string
	prefix    string
	shards    int
	maxRecs   int
	maxBytes  int
	interval  time.Duration
	st        *stats
	connected *atomic.Bool

	q        chan pubItem
	stopOnce sync.Once
	stop     chan struct{}
	done     chan struct{}
}

type pubItem struct {
	key  flow.Key
	rec  []byte // nil for a tombstone
	tomb bool
}

// pendingBatch accumulates one shard's entries until it is flushed.
type pendingBatch struct {
	items []pubItem
	index map[flow.Key]int
	bytes int
}

func newPublisher(nc *nats.Conn, cfg *Config, st *stats, connected *atomic.Bool) *Publisher {
	p := &Publisher{nc: nc, node: cfg.NodeID, prefix: cfg.SubjectPrefix, shards: cfg.Shards,
		maxRecs: cfg.BatchRecords, maxBytes: cfg.BatchBytes, interval: cfg.FlushInterval,
		st: st, connected: connected,
		q: make(chan pubItem, cfg.QueueLen), stop: make(chan struct{}), done: make(chan struct{})}
	go p.run()
	return p
}

// Publish queues a copy of the checkpoint record rec of flow k. It never
// blocks: if the queue is full or the bus is disconnected the record is
// dropped and counted.
func (p *Publisher) Publish(k flow.Key, rec []byte) {
	if len(rec) == 0 {
		return
	}
	if !p.connected.Load() {
		p.st.drop(1)
		return
	}
	p.enqueue(pubItem{key: k, rec: append([]byte(nil), rec...)})
}

// PublishOwned is Publish without the copy: the Publisher takes ownership of
// rec, which the caller must not modify afterwards (use it with a record
// freshly produced by the engine's exporter).
func (p *Publisher) PublishOwned(k flow.Key, rec []byte) {
	if len(rec) == 0 {
		return
	}
	if !p.connected.Load() {
		p.st.drop(1)
		return
	}
	p.enqueue(pubItem{key: k, rec: rec})
}

// Delete queues a tombstone for flow k (the flow ended), so that peers drop
// its checkpoint. Like Publish it never blocks.
func (p *Publisher) Delete(k flow.Key) {
	if !p.connected.Load() {
		p.st.drop(1)
		return
	}
	p.enqueue(pubItem{key: k, tomb: true})
}

// PublishWait queues rec (the Publisher takes ownership, as with
// PublishOwned) waiting for room in the queue until ctx ends. It is for bulk
// publication off the packet path (a draining node publishing every flow),
// never for the packet path. Errors: the bus is disconnected, or ctx.Err().
func (p *Publisher) PublishWait(ctx context.Context, k flow.Key, rec []byte) error {
	if len(rec) == 0 {
		return nil
	}
	if !p.connected.Load() {
		p.st.drop(1)
		return fmt.Errorf("bus: publish: %w", nats.ErrConnectionClosed)
	}
	select {
	case p.q <- pubItem{key: k, rec: rec}:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("bus: publish: %w", ctx.Err())
	}
}

func (p *Publisher) enqueue(it pubItem) {
	select {
	case p.q <- it:
	default:
		p.st.drop(1)
	}
}

// close flushes what is queued (best effort) and stops the goroutine.
func (p *Publisher) close() {
	p.stopOnce.Do(func() { close(p.stop) })
	<-p.done
}

func (p *Publisher) run() {
	defer close(p.done)
	batches := make([]*pendingBatch, p.shards)
	var pending int // shards with a non-empty batch
	var buf []byte
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	armed := false

	flush := func(shard int) {
		b := batches[shard]
		if b == nil || len(b.items) == 0 {
			return
		}
		pending--
		n := len(b.items)
		buf = appendBatchHeader(buf[:0], p.node)
		var keyBuf [40]byte
		tombs := 0
		for _, it := range b.items {
			if it.tomb {
				buf = appendEntry(buf, entryTombstone, appendKey(keyBuf[:0], it.key))
				tombs++
			} else {
				buf = appendEntry(buf, entryRecord, it.rec)
			}
		}
		clear(b.items)
		b.items = b.items[:0]
		clear(b.index)
		b.bytes = 0
		if !p.connected.Load() {
			p.st.drop(n)
			return
		}
		if err := p.nc.Publish(ckptSubject(p.prefix, shard), buf); err != nil {
			p.st.drop(n)
			return
		}
		p.st.published.Add(uint64(n - tombs))
		p.st.tombstones.Add(uint64(tombs))
		p.st.batchesOut.Add(1)
		p.st.bytesOut.Add(uint64(len(buf)))
	}
	flushAll := func() {
		for s := range batches {
			flush(s)
		}
		if armed {
			timer.Stop()
			armed = false
		}
	}
	add := func(it pubItem) {
		s := shardOf(it.key, p.shards)
		b := batches[s]
		if b == nil {
			b = &pendingBatch{index: make(map[flow.Key]int)}
			batches[s] = b
		}
		size := entrySize(len(it.rec))
		if it.tomb {
			size = entrySize(len(appendKey(nil, it.key)))
		}
		if i, ok := b.index[it.key]; ok {
			old := b.items[i]
			oldSize := entrySize(len(old.rec))
			if old.tomb {
				oldSize = entrySize(len(appendKey(nil, old.key)))
			}
			b.items[i] = it
			b.bytes += size - oldSize
			p.st.coalesced.Add(1)
		} else {
			if len(b.items) > 0 && b.bytes+size > p.maxBytes {
				flush(s)
			}
			if len(b.items) == 0 {
				pending++
			}
			b.index[it.key] = len(b.items)
			b.items = append(b.items, it)
			b.bytes += size
		}
		if len(b.items) >= p.maxRecs || b.bytes >= p.maxBytes {
			flush(s)
		}
		if pending > 0 && !armed {
			timer.Reset(p.interval)
			armed = true
		}
	}

	// drain adds up to max already-queued records without waiting.
	drain := func(max int) {
		for i := 0; i < max; i++ {
			select {
			case it := <-p.q:
				add(it)
			default:
				return
			}
		}
	}

	for {
		select {
		case it := <-p.q:
			add(it)
			drain(p.maxRecs * 4)
		case <-timer.C:
			armed = false
			flushAll()
		case <-p.stop:
			drain(cap(p.q))
			flushAll()
			return
		}
	}
}
