package bus

import (
	"errors"
	"fmt"
	"testing"
	"time"
)

// With the bus down, Publish never blocks: records are dropped and counted,
// Health reports degraded, Resume returns at once; after the server comes
// back the client reconnects, checkpoints flow again and the degradation
// clears.
func TestBusDownDropsAndRecovers(t *testing.T) {
	port := freePort(t)
	scfg := testConfig(t, "srv")
	scfg.Server.Port, scfg.Server.ClusterPort = port, 0
	srv, err := StartServer(&scfg)
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			srv.Shutdown()
		}
	})
	ext := func(node string) Config {
		c := testConfig(t, node)
		c.URLs = []string{fmt.Sprintf("nats://127.0.0.1:%d", port)}
		return c
	}
	pub := openBus(t, ext("pub"))
	sub := openBus(t, ext("sub"))
	warmUp(t, []*Bus{pub, sub})
	if h := pub.Health(); h.Degraded || !h.Connected || h.Routes != -1 {
		t.Fatalf("before failure: %+v", h)
	}

	srv.Shutdown()
	stopped = true
	waitFor(t, 10*time.Second, func() error {
		if pub.Health().Connected {
			return errors.New("still connected")
		}
		return nil
	})

	const n = 20000
	before := pub.Health().Dropped
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < n; i++ {
			k := testKey(i)
			pub.Publish(k, testRecord(k, 1, uint64(i), 200))
		}
	}()
	waitFor(t, 10*time.Second, func() error {
		select {
		case <-done:
			return nil
		default:
			return errors.New("Publish blocked with the bus down")
		}
	})
	h := pub.Health()
	if got := h.Dropped - before; got != n {
		t.Errorf("dropped %d of %d records published while down", got, n)
	}
	if !h.Degraded || h.Reason == "" {
		t.Errorf("health while down: degraded %v reason %q", h.Degraded, h.Reason)
	}
	if rec := pub.Resume(testKey(1)); rec != nil {
		t.Error("Resume returned a record with the bus down and an empty cache")
	}

	srv2, err := StartServer(&scfg)
	if err != nil {
		t.Fatalf("restart on port %d: %v", port, err)
	}
	t.Cleanup(srv2.Shutdown)
	waitFor(t, 10*time.Second, func() error {
		if !pub.Health().Connected || !sub.Health().Connected {
			return errors.New("not reconnected")
		}
		return nil
	})
	k := testKey(123)
	rec := testRecord(k, 50, 3, 200)
	waitFor(t, 10*time.Second, func() error {
		pub.Publish(k, rec)
		if sub.Cache().Get(k) == nil {
			return errors.New("checkpoint not received after recovery")
		}
		return nil
	})
	waitFor(t, 10*time.Second, func() error {
		if h := pub.Health(); h.Degraded {
			return fmt.Errorf("still degraded: %s", h.Reason)
		}
		return nil
	})
}

// When one node of the cluster dies, the others keep sharing checkpoints.
func TestPeerDeathKeepsClusterWorking(t *testing.T) {
	buses := startCluster(t, 3, nil)
	a, b, c := buses[0], buses[1], buses[2]
	a.SetPeers(2)
	if h := a.Health(); h.Degraded {
		t.Fatalf("full cluster degraded: %s", h.Reason)
	}
	c.Close()
	waitFor(t, 10*time.Second, func() error {
		if r := a.Health().Routes; r != 1 {
			return fmt.Errorf("a has %d routes, want 1", r)
		}
		return nil
	})
	// Membership still lists c: a route is missing, protection is degraded.
	if h := a.Health(); !h.Degraded || h.Reason == "" {
		t.Errorf("missing route not reported: degraded %v", h.Degraded)
	}
	a.SetPeers(1) // membership removed c
	k := testKey(31)
	a.Publish(k, testRecord(k, 10, 1, 200))
	waitFor(t, 5*time.Second, func() error {
		if b.Cache().Get(k) == nil {
			return errors.New("not received on b")
		}
		return nil
	})
	if h := a.Health(); h.Degraded || h.Dropped != 0 {
		t.Errorf("survivor health: %+v", h)
	}
}

// A node pointed at an external cluster that is not up yet opens anyway,
// reports disconnected and degraded, and connects when the server appears.
func TestOpenBeforeServerStarts(t *testing.T) {
	port := freePort(t)
	c := testConfig(t, "early")
	c.URLs = []string{fmt.Sprintf("nats://127.0.0.1:%d", port)}
	early := openBus(t, c)
	if h := early.Health(); h.Connected || !h.Degraded {
		t.Fatalf("before the server exists: connected %v degraded %v", h.Connected, h.Degraded)
	}
	k := testKey(1)
	early.Publish(k, testRecord(k, 1, 1, 200)) // dropped, never blocks
	if early.Health().Dropped != 1 {
		t.Error("publish while not connected not counted as dropped")
	}

	scfg := testConfig(t, "late-srv")
	scfg.Server.Port, scfg.Server.ClusterPort = port, 0
	srv, err := StartServer(&scfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	waitFor(t, 10*time.Second, func() error {
		if !early.Health().Connected {
			return errors.New("not connected yet")
		}
		return nil
	})
	c2 := testConfig(t, "peer")
	c2.URLs = c.URLs
	peer := openBus(t, c2)
	warmUp(t, []*Bus{early, peer})
}
