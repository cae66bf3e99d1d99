package corazabench

import (
	"encoding/json"
	"flag"
	"os"
	"sync"
	"testing"

	"github.com/patchgate/patchgate/bench/waf"
)

// jsonOut makes TestWriteReport write the full report (verdicts and
// speeds) as JSON: go test -run TestWriteReport -json-out=coraza.json
var jsonOut = flag.String("json-out", "", "write the comparison report as JSON to this file (TestWriteReport)")

// benignMix is the size of the benign request mix in tests and benchmarks.
const benignMix = 200

var fixture struct {
	once           sync.Once
	err            error
	corpus, benign []*Prepared
	dir            string
}

// load builds the corpus and the benign mix once per test binary.
func load(tb testing.TB) (dir string, corpus, benign []*Prepared) {
	tb.Helper()
	f := &fixture
	f.once.Do(func() {
		if f.dir, f.err = waf.CatalogDir(); f.err != nil {
			return
		}
		var reqs []waf.Request
		if reqs, f.err = waf.Corpus(f.dir); f.err != nil {
			return
		}
		if f.corpus, f.err = Prepare(reqs); f.err != nil {
			return
		}
		f.benign, f.err = Prepare(waf.Benign(benignMix))
	})
	if f.err != nil {
		tb.Fatal(f.err)
	}
	return f.dir, f.corpus, f.benign
}

func inspectors(tb testing.TB) []Inspector {
	tb.Helper()
	dir, _, _ := load(tb)
	prog, err := LoadCatalog(dir)
	if err != nil {
		tb.Fatal(err)
	}
	ins, err := Inspectors(prog)
	if err != nil {
		tb.Fatal(err)
	}
	return ins
}

// TestParity checks that patchgate (analyzer path and whole engine) blocks
// exactly the exploits, that Coraza with the CVE rules blocks the same
// requests except the documented KnownGaps, and that nobody blocks the
// benign mix.
func TestParity(t *testing.T) {
	_, corpus, benign := load(t)
	vs, err := Judge(append(append([]*Prepared{}, corpus...), benign...), inspectors(t)...)
	if err != nil {
		t.Fatal(err)
	}
	exploits := 0
	for _, v := range vs {
		if v.Exploit {
			exploits++
		}
		for _, name := range []string{"patchgate-http", "patchgate-engine"} {
			ids := v.Blocked[name]
			if blocked := len(ids) > 0; blocked != v.Exploit {
				t.Errorf("%s: %s blocked=%v (%v), want %v", v.Name, name, blocked, ids, v.Exploit)
			} else if blocked && (len(ids) != 1 || ids[0] != v.CVE) {
				t.Errorf("%s: %s blocked by %v, want only %s", v.Name, name, ids, v.CVE)
			}
		}
		cz := v.Blocked["coraza"]
		_, gap := KnownGaps[v.Name]
		agree := (len(cz) > 0) == v.Exploit
		switch {
		case agree && gap:
			t.Errorf("%s: listed in KnownGaps but Coraza now agrees (blocked=%v): update KnownGaps and the README", v.Name, cz)
		case !agree && !gap:
			t.Errorf("%s: Coraza blocked=%v (%v), want %v", v.Name, len(cz) > 0, cz, v.Exploit)
		case agree && len(cz) > 0 && cz[0] != v.CVE:
			t.Errorf("%s: Coraza blocked by %v, want the rule tagged %s", v.Name, cz, v.CVE)
		}
	}
	if exploits < 8 {
		t.Fatalf("corpus has %d exploits, want at least one per HTTP patch", exploits)
	}
	t.Logf("%d requests (%d exploits), %d known Coraza gaps", len(vs), exploits, len(KnownGaps))
}

// TestWriteReport writes the JSON report when -json-out is given.
func TestWriteReport(t *testing.T) {
	if *jsonOut == "" {
		t.Skip("no -json-out given")
	}
	dir, _, _ := load(t)
	rep, err := Run(dir, benignMix)
	if err != nil {
		t.Fatal(err)
	}
	data, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(*jsonOut, append(data, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
}

// BenchmarkInspect measures every inspector on the benign mix, the patch
// corpus (exploits and look-alikes) and both, one request per iteration.
// requests/s is the figure to compare; allocs/op is per request.
func BenchmarkInspect(b *testing.B) {
	_, corpus, benign := load(b)
	sets := []struct {
		name string
		reqs []*Prepared
	}{{"benign", benign}, {"corpus", corpus}, {"mix", append(append([]*Prepared{}, benign...), corpus...)}}
	for _, in := range inspectors(b) {
		for _, s := range sets {
			b.Run(in.Name()+"/"+s.name, func(b *testing.B) {
				b.ReportAllocs()
				i := 0
				for b.Loop() {
					if _, err := in.Inspect(s.reqs[i]); err != nil {
						b.Fatal(err)
					}
					if i++; i == len(s.reqs) {
						i = 0
					}
				}
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "requests/s")
			})
		}
	}
}
