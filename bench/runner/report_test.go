package runner

import (
	"encoding/json"
	"os"
	"strings"
	"testing"
)

// TestWriteReportFromFixture renders testdata/results.json and checks the
// figures a reader looks for: max lossless rates with the ratio against
// the kernel of the same bring-up, per-step rows, the flow-sharing table,
// the labelled model, the commands and the missing peers.
func TestWriteReportFromFixture(t *testing.T) {
	data, err := os.ReadFile("testdata/results.json")
	if err != nil {
		t.Fatal(err)
	}
	var res Results
	if err := json.Unmarshal(data, &res); err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	if err := WriteReport(&b, &res, map[string]bool{PlotName("l3", 2): true}); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"| l3 | 2 | kernel | 40.0 k | 290 | 20.0 k |  |",
		"| l3 | 2 | patchgate-full | 13.9 k | 99 | 7.0 k | 0.35 | 50% 50% | 2/2 |",
		"| top speed | 2 | 40.0 k | 290.0 | 15.0 k | 110.0 | 24.750 |",
		"blocked_flow 98, patch 2",
		"Idle CPU per node",
		"![offered vs delivered](rate-l3-n2.png)",
		"| 100 Mbps | 50 % | 60 % | 500 | 100 k |",
		"**10000 instructions per packet**",
		"**MODEL (not a measurement).**",
		"2.00 GHz",
		"pgbench run --quick",
		"not run: the run ended before the peers",
		"- a note",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q", want)
		}
	}
	if t.Failed() {
		t.Log(out)
	}
}

// TestWriteReportPeers renders the peers and latency sections from
// testdata/peers.json (a bench/coraza report and a bench/waf result of a
// real run, samples trimmed): the side-by-side tables with ratios,
// blocking counts, the disagreements with their reasons, the added latency
// per packet and per request, and the latency plot.
func TestWriteReportPeers(t *testing.T) {
	data, err := os.ReadFile("testdata/results.json")
	if err != nil {
		t.Fatal(err)
	}
	var res Results
	if err := json.Unmarshal(data, &res); err != nil {
		t.Fatal(err)
	}
	if data, err = os.ReadFile("testdata/peers.json"); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &res.Peers); err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	if err := WriteReport(&b, &res, map[string]bool{LatencyPlot: true}); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"### Coraza vs patchgate",
		"| patchgate-http | mix | 270 | 12216 |",
		"| coraza | mix | 270 | 4869 |",
		"patchgate inspects **2.5×** Coraza's requests/s with 80 vs 150 allocations per request",
		"| patchgate-http | 3/3 | 1/1 |",
		"| coraza | 1/3 | 1/1 |",
		"| CVE-2011-3192/three copies of one range | true | blocked (CVE-2011-3192) | passed | more than two overlapping ranges",
		"### nginx + ModSecurity + OWASP CRS vs patchgate vs kernel forwarding",
		"| baseline | 22281 | 1 | 1373 µs | 22.3 ms | 31.8 ms | – (kernel) | 0/38 | 32/32 | 0 |",
		"| patchgate | 7149 | 0.321 |",
		"| 121 µs | 38/38 | 32/32 |",
		"| nginx-modsecurity | 1212 | 0.054 |",
		"| 1488 µs | 36/38 | 25/32 |",
		"Corpus requests on which patchgate and nginx+ModSecurity disagree",
		"| CVE-2011-3192/three copies of one range | exploit | blocked (reset) | passed | passed | passed |",
		"| **added per packet by patchgate** | | | **+86 µs** |",
		"| patchgate | 3442 | 275 µs | 2392 µs | 5250 µs | +215 µs | +1884 µs | +3045 µs | +2905 µs |",
		"![latency distribution",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q", want)
		}
	}
	if t.Failed() {
		t.Log(out)
	}
}

func TestClockGHz(t *testing.T) {
	if v := clockGHz("Intel(R) Xeon(R) Processor @ 2.50GHz"); v != 2.5 {
		t.Fatalf("got %v", v)
	}
	if v := clockGHz("AMD EPYC 7B13"); v != 0 {
		t.Fatalf("got %v", v)
	}
}
