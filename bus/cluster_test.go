package bus

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/patchgate/patchgate/dataplane/flow"
)

// Publishing on one node of a 3-server route cluster reaches the caches of
// the two others, latest record per flow, and a tombstone removes it.
func TestPublishReachesPeerCaches(t *testing.T) {
	buses := startCluster(t, 3, nil)
	a, b, c := buses[0], buses[1], buses[2]

	const flows = 200
	before := a.Health()
	for i := 0; i < flows; i++ {
		k := testKey(i)
		a.Publish(k, testRecord(k, 1000, 1, 200))
		a.Publish(k, testRecord(k, 1000, 5, 200)) // newer: must win
	}
	for _, peer := range []*Bus{b, c} {
		waitFor(t, 5*time.Second, func() error {
			for i := 0; i < flows; i++ {
				rec := peer.Cache().Get(testKey(i))
				if rec == nil {
					return fmt.Errorf("%s: flow %d missing", peer.cfg.NodeID, i)
				}
				if p := recordPackets(t, rec); p != 5 {
					return fmt.Errorf("%s: flow %d has packets %d, want 5", peer.cfg.NodeID, i, p)
				}
			}
			return nil
		})
	}
	if a.Cache().Get(testKey(0)) != nil {
		t.Error("publisher cached its own record")
	}
	waitFor(t, 5*time.Second, func() error {
		h := a.Health()
		if n := h.Published + h.Coalesced - before.Published - before.Coalesced; n != 2*flows {
			return fmt.Errorf("published+coalesced %d, want %d", n, 2*flows)
		}
		return nil
	})
	h := a.Health()
	if h.Dropped != 0 {
		t.Errorf("publisher dropped %d", h.Dropped)
	}
	if h.BatchesOut == 0 || h.BytesOut-before.BytesOut < flows*200 {
		t.Errorf("publisher sent %d batches, %d bytes", h.BatchesOut, h.BytesOut)
	}
	if h.Degraded || !h.Connected || h.Routes != 2 {
		t.Errorf("health %+v: want connected, not degraded, 2 routes", h)
	}

	// An older record of the same flow (e.g. delayed from its previous
	// owner) does not replace the newer one.
	k0 := testKey(0)
	c.Publish(k0, testRecord(k0, 1000, 3, 200))
	c.Publish(testKey(9999), testRecord(testKey(9999), 1, 1, 50)) // marker after it
	waitFor(t, 5*time.Second, func() error {
		if b.Cache().Get(testKey(9999)) == nil {
			return errors.New("marker not received")
		}
		return nil
	})
	if p := recordPackets(t, b.Cache().Get(k0)); p != 5 {
		t.Errorf("stale record replaced the cached one: packets %d, want 5", p)
	}
	if b.Health().Stale == 0 {
		t.Error("stale record not counted")
	}

	// Tombstone: the flow ended.
	a.Delete(k0)
	waitFor(t, 5*time.Second, func() error {
		if b.Cache().Get(k0) != nil || c.Cache().Get(k0) != nil {
			return errors.New("tombstone not applied")
		}
		return nil
	})
}

// A lookup is answered by the node holding the flow live, preferred over a
// peer's cached copy; without any answer it times out; with the peer count
// known, a miss returns early.
func TestLookupAnsweredByPeer(t *testing.T) {
	buses := startCluster(t, 3, nil)
	a, b, c := buses[0], buses[1], buses[2]
	k := testKey(42)
	liveRec := testRecord(k, 5000, 9, 220)
	c.SetLive(func(q flow.Key) []byte {
		if q == k {
			return liveRec
		}
		return nil
	})
	got, err := a.Lookup(context.Background(), k)
	if err != nil || !bytes.Equal(got, liveRec) {
		t.Fatalf("Lookup = %d bytes, %v; want the live record", len(got), err)
	}

	// A flow only B has cached (published by C earlier, C no longer has it).
	k2 := testKey(43)
	cached := testRecord(k2, 6000, 4, 200)
	c.Publish(k2, cached)
	waitFor(t, 5*time.Second, func() error {
		if b.Cache().Get(k2) == nil {
			return errors.New("not cached on B yet")
		}
		return nil
	})
	// A also cached it: Resume answers from the local cache.
	if rec := a.Resume(k2); !bytes.Equal(rec, cached) {
		t.Fatalf("Resume from cache = %d bytes", len(rec))
	}
	// B asks the cluster: A answers from its cache (C does not cache its own
	// records and holds no live state for the flow).
	got, err = b.Lookup(context.Background(), k2)
	if err != nil || !bytes.Equal(got, cached) {
		t.Fatalf("Lookup of a peer-cached flow = %d bytes, %v", len(got), err)
	}

	// Unknown flow, peers unknown: the lookup waits for the timeout.
	unknown := testKey(4444)
	if _, err := a.Lookup(context.Background(), unknown); !errors.Is(err, ErrTimeout) {
		t.Fatalf("Lookup of unknown flow: %v, want ErrTimeout", err)
	}
	// Peers known: every peer answers "miss", so it ends early with
	// ErrNotFound (no wall-clock assertion: the outcome shows the path).
	a.SetPeers(2)
	if _, err := a.Lookup(context.Background(), unknown); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Lookup with peers known: %v, want ErrNotFound", err)
	}
	// The caller's context bounds the lookup too.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := a.Lookup(ctx, testKey(4445)); err == nil {
		t.Fatal("Lookup with a cancelled context succeeded")
	}

	// Resume: bus hit through B's responder for a flow only live on C.
	a.SetPeers(0)
	k3 := testKey(77)
	live3 := testRecord(k3, 7000, 2, 200)
	b.SetLive(func(q flow.Key) []byte {
		if q == k3 {
			return live3
		}
		return nil
	})
	if rec := a.Resume(k3); !bytes.Equal(rec, live3) {
		t.Fatalf("Resume via bus = %d bytes", len(rec))
	}
	h := a.Health()
	if h.CacheHits != 1 || h.BusHits != 2 || h.Timeouts != 1 || h.Misses != 1 {
		t.Errorf("lookup outcomes: cache %d bus %d miss %d timeout %d; want 1, 2, 1, 1",
			h.CacheHits, h.BusHits, h.Misses, h.Timeouts)
	}
	if h.Hold.Count != 2 || h.Hold.Counts[len(h.Hold.Counts)-1] > h.Hold.Count {
		t.Errorf("hold histogram %+v: want 2 observations", h.Hold)
	}
	if c.Health().LookupsServed == 0 || b.Health().LookupsServed == 0 {
		t.Error("responders did not count served lookups")
	}
}

// Records failing validation, malformed batches and batches claiming to come
// from the receiving node itself are ignored; invalid ones are counted.
func TestInvalidRecordsIgnored(t *testing.T) {
	buses := startCluster(t, 2, nil)
	b := buses[1]
	raw, err := nats.Connect(buses[0].Server().ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()

	k := testKey(5)
	good := testRecord(k, 100, 1, 200)
	corrupt := append([]byte(nil), good...)
	corrupt[len(corrupt)/2] ^= 0xff // CRC mismatch
	var batch []byte
	batch = appendBatchHeader(batch, "attacker")
	batch = appendEntry(batch, entryRecord, corrupt)
	batch = appendEntry(batch, entryRecord, []byte("PGCK garbage"))
	batch = appendEntry(batch, 9, []byte{1, 2, 3}) // unknown kind
	subj := ckptSubject("patchgate", shardOf(k, b.cfg.Shards))
	must(t, raw.Publish(subj, batch))
	must(t, raw.Publish(subj, []byte("not a batch at all")))

	// A valid record in a batch that names B as its sender: B ignores it.
	self := appendEntry(appendBatchHeader(nil, b.cfg.NodeID), entryRecord, good)
	must(t, raw.Publish(subj, self))

	// A valid record from another node is accepted (and marks the end).
	k2 := testKey(6)
	ok := appendEntry(appendBatchHeader(nil, "n7"), entryRecord, testRecord(k2, 100, 1, 200))
	must(t, raw.Publish(subj, ok))
	must(t, raw.Flush())

	waitFor(t, 5*time.Second, func() error {
		if b.Cache().Get(k2) == nil {
			return errors.New("valid record not received")
		}
		return nil
	})
	if b.Cache().Get(k) != nil {
		t.Error("invalid or self-sent record was cached")
	}
	if h := b.Health(); h.Invalid != 4 {
		t.Errorf("Invalid = %d, want 4 (corrupt, garbage, unknown kind, bad batch)", h.Invalid)
	}

	// Lookup replies are validated too: a responder answering a corrupt
	// record is ignored.
	sub, err := raw.Subscribe("patchgate.lookup.*", func(m *nats.Msg) {
		_ = m.Respond(encodeReply(replyLive, corrupt))
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	must(t, raw.Flush())
	waitFor(t, 5*time.Second, func() error {
		before := b.Health().Invalid
		if _, err := b.Lookup(context.Background(), testKey(8)); err == nil {
			t.Fatal("corrupt lookup answer accepted")
		}
		if b.Health().Invalid == before {
			return errors.New("corrupt answer not seen yet")
		}
		return nil
	})
}

// Routes can be set after start (membership reports the peers later).
func TestSetRoutesAtRuntime(t *testing.T) {
	var buses []*Bus
	for i := 0; i < 3; i++ {
		buses = append(buses, openBus(t, testConfig(t, fmt.Sprintf("r%d", i))))
	}
	addrs := []string{buses[0].Server().ClusterAddr(), buses[1].Server().ClusterAddr(), buses[2].Server().ClusterAddr()}
	for i, b := range buses {
		var peers []string
		for j, a := range addrs {
			if j != i {
				peers = append(peers, a)
			}
		}
		if err := b.SetRoutes(peers); err != nil {
			t.Fatalf("SetRoutes: %v", err)
		}
	}
	waitFor(t, 10*time.Second, func() error {
		for _, b := range buses {
			if b.Health().Routes < 2 {
				return fmt.Errorf("%s has %d routes", b.cfg.NodeID, b.Health().Routes)
			}
		}
		return nil
	})
	warmUp(t, buses)
	if err := buses[0].SetRoutes([]string{"bad route"}); err == nil {
		t.Error("SetRoutes accepted a malformed route")
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// A cached record published by a peer that is draining is refreshed by a
// lookup, where the draining peer answers from its live state: a flow that
// moved in the middle of a message resumes from the state its old node
// reached, not from the last boundary it published.
func TestResumeAsksDrainingPeer(t *testing.T) {
	buses := startCluster(t, 2, nil)
	a, c := buses[0], buses[1]
	k := testKey(500)
	old, live := testRecord(k, 8000, 3, 200), testRecord(k, 8000, 7, 200)
	var liveOn atomic.Bool
	liveOn.Store(true)
	c.SetLive(func(q flow.Key) []byte {
		if q == k && liveOn.Load() {
			return live
		}
		return nil
	})
	c.Publish(k, old)
	waitFor(t, 5*time.Second, func() error {
		if a.Cache().Get(k) == nil {
			return errors.New("not cached on A yet")
		}
		return nil
	})
	if rec := a.Resume(k); !bytes.Equal(rec, old) {
		t.Fatalf("Resume with no draining peer = %d packets, want the cached record", recordPackets(t, rec))
	}
	a.SetDraining([]string{c.cfg.NodeID})
	if rec := a.Resume(k); !bytes.Equal(rec, live) {
		t.Fatalf("Resume with the publisher draining = %d packets, want its live record", recordPackets(t, rec))
	}
	// The draining peer no longer holds the flow: the cached record serves.
	liveOn.Store(false)
	if rec := a.Resume(k); !bytes.Equal(rec, old) {
		t.Fatalf("Resume with the flow gone from the draining peer = %d packets, want the cached record", recordPackets(t, rec))
	}
	a.SetDraining(nil)
	h := a.Health()
	if h.DrainLookups != 2 || h.BusHitsLive != 1 || h.CacheHits != 2 || h.BusHits != 1 {
		t.Errorf("outcomes: drain lookups %d, bus live %d, cache %d, bus %d; want 2, 1, 2, 1",
			h.DrainLookups, h.BusHitsLive, h.CacheHits, h.BusHits)
	}
}
