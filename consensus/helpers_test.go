package consensus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/patchgate/patchgate/consensus/patchset"
)

// checkFor calls f every sleep until it returns nil or total has passed, then
// fails the test with f's last error.
func checkFor(t testing.TB, total, sleep time.Duration, f func() error) {
	t.Helper()
	deadline := time.Now().Add(total)
	var err error
	for {
		if err = f(); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("condition not met after %v: %v", total, err)
		}
		time.Sleep(sleep)
	}
}

// tLogHandler writes records to t.Log until the test ends (raft goroutines may
// outlive it by a moment; t.Log would then panic).
type tLogHandler struct {
	mu    *sync.Mutex
	done  *bool
	t     testing.TB
	attrs []slog.Attr
}

func testLogger(t testing.TB) *slog.Logger {
	h := &tLogHandler{mu: &sync.Mutex{}, done: new(bool), t: t}
	t.Cleanup(func() { h.mu.Lock(); *h.done = true; h.mu.Unlock() })
	return slog.New(h)
}

func (h *tLogHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *tLogHandler) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s %s", r.Time.Format("15:04:05.000"), r.Level, r.Message)
	for _, a := range h.attrs {
		fmt.Fprintf(&b, " %s", a)
	}
	r.Attrs(func(a slog.Attr) bool { fmt.Fprintf(&b, " %s", a); return true })
	h.mu.Lock()
	defer h.mu.Unlock()
	if !*h.done {
		h.t.Log(b.String())
	}
	return nil
}
func (h *tLogHandler) WithAttrs(as []slog.Attr) slog.Handler {
	c := *h
	c.attrs = append(append([]slog.Attr(nil), h.attrs...), as...)
	return &c
}
func (h *tLogHandler) WithGroup(string) slog.Handler { return h }

// testCluster is a set of in-process nodes on loopback.
type testCluster struct {
	t       testing.TB
	mu      sync.Mutex
	nodes   []*Cluster // nil while a node is stopped
	cfgs    []Config
	cancel  []context.CancelFunc
	applied []*appliedLog
	key     *patchset.PrivateKey
	base    Config
}

// appliedLog records what a node's applier was given.
type appliedLog struct {
	mu   sync.Mutex
	seen []Assignment
}

func (a *appliedLog) last() (Assignment, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.seen) == 0 {
		return Assignment{}, false
	}
	return a.seen[len(a.seen)-1], true
}

// makeCluster starts n nodes; the first min(n, voters) bootstrap the cluster,
// the rest join it. It waits until every node is in the raft configuration and
// the roster.
func makeCluster(t testing.TB, n, voters int, tweak func(*Config)) *testCluster {
	t.Helper()
	tc := &testCluster{t: t, key: testKey}
	tc.base = FastConfig()
	tc.base.Voters = voters
	tc.base.ClusterName = fmt.Sprintf("test-%d-%s", os.Getpid(), t.Name())
	tc.base.TrustedKeys = patchset.NewKeySet(testKey.Public())
	tc.base.Logger = testLogger(t)
	if tweak != nil {
		tweak(&tc.base)
	}
	dir := t.TempDir()
	for i := 0; i < n; i++ {
		cfg := tc.base
		cfg.NodeName = fmt.Sprintf("n%d", i)
		cfg.DataDir = filepath.Join(dir, cfg.NodeName)
		cfg.APIAddr = fmt.Sprintf("127.0.0.1:%d", 9100+i) // metadata only
		if i < voters {
			cfg.BootstrapExpect = min(n, voters)
		}
		if i > 0 {
			cfg.Seeds = []string{tc.nodes[0].GossipAddr()}
		}
		tc.cfgs = append(tc.cfgs, cfg)
		tc.nodes = append(tc.nodes, nil)
		tc.cancel = append(tc.cancel, nil)
		tc.applied = append(tc.applied, &appliedLog{})
		tc.start(i)
	}
	t.Cleanup(tc.shutdown)
	tc.waitMembers(n)
	return tc
}

// start (re)starts node i with its config; after the first start the node
// keeps its ports, as a restarted daemon would.
func (tc *testCluster) start(i int) {
	tc.t.Helper()
	c, err := Start(tc.cfgs[i])
	if err != nil {
		tc.t.Fatalf("start n%d: %v", i, err)
	}
	tc.cfgs[i].RaftBind, tc.cfgs[i].GossipBind = c.RaftAddr(), c.GossipAddr()
	ctx, cancel := context.WithCancel(context.Background())
	al := tc.applied[i]
	go c.WatchAssignment(ctx, 50*time.Millisecond, func(a Assignment) error {
		al.mu.Lock()
		al.seen = append(al.seen, a)
		al.mu.Unlock()
		return nil
	})
	tc.mu.Lock()
	tc.nodes[i], tc.cancel[i] = c, cancel
	tc.mu.Unlock()
}

// stop shuts node i down without leaving (a crash, to the others).
func (tc *testCluster) stop(i int) {
	tc.t.Helper()
	tc.mu.Lock()
	c, cancel := tc.nodes[i], tc.cancel[i]
	tc.nodes[i] = nil
	tc.mu.Unlock()
	cancel()
	if err := c.Shutdown(); err != nil {
		tc.t.Logf("shutdown n%d: %v", i, err)
	}
}

func (tc *testCluster) shutdown() {
	for i := range tc.nodes {
		if tc.node(i) != nil {
			tc.stop(i)
		}
	}
}

func (tc *testCluster) node(i int) *Cluster {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	return tc.nodes[i]
}

// running returns the indexes of the running nodes.
func (tc *testCluster) running() []int {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	var out []int
	for i, c := range tc.nodes {
		if c != nil {
			out = append(out, i)
		}
	}
	return out
}

// leader waits until exactly one running node (outside skip) leads and
// every running node outside skip agrees, and returns its index.
func (tc *testCluster) leader(skip ...int) int {
	tc.t.Helper()
	var idx int
	checkFor(tc.t, 15*time.Second, 20*time.Millisecond, func() error {
		idx = -1
		for _, i := range tc.running() {
			if contains(skip, i) {
				continue
			}
			if tc.node(i).IsLeader() {
				if idx >= 0 {
					return fmt.Errorf("two leaders: n%d and n%d", idx, i)
				}
				idx = i
			}
		}
		if idx < 0 {
			return errors.New("no leader")
		}
		for _, i := range tc.running() {
			if contains(skip, i) {
				continue
			}
			if id, _ := tc.node(i).Leader(); id != tc.cfgs[idx].NodeName {
				return fmt.Errorf("n%d thinks the leader is %q", i, id)
			}
		}
		return nil
	})
	return idx
}

func contains(xs []int, x int) bool {
	for _, y := range xs {
		if x == y {
			return true
		}
	}
	return false
}

// waitMembers waits until the raft configuration has n servers and the
// roster n nodes.
func (tc *testCluster) waitMembers(n int) {
	tc.t.Helper()
	checkFor(tc.t, 20*time.Second, 20*time.Millisecond, func() error {
		l := tc.leader()
		srv, err := tc.node(l).Servers()
		if err != nil {
			return err
		}
		if len(srv) != n {
			return fmt.Errorf("%d raft servers, want %d", len(srv), n)
		}
		if r := len(tc.node(l).FSM().State().Nodes); r != n {
			return fmt.Errorf("%d nodes in the roster, want %d", r, n)
		}
		return nil
	})
}

// ensureSame waits until every running node outside skip has applied the
// leader's last index and holds a deep-equal state.
func (tc *testCluster) ensureSame(skip ...int) {
	tc.t.Helper()
	checkFor(tc.t, 15*time.Second, 20*time.Millisecond, func() error {
		l := tc.leader(skip...)
		want := tc.node(l).FSM().State()
		for _, i := range tc.running() {
			if contains(skip, i) {
				continue
			}
			got := tc.node(i).FSM().State()
			if !reflect.DeepEqual(got, want) {
				return fmt.Errorf("n%d state at index %d, leader n%d at %d", i, got.Index, l, want.Index)
			}
		}
		return nil
	})
	tc.checkHashes()
}

// checkHashes asserts that every running node that knows or reports
// version N has the same content hash for it.
func (tc *testCluster) checkHashes() {
	tc.t.Helper()
	hashOf := map[uint64]string{}
	where := map[uint64]string{}
	see := func(v uint64, h, who string) {
		if v == 0 {
			return
		}
		if old, ok := hashOf[v]; ok && old != h {
			tc.t.Fatalf("version %d has hash %s on %s and %s on %s", v, old, where[v], h, who)
		}
		hashOf[v], where[v] = h, who
	}
	for _, i := range tc.running() {
		c := tc.node(i)
		for _, r := range c.FSM().State().History {
			see(r.Version, r.ContentHash, c.Name()+" history")
		}
		if m := c.LocalMeta(); m.Version != 0 {
			see(m.Version, m.Hash, c.Name()+" report")
		}
		for _, m := range c.Members() {
			see(m.Meta.Version, m.Meta.Hash, m.Name+" as gossiped to "+c.Name())
		}
	}
}

// push builds and pushes a signed bundle on the leader.
func (tc *testCluster) push(v uint64, plan Plan, patches map[string]int) uint64 {
	tc.t.Helper()
	data := bundleBytes(tc.t, tc.key, v, patches)
	return tc.write(fmt.Sprintf("push v%d", v), func(c *Cluster) (uint64, error) { return c.PushPatchSet(data, plan, "test") })
}

// waitReported waits until every running node outside skip reports version v
// in its gossiped metadata, as seen from node `from`.
func (tc *testCluster) waitReported(from int, want map[string]uint64) {
	tc.t.Helper()
	checkFor(tc.t, 15*time.Second, 20*time.Millisecond, func() error {
		seen := map[string]uint64{}
		for _, m := range tc.node(from).Members() {
			if m.State == MemberAlive {
				seen[m.Name] = m.Meta.Version
			}
		}
		for name, v := range want {
			if seen[name] != v {
				return fmt.Errorf("%s reports version %d, want %d (view of n%d: %v)", name, seen[name], v, from, seen)
			}
		}
		return nil
	})
}

// write runs a write on the current leader, retrying while leadership moves
// (ErrNotLeader means the command was not proposed, so a retry is safe).
func (tc *testCluster) write(what string, f func(c *Cluster) (uint64, error), skip ...int) uint64 {
	tc.t.Helper()
	var idx uint64
	checkFor(tc.t, 15*time.Second, 20*time.Millisecond, func() error {
		var err error
		idx, err = f(tc.node(tc.leader(skip...)))
		if errors.Is(err, ErrNotLeader) {
			return err
		}
		if err != nil {
			tc.t.Fatalf("%s: %v", what, err)
		}
		return nil
	})
	return idx
}
