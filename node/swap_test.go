package node

import (
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/gopacket/layers"

	"github.com/patchgate/patchgate/api/pb"
	"github.com/patchgate/patchgate/dataplane"
	"github.com/patchgate/patchgate/dataplane/engine"
	"github.com/patchgate/patchgate/dataplane/gen"
)

// swapFlows is the number of concurrent flows in one replay round.
const swapFlows = 50

// limitOf is the URI limit of test version v (11..30, cycling): requests with
// a raw URI longer than it are dropped.
func limitOf(v uint64) int { return 11 + int((v-1)%20) }

// replayFrame is one frame of the generated capture; uriLen > 0 marks the
// frame that completes a request (its verdict depends on the version).
type replayFrame struct {
	data   []byte
	uriLen int
}

// round builds round it of the capture: swapFlows HTTP flows (one request
// each, URI lengths spread over 6..45) interleaved packet by packet, so every
// flow is in progress while the next packets of the others pass.
func round(t testing.TB, it int) []replayFrame {
	t.Helper()
	perFlow := make([][]replayFrame, swapFlows)
	for f := 0; f < swapFlows; f++ {
		client := gen.EP(fmt.Sprintf("192.0.2.%d:%d", 1+it%250, 10000+(it/250)*swapFlows+f))
		s, err := gen.NewTCPSession(client, gen.EP("198.51.100.2:80"), gen.DefaultSessionOptions())
		if err != nil {
			t.Fatal(err)
		}
		l := (it*7+f*13)%40 + 5
		s.Send(dataplane.ToServer, []byte("GET /"+strings.Repeat("a", l)+" HTTP/1.1\r\nHost: x\r\n\r\n"))
		s.Send(dataplane.ToClient, []byte("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"))
		s.Close(dataplane.ToClient)
		frames, err := s.Frames()
		if err != nil {
			t.Fatal(err)
		}
		for _, fr := range frames {
			rf := replayFrame{data: fr.Data}
			if fr.Meta.Dir == dataplane.ToServer && fr.Meta.Msg == 0 && fr.Meta.Last {
				rf.uriLen = l + 1
			}
			perFlow[f] = append(perFlow[f], rf)
		}
	}
	var out []replayFrame
	for i := 0; ; i++ {
		more := false
		for f := range perFlow {
			if i < len(perFlow[f]) {
				out = append(out, perFlow[f][i])
				more = true
			}
		}
		if !more {
			return out
		}
	}
}

// replayer feeds rounds through an engine until stopped, checking every
// request's verdict against the version in force around it.
type replayer struct {
	eng                         *engine.Engine
	packets, verdicts, requests atomic.Uint64
	mismatches, resets, flows   atomic.Uint64
	dropped                     atomic.Uint64
	firstMismatch               atomic.Value
	stop                        chan struct{}
	done                        chan struct{}
	rounds                      int
}

func startReplay(t testing.TB, eng *engine.Engine, maxRounds int, maxTime time.Duration) *replayer {
	r := &replayer{eng: eng, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(r.done)
		w := eng.NewWorker()
		ts := time.Unix(1700000000, 0)
		deadline := time.Now().Add(maxTime)
		for it := 0; it < maxRounds && time.Now().Before(deadline); it++ {
			select {
			case <-r.stop:
				return
			default:
			}
			frames := round(t, it)
			r.flows.Add(swapFlows)
			for _, f := range frames {
				ts = ts.Add(10 * time.Microsecond)
				v1 := eng.Program().Version
				res := w.Process(layers.LinkTypeEthernet, f.data, ts)
				v2 := eng.Program().Version
				r.packets.Add(1)
				if res.Verdict > dataplane.Reset {
					continue // not a verdict
				}
				r.verdicts.Add(1)
				if res.Verdict == dataplane.Reset {
					r.resets.Add(1)
				}
				if f.uriLen == 0 {
					continue
				}
				r.requests.Add(1)
				if res.Verdict == dataplane.Drop {
					r.dropped.Add(1)
				}
				exp := func(v uint64) dataplane.Verdict {
					if v > 0 && f.uriLen > limitOf(v) {
						return dataplane.Drop
					}
					return dataplane.Pass
				}
				if res.Verdict != exp(v1) && (v1 == v2 || res.Verdict != exp(v2)) {
					r.mismatches.Add(1)
					r.firstMismatch.CompareAndSwap(nil, fmt.Sprintf("uri %d, versions %d..%d, verdict %v", f.uriLen, v1, v2, res.Verdict))
				}
			}
			r.rounds = it + 1
		}
	}()
	return r
}

func (r *replayer) halt() {
	close(r.stop)
	<-r.done
}

// checkReplay asserts what users depend on: every packet got a verdict, no
// flow was reset or re-created, every request got its version's verdict.
func (r *replayer) check(t testing.TB) {
	t.Helper()
	if r.packets.Load() != r.verdicts.Load() {
		t.Errorf("%d packets, %d verdicts", r.packets.Load(), r.verdicts.Load())
	}
	if n := r.mismatches.Load(); n > 0 {
		t.Errorf("%d of %d requests got a verdict of no version in force; first: %v", n, r.requests.Load(), r.firstMismatch.Load())
	}
	if d := r.dropped.Load(); d == 0 || d == r.requests.Load() {
		t.Errorf("%d of %d requests dropped: the capture does not tell versions apart", d, r.requests.Load())
	}
	if n := r.resets.Load(); n > 0 {
		t.Errorf("%d reset verdicts", n)
	}
	st := r.eng.Stats()
	if st.FlowsCreated != r.flows.Load() || st.Pickups != 0 {
		t.Errorf("flows created %d (pickups %d), want %d: a flow was reset", st.FlowsCreated, st.Pickups, r.flows.Load())
	}
}

// 20 versions pushed through the API while a capture is replayed through a
// node's engine: no packet lost, no flow reset, verdicts exactly those of the
// version in force at each packet.
func TestSwapUnderTraffic(t *testing.T) {
	ac := startAgents(t, 3)
	ctx := ctxT(t)
	l := ac.leader()
	c := ac.client(l, testToken)
	traffic := (l + 1) % 3
	eng := ac.engs[traffic]
	r := startReplay(t, eng, 5000, 90*time.Second)
	for v := uint64(1); v <= 20; v++ {
		if _, err := c.PushPatchSet(ctx, &pb.PushPatchSetRequest{Bundle: testBundle(t, clusterKey(t), v, limitOf(v))}); err != nil {
			r.halt()
			t.Fatalf("push %d: %v", v, err)
		}
		before := r.requests.Load()
		pollFor(t, 15*time.Second, func() error {
			if eng.Program().Version != v {
				return fmt.Errorf("traffic node runs %d, want %d", eng.Program().Version, v)
			}
			if r.requests.Load() < before+swapFlows {
				return fmt.Errorf("waiting for traffic on version %d", v)
			}
			return nil
		})
	}
	r.halt()
	r.check(t)
	t.Logf("%d packets, %d requests over %d rounds, 20 swaps", r.packets.Load(), r.requests.Load(), r.rounds)
}

// BenchmarkCommitToApplied measures the time from a push's commit (the API
// call returned) to "applied on all nodes" (every engine runs the version),
// through the real node appliers of a 3-node cluster, while traffic is
// replayed through one node; it reports p50/p99 and the packets lost by the
// swaps (requests whose verdict matched no version in force, and packets
// without a verdict): must be 0.
func BenchmarkCommitToApplied(b *testing.B) {
	ac := startAgents(b, 3)
	ctx := ctxT(b)
	l := ac.leader()
	c := ac.client(l, testToken)
	r := startReplay(b, ac.engs[(l+1)%3], 1<<30, time.Hour)
	bundles := make([][]byte, b.N)
	for i := range bundles {
		bundles[i] = testBundle(b, clusterKey(b), uint64(i+1), limitOf(uint64(i+1)))
	}
	lat := make([]time.Duration, 0, b.N)
	var mu sync.Mutex
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		v := uint64(i + 1)
		if _, err := c.PushPatchSet(ctx, &pb.PushPatchSetRequest{Bundle: bundles[i]}); err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		for {
			all := true
			for _, e := range ac.engs {
				if e.Program().Version != v {
					all = false
					break
				}
			}
			if all {
				break
			}
			if time.Since(start) > 15*time.Second {
				b.Fatalf("version %d not applied everywhere", v)
			}
			time.Sleep(50 * time.Microsecond)
		}
		mu.Lock()
		lat = append(lat, time.Since(start))
		mu.Unlock()
	}
	b.StopTimer()
	r.halt()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	q := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) / 1000 }
	b.ReportMetric(q(0.5), "p50-ms")
	b.ReportMetric(q(0.99), "p99-ms")
	b.ReportMetric(float64(r.mismatches.Load()+r.packets.Load()-r.verdicts.Load()), "lost-pkts")
	b.ReportMetric(float64(r.packets.Load()), "replayed-pkts")
}
