package bus

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/patchgate/patchgate/dataplane/checkpoint"
	"github.com/patchgate/patchgate/dataplane/flow"
)

// Errors returned by Lookup.
var (
	// ErrNotFound: every node that answered had no checkpoint of the flow.
	ErrNotFound = errors.New("bus: no checkpoint of the flow on the bus")
	// ErrTimeout: no node answered with a checkpoint within LookupTimeout.
	ErrTimeout = errors.New("bus: lookup timed out")
)

// replyBuffer bounds the answers queued for one lookup.
const replyBuffer = 16

// lookups multiplexes lookup answers arriving on one wildcard inbox
// subscription to the waiting callers.
type lookups struct {
	b     *Bus
	inbox string
	next  atomic.Uint64

	mu      sync.Mutex
	pending map[uint64]chan *nats.Msg
}

func newLookups(b *Bus) *lookups {
	return &lookups{b: b, inbox: b.nc.NewInbox(), pending: make(map[uint64]chan *nats.Msg)}
}

// onReply routes an answer to its caller; late answers are discarded.
func (l *lookups) onReply(m *nats.Msg) {
	i := strings.LastIndexByte(m.Subject, '.')
	id, err := strconv.ParseUint(m.Subject[i+1:], 10, 64)
	if err != nil {
		return
	}
	l.mu.Lock()
	ch := l.pending[id]
	l.mu.Unlock()
	if ch == nil {
		return
	}
	select {
	case ch <- m:
	default:
	}
}

func (l *lookups) register() (uint64, chan *nats.Msg) {
	id := l.next.Add(1)
	ch := make(chan *nats.Msg, replyBuffer)
	l.mu.Lock()
	l.pending[id] = ch
	l.mu.Unlock()
	return id, ch
}

func (l *lookups) unregister(id uint64) {
	l.mu.Lock()
	delete(l.pending, id)
	l.mu.Unlock()
}

// Lookup asks the other nodes for the checkpoint of flow k and returns the
// best answer: at once when the node holding the flow live answers; otherwise
// the freshest answer from the peers' caches, LookupGrace after the first one
// (or when all SetPeers peers answered). It waits at most LookupTimeout (or
// until ctx ends). The returned record has been validated.
//
// Errors: ErrNotFound when every peer answered without a record (or no node
// answers lookups), ErrTimeout, ctx.Err(), or a publish error.
func (b *Bus) Lookup(ctx context.Context, k flow.Key) ([]byte, error) {
	deadline := time.Now().Add(b.cfg.LookupTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	rec, out, err := b.lookup(k, deadline, ctx.Done(), ctx.Err)
	b.st.count(out)
	return rec, err
}

// outcome is how a lookup or a Resume ended (counted once per call).
type outcome uint8

const (
	outNone outcome = iota // not counted (the caller's context ended)
	outCacheHit
	outBusLive
	outBusCached
	outMiss
	outTimeout
)

// lookup is Lookup without counting: it also returns how it ended.
func (b *Bus) lookup(k flow.Key, deadline time.Time, done <-chan struct{}, ctxErr func() error) ([]byte, outcome, error) {
	if !b.conn.Load() {
		return nil, outMiss, fmt.Errorf("bus: lookup: %w", nats.ErrConnectionClosed)
	}
	id, ch := b.lk.register()
	defer b.lk.unregister(id)
	reply := b.lk.inbox + "." + strconv.FormatUint(id, 10)
	subj := lookupSubject(b.cfg.SubjectPrefix, shardOf(k, b.cfg.Shards))
	if err := b.nc.PublishRequest(subj, reply, encodeRequest(k)); err != nil {
		return nil, outMiss, fmt.Errorf("bus: lookup: %w", err)
	}
	peers := int(b.peers.Load())
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	var (
		best       []byte
		bestC      int64
		bestP      uint64
		answers    int
		graceArmed bool
	)
	finish := func() ([]byte, outcome, error) {
		if best != nil {
			return best, outBusCached, nil
		}
		return nil, outMiss, ErrNotFound
	}
	for {
		select {
		case m := <-ch:
			if len(m.Data) == 0 && m.Header.Get("Status") == "503" {
				return finish() // no node answers lookups
			}
			answers++
			status, rec, err := decodeReply(m.Data)
			if err != nil {
				b.st.invalid.Add(1)
				break
			}
			if status == replyMiss {
				break
			}
			r, err := checkpoint.Unmarshal(rec)
			if err != nil || r.Key != k {
				b.st.invalid.Add(1)
				break
			}
			if status == replyLive {
				return rec, outBusLive, nil
			}
			c, p := r.Created.UnixNano(), r.Packets[0]+r.Packets[1]
			if best == nil || c > bestC || c == bestC && p >= bestP {
				best, bestC, bestP = rec, c, p
			}
			if !graceArmed {
				graceArmed = true
				if g := b.cfg.LookupGrace; time.Until(deadline) > g {
					timer.Reset(g)
				}
			}
		case <-timer.C:
			if best != nil {
				return finish()
			}
			return nil, outTimeout, ErrTimeout
		case <-done:
			if best != nil {
				return finish()
			}
			if err := ctxErr(); errors.Is(err, context.DeadlineExceeded) {
				return nil, outTimeout, ErrTimeout
			}
			return nil, outNone, ctxErr()
		}
		if peers > 0 && answers >= peers {
			return finish()
		}
	}
}

// Resume returns the checkpoint record of flow k for engine.Hooks.Resume:
// from the local cache, else from the cluster (Lookup), or nil. It returns
// within LookupTimeout. The engine calls it with the flow's shard locked, so
// meanwhile the node holds that flow's packets (and those of the other flows
// of the shard) — the bounded defer that lets a flow moved from another node
// continue from its checkpoint instead of being resynchronised or reset.
//
// A cached record published by a peer that is draining (SetDraining) may be
// older than that peer's live state (it still forwards the flow's packets
// until the routers converge), so Resume then asks the bus first: the
// draining peer answers from its engine, and the newer of the two records
// wins. The returned slice must not be modified.
func (b *Bus) Resume(k flow.Key) []byte {
	start := time.Now()
	rec, origin, ended := b.cache.get(k)
	var out outcome
	switch {
	case rec != nil && b.IsDraining(origin):
		b.st.drainLookups.Add(1)
		out = outCacheHit
		if fresh, o, err := b.lookup(k, start.Add(b.cfg.LookupTimeout), nil, nil); err == nil && newerRecord(fresh, rec) {
			rec, out = fresh, o
		}
	case rec != nil:
		out = outCacheHit
	case ended:
		out = outMiss // the flow ended: nothing to resume
	default:
		rec, out, _ = b.lookup(k, start.Add(b.cfg.LookupTimeout), nil, nil)
	}
	b.st.count(out)
	b.st.hold.observe(time.Since(start))
	return rec
}

// newerRecord reports whether checkpoint record a is newer than b: a later
// incarnation of the flow, or the same one with more packets (both records
// have been validated; an unreadable a is never newer).
func newerRecord(a, b []byte) bool {
	ra, err := checkpoint.Unmarshal(a)
	if err != nil {
		return false
	}
	rb, err := checkpoint.Unmarshal(b)
	if err != nil {
		return true
	}
	ca, cb := ra.Created.UnixNano(), rb.Created.UnixNano()
	return ca > cb || ca == cb && ra.Packets[0]+ra.Packets[1] > rb.Packets[0]+rb.Packets[1]
}

// onRequest answers a peer's lookup: from the live function, else from the
// cache, else with a miss.
func (b *Bus) onRequest(m *nats.Msg) {
	if m.Reply == "" {
		return
	}
	k, err := decodeRequest(m.Data)
	if err != nil {
		b.st.invalid.Add(1)
		return
	}
	status, rec := byte(replyMiss), []byte(nil)
	if fn := b.live.Load(); fn != nil {
		if r := (*fn)(k); len(r) > 0 {
			status, rec = replyLive, r
		}
	}
	if rec == nil {
		if r := b.cache.Get(k); r != nil {
			status, rec = replyCached, r
		}
	}
	if rec != nil {
		b.st.served.Add(1)
	}
	_ = m.Respond(encodeReply(status, rec))
}
