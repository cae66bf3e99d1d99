package evasion

import (
	"encoding/binary"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/google/gopacket/layers"

	"github.com/patchgate/patchgate/dataplane"
	"github.com/patchgate/patchgate/dataplane/decode"
	"github.com/patchgate/patchgate/dataplane/defrag"
	"github.com/patchgate/patchgate/dataplane/engine"
	"github.com/patchgate/patchgate/dataplane/flow"
	"github.com/patchgate/patchgate/dataplane/gen"
	"github.com/patchgate/patchgate/dataplane/patch"
)

// Resource bounds: floods of half-open state against an engine with small
// caps. Memory stays under the caps, evictions are counted, and flows that
// were established before (or interleaved with) the flood are inspected as
// if there had been no flood.

const (
	floodSYNs        = 200000
	floodSYNsShort   = 20000
	floodTrains      = 100000
	floodTrainsShort = 10000
)

// floodSource hands out flood packets from random sources in the benchmark
// range 198.18.0.0/15, built from a template frame by rewriting the source
// address, the source port or IP identification, and the checksums.
type floodSource struct {
	tmpl []byte
	l3   int
	rng  *rand.Rand
}

func (f *floodSource) next() []byte {
	b := clone(f.tmpl)
	ip := b[f.l3:]
	src := f.rng.Uint32()
	ip[12], ip[13], ip[14], ip[15] = 198, 18|byte(src>>16)&1, byte(src>>8), byte(src)
	binary.BigEndian.PutUint16(ip[4:], uint16(f.rng.Uint32()))
	fixIPv4Checksum(ip)
	if frag, _ := isFragment(b, f.l3); !frag {
		binary.BigEndian.PutUint16(ip[20:], uint16(1024+f.rng.IntN(64000)))
		fixL4Checksum(ip)
	}
	return b
}

// neighbour is a flow replayed frame by frame among the flood.
type neighbour struct {
	r    *run
	next int
}

func newNeighbour(t testing.TB, tr traffic, c *class, clientPort uint16) *neighbour {
	r := build(t, tr, c)
	// build uses client port 40000; give each neighbour its own flow, and
	// its own IP identification space: neighbours share addresses, and a
	// receiver would merge same-ID fragments of two flows into one datagram.
	for i := range r.frames {
		r.frames[i].Data = withClientPort(r.frames[i].Data, 14, clientPort, r.frames[i].Meta.Dir)
		r.frames[i].Data = withIPIDOffset(r.frames[i].Data, 14, clientPort*1024)
	}
	r.res = make([]engine.Result, len(r.frames))
	return &neighbour{r: r}
}

// withIPIDOffset adds delta to the frame's IP identification (IPv4 header,
// whose checksum it recomputes; IPv6 fragment header when it follows the
// fixed header directly).
func withIPIDOffset(b []byte, l3 int, delta uint16) []byte {
	ip := b[l3:]
	switch ip[0] >> 4 {
	case 4:
		binary.BigEndian.PutUint16(ip[4:6], binary.BigEndian.Uint16(ip[4:6])+delta)
		ihl := int(ip[0]&0x0f) * 4
		binary.BigEndian.PutUint16(ip[10:12], 0)
		binary.BigEndian.PutUint16(ip[10:12], decode.InternetChecksum(ip[:ihl]))
	case 6:
		if ip[6] == 44 && len(ip) >= 48 {
			binary.BigEndian.PutUint32(ip[44:48], binary.BigEndian.Uint32(ip[44:48])+uint32(delta))
		}
	}
	return b
}

// withClientPort rewrites the client's port in an unfragmented or first
// fragment frame and adjusts the transport checksum incrementally (RFC
// 1624), which also works when the checksum covers later fragments.
func withClientPort(b []byte, l3 int, port uint16, dir dataplane.Direction) []byte {
	out := clone(b)
	ip := out[l3:]
	v6, off, proto, _ := ipInfo(ip)
	frag, fo := isFragment(out, l3)
	if v6 && frag {
		off += 8
		proto = ip[40]
	}
	if frag && fo != 0 {
		return out
	}
	at := off
	if dir == dataplane.ToClient {
		at += 2
	}
	old := binary.BigEndian.Uint16(ip[at:])
	binary.BigEndian.PutUint16(ip[at:], port)
	co := off + 16
	if proto == protoUDP {
		co = off + 6
	}
	hc := binary.BigEndian.Uint16(ip[co:])
	sum := uint32(^hc) + uint32(^old) + uint32(port)
	binary.BigEndian.PutUint16(ip[co:], fold(sum))
	return out
}

// feed processes the neighbour's next n frames (or up to a frame index).
func (n *neighbour) feedUntil(w *engine.Worker, now func() time.Time, end int) {
	for ; n.next < end && n.next < len(n.r.frames); n.next++ {
		n.r.res[n.next] = w.Process(n.r.lt, n.r.frames[n.next].Data, now())
	}
}

func (n *neighbour) done() bool { return n.next >= len(n.r.frames) }

// handshakeEnd returns the index just after the handshake (the first data
// frame).
func (n *neighbour) handshakeEnd() int {
	for i, f := range n.r.frames {
		if f.Meta.Msg >= 0 {
			return i
		}
	}
	return len(n.r.frames)
}

// recorderFor returns the alerts of one flow from a shared recorder.
func alertsOf(rec *engine.AlertRecorder, port uint16) []engine.Alert {
	var out []engine.Alert
	for _, a := range rec.Alerts() {
		if a.Src.Port() == port || a.Dst.Port() == port {
			out = append(out, a)
		}
	}
	return out
}

// findTraffic returns the named catalog test.
func findTraffic(t testing.TB, id, name string) traffic {
	for _, c := range catalog(t).Patches {
		if c.ID != id {
			continue
		}
		for i := range c.Tests {
			if c.Tests[i].Name == name {
				return fromTest(t, c.Patch, &c.Tests[i])
			}
		}
	}
	t.Fatalf("no test %s %q", id, name)
	return traffic{}
}

// checkNeighbours asserts that the exploit neighbour was blocked and the
// benign one passed whole.
func checkNeighbours(t *testing.T, prog *patch.Program, rec *engine.AlertRecorder, exploit, benign *neighbour, ports [2]uint16) {
	t.Helper()
	exploit.r.alerts = alertsOf(rec, ports[0])
	benign.r.alerts = alertsOf(rec, ports[1])
	checkExploit(t, prog, exploit.r)
	checkBenign(t, prog, benign.r)
}

// TestSYNFloodKeepsEstablishedFlowsInspected floods an engine whose flow
// table holds 1000 flows with SYNs from random sources. Flows established
// before the flood (one about to send an exploit, one benign) and a flow
// whose data is interleaved with the flood are inspected normally, the
// table never exceeds its caps, and only half-open flows are evicted.
func TestSYNFloodKeepsEstablishedFlowsInspected(t *testing.T) {
	t.Parallel()
	prog := catalog(t)
	const maxFlows = 1000
	const maxBytes = 1 << 20
	rec := &engine.AlertRecorder{}
	e := newEngine(t, prog, func(c *engine.Config) {
		c.Flow.MaxFlows = maxFlows
		c.Flow.MaxBytes = maxBytes
	}, rec)
	w := e.NewWorker()
	clock := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	now := func() time.Time { clock = clock.Add(time.Microsecond); return clock }

	plain := &class{name: "plain", segSize: 7}
	exploitTr := findTraffic(t, "CVE-2021-44228", "plain lookup in User-Agent")
	benignTr := findTraffic(t, "CVE-2021-44228", "shell default in a header")
	ports := [2]uint16{41001, 41002}
	exploit := newNeighbour(t, exploitTr, plain, ports[0])
	benign := newNeighbour(t, benignTr, plain, ports[1])
	// Both handshakes complete before the flood.
	exploit.feedUntil(w, now, exploit.handshakeEnd())
	benign.feedUntil(w, now, benign.handshakeEnd())

	s, err := gen.NewTCPSession(gen.EP("198.18.0.1:1024"), gen.EP("198.51.100.20:80"), gen.DefaultSessionOptions())
	if err != nil {
		t.Fatal(err)
	}
	syns, err := s.Frames()
	if err != nil {
		t.Fatal(err)
	}
	src := &floodSource{tmpl: syns[0].Data, l3: 14, rng: rand.New(rand.NewPCG(1, 2))}
	n := floodSYNs
	if testing.Short() {
		n = floodSYNsShort
	}
	for i := 0; i < n; i++ {
		w.Process(layers.LinkTypeEthernet, src.next(), now())
		if i%2000 == 0 {
			// The benign flow keeps talking during the flood.
			benign.feedUntil(w, now, benign.next+1)
		}
		if i%20000 == 0 {
			st := e.Stats()
			if st.Flows.Flows > maxFlows || st.Flows.Bytes > maxBytes {
				t.Fatalf("after %d SYNs: %d flows, %d bytes; caps %d flows, %d bytes", i, st.Flows.Flows, st.Flows.Bytes, maxFlows, maxBytes)
			}
		}
	}
	exploit.feedUntil(w, now, len(exploit.r.frames))
	benign.feedUntil(w, now, len(benign.r.frames))

	st := e.Stats()
	t.Logf("%d SYNs: flows %d (%d bytes), evicted %v, refused %d", n, st.Flows.Flows, st.Flows.Bytes, st.Flows.Evicted, st.Flows.Refused)
	if st.Panics != 0 {
		t.Fatalf("%d panics", st.Panics)
	}
	if st.Flows.Flows > maxFlows || st.Flows.Bytes > maxBytes {
		t.Fatalf("%d flows, %d bytes; caps %d, %d", st.Flows.Flows, st.Flows.Bytes, maxFlows, maxBytes)
	}
	if st.Flows.Evicted[flow.Embryonic] < uint64(n-maxFlows) {
		t.Fatalf("embryonic evictions %d, want at least %d", st.Flows.Evicted[flow.Embryonic], n-maxFlows)
	}
	if st.Flows.Evicted[flow.Established] != 0 {
		t.Fatalf("%d established flows evicted by half-open ones", st.Flows.Evicted[flow.Established])
	}
	checkNeighbours(t, prog, rec, exploit, benign, ports)
}

// fragFloodConfig is the small reassembly cap of the fragment-flood tests.
func fragFloodConfig(c *engine.Config) {
	c.Defrag.MaxDatagrams = 64
	c.Defrag.MaxBytes = 256 << 10
}

// fragTrainSource returns a source of half-open fragment trains: first
// fragments (offset 0, more fragments) of UDP datagrams never completed.
func fragTrainSource(t testing.TB, seed uint64) *floodSource {
	f, err := gen.NewUDPFlow(gen.EP("198.18.0.1:5353"), gen.EP("198.51.100.20:53"), gen.DefaultSessionOptions())
	if err != nil {
		t.Fatal(err)
	}
	f.Send(dataplane.ToServer, make([]byte, 200))
	fs, err := f.Frames(gen.Fragment(gen.AllSegments(), gen.Fragmentation{Size: 64}))
	if err != nil {
		t.Fatal(err)
	}
	return &floodSource{tmpl: fs[0].Data, l3: 14, rng: rand.New(rand.NewPCG(seed, 7))}
}

func defragStats(t testing.TB, e *engine.Engine) defrag.Stats {
	st, ok := e.Stats().Fragments.(defrag.Stats)
	if !ok {
		t.Fatalf("engine Stats.Fragments is %T, want defrag.Stats", e.Stats().Fragments)
	}
	return st
}

// TestFragmentFloodKeepsEstablishedFlowsInspected floods an engine that
// buffers at most 64 partial datagrams with first fragments that are never
// completed. The reassembler stays under its caps and counts evictions;
// flows established before the flood still carry fragmented traffic that
// is inspected: the exploit blocked, the benign look-alike passed.
func TestFragmentFloodKeepsEstablishedFlowsInspected(t *testing.T) {
	t.Parallel()
	prog := catalog(t)
	rec := &engine.AlertRecorder{}
	e := newEngine(t, prog, fragFloodConfig, rec)
	w := e.NewWorker()
	clock := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	now := func() time.Time { clock = clock.Add(time.Microsecond); return clock }

	frag := &class{name: "frag", segSize: 64, segs: []gen.Transform{gen.Fragment(gen.DataSegments(), gen.Fragmentation{Size: 24})}}
	exploitTr := findTraffic(t, "CVE-2015-1635", "detection probe bytes=0-18446744073709551615")
	benignTr := findTraffic(t, "CVE-2015-1635", "large legitimate range")
	ports := [2]uint16{42001, 42002}
	exploit := newNeighbour(t, exploitTr, frag, ports[0])
	benign := newNeighbour(t, benignTr, frag, ports[1])
	exploit.feedUntil(w, now, exploit.handshakeEnd())
	benign.feedUntil(w, now, benign.handshakeEnd())

	src := fragTrainSource(t, 3)
	n := floodTrains
	if testing.Short() {
		n = floodTrainsShort
	}
	cfg := e.Config().Defrag
	for i := 0; i < n; i++ {
		w.Process(layers.LinkTypeEthernet, src.next(), now())
		if i%10000 == 0 {
			if st := defragStats(t, e); st.Datagrams > cfg.MaxDatagrams || st.Bytes > cfg.MaxBytes || st.Tombstones > cfg.TombstoneCap() {
				t.Fatalf("after %d trains: %+v over caps %+v", i, st, cfg)
			}
		}
	}
	exploit.feedUntil(w, now, len(exploit.r.frames))
	benign.feedUntil(w, now, len(benign.r.frames))

	st := defragStats(t, e)
	t.Logf("%d trains: %+v", n, st)
	if e.Stats().Panics != 0 {
		t.Fatalf("%d panics", e.Stats().Panics)
	}
	if st.Datagrams > cfg.MaxDatagrams || st.Bytes > cfg.MaxBytes || st.Tombstones > cfg.TombstoneCap() {
		t.Fatalf("%+v over caps %+v", st, cfg)
	}
	if st.Evicted < uint64(n-cfg.MaxDatagrams) {
		t.Fatalf("evicted %d partial datagrams, want at least %d", st.Evicted, n-cfg.MaxDatagrams)
	}
	checkNeighbours(t, prog, rec, exploit, benign, ports)
}

// evictedExploit sends the first fragments of every exploit data segment,
// then trains flood trains, then the rest of the fragments, and reports
// the run.
func evictedExploit(t *testing.T, trains int) *run {
	prog := catalog(t)
	rec := &engine.AlertRecorder{}
	e := newEngine(t, prog, fragFloodConfig, rec)
	w := e.NewWorker()
	clock := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	now := func() time.Time { clock = clock.Add(time.Microsecond); return clock }
	frag := &class{name: "frag", segs: []gen.Transform{gen.Fragment(gen.DataSegments(), gen.Fragmentation{Size: 24})}}
	ex := newNeighbour(t, findTraffic(t, "CVE-2015-1635", "detection probe bytes=0-18446744073709551615"), frag, 43001)
	src := fragTrainSource(t, 5)
	last := lastFragments(ex.r.frames)
	for i := range ex.r.frames {
		if last[i] {
			for k := 0; k < trains; k++ {
				w.Process(layers.LinkTypeEthernet, src.next(), now())
			}
		}
		ex.feedUntil(w, now, i+1)
	}
	ex.r.alerts = rec.Alerts()
	ex.r.stats = e.Stats()
	return ex.r
}

// TestFragmentFloodEvictsExploitDatagram: a flood that evicts the exploit's
// partial datagram between its fragments leaves a tombstone, so the
// remaining fragments are dropped and the host never completes the
// datagram uninspected.
func TestFragmentFloodEvictsExploitDatagram(t *testing.T) {
	r := evictedExploit(t, 64)
	if r.delivered(msgRef{dir: dataplane.ToServer, msg: 0}) {
		t.Fatalf("evicted exploit datagram completed at the server: %s", r.describe())
	}
	if r.stats.Reasons[dataplane.ReasonFragLimit] == 0 {
		t.Fatalf("no frag_limit drop: %s", r.describe())
	}
}

// TestFragmentFloodEvictsTombstones is the same with a flood large enough to
// evict the tombstone too (tombstones are bounded by MaxDatagrams).
func TestFragmentFloodEvictsTombstones(t *testing.T) {
	r := evictedExploit(t, 3*64)
	if r.delivered(msgRef{dir: dataplane.ToServer, msg: 0}) {
		t.Fatalf("evicted exploit datagram completed at the server: %s", r.describe())
	}
}
