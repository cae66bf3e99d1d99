package bus

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/patchgate/patchgate/dataplane"
	"github.com/patchgate/patchgate/dataplane/checkpoint"
	"github.com/patchgate/patchgate/dataplane/flow"
)

// testLogf returns a Logf that writes to t.Log until the test ends (NATS
// goroutines may log after that).
func testLogf(t testing.TB) func(string, ...any) {
	var mu sync.Mutex
	done := false
	t.Cleanup(func() { mu.Lock(); done = true; mu.Unlock() })
	return func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		if !done {
			t.Logf(format, args...)
		}
	}
}

// testConfig is a fast embedded configuration on random loopback ports.
func testConfig(t testing.TB, node string) Config {
	c := DefaultConfig()
	c.NodeID = node
	c.Server.Port = -1
	c.Server.ClusterPort = -1
	c.FlushInterval = time.Millisecond
	c.LookupTimeout = 200 * time.Millisecond
	c.LookupGrace = 5 * time.Millisecond
	c.HealthInterval = 300 * time.Millisecond
	c.ReconnectWait = 50 * time.Millisecond
	c.CacheEntries = 1 << 16
	c.CacheBytes = 64 << 20
	c.Logf = testLogf(t)
	return c
}

// openBus opens a Bus closed at the end of the test.
func openBus(t testing.TB, cfg Config) *Bus {
	t.Helper()
	b, err := Open(cfg)
	if err != nil {
		t.Fatalf("Open(%s): %v", cfg.NodeID, err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// startCluster starts n embedded nodes whose servers route to the first one
// (NATS completes the mesh) and waits for the full mesh and for subscription
// interest to reach every server.
func startCluster(t testing.TB, n int, mutate func(i int, c *Config)) []*Bus {
	t.Helper()
	var buses []*Bus
	for i := 0; i < n; i++ {
		c := testConfig(t, fmt.Sprintf("n%d", i))
		if i > 0 {
			c.Server.Routes = []string{buses[0].Server().ClusterAddr()}
		}
		if mutate != nil {
			mutate(i, &c)
		}
		buses = append(buses, openBus(t, c))
	}
	waitFor(t, 10*time.Second, func() error {
		for _, b := range buses {
			if r := b.Server().NumRoutes(); r < n-1 {
				return fmt.Errorf("%s has %d routes, want %d", b.cfg.NodeID, r, n-1)
			}
		}
		return nil
	})
	warmUp(t, buses)
	return buses
}

// warmUp publishes a probe from every node until every other node cached it,
// so that route interest has propagated before a test publishes once.
func warmUp(t testing.TB, buses []*Bus) {
	t.Helper()
	for i, from := range buses {
		k := testKey(60000 + i)
		rec := testRecord(k, 1, 1, 64)
		waitFor(t, 10*time.Second, func() error {
			from.Publish(k, rec)
			for _, to := range buses {
				if to != from && to.Cache().Get(k) == nil {
					return fmt.Errorf("probe of %s not in %s's cache", from.cfg.NodeID, to.cfg.NodeID)
				}
			}
			return nil
		})
	}
}

// errNotYet is returned by waitFor conditions that are not met yet.
var errNotYet = errors.New("condition not met yet")

// waitFor polls f every 10 ms until it returns nil or total elapses.
func waitFor(t testing.TB, total time.Duration, f func() error) {
	t.Helper()
	deadline := time.Now().Add(total)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %v: %v", total, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// testKey returns a distinct canonical TCP flow key for i (documentation
// addresses; nothing is sent to them).
func testKey(i int) flow.Key {
	a := netip.AddrFrom4([4]byte{198, 51, 100, byte(i % 250)})
	b := netip.AddrFrom4([4]byte{203, 0, 113, byte(i / 250 % 250)})
	k, _ := flow.NewKey(a, b, uint16(1024+i%60000), 80, 6)
	return k
}

// testRecord returns a valid checkpoint record of about size bytes.
func testRecord(k flow.Key, created int64, packets uint64, size int) []byte {
	r := checkpoint.Record{
		Key: k, FlowID: uint64(created), ClientIsA: true,
		Created: time.Unix(0, created), LastSeen: time.Unix(0, created+int64(packets)),
		PatchSet: 7, Packets: [2]uint64{packets, 0}, Bytes: [2]uint64{packets * 100, 0},
		Detected: true, FirstSet: true, FirstDir: dataplane.ToServer, Analyzer: "http",
	}
	base := len(r.Marshal(nil))
	if size > base {
		r.AnalyzerState = make([]byte, size-base-2)
		for i := range r.AnalyzerState {
			r.AnalyzerState[i] = byte(i)
		}
	}
	return r.Marshal(nil)
}

// recordPackets returns the packet count stored in rec.
func recordPackets(t testing.TB, rec []byte) uint64 {
	t.Helper()
	r, err := checkpoint.Unmarshal(rec)
	if err != nil {
		t.Fatalf("cached record invalid: %v", err)
	}
	return r.Packets[0] + r.Packets[1]
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	_, p, _ := net.SplitHostPort(l.Addr().String())
	n, _ := strconv.Atoi(p)
	return n
}
