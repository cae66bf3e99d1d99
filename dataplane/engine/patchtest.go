package engine

import (
	"fmt"
	"net/netip"

	"github.com/patchgate/patchgate/dataplane"
	"github.com/patchgate/patchgate/dataplane/analyzer"
	"github.com/patchgate/patchgate/dataplane/gen"
	"github.com/patchgate/patchgate/dataplane/patch"
)

// Variant is a way of carrying a patch test's traffic: the same bytes,
// segmented or reordered differently. A correct engine gives the same result
// for every variant.
type Variant struct {
	Name string
	// SegmentSize is the TCP payload per segment (0: the MSS).
	SegmentSize int
	// Transforms rewrite the segments before encoding.
	Transforms []gen.Transform
	// IPv6 carries the session over IPv6.
	IPv6 bool
	// ClientPort is the client's port (0: 40000); Clock stamps the frames
	// (zero: gen.DefaultClock). Captures that hold many tests set both.
	ClientPort uint16
	Clock      gen.Clock
}

// PlainVariant sends the test as a normal session.
var PlainVariant = Variant{Name: "plain"}

// EvasionVariants carry the traffic the ways evasions do; each must give the
// same verdict as PlainVariant.
func EvasionVariants() []Variant {
	return []Variant{
		{Name: "1-byte segments", SegmentSize: 1},
		{Name: "7-byte segments reordered", SegmentSize: 7, Transforms: []gen.Transform{gen.Reorder(7, 5)}},
		{Name: "duplicated segments", SegmentSize: 16, Transforms: []gen.Transform{gen.Duplicate(gen.DataSegments())}},
		{Name: "overlapping retransmissions", SegmentSize: 24, Transforms: []gen.Transform{gen.Overlap(gen.DataSegments(), gen.OverlapOptions{CopyFirst: true})}},
		{Name: "ipv4 fragments shuffled", SegmentSize: 200, Transforms: []gen.Transform{gen.Fragment(gen.DataSegments(), gen.Fragmentation{Size: 16, Order: gen.FragShuffled, Seed: 5})}},
		{Name: "ipv6 3-byte segments", SegmentSize: 3, IPv6: true},
	}
}

// TestResult is the outcome of one patch test in one variant.
type TestResult struct {
	Patch   *patch.Patch
	Test    *patch.Test
	Variant string
	// Matched is true when the patch raised at least one alert.
	Matched bool
	Passed  bool
	Err     error
}

func (r TestResult) String() string {
	status := "ok"
	if !r.Passed {
		status = "FAIL"
	}
	want := "must not match"
	if r.Test.Match {
		want = "must match"
	}
	s := fmt.Sprintf("%s %s: %s %q (%s, %s)", status, r.Patch.ID, r.Patch.File, r.Test.Name, want, r.Variant)
	if r.Err != nil {
		s += ": " + r.Err.Error()
	} else if !r.Passed {
		s += fmt.Sprintf(": matched=%v (test at line %d)", r.Matched, r.Test.Line)
	}
	return s
}

// RunPatchTests runs every embedded test of every patch in prog through a fresh
// engine holding the whole program, once per variant (PlainVariant when none
// are given).
func RunPatchTests(prog *patch.Program, variants ...Variant) []TestResult {
	if len(variants) == 0 {
		variants = []Variant{PlainVariant}
	}
	var out []TestResult
	for _, c := range prog.Patches {
		for i := range c.Tests {
			t := &c.Tests[i]
			for _, v := range variants {
				if t.Transport == "udp" && (v.SegmentSize != 0 || len(v.Transforms) > 0) {
					continue // segmentation variants do not apply to datagrams
				}
				r := TestResult{Patch: c.Patch, Test: t, Variant: v.Name}
				r.Matched, r.Err = runOne(prog, c.Patch, t, v)
				r.Passed = r.Err == nil && r.Matched == t.Match
				out = append(out, r)
			}
		}
	}
	return out
}

// testEndpoints are documentation addresses (RFC 5737, RFC 3849).
func testEndpoints(port uint16, v6 bool) (client, server gen.Endpoint) {
	if v6 {
		return gen.Endpoint{Addr: netip.MustParseAddr("2001:db8::10"), Port: 40000},
			gen.Endpoint{Addr: netip.MustParseAddr("2001:db8::20"), Port: port}
	}
	return gen.Endpoint{Addr: netip.MustParseAddr("192.0.2.10"), Port: 40000},
		gen.Endpoint{Addr: netip.MustParseAddr("198.51.100.20"), Port: port}
}

// TestFrames builds the frames of a patch test in a variant.
func TestFrames(p *patch.Patch, t *patch.Test, v Variant) (*gen.Capture, error) {
	port := t.ServerPort
	if port == 0 {
		spec, ok := analyzer.Lookup(p.Protocol)
		if !ok || len(spec.Ports) == 0 {
			return nil, fmt.Errorf("engine: test needs server_port: protocol %q has no default port", p.Protocol)
		}
		port = spec.Ports[0]
	}
	client, server := testEndpoints(port, v.IPv6)
	if v.ClientPort != 0 {
		client.Port = v.ClientPort
	}
	opts := gen.DefaultSessionOptions()
	opts.SegmentSize = v.SegmentSize
	if !v.Clock.Start.IsZero() {
		opts.Clock = v.Clock
	}
	if t.Transport == "udp" {
		f, err := gen.NewUDPFlow(client, server, opts)
		if err != nil {
			return nil, err
		}
		for _, st := range t.Steps {
			f.Send(st.Dir, st.Data)
		}
		return f.Capture(v.Transforms...)
	}
	s, err := gen.NewTCPSession(client, server, opts)
	if err != nil {
		return nil, err
	}
	for _, st := range t.Steps {
		s.Send(st.Dir, st.Data)
	}
	s.Close(dataplane.ToServer)
	return s.Capture(v.Transforms...)
}

func runOne(prog *patch.Program, p *patch.Patch, t *patch.Test, v Variant) (bool, error) {
	capture, err := TestFrames(p, t, v)
	if err != nil {
		return false, err
	}
	rec := &AlertRecorder{}
	cfg := DefaultConfig()
	cfg.Checksums = ChecksumValidate
	e, err := New(cfg, prog, rec)
	if err != nil {
		return false, err
	}
	w := e.NewWorker()
	for _, fr := range capture.Frames {
		w.Process(capture.LinkType, fr.Data, fr.CI.Timestamp)
	}
	for _, a := range rec.Alerts() {
		if a.PatchID == p.ID {
			return true, nil
		}
	}
	return false, nil
}
