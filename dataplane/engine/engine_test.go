package engine

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/patchgate/patchgate/dataplane"
	_ "github.com/patchgate/patchgate/dataplane/analyzer/all"
	"github.com/patchgate/patchgate/dataplane/flow"
	"github.com/patchgate/patchgate/dataplane/gen"
	"github.com/patchgate/patchgate/dataplane/patch"
)

// shipped loads the repository's patch catalog.
func shipped(t testing.TB) *patch.Program {
	t.Helper()
	ps, err := patch.LoadDir(filepath.Join("..", "..", "patches"))
	if err != nil {
		t.Fatal(err)
	}
	prog, err := patch.Compile(1, ps)
	if err != nil {
		t.Fatal(err)
	}
	return prog
}

const testPatch = `id: TEST-0001
sid: 9000001
title: test path traversal
severity: high
category: info-disclosure
protocol: http
event: http.request_headers
when: uri.path contains "/etc/passwd"
action: reset
tests:
  - {name: exploit, match: true, to_server: "GET /etc/passwd HTTP/1.1\nHost: a\n\n"}
`

func testProgram(t testing.TB, version uint64) *patch.Program {
	t.Helper()
	p, err := patch.Parse("test.yaml", []byte(testPatch))
	if err != nil {
		t.Fatal(err)
	}
	prog, err := patch.Compile(version, []*patch.Patch{p})
	if err != nil {
		t.Fatal(err)
	}
	return prog
}

var (
	client = gen.Endpoint{Addr: netip.MustParseAddr("192.0.2.10"), Port: 41000}
	server = gen.Endpoint{Addr: netip.MustParseAddr("198.51.100.20"), Port: 80}
)

func session(t testing.TB, opts gen.SessionOptions, msgs ...string) *gen.Capture {
	t.Helper()
	s, err := gen.NewTCPSession(client, server, opts)
	if err != nil {
		t.Fatal(err)
	}
	for i, m := range msgs {
		dir := dataplane.ToServer
		if i%2 == 1 {
			dir = dataplane.ToClient
		}
		s.Send(dir, []byte(m))
	}
	s.Close(dataplane.ToServer)
	c, err := s.Capture()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// replay runs a capture through an engine and returns the verdict per frame.
func replay(e *Engine, c *gen.Capture, frames []gen.Frame) []Result {
	w := e.NewWorker()
	out := make([]Result, len(frames))
	for i, f := range frames {
		out[i] = w.Process(c.LinkType, f.Data, f.CI.Timestamp)
	}
	return out
}

func newEngine(t testing.TB, prog *patch.Program, alerts AlertSink) *Engine {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Checksums = ChecksumValidate
	e, err := New(cfg, prog, alerts)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func TestExploitResetAndFlowStaysBlocked(t *testing.T) {
	rec := &AlertRecorder{}
	e := newEngine(t, testProgram(t, 3), rec)
	c := session(t, gen.DefaultSessionOptions(),
		"GET /index.html HTTP/1.1\r\nHost: a\r\n\r\n", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
		"GET /etc/passwd HTTP/1.1\r\nHost: a\r\n\r\n", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nno")
	res := replay(e, c, c.Frames)
	first := -1
	for i, r := range res {
		f := c.Frames[i]
		if f.Meta.Dir == dataplane.ToServer && f.Meta.Msg == 0 && r.Verdict != dataplane.Pass {
			t.Fatalf("benign request frame %d: %v", i, r.Verdict)
		}
		if r.Verdict == dataplane.Reset && first < 0 {
			first = i
			if f.Meta.Dir != dataplane.ToServer || f.Meta.Msg != 1 {
				t.Fatalf("reset on frame %d (%+v), want the exploit request", i, f.Meta)
			}
		}
		if first >= 0 && i > first && r.Verdict == dataplane.Pass {
			t.Fatalf("frame %d passed after the flow was blocked", i)
		}
	}
	if first < 0 {
		t.Fatal("exploit not blocked")
	}
	alerts := rec.Alerts()
	if len(alerts) != 1 {
		t.Fatalf("alerts: %+v", alerts)
	}
	a := alerts[0]
	if a.PatchID != "TEST-0001" || a.SID != 9000001 || !a.Blocked || a.AppProto != "http" || a.PatchSet != 3 ||
		a.Src != netip.AddrPortFrom(client.Addr, client.Port) || a.Dst != netip.AddrPortFrom(server.Addr, server.Port) {
		t.Fatalf("alert %+v", a)
	}
	st := e.Stats()
	if st.Reasons[dataplane.ReasonPatch] != 1 || st.Reasons[dataplane.ReasonBlockedFlow] == 0 {
		t.Fatalf("reasons %v", st.Reasons)
	}
}

func TestDetectModeAlertsAndPasses(t *testing.T) {
	p, _ := patch.Parse("test.yaml", []byte(strings.Replace(testPatch, "action: reset", "action: reset\nmode: detect", 1)))
	prog, err := patch.Compile(1, []*patch.Patch{p})
	if err != nil {
		t.Fatal(err)
	}
	rec := &AlertRecorder{}
	e := newEngine(t, prog, rec)
	c := session(t, gen.DefaultSessionOptions(), "GET /etc/passwd HTTP/1.1\r\nHost: a\r\n\r\n")
	for i, r := range replay(e, c, c.Frames) {
		if r.Verdict != dataplane.Pass {
			t.Fatalf("frame %d (%+v): %v/%v in detect mode", i, c.Frames[i].Meta, r.Verdict, r.Reason)
		}
	}
	if a := rec.Alerts(); len(a) != 1 || a[0].Blocked {
		t.Fatalf("detect mode alerts: %+v", a)
	}
}

// TestShippedPatches runs every shipped patch's embedded tests, plainly and
// through the evasion variants (tiny segments, reordering, duplicates, IPv6).
func TestShippedPatches(t *testing.T) {
	prog := shipped(t)
	if len(prog.Patches) == 0 {
		t.Fatal("no shipped patches")
	}
	results := RunPatchTests(prog, append([]Variant{PlainVariant}, EvasionVariants()...)...)
	for _, r := range results {
		if !r.Passed {
			t.Error(r.String())
		}
	}
	t.Logf("%d patch test runs", len(results))
}

// checkpointCaptures are the captures of the checkpoint round-trip test:
// every shipped patch test's traffic plus a small realistic mix.
func checkpointCaptures(t *testing.T, prog *patch.Program) map[string]*gen.Capture {
	out := map[string]*gen.Capture{}
	for _, c := range prog.Patches {
		for i := range c.Tests {
			tc, err := TestFrames(c.Patch, &c.Tests[i], Variant{SegmentSize: 5})
			if err != nil {
				t.Fatal(err)
			}
			out[fmt.Sprintf("%s/%s", c.ID, c.Tests[i].Name)] = tc
		}
	}
	mix, _, err := gen.Mix(gen.MixOptions{Seed: 3, Sessions: 4, Concurrency: 4, MaxRequests: 3, LargeEvery: 2, LargeSize: 20000})
	if err != nil {
		t.Fatal(err)
	}
	out["mix"] = mix
	return out
}

type outcome struct {
	verdicts []dataplane.Verdict
	alerts   []string
}

func summarize(res []Result, alerts []Alert) outcome {
	var o outcome
	for _, r := range res {
		o.verdicts = append(o.verdicts, r.Verdict)
	}
	for _, a := range alerts {
		o.alerts = append(o.alerts, fmt.Sprintf("%s %d %s>%s %s %v", a.PatchID, a.FlowID, a.Src, a.Dst, a.Event, a.Blocked))
	}
	return o
}

// TestCheckpointResumeIsExact cuts every test capture after every message
// boundary, runs the first part in engine A, moves every flow to a fresh
// engine B through Export/Import, runs the rest in B, and checks that the
// verdicts and alerts are exactly those of one engine seeing everything.
func TestCheckpointResumeIsExact(t *testing.T) {
	prog := shipped(t)
	for name, c := range checkpointCaptures(t, prog) {
		recRef := &AlertRecorder{}
		ref := replay(newEngine(t, prog, recRef), c, c.Frames)
		want := summarize(ref, recRef.Alerts())
		cuts := 0
		for cut, f := range c.Frames {
			if !f.Meta.Last {
				continue
			}
			cuts++
			recA := &AlertRecorder{}
			a := newEngine(t, prog, recA)
			got := replay(a, c, c.Frames[:cut+1])
			b := newEngine(t, prog, recA) // B reports into the same recorder: one alert stream
			for _, k := range a.FlowKeys() {
				rec, err := a.Export(k)
				if err != nil {
					t.Fatal(err)
				}
				if err := b.Import(rec, c.Frames[cut].CI.Timestamp); err != nil {
					t.Fatalf("%s cut %d: import: %v", name, cut, err)
				}
			}
			got = append(got, replay(b, c, c.Frames[cut+1:])...)
			if o := summarize(got, recA.Alerts()); !reflect.DeepEqual(o, want) {
				t.Fatalf("%s: cut after frame %d: outcome differs\n got %+v\nwant %+v", name, cut, o, want)
			}
		}
		if cuts == 0 {
			t.Fatalf("%s: no message boundary", name)
		}
	}
}

// TestBoundaryHookExportsResumableState checks the hook a node uses to publish
// checkpoints: the record it gets at a boundary resumes the flow.
func TestBoundaryHookExportsResumableState(t *testing.T) {
	prog := testProgram(t, 1)
	var last []byte
	var boundaries int
	cfg := DefaultConfig()
	cfg.Hooks.Boundary = func(k flow.Key, dir dataplane.Direction, export func() []byte) {
		boundaries++
		last = export()
	}
	e, err := New(cfg, prog, nil)
	if err != nil {
		t.Fatal(err)
	}
	c := session(t, gen.DefaultSessionOptions(), "GET / HTTP/1.1\r\nHost: a\r\n\r\n", "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
		"GET /etc/passwd HTTP/1.1\r\nHost: a\r\n\r\n")
	// Stop after the first response: the last boundary record is the flow at rest.
	cut := 0
	for i, f := range c.Frames {
		if f.Meta.Dir == dataplane.ToClient && f.Meta.Last {
			cut = i
			break
		}
	}
	replay(e, c, c.Frames[:cut+1])
	if boundaries < 2 || last == nil {
		t.Fatalf("boundaries %d", boundaries)
	}
	rec := &AlertRecorder{}
	b := newEngine(t, prog, rec)
	if err := b.Import(last, time.Now()); err != nil {
		t.Fatal(err)
	}
	res := replay(b, c, c.Frames[cut+1:])
	blocked := false
	for _, r := range res {
		blocked = blocked || r.Verdict == dataplane.Reset
	}
	if !blocked || len(rec.Alerts()) != 1 || b.Stats().Pickups != 0 {
		t.Fatalf("resumed flow: blocked=%v alerts=%d pickups=%d", blocked, len(rec.Alerts()), b.Stats().Pickups)
	}
}

// TestResumeHookKeepsBlockedFlowBlocked: a flow blocked on one engine stays
// blocked on another that resumes it from a checkpoint.
func TestResumeHookKeepsBlockedFlowBlocked(t *testing.T) {
	prog := testProgram(t, 1)
	a := newEngine(t, prog, nil)
	c := session(t, gen.DefaultSessionOptions(), "GET /etc/passwd HTTP/1.1\r\nHost: a\r\n\r\n", "HTTP/1.1 200 OK\r\n\r\n")
	res := replay(a, c, c.Frames)
	cut := -1
	for i, r := range res {
		if r.Verdict == dataplane.Reset {
			cut = i
			break
		}
	}
	if cut < 0 {
		t.Fatal("not blocked")
	}
	key := a.FlowKeys()[0]
	rec, _ := a.Export(key)
	cfg := DefaultConfig()
	cfg.Hooks.Resume = func(k flow.Key) []byte {
		if k == key {
			return rec
		}
		return nil
	}
	b, _ := New(cfg, prog, nil)
	for i, r := range replay(b, c, c.Frames[cut+1:]) {
		if r.Verdict == dataplane.Pass {
			t.Fatalf("frame %d after the move passed: %+v", cut+1+i, r)
		}
	}
	if b.Stats().Resumed != 1 {
		t.Fatalf("resumed %d", b.Stats().Resumed)
	}
}

// TestMidstreamPickupStillInspects: a flow seen first mid-stream (capture
// started late, no checkpoint) resynchronises at the next request.
func TestMidstreamPickupStillInspects(t *testing.T) {
	opts := gen.DefaultSessionOptions()
	opts.Midstream = true
	c := session(t, opts, "ody of an earlier request that we never saw the start of\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", "GET /etc/passwd HTTP/1.1\r\nHost: a\r\n\r\n")
	rec := &AlertRecorder{}
	e := newEngine(t, testProgram(t, 1), rec)
	replay(e, c, c.Frames)
	if len(rec.Alerts()) != 1 || e.Stats().Pickups != 1 {
		t.Fatalf("alerts %d pickups %d", len(rec.Alerts()), e.Stats().Pickups)
	}
	e2, _ := New(Config{Shards: 1, Flow: flow.DefaultConfig(), Stream: DefaultConfig().Stream, Defrag: DefaultConfig().Defrag,
		Midstream: MidstreamDrop, DetectWindow: DefaultDetectWindow}, testProgram(t, 1), nil)
	for _, r := range replay(e2, c, c.Frames) {
		if r.Verdict != dataplane.Drop || r.Reason != dataplane.ReasonMidstream {
			t.Fatalf("midstream drop policy: %+v", r)
		}
	}
}

// TestProgramSwapUnderTraffic swaps the patch set between every two packets of
// a flow: no packet is dropped and the verdict is that of the program in force.
func TestProgramSwapUnderTraffic(t *testing.T) {
	none := patch.Empty()
	block := testProgram(t, 2)
	c := session(t, gen.DefaultSessionOptions(), "GET /a HTTP/1.1\r\nHost: a\r\n\r\n", "HTTP/1.1 204 No Content\r\n\r\n",
		"GET /etc/passwd HTTP/1.1\r\nHost: a\r\n\r\n")
	e := newEngine(t, none, nil)
	w := e.NewWorker()
	for i, f := range c.Frames {
		if i%2 == 0 {
			e.SetProgram(none)
		} else {
			e.SetProgram(block)
		}
		r := w.Process(c.LinkType, f.Data, f.CI.Timestamp)
		if f.Meta.Msg == 1 && f.Meta.Dir == dataplane.ToServer && f.Meta.Last {
			want := dataplane.Pass
			if i%2 == 1 {
				want = dataplane.Reset
			}
			if r.Verdict != want {
				t.Fatalf("exploit frame under program %d: %v, want %v", e.Program().Version, r.Verdict, want)
			}
			continue
		}
		if r.Verdict != dataplane.Pass && e.Stats().Reasons[dataplane.ReasonPatch] == 0 {
			t.Fatalf("frame %d dropped by a swap: %+v", i, r)
		}
	}
}

func TestMalformedFramesNeverCrash(t *testing.T) {
	e := newEngine(t, shipped(t), nil)
	w := e.NewWorker()
	c := session(t, gen.DefaultSessionOptions(), "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	for _, f := range c.Frames {
		for cut := 0; cut < len(f.Data); cut++ {
			w.Process(c.LinkType, f.Data[:cut], f.CI.Timestamp)
		}
	}
	if p := e.Stats().Panics; p != 0 {
		t.Fatalf("%d panics recovered", p)
	}
}

func FuzzEngine(f *testing.F) {
	c := session(f, gen.DefaultSessionOptions(), "GET /?a=${jndi:ldap://x} HTTP/1.1\r\nHost: a\r\nRange: bytes=0-1,2-3\r\n\r\n")
	for _, fr := range c.Frames {
		f.Add(fr.Data)
	}
	prog := shipped(f)
	f.Fuzz(func(t *testing.T, frame []byte) {
		e := newEngine(t, prog, nil)
		w := e.NewWorker()
		// The fuzzed frame inside a real flow, then alone.
		for _, fr := range c.Frames[:3] {
			w.Process(c.LinkType, fr.Data, fr.CI.Timestamp)
		}
		w.Process(c.LinkType, frame, c.Frames[3].CI.Timestamp)
		if e.Stats().Panics != 0 {
			t.Fatal("panic recovered while processing the frame")
		}
	})
}

// benchMix is the realistic mix the engine benchmarks replay.
func benchMix(b *testing.B) *gen.Capture {
	c, _, err := gen.Mix(gen.MixOptions{Seed: 11, Sessions: 200, Concurrency: 32})
	if err != nil {
		b.Fatal(err)
	}
	return c
}

// BenchmarkEngine replays a realistic HTTP mix through the engine with the
// whole shipped catalog. Compare with BenchmarkDecodeFloor from the same run.
func BenchmarkEngine(b *testing.B) {
	c := benchMix(b)
	prog := shipped(b)
	benchReplay(b, c, func() func([]byte, time.Time) {
		e := newEngine(b, prog, nil)
		w := e.NewWorker()
		return func(d []byte, ts time.Time) { w.Process(c.LinkType, d, ts) }
	})
}

// BenchmarkEngineNoPatches is the same replay with an empty patch set: the
// cost of decoding, flow tracking, reassembly and parsing alone.
func BenchmarkEngineNoPatches(b *testing.B) {
	c := benchMix(b)
	benchReplay(b, c, func() func([]byte, time.Time) {
		e := newEngine(b, patch.Empty(), nil)
		w := e.NewWorker()
		return func(d []byte, ts time.Time) { w.Process(c.LinkType, d, ts) }
	})
}

// BenchmarkDecodeFloor decodes the same frames and does nothing else: the
// floor any engine pays.
func BenchmarkDecodeFloor(b *testing.B) {
	c := benchMix(b)
	benchReplay(b, c, func() func([]byte, time.Time) {
		e := newEngine(b, patch.Empty(), nil)
		w := e.NewWorker()
		return func(d []byte, ts time.Time) { w.dec.Decode(c.LinkType, d, ts, &w.pkt) }
	})
}

func benchReplay(b *testing.B, c *gen.Capture, fresh func() func([]byte, time.Time)) {
	b.ReportAllocs()
	b.SetBytes(c.Bytes())
	b.ResetTimer()
	var frames int
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		process := fresh()
		runtime.GC()
		b.StartTimer()
		for _, f := range c.Frames {
			process(f.Data, f.CI.Timestamp)
		}
		frames += len(c.Frames)
	}
	sec := b.Elapsed().Seconds()
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(frames), "ns/packet")
	b.ReportMetric(float64(c.Bytes())*8*float64(b.N)/sec/1e9, "Gbps")
}

// TestCaptureLossStillInspectsLaterRequests: a capture that lost a segment
// the server did receive (the server's ACK covers it) must not stall the
// flow: the engine skips the hole and the exploit that follows is found.
func TestCaptureLossStillInspectsLaterRequests(t *testing.T) {
	opts := gen.DefaultSessionOptions()
	opts.SegmentSize = 10
	c := session(t, opts, "GET /first HTTP/1.1\r\nHost: a\r\nX-Pad: aaaaaaaaaaaaaaaaaaaa\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", "GET /etc/passwd HTTP/1.1\r\nHost: a\r\n\r\n")
	var frames []gen.Frame
	removed := false
	for _, f := range c.Frames {
		// Lose the second data frame of the first request.
		if !removed && f.Meta.Dir == dataplane.ToServer && f.Meta.Msg == 0 && f.Meta.Segment > 4 {
			removed = true
			continue
		}
		frames = append(frames, f)
	}
	rec := &AlertRecorder{}
	e := newEngine(t, testProgram(t, 1), rec)
	replay(e, c, frames)
	if len(rec.Alerts()) != 1 || e.Stats().Gaps == 0 {
		t.Fatalf("alerts %d gaps %d: the exploit after the capture hole was missed", len(rec.Alerts()), e.Stats().Gaps)
	}
}

// TestMidMessageCheckpoint: with CheckpointInterval, the first packet of a
// message that spans several packets is checkpointed too, so a flow moved
// in the middle of an exploit request resumes with the part already seen
// and the rest is still blocked; later packets of the same message are
// checkpointed at most once per interval.
func TestMidMessageCheckpoint(t *testing.T) {
	prog := testProgram(t, 1)
	opts := gen.DefaultSessionOptions()
	opts.SegmentSize = 8
	c := session(t, opts, "GET / HTTP/1.1\r\nHost: a\r\n\r\n", "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
		"GET /etc/passwd HTTP/1.1\r\nHost: a\r\n\r\n")
	// Cut after the first data segment of the exploit request (the second
	// message to the server).
	cut := -1
	for i, f := range c.Frames {
		if f.Meta.Dir == dataplane.ToServer && f.Meta.Msg == 1 {
			cut = i
			break
		}
	}
	if cut < 0 {
		t.Fatal("no data segment of the exploit request")
	}
	for _, iv := range []time.Duration{0, DefaultCheckpointInterval} {
		var last []byte
		calls := 0
		cfg := DefaultConfig()
		cfg.Checksums = ChecksumValidate
		cfg.CheckpointInterval = iv
		cfg.Hooks.Boundary = func(k flow.Key, dir dataplane.Direction, export func() []byte) {
			calls++
			last = export()
		}
		a, err := New(cfg, prog, nil)
		if err != nil {
			t.Fatal(err)
		}
		replay(a, c, c.Frames[:cut+1])
		rec := &AlertRecorder{}
		b := newEngine(t, prog, rec)
		if err := b.Import(last, time.Now()); err != nil {
			t.Fatal(err)
		}
		res := replay(b, c, c.Frames[cut+1:])
		blocked := false
		for _, r := range res {
			blocked = blocked || r.Verdict != dataplane.Pass
		}
		if iv == 0 {
			// The last record is from the boundary before the request: the
			// resumed flow misses the request's first bytes (it would need the
			// receiver's acknowledgement to skip them).
			if blocked {
				t.Fatalf("interval 0: resumed from a boundary record, the request's rest was blocked (want the gap to hold it)")
			}
			continue
		}
		if !blocked || len(rec.Alerts()) != 1 {
			t.Fatalf("interval %v: resumed mid-message: blocked=%v alerts=%d (calls %d)", iv, blocked, len(rec.Alerts()), calls)
		}
	}
}
