// Package bus shares flow checkpoints between gateway nodes over NATS, so
// that a node taking over a flow (after another node died or was drained)
// resumes its inspection exactly where it stopped.
//
// Every node publishes the checkpoint of a flow when a message ends or its
// verdict changes (Publish, from engine.Hooks.Boundary), batched on subjects
// sharded by flow hash (<prefix>.ckpt.<shard>); every node keeps the latest
// checkpoint of each flow in a bounded Cache; a node that sees a mid-stream
// packet of an unknown flow asks Resume (engine.Hooks.Resume), which answers
// from the cache or asks the cluster (<prefix>.lookup.<shard>, request-reply)
// within a bounded time. By default each node embeds a NATS server and the
// embedded servers form a cluster through routes; a large deployment points
// the nodes at an external NATS cluster instead.
//
// Publishing never blocks: when the bus is slow or down, checkpoints are
// dropped and counted and Health reports the node's failover protection
// degraded. Received checkpoints are validated (checkpoint.Unmarshal) before
// they are cached or returned.
package bus

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/patchgate/patchgate/dataplane/flow"
)

// Client connection tuning (not configurable: they bound failure detection).
const (
	pingInterval = 2 * time.Second
	maxPingsOut  = 2
	// routePingInterval and routeMaxPingsOut: an embedded server drops a
	// route whose peer stops answering (a partition silently dropping
	// packets) after about 3 s, so that the node reports degraded failover
	// protection instead of counting a dead route (NATS's default is minutes).
	routePingInterval = time.Second
	routeMaxPingsOut  = 3
	subPendingMsgs    = 1 << 16
	subPendingBytes   = 256 << 20
	connectTimeout    = 2 * time.Second
	expirySweepMin    = 100 * time.Millisecond
	expirySweepMax    = 30 * time.Second
	closeFlushBudget  = 2 * time.Second
)

// LiveFunc returns the current checkpoint record of a flow this node holds
// live (the node passes its engine's Export), or nil. It is called by the
// bus's responder goroutine, one request at a time, and may take the flow's
// engine shard lock; it must not call back into the Bus.
type LiveFunc func(k flow.Key) []byte

// Bus is one node's connection to the flow-state bus: an optional embedded
// server, the client connection, the Publisher, the Cache, the lookup client
// and the responder. Create it with Open; all methods are safe for concurrent
// use.
type Bus struct {
	cfg   Config
	srv   *Server
	nc    *nats.Conn
	st    stats
	conn  atomic.Bool
	pub   *Publisher
	cache *Cache
	lk    *lookups

	live     atomic.Pointer[LiveFunc]
	peers    atomic.Int64
	draining atomic.Pointer[map[string]bool]

	subs      []*nats.Subscription
	stop      chan struct{}
	wg        sync.WaitGroup
	closeOnce sync.Once
}

// Open starts the embedded server (unless cfg.URLs is set), connects, and
// subscribes to the checkpoint and lookup subjects. With an external cluster
// that is unreachable, Open still succeeds: the client keeps reconnecting and
// Health reports it disconnected.
func Open(cfg Config) (*Bus, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	b := &Bus{cfg: cfg, stop: make(chan struct{})}
	b.cfg.URLs = append([]string(nil), cfg.URLs...)
	b.cfg.Server.Routes = append([]string(nil), cfg.Server.Routes...)
	if cfg.Embedded() {
		srv, err := StartServer(&b.cfg)
		if err != nil {
			return nil, err
		}
		b.srv = srv
	}
	nc, err := b.connect()
	if err != nil {
		b.shutdownServer()
		return nil, err
	}
	b.nc = nc
	b.conn.Store(nc.IsConnected())
	b.cache = newCache(cfg.CacheEntries, cfg.CacheBytes, cfg.IdleExpiry, &b.st)
	b.pub = newPublisher(nc, &b.cfg, &b.st, &b.conn)
	b.lk = newLookups(b)
	if err := b.subscribe(); err != nil {
		b.Close()
		return nil, err
	}
	b.wg.Add(1)
	go b.sweep()
	return b, nil
}

// connect dials the embedded server in-process or the external cluster.
func (b *Bus) connect() (*nats.Conn, error) {
	c := &b.cfg
	opts := []nats.Option{
		nats.Name(c.NodeID),
		nats.NoEcho(),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(c.ReconnectWait),
		// No buffering while disconnected: a checkpoint that cannot be sent
		// now is dropped and counted, not queued behind stale ones.
		nats.ReconnectBufSize(-1),
		nats.PingInterval(pingInterval),
		nats.MaxPingsOutstanding(maxPingsOut),
		nats.Timeout(connectTimeout),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			b.conn.Store(false)
			b.logf("bus: %s: disconnected: %v", c.NodeID, err)
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			b.conn.Store(true)
			b.logf("bus: %s: reconnected to %s", c.NodeID, nc.ConnectedUrlRedacted())
		}),
		// With RetryOnFailedConnect the first successful connect is not a
		// reconnect.
		nats.ConnectHandler(func(nc *nats.Conn) {
			b.conn.Store(true)
			b.logf("bus: %s: connected to %s", c.NodeID, nc.ConnectedUrlRedacted())
		}),
		nats.ClosedHandler(func(*nats.Conn) { b.conn.Store(false) }),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			subj := ""
			if sub != nil {
				subj = sub.Subject
			}
			b.logf("bus: %s: async error on %q: %v", c.NodeID, subj, err)
		}),
	}
	switch a := c.Auth; {
	case a.User != "":
		opts = append(opts, nats.UserInfo(a.User, a.Password))
	case a.Token != "":
		opts = append(opts, nats.Token(a.Token))
	case a.NKeyFile != "":
		o, err := nats.NkeyOptionFromSeed(a.NKeyFile)
		if err != nil {
			return nil, fmt.Errorf("bus: Auth.NKeyFile: %w", err)
		}
		opts = append(opts, o)
	case a.CredsFile != "":
		opts = append(opts, nats.UserCredentials(a.CredsFile))
	}
	url := ""
	if b.srv != nil {
		// In-process: no TLS needed on the pipe; credentials still apply.
		// (the scheme must not be tls://, which would force TLS).
		opts = append(opts, nats.InProcessServer(b.srv.ns))
		url = strings.Replace(b.srv.ClientURL(), "tls://", "nats://", 1)
	} else {
		if c.TLS.CertFile != "" {
			opts = append(opts, nats.ClientCert(c.TLS.CertFile, c.TLS.KeyFile))
		}
		if c.TLS.CAFile != "" {
			opts = append(opts, nats.RootCAs(c.TLS.CAFile))
		}
		opts = append(opts, nats.RetryOnFailedConnect(true))
		for i, u := range c.URLs {
			if i > 0 {
				url += ","
			}
			url += u
		}
	}
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		return nil, fmt.Errorf("bus: connect %s: %w", url, err)
	}
	return nc, nil
}

// subscribe creates the checkpoint, lookup and reply subscriptions.
func (b *Bus) subscribe() error {
	p := b.cfg.SubjectPrefix
	for _, s := range []struct {
		subj string
		fn   nats.MsgHandler
	}{
		{p + ".ckpt.*", b.onBatch},
		{p + ".lookup.*", b.onRequest},
		{b.lk.inbox + ".*", b.lk.onReply},
	} {
		sub, err := b.nc.Subscribe(s.subj, s.fn)
		if err != nil {
			return fmt.Errorf("bus: subscribe %s: %w", s.subj, err)
		}
		if err := sub.SetPendingLimits(subPendingMsgs, subPendingBytes); err != nil {
			return fmt.Errorf("bus: subscribe %s: %w", s.subj, err)
		}
		b.subs = append(b.subs, sub)
	}
	// Make sure the server has the interest before Open returns.
	if b.conn.Load() {
		if err := b.nc.FlushTimeout(connectTimeout); err != nil {
			return fmt.Errorf("bus: subscribe: %w", err)
		}
	}
	return nil
}

// onBatch stores the records of a peer's batch in the cache.
func (b *Bus) onBatch(m *nats.Msg) {
	b.st.batchesIn.Add(1)
	b.st.bytesIn.Add(uint64(len(m.Data)))
	if len(m.Data) > 5 && int(m.Data[4]) <= len(m.Data)-5 && string(m.Data[5:5+int(m.Data[4])]) == b.cfg.NodeID {
		return // our own batch (NoEcho normally prevents this)
	}
	_, err := decodeBatch(m.Data, func(origin string, e batchEntry) {
		switch e.kind {
		case entryRecord:
			// The message buffer is ours (nats.go copies each message), but
			// copy anyway so one cached record does not pin a whole batch.
			b.cache.offerFrom(origin, append([]byte(nil), e.payload...))
		case entryTombstone:
			k, err := decodeKey(e.payload)
			if err != nil {
				b.st.invalid.Add(1)
				return
			}
			b.cache.tombstone(k)
		default:
			b.st.invalid.Add(1)
		}
	})
	if err != nil {
		b.st.invalid.Add(1)
		b.logf("bus: %s: batch on %s: %v", b.cfg.NodeID, m.Subject, err)
	}
}

// sweep expires idle cache entries periodically.
func (b *Bus) sweep() {
	defer b.wg.Done()
	every := min(max(b.cfg.IdleExpiry/4, expirySweepMin), expirySweepMax)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			b.cache.expire()
		case <-b.stop:
			return
		}
	}
}

// Publish queues the checkpoint record of flow k (see Publisher.Publish). It
// never blocks.
func (b *Bus) Publish(k flow.Key, rec []byte) { b.pub.Publish(k, rec) }

// PublishOwned is Publish taking ownership of rec (see
// Publisher.PublishOwned). It never blocks.
func (b *Bus) PublishOwned(k flow.Key, rec []byte) { b.pub.PublishOwned(k, rec) }

// PublishWait queues the checkpoint record of flow k, waiting for room in
// the queue until ctx ends (see Publisher.PublishWait). Not for the packet
// path.
func (b *Bus) PublishWait(ctx context.Context, k flow.Key, rec []byte) error {
	return b.pub.PublishWait(ctx, k, rec)
}

// Delete queues a tombstone for flow k (see Publisher.Delete). It never
// blocks.
func (b *Bus) Delete(k flow.Key) { b.pub.Delete(k) }

// Publisher returns the bus's publisher.
func (b *Bus) Publisher() *Publisher { return b.pub }

// Cache returns the bus's checkpoint cache.
func (b *Bus) Cache() *Cache { return b.cache }

// Server returns the embedded server, or nil with an external cluster.
func (b *Bus) Server() *Server { return b.srv }

// SetRoutes replaces the embedded server's routes to its peers (see
// Server.SetRoutes). With an external cluster it is an error.
func (b *Bus) SetRoutes(routes []string) error {
	if b.srv == nil {
		return fmt.Errorf("bus: SetRoutes: no embedded server (external URLs configured)")
	}
	return b.srv.SetRoutes(routes)
}

// SetLive installs the function the responder asks first for flows this node
// holds live (nil: answer from the cache only).
func (b *Bus) SetLive(fn LiveFunc) {
	if fn == nil {
		b.live.Store(nil)
		return
	}
	b.live.Store(&fn)
}

// SetDraining tells the bus which peers (by NodeID) are draining: their
// flows are moving away from them while they still hold them live, so a
// checkpoint they published may be older than their live state. Resume then
// asks the bus (where the draining node answers from its engine) before it
// trusts such a cached record. nil or empty: no peer is draining.
func (b *Bus) SetDraining(nodes []string) {
	if len(nodes) == 0 {
		b.draining.Store(nil)
		return
	}
	m := make(map[string]bool, len(nodes))
	for _, n := range nodes {
		m[n] = true
	}
	b.draining.Store(&m)
}

// IsDraining reports whether node is in the SetDraining set.
func (b *Bus) IsDraining(node string) bool {
	m := b.draining.Load()
	return m != nil && node != "" && (*m)[node]
}

// SetPeers tells the bus how many other nodes answer lookups (membership
// knows). With n > 0 a lookup that every peer answered without a record ends
// at once instead of at the timeout, and an embedded server with routes to
// fewer than n peers makes Health degraded (a node partitioned from the bus
// still reaches its own server). 0 means unknown.
func (b *Bus) SetPeers(n int) { b.peers.Store(int64(max(n, 0))) }

// Health returns the bus's state and counters.
func (b *Bus) Health() Health {
	var h Health
	b.st.fill(&h)
	h.Connected = b.conn.Load()
	h.Routes = -1
	if b.srv != nil {
		h.Routes = b.srv.NumRoutes()
	}
	h.CacheEntries = b.cache.Len()
	h.CacheBytes = b.cache.Bytes()
	h.CacheEvicted, h.CacheExpired = b.cache.counts()
	for _, s := range b.subs {
		if d, err := s.Dropped(); err == nil && d > 0 {
			h.SlowConsumerDrops += uint64(d)
		}
	}
	last := b.st.lastDrop.Load()
	peers := int(b.peers.Load())
	switch {
	case !h.Connected:
		h.Degraded, h.Reason = true, "disconnected from the bus"
	case b.srv != nil && peers > 0 && h.Routes < peers:
		// Our client reaches our own server, but checkpoints stop there.
		h.Degraded, h.Reason = true, fmt.Sprintf("embedded server has routes to %d of %d peers", h.Routes, peers)
	case last != 0 && time.Since(time.Unix(0, last)) < b.cfg.HealthInterval:
		h.Degraded, h.Reason = true, fmt.Sprintf("checkpoints dropped within the last %v", b.cfg.HealthInterval)
	}
	return h
}

// Close flushes queued checkpoints (best effort), closes the connection and
// stops the embedded server.
func (b *Bus) Close() error {
	b.closeOnce.Do(func() {
		close(b.stop)
		if b.pub != nil {
			b.pub.close()
		}
		if b.nc != nil {
			if b.conn.Load() {
				_ = b.nc.FlushTimeout(closeFlushBudget)
			}
			b.nc.Close()
		}
		b.wg.Wait()
		b.shutdownServer()
	})
	return nil
}

func (b *Bus) shutdownServer() {
	if b.srv != nil {
		b.srv.Shutdown()
	}
}

func (b *Bus) logf(format string, args ...any) {
	if b.cfg.Logf != nil {
		b.cfg.Logf(format, args...)
	}
}
