package evasion

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"github.com/patchgate/patchgate/dataplane"
	"github.com/patchgate/patchgate/dataplane/engine"
	"github.com/patchgate/patchgate/dataplane/gen"
	"github.com/patchgate/patchgate/dataplane/patch"
)

// Malformed and truncated traffic of every protocol (HTTP, TLS, DNS over
// UDP and TCP, SMB): mutations of every shipped test's conversation — each
// message truncated (the conversation cut there), bytes flipped with a
// fixed seed, and the leading header bytes (where TLS, DNS, NetBIOS and SMB
// keep their lengths) forced to 0x00 and 0xFF — all replayed as valid
// TCP/UDP sessions into one engine, among neighbour flows that must keep
// working. Then the frames themselves are corrupted (random bytes anywhere,
// truncation at every byte) for an engine that ignores checksums, so the
// corruption reaches the decoders, the normaliser and the analyzers.

// mutation is one malformed conversation.
type mutation struct {
	name  string
	steps []patch.Step
}

// truncOffsets returns where to cut a message of n bytes: every offset of
// the first 8 bytes, then about 16 more spread evenly (fewer for messages
// over 4 KiB).
func truncOffsets(n int) []int {
	var ks []int
	for k := 0; k < n && k < 8; k++ {
		ks = append(ks, k)
	}
	spread := 16
	if n > 4096 {
		spread = 4
	}
	if n > 8 {
		for i := 1; i <= spread; i++ {
			ks = append(ks, 8+(n-8)*i/(spread+1))
		}
	}
	return ks
}

// mutationsOf returns the malformed variants of a conversation.
func mutationsOf(tr traffic, rng *rand.Rand) []mutation {
	var out []mutation
	for i, st := range tr.steps {
		n := len(st.Data)
		with := func(name string, data []byte, cut bool) {
			steps := append([]patch.Step(nil), tr.steps...)
			steps[i] = patch.Step{Dir: st.Dir, Data: data}
			if cut {
				steps = steps[:i+1]
			}
			out = append(out, mutation{name: fmt.Sprintf("%s: message %d %s", tr.name, i, name), steps: steps})
		}
		for _, k := range truncOffsets(n) {
			with(fmt.Sprintf("truncated at %d", k), st.Data[:k:k], true)
		}
		flips := 4
		if n > 4096 {
			flips = 2
		}
		for f := 0; f < flips && n > 0; f++ {
			d := clone(st.Data)
			for j := 0; j < 1+f; j++ {
				pos := rng.IntN(n)
				if j == 0 {
					pos = rng.IntN(min(n, 64))
				}
				d[pos] ^= byte(1 + rng.IntN(255))
			}
			with(fmt.Sprintf("flip %d", f), d, false)
		}
		hdr := 12
		if n > 4096 {
			hdr = 6
		}
		for pos := 0; pos < min(n, hdr); pos++ {
			for _, v := range []byte{0x00, 0xff} {
				d := clone(st.Data)
				d[pos] = v
				with(fmt.Sprintf("byte %d = %#x", pos, v), d, false)
			}
		}
	}
	return out
}

// mixedEngine replays many flows through one engine with one clock.
type mixedEngine struct {
	e     *engine.Engine
	w     *engine.Worker
	rec   *engine.AlertRecorder
	clock time.Time
}

func newMixedEngine(t testing.TB, prog *patch.Program, mod func(*engine.Config)) *mixedEngine {
	rec := &engine.AlertRecorder{}
	e := newEngine(t, prog, mod, rec)
	return &mixedEngine{e: e, w: e.NewWorker(), rec: rec, clock: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)}
}

func (m *mixedEngine) now() time.Time { m.clock = m.clock.Add(10 * time.Microsecond); return m.clock }

func (m *mixedEngine) replay(r *run) {
	for _, f := range r.frames {
		m.w.Process(r.lt, f.Data, m.now())
	}
}

// mixedNeighbours opens an exploit and a benign HTTP flow (7-byte segments)
// and a TLS Heartbleed flow, fed a frame at a time among the malformed
// traffic.
type mixedNeighbours struct {
	list  []*neighbour
	ports []uint16
}

func newMixedNeighbours(t testing.TB) *mixedNeighbours {
	c := &class{name: "neighbour", segSize: 7}
	trs := []traffic{
		findTraffic(t, "CVE-2021-44228", "lower/upper obfuscation in a custom header"),
		findTraffic(t, "CVE-2021-44228", "JavaScript template in a JSON body"),
		findTraffic(t, "CVE-2014-0160", "ssltest-style request after ServerHelloDone"),
	}
	n := &mixedNeighbours{}
	for i, tr := range trs {
		port := uint16(39001 + i)
		n.list = append(n.list, newNeighbour(t, tr, c, port))
		n.ports = append(n.ports, port)
	}
	return n
}

func (n *mixedNeighbours) step(m *mixedEngine) {
	for _, nb := range n.list {
		nb.feedUntil(m.w, m.now, nb.next+1)
	}
}

func (n *mixedNeighbours) finish(t *testing.T, prog *patch.Program, m *mixedEngine) {
	t.Helper()
	for i, nb := range n.list {
		nb.feedUntil(m.w, m.now, len(nb.r.frames))
		nb.r.alerts = alertsOf(m.rec, n.ports[i])
		if nb.r.tr.match {
			checkExploit(t, prog, nb.r)
		} else {
			checkBenign(t, prog, nb.r)
		}
	}
}

// TestMalformedSessionsNeverPanic replays every mutation of every shipped
// test as a well-formed TCP or UDP session into one engine; neighbour flows
// keep being inspected and nothing panics.
func TestMalformedSessionsNeverPanic(t *testing.T) {
	t.Parallel()
	prog := catalog(t)
	m := newMixedEngine(t, prog, nil)
	nb := newMixedNeighbours(t)
	rng := rand.New(rand.NewPCG(2026, 11))
	sessions := 0
	for _, tr := range catalogTraffic(t) {
		for j, mu := range mutationsOf(tr, rng) {
			if testing.Short() && j%4 != 0 {
				continue
			}
			id := sessions
			sessions++
			v := tr
			v.name, v.steps = mu.name, mu.steps
			c := &class{name: "malformed", client: gen.Endpoint{
				Addr: netip.AddrFrom4([4]byte{203, 0, 113, byte(1 + id/60000)}), Port: uint16(1024 + id%60000)}}
			m.replay(build(t, v, c))
			if id%64 == 0 {
				nb.step(m)
			}
		}
	}
	st := m.e.Stats()
	t.Logf("%d malformed sessions, %d packets, %d analyzer errors, violations %v", sessions, st.Packets, st.AnalyzerErrors, st.Violations)
	if st.Panics != 0 {
		t.Fatalf("%d panics recovered", st.Panics)
	}
	nb.finish(t, prog, m)
}

// TestCorruptedFramesNeverPanic corrupts the frames of every shipped test —
// random bytes anywhere (headers included) and every data frame truncated
// at every byte — for an engine that ignores checksums, among neighbour
// flows.
func TestCorruptedFramesNeverPanic(t *testing.T) {
	t.Parallel()
	prog := catalog(t)
	m := newMixedEngine(t, prog, func(c *engine.Config) { c.Checksums = engine.ChecksumIgnore })
	nb := newMixedNeighbours(t)
	rng := rand.New(rand.NewPCG(7, 2026))
	frames := 0
	for i, tr := range catalogTraffic(t) {
		r := build(t, tr, &class{name: "plain", segSize: 64, maxSegs: fragMaxSegs})
		port := uint16(20000 + i)
		for k, f := range r.frames {
			data := withClientPort(f.Data, 14, port, f.Meta.Dir)
			if k%3 == 0 || f.Meta.Msg < 0 {
				m.w.Process(r.lt, data, m.now()) // keep the flow going
			}
			for v := 0; v < 3; v++ {
				d := clone(data)
				for j := 0; j <= v; j++ {
					d[rng.IntN(len(d))] ^= byte(1 + rng.IntN(255))
				}
				m.w.Process(r.lt, d, m.now())
				frames++
			}
			if f.Meta.Msg >= 0 && (k < 8 || !testing.Short()) && len(data) < 256 {
				for cut := 0; cut < len(data); cut++ {
					m.w.Process(r.lt, data[:cut], m.now())
					frames++
				}
			}
		}
		nb.step(m)
	}
	st := m.e.Stats()
	t.Logf("%d corrupted frames, verdicts %v", frames, st.Verdicts)
	if st.Panics != 0 {
		t.Fatalf("%d panics recovered", st.Panics)
	}
	if st.Verdicts[dataplane.Drop] == 0 {
		t.Fatal("no corrupted frame was dropped")
	}
	nb.finish(t, prog, m)
}
