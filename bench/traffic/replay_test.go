package traffic

import (
	"net/netip"
	"sort"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/patchgate/patchgate/dataplane"
	"github.com/patchgate/patchgate/dataplane/engine"
	"github.com/patchgate/patchgate/dataplane/flow"
	"github.com/patchgate/patchgate/dataplane/patch"
)

// placementKey is the engine's flow key of a placed test.
func placementKey(t *testing.T, p Placement) flow.Key {
	t.Helper()
	c, err := netip.ParseAddrPort(p.Client)
	if err != nil {
		t.Fatal(err)
	}
	s, err := netip.ParseAddrPort(p.Server)
	if err != nil {
		t.Fatal(err)
	}
	proto := uint8(6)
	if p.Proto == "udp" {
		proto = 17
	}
	k, _ := flow.NewKey(c.Addr(), s.Addr(), c.Port(), s.Port(), proto)
	return k
}

// flowVerdicts is what the engine did to one flow during a replay.
type flowVerdicts struct {
	firstBlock  int64 // capture index of the first non-pass frame, -1 none
	verdict     dataplane.Verdict
	passedAfter int // frames passed after the first block
}

// TestReplayThroughEngine replays a 10k-flow capture offline through the
// engine with the whole shipped catalog, as the inline node would see it:
// every exploit is blocked between its first packet and the packet that
// completes it, with the patch's own alert and action; nothing else is
// blocked; benign traffic raises no alert and no protocol violation.
func TestReplayThroughEngine(t *testing.T) {
	catalog := loadCatalog(t)
	prog, err := patch.Compile(1, catalog)
	if err != nil {
		t.Fatal(err)
	}
	o := DefaultOptions()
	o.Patches, o.Seed = catalog, 2025
	if testing.Short() {
		o.Flows = 2000
	}
	res := generate(t, o)

	rec := &engine.AlertRecorder{}
	cfg := engine.DefaultConfig()
	cfg.Checksums = engine.ChecksumValidate
	cfg.Violations = engine.ViolationAlert // every violation becomes an alert we can attribute
	e, err := engine.New(cfg, prog, rec)
	if err != nil {
		t.Fatal(err)
	}
	w := e.NewWorker()
	flows := map[flow.Key]*flowVerdicts{}
	var last time.Time
	readFrames(t, res.Path, func(i int, lt layers.LinkType, data []byte, ci gopacket.CaptureInfo) {
		r := w.Process(lt, data, ci.Timestamp)
		fv := flows[r.Flow]
		if fv == nil {
			fv = &flowVerdicts{firstBlock: -1}
			flows[r.Flow] = fv
		}
		if r.Verdict != dataplane.Pass {
			if fv.firstBlock < 0 {
				fv.firstBlock, fv.verdict = int64(i), r.Verdict
			}
		} else if fv.firstBlock >= 0 {
			fv.passedAfter++
		}
		last = ci.Timestamp
	})
	e.Expire(last)

	special := map[flow.Key]Placement{}
	for _, p := range append(append([]Placement{}, res.Exploits...), res.LookAlikes...) {
		special[placementKey(t, p)] = p
	}
	alertsByFlow := map[flow.Key][]engine.Alert{}
	for _, a := range rec.Alerts() {
		k, _ := flow.NewKey(a.Src.Addr(), a.Dst.Addr(), a.Src.Port(), a.Dst.Port(), a.Proto)
		alertsByFlow[k] = append(alertsByFlow[k], a)
	}

	// Every exploit blocked, at or after its first packet and no later than
	// the packet completing it, by its own patch, and kept blocked.
	for _, p := range res.Exploits {
		k := placementKey(t, p)
		fv := flows[k]
		switch {
		case fv == nil:
			t.Errorf("exploit %s %q: flow %v never seen", p.Patch, p.Test, k)
			continue
		case fv.firstBlock < 0:
			t.Errorf("exploit %s %q (%s → %s, packets %d..%d): not blocked", p.Patch, p.Test, p.Client, p.Server, p.FirstPacket, p.CompletePacket)
			continue
		case fv.firstBlock < p.FirstPacket || fv.firstBlock > p.CompletePacket:
			t.Errorf("exploit %s %q: blocked at packet %d, want within %d..%d", p.Patch, p.Test, fv.firstBlock, p.FirstPacket, p.CompletePacket)
		case fv.verdict.String() != p.Expected:
			t.Errorf("exploit %s %q: verdict %v, manifest expects %s", p.Patch, p.Test, fv.verdict, p.Expected)
		}
		if fv.passedAfter > 0 {
			t.Errorf("exploit %s %q: %d packets passed after the flow was blocked", p.Patch, p.Test, fv.passedAfter)
		}
		own := false
		for _, a := range alertsByFlow[k] {
			own = own || a.PatchID == p.Patch
		}
		if !own {
			t.Errorf("exploit %s %q: no alert from its patch (alerts %v)", p.Patch, p.Test, alertIDs(alertsByFlow[k]))
		}
	}
	// Look-alikes that another patch's exploit matches are blocked too.
	for _, p := range res.LookAlikes {
		if fv := flows[placementKey(t, p)]; p.Expected != "pass" && (fv == nil || fv.verdict.String() != p.Expected) {
			t.Errorf("look-alike %s %q: manifest expects %s (other patches %v), engine gave %+v", p.Patch, p.Test, p.Expected, p.OtherPatches, fv)
		}
	}
	// Nothing else blocked; no alert outside the exploit flows.
	var blockedBenign []string
	for k, fv := range flows {
		p, isSpecial := special[k]
		if fv.firstBlock >= 0 && (!isSpecial || p.Expected == "pass") {
			blockedBenign = append(blockedBenign, k.String())
		}
	}
	sort.Strings(blockedBenign)
	if len(blockedBenign) > 0 {
		t.Errorf("%d flows blocked that should pass, e.g. %v", len(blockedBenign), blockedBenign[:min(5, len(blockedBenign))])
	}
	for k, as := range alertsByFlow {
		p, isSpecial := special[k]
		switch {
		case !isSpecial:
			t.Errorf("benign flow %v: alerts %v", k, alertIDs(as))
		case p.Expected == "pass":
			t.Logf("look-alike %s %q: alerts %v (passed)", p.Patch, p.Test, alertIDs(as))
		}
	}

	st := e.Stats()
	if st.Panics != 0 || st.PredicateErrors != 0 {
		t.Errorf("panics %d, predicate errors %d", st.Panics, st.PredicateErrors)
	}
	if st.Packets != uint64(res.Packets) {
		t.Errorf("engine saw %d packets, manifest says %d", st.Packets, res.Packets)
	}
	// Analyzer failures can only come from the catalog's hostile
	// conversations: at most one per special flow.
	if st.AnalyzerErrors > uint64(len(special)) {
		t.Errorf("analyzer errors %d > %d special flows", st.AnalyzerErrors, len(special))
	}
	t.Logf("%d flows, %d packets, %d bytes; engine: verdicts %v, flows created %d, pickups %d, gaps %d, analyzer errors %d, violations %v",
		res.FlowsTotal, res.Packets, res.Bytes, st.Verdicts, st.FlowsCreated, st.Pickups, st.Gaps, st.AnalyzerErrors, st.Violations)
	if st.Pickups != 0 || st.Gaps != 0 {
		t.Errorf("engine picked up %d flows mid-stream and skipped %d gaps: the capture is not clean TCP", st.Pickups, st.Gaps)
	}
}

func alertIDs(as []engine.Alert) []string {
	out := make([]string, 0, len(as))
	for _, a := range as {
		out = append(out, a.PatchID+"/"+a.Event)
	}
	return out
}
