package consensus

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/patchgate/patchgate/consensus/patchset"
)

var t0 = time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)

// patchYAML is a small valid patch: drop requests whose raw URI is longer than
// limit, with one matching and one non-matching test.
func patchYAML(id string, sid, limit int) []byte {
	return []byte(strings.NewReplacer("ID", id, "SID", strconv.Itoa(sid), "LIMIT", strconv.Itoa(limit)).Replace(`id: ID
sid: SID
title: test patch ID
severity: high
category: dos
protocol: http
event: http.request_headers
when: len(uri.raw) > LIMIT
action: drop
tests:
  - name: long uri
    match: true
    to_server: "GET /aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa HTTP/1.1\r\nHost: x\r\n\r\n"
  - name: short uri
    match: false
    to_server: "GET / HTTP/1.1\r\nHost: x\r\n\r\n"
`))
}

// bundleBytes builds a signed bundle; patches maps ids (X-1, X-2, ...) to URI limits.
func bundleBytes(t testing.TB, key *patchset.PrivateKey, version uint64, patches map[string]int) []byte {
	t.Helper()
	var files []patchset.File
	for id, limit := range patches {
		n, _ := strconv.Atoi(strings.TrimPrefix(id, "X-"))
		files = append(files, patchset.File{Name: id + ".yaml", Data: patchYAML(id, 9100000+n, limit)})
	}
	b, err := patchset.New(files, version, key, patchset.Meta{Author: "test", Time: t0, Message: fmt.Sprintf("v%d", version)})
	if err != nil {
		t.Fatal(err)
	}
	data, err := b.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return data
}

var testKey = func() *patchset.PrivateKey {
	k, err := patchset.GenerateKey()
	if err != nil {
		panic(err)
	}
	return k
}()

// fsmHarness applies commands directly, as raft would, and keeps the log.
type fsmHarness struct {
	t    testing.TB
	fsm  *FSM
	logs []*raft.Log
	now  time.Time
}

func newHarness(t testing.TB) *fsmHarness {
	return &fsmHarness{t: t, fsm: NewFSM(nil), now: t0}
}

func (h *fsmHarness) apply(c Command) error {
	h.t.Helper()
	c.V = CommandVersion
	h.now = h.now.Add(time.Second)
	if c.Time.IsZero() {
		c.Time = h.now
	}
	data, err := c.Encode()
	if err != nil {
		h.t.Fatal(err)
	}
	l := &raft.Log{Index: uint64(len(h.logs) + 1), Term: 1, Type: raft.LogCommand, Data: data}
	h.logs = append(h.logs, l)
	if r := h.fsm.Apply(l); r != nil {
		return r.(error)
	}
	return nil
}

func (h *fsmHarness) must(c Command) {
	h.t.Helper()
	if err := h.apply(c); err != nil {
		h.t.Fatalf("%s: %v", c.Type, err)
	}
}

func upsert(name string) Command {
	return Command{Type: CmdNodeUpsert, Node: &NodeRecord{Name: name, RaftAddr: "127.0.0.1:1", APIAddr: "127.0.0.1:2"}}
}

func push(t testing.TB, v uint64, plan Plan, patches map[string]int) Command {
	c, err := NewPushCommand(bundleBytes(t, testKey, v, patches), plan, "alice")
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestRolloutPlans(t *testing.T) {
	h := newHarness(t)
	for _, n := range []string{"n0", "n1", "n2"} {
		h.must(upsert(n))
	}
	if a := h.fsm.Target("n0"); a.Version != 0 {
		t.Fatalf("fresh cluster target %+v", a)
	}
	// all-at-once
	h.must(push(t, 1, Plan{}, map[string]int{"X-1": 40, "X-2": 50}))
	st := h.fsm.State()
	if st.Active != 1 || st.Rollout.Stage != StageComplete || st.History[0].CommittedBy != "alice" ||
		len(st.History[0].Patches) != 2 || st.History[0].Patches[1].ID != "X-2" || len(st.History[0].Patches[1].SHA256) != 64 {
		t.Fatalf("after v1: %+v %+v", st.Active, st.Rollout)
	}
	h1 := st.History[0].ContentHash
	if a := h.fsm.Target("n2"); a.Version != 1 || a.ContentHash != h1 {
		t.Fatalf("target %+v", a)
	}

	// canary on a named node; a second push waits for promote/abort.
	h.must(push(t, 2, Plan{Strategy: Canary, CanaryNodes: []string{"n1"}}, map[string]int{"X-1": 40, "X-2": 60}))
	if a, b := h.fsm.Target("n1"), h.fsm.Target("n0"); a.Version != 2 || b.Version != 1 {
		t.Fatalf("canary targets n1=%+v n0=%+v", a, b)
	}
	if err := h.apply(push(t, 3, Plan{}, map[string]int{"X-1": 1})); !errors.Is(err, ErrConflict) {
		t.Fatalf("push during canary: %v", err)
	}
	if err := h.apply(Command{Type: CmdPromote, Promote: &PromoteCmd{Version: 1}}); !errors.Is(err, ErrConflict) {
		t.Fatalf("promote of the wrong version: %v", err)
	}
	h.must(Command{Type: CmdPromote, Promote: &PromoteCmd{Version: 2}})
	if a := h.fsm.Target("n0"); a.Version != 2 || h.fsm.State().Active != 2 {
		t.Fatalf("after promote %+v", a)
	}

	// detect-first: only new and changed patches run in detect mode.
	h.must(push(t, 3, Plan{Strategy: DetectFirst}, map[string]int{"X-1": 40, "X-2": 70, "X-3": 10}))
	a := h.fsm.Target("n0")
	if a.Version != 3 || !slices.Equal(a.DetectOnly, []string{"X-2", "X-3"}) || h.fsm.State().Active != 2 {
		t.Fatalf("detect-first target %+v", a)
	}
	h.must(Command{Type: CmdPromote, Promote: &PromoteCmd{Version: 3}})
	if a := h.fsm.Target("n0"); a.Version != 3 || a.DetectOnly != nil {
		t.Fatalf("after promote %+v", a)
	}

	// canary by percentage, then abort: everyone back on 3.
	h.must(push(t, 4, Plan{Strategy: Canary, CanaryPercent: 34}, map[string]int{"X-1": 1}))
	r := h.fsm.State().Rollout
	if len(r.CanaryNodes) != 2 || r.From != 3 {
		t.Fatalf("34%% of 3 nodes: %v", r.CanaryNodes)
	}
	h.must(Command{Type: CmdAbort, Abort: &AbortCmd{Version: 4}})
	for _, n := range []string{"n0", "n1", "n2"} {
		if a := h.fsm.Target(n); a.Version != 3 {
			t.Fatalf("after abort %s runs %+v", n, a)
		}
	}

	// rollback to any earlier version, even in the middle of a canary.
	h.must(push(t, 5, Plan{Strategy: Canary, CanaryPercent: 1}, map[string]int{"X-1": 2}))
	h.must(Command{Type: CmdRollback, Rollback: &RollbackCmd{Version: 1}})
	st = h.fsm.State()
	if st.Active != 1 || !st.Rollout.Rollback || st.Rollout.From != 3 || h.fsm.Target("n1").ContentHash != h1 {
		t.Fatalf("rollback: active %d rollout %+v", st.Active, st.Rollout)
	}
	if err := h.apply(Command{Type: CmdRollback, Rollback: &RollbackCmd{Version: 1}}); !errors.Is(err, ErrConflict) {
		t.Fatalf("rollback to the active version: %v", err)
	}
	if err := h.apply(Command{Type: CmdRollback, Rollback: &RollbackCmd{Version: 9}}); !errors.Is(err, ErrConflict) {
		t.Fatalf("rollback to an unknown version: %v", err)
	}
	// Versions only go up.
	if err := h.apply(push(t, 5, Plan{}, map[string]int{"X-1": 3})); !errors.Is(err, ErrConflict) {
		t.Fatalf("re-push of version 5: %v", err)
	}
}

func TestDrainSettingsRoster(t *testing.T) {
	h := newHarness(t)
	h.must(upsert("n0"))
	if err := h.apply(Command{Type: CmdDrain, Drain: &DrainCmd{Node: "nx", Drained: true}}); !errors.Is(err, ErrBadCommand) {
		t.Fatalf("drain of unknown node: %v", err)
	}
	h.must(Command{Type: CmdDrain, Actor: "bob", Drain: &DrainCmd{Node: "n0", Drained: true, Reason: "kernel upgrade"}})
	if d := h.fsm.State().Drain["n0"]; d.Reason != "kernel upgrade" || d.By != "bob" || !h.fsm.Target("n0").Drained {
		t.Fatalf("drain flag %+v", d)
	}
	h.must(Command{Type: CmdDrain, Drain: &DrainCmd{Node: "n0"}})
	if h.fsm.Target("n0").Drained {
		t.Fatal("undrain ignored")
	}
	if err := h.apply(Command{Type: CmdSettings, Settings: &Settings{DeadServerGrace: time.Millisecond, Overload: FailOpen}}); !errors.Is(err, ErrBadCommand) {
		t.Fatalf("bad settings: %v", err)
	}
	h.must(Command{Type: CmdSettings, Settings: &Settings{DeadServerGrace: time.Minute, Overload: FailClosed}})
	if s := h.fsm.State().Settings; s.Overload != FailClosed {
		t.Fatalf("settings %+v", s)
	}
	joined := h.fsm.State().Nodes["n0"].Joined
	h.must(upsert("n0"))
	if h.fsm.State().Nodes["n0"].Joined != joined {
		t.Fatal("re-upsert changed the join time")
	}
	h.must(Command{Type: CmdDrain, Drain: &DrainCmd{Node: "n0", Drained: true}})
	h.must(Command{Type: CmdNodeRemove, Remove: &RemoveCmd{Node: "n0"}})
	if st := h.fsm.State(); len(st.Nodes) != 0 || len(st.Drain) != 0 {
		t.Fatalf("remove left %v %v", st.Nodes, st.Drain)
	}
}

func TestCommandValidation(t *testing.T) {
	h := newHarness(t)
	before := h.fsm.State()
	raw := func(s string) error {
		l := &raft.Log{Index: uint64(len(h.logs) + 1), Data: []byte(s)}
		h.logs = append(h.logs, l)
		r := h.fsm.Apply(l)
		if r == nil {
			return nil
		}
		return r.(error)
	}
	tm := `"time":"2026-11-22T12:00:00Z"`
	cases := []struct {
		data string
		want error
	}{
		{`not json`, ErrBadCommand},
		{`{"v":2,"type":"abort",` + tm + `,"abort":{"version":1}}`, ErrUnsupportedCommand},
		{`{"v":1,"type":"abort","abort":{"version":1}}`, ErrBadCommand},
		{`{"v":1,"type":"abort",` + tm + `}`, ErrBadCommand},
		{`{"v":1,"type":"abort",` + tm + `,"abort":{"version":1},"promote":{"version":1}}`, ErrBadCommand},
		{`{"v":1,"type":"explode",` + tm + `}`, ErrBadCommand},
		{`{"v":1,"type":"abort",` + tm + `,"abort":{"version":1}}`, ErrConflict},
		{`{"v":1,"type":"push",` + tm + `,"push":{"bundle":"e30=","plan":{}}}`, ErrBadCommand},
	}
	for _, c := range cases {
		if err := raw(c.data); !errors.Is(err, c.want) {
			t.Errorf("%s: got %v, want %v", c.data, err, c.want)
		}
	}
	after := h.fsm.State()
	after.Index = before.Index
	if !reflect.DeepEqual(before, after) {
		t.Fatal("refused commands changed the state")
	}
	// A tampered bundle never enters the history, even if proposed.
	bad := push(t, 1, Plan{}, map[string]int{"X-1": 4})
	bad.Push.Bundle = bytes.Replace(bad.Push.Bundle, []byte(`"version":1`), []byte(`"version":2`), 1)
	if err := h.apply(bad); err != nil {
		t.Fatalf("version edit is structurally valid, Verify catches it: %v", err)
	}
	// The patch list must match the bundle.
	lie := push(t, 7, Plan{}, map[string]int{"X-1": 4})
	lie.Push.Patches[0].File = "other.yaml"
	if err := h.apply(lie); !errors.Is(err, ErrBadCommand) {
		t.Fatalf("patch list naming another file: %v", err)
	}
	lie.Push.Patches = nil
	if err := h.apply(lie); !errors.Is(err, ErrBadCommand) {
		t.Fatalf("no patch list: %v", err)
	}
	worse := push(t, 3, Plan{}, map[string]int{"X-1": 4})
	b, _ := patchset.Unmarshal(worse.Push.Bundle)
	b.Files[0].Data = append(b.Files[0].Data, '#')
	worse.Push.Bundle, _ = b.Marshal()
	if err := h.apply(worse); !errors.Is(err, ErrBadCommand) {
		t.Fatalf("bundle with a modified file: %v", err)
	}
}

// randomCommands drives the FSM through many valid and invalid commands.
func randomCommands(t testing.TB, h *fsmHarness, n int, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 1))
	nodes := []string{"n0", "n1", "n2", "n3", "n4"}
	version := uint64(0)
	for i := 0; i < n; i++ {
		node := nodes[rng.IntN(len(nodes))]
		var c Command
		switch rng.IntN(9) {
		case 0:
			c = upsert(node)
		case 1:
			c = Command{Type: CmdNodeRemove, Remove: &RemoveCmd{Node: node}}
		case 2:
			c = Command{Type: CmdDrain, Drain: &DrainCmd{Node: node, Drained: rng.IntN(2) == 0, Reason: "r"}}
		case 3, 4:
			version++
			plans := []Plan{{}, {Strategy: Canary, CanaryPercent: 1 + rng.IntN(100)}, {Strategy: DetectFirst},
				{Strategy: Canary, CanaryNodes: []string{node}}}
			c = push(t, version, plans[rng.IntN(len(plans))], map[string]int{"X-1": rng.IntN(5), fmt.Sprintf("X-%d", 2+rng.IntN(3)): 7})
		case 5:
			c = Command{Type: CmdPromote, Promote: &PromoteCmd{Version: version}}
		case 6:
			c = Command{Type: CmdAbort, Abort: &AbortCmd{Version: version}}
		case 7:
			c = Command{Type: CmdRollback, Rollback: &RollbackCmd{Version: uint64(rng.IntN(int(version) + 1))}}
		case 8:
			c = Command{Type: CmdSettings, Settings: &Settings{DeadServerGrace: time.Duration(rng.IntN(600)) * time.Second, Overload: FailOpen, KeepBundles: rng.IntN(4)}}
		}
		_ = h.apply(c) // refused commands are part of the test
	}
}

func snapshotBytes(t testing.TB, f *FSM) []byte {
	t.Helper()
	s, err := f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	sink := &memSink{}
	if err := s.Persist(sink); err != nil {
		t.Fatal(err)
	}
	s.Release()
	return sink.Bytes()
}

type memSink struct{ bytes.Buffer }

func (*memSink) ID() string                    { return "mem" }
func (*memSink) Cancel() error                 { return nil }
func (*memSink) Close() error                  { return nil }
func (m *memSink) Write(p []byte) (int, error) { return m.Buffer.Write(p) }

// TestSnapshotRestoreEqualsReplay: a state restored from a snapshot, and a
// state rebuilt by replaying the log, are deep-equal to the original, also
// when a snapshot is taken half-way and the rest of the log replayed on it.
func TestSnapshotRestoreEqualsReplay(t *testing.T) {
	for seed := uint64(1); seed <= 3; seed++ {
		h := newHarness(t)
		randomCommands(t, h, 150, seed)
		orig := h.fsm.State()
		if len(orig.History) == 0 {
			t.Fatal("the random walk pushed nothing")
		}

		restored := NewFSM(nil)
		if err := restored.Restore(io.NopCloser(bytes.NewReader(snapshotBytes(t, h.fsm)))); err != nil {
			t.Fatal(err)
		}
		if got := restored.State(); !reflect.DeepEqual(got, orig) {
			t.Fatalf("seed %d: snapshot restore differs:\n%+v\n%+v", seed, got, orig)
		}

		replayed := NewFSM(nil)
		var mid []byte
		for i, l := range h.logs {
			replayed.Apply(l)
			if i == len(h.logs)/2 {
				mid = snapshotBytes(t, replayed)
			}
		}
		if got := replayed.State(); !reflect.DeepEqual(got, orig) {
			t.Fatalf("seed %d: log replay differs", seed)
		}

		half := NewFSM(nil)
		if err := half.Restore(io.NopCloser(bytes.NewReader(mid))); err != nil {
			t.Fatal(err)
		}
		for _, l := range h.logs[len(h.logs)/2+1:] {
			half.Apply(l)
		}
		if got := half.State(); !reflect.DeepEqual(got, orig) {
			t.Fatalf("seed %d: snapshot + tail replay differs", seed)
		}
		if !bytes.Equal(snapshotBytes(t, half), snapshotBytes(t, h.fsm)) {
			t.Fatalf("seed %d: snapshots differ byte-wise", seed)
		}
	}
	if err := NewFSM(nil).Restore(io.NopCloser(strings.NewReader(`{"format":"other"}`))); err == nil {
		t.Fatal("foreign snapshot accepted")
	}
}

func TestBundlePruning(t *testing.T) {
	h := newHarness(t)
	h.must(upsert("n0"))
	h.must(Command{Type: CmdSettings, Settings: &Settings{DeadServerGrace: time.Minute, Overload: FailOpen, KeepBundles: 2}})
	for v := uint64(1); v <= 4; v++ {
		h.must(push(t, v, Plan{}, map[string]int{"X-1": int(v)}))
	}
	h.must(push(t, 5, Plan{Strategy: Canary, CanaryNodes: []string{"n0"}}, map[string]int{"X-1": 5}))
	// Kept: 5 (newest, rollout), 4 (active = rollout.From); 1..3 pruned.
	var kept []uint64
	for _, r := range h.fsm.State().History {
		if r.Bundle != nil {
			kept = append(kept, r.Version)
		}
	}
	if !slices.Equal(kept, []uint64{4, 5}) {
		t.Fatalf("bundles kept for %v", kept)
	}
	err := h.apply(Command{Type: CmdRollback, Rollback: &RollbackCmd{Version: 2}})
	if !errors.Is(err, ErrConflict) || !strings.Contains(err.Error(), "pruned") {
		t.Fatalf("rollback to a pruned version: %v", err)
	}
}

func TestChangedNotifies(t *testing.T) {
	h := newHarness(t)
	ch := h.fsm.Changed()
	h.must(upsert("n0"))
	select {
	case <-ch:
	default:
		t.Fatal("no change notification")
	}
}
