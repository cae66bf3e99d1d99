package corazabench

import (
	"fmt"
	"runtime/debug"
	"testing"
	"time"

	"github.com/patchgate/patchgate/bench/waf"
	"github.com/patchgate/patchgate/dataplane/patch"
)

// KnownGaps are the corpus requests on which Coraza with waf.CVERules is
// known to disagree with patchgate, and why: conditions SecLang cannot
// express. The parity test fails when a disagreement is missing from this
// list, or when a listed one goes away (update the list and the README).
var KnownGaps = map[string]string{
	"CVE-2011-3192/three copies of one range":                 "more than two overlapping ranges needs numeric comparison of range bounds, which SecLang lacks (Coraza's RE2 has no back-references either)",
	"CVE-2011-3192/ranges split across repeated Range fields": "SecLang tests each Range field on its own and cannot sum ranges across repeated fields (setvar runs once per rule, not per matched field)",
}

// Verdict is what each inspector decided for one corpus request.
type Verdict struct {
	Name    string `json:"name"`
	CVE     string `json:"cve,omitempty"`
	Exploit bool   `json:"exploit"`
	// Blocked by inspector name: the ids of the patches or rules that
	// blocked the request (empty: passed).
	Blocked map[string][]string `json:"blocked"`
}

// Judge runs every inspector on every request.
func Judge(reqs []*Prepared, ins ...Inspector) ([]Verdict, error) {
	out := make([]Verdict, 0, len(reqs))
	for _, r := range reqs {
		v := Verdict{Name: r.Name, CVE: r.CVE, Exploit: r.Exploit, Blocked: map[string][]string{}}
		for _, in := range ins {
			ids, err := in.Inspect(r)
			if err != nil {
				return nil, err
			}
			v.Blocked[in.Name()] = append([]string{}, ids...)
		}
		out = append(out, v)
	}
	return out, nil
}

// Speed is one inspector's measured cost per request over a request set.
type Speed struct {
	Inspector string `json:"inspector"`
	// Set is the request set: "benign" (the benign mix), "corpus" (every
	// exploit and look-alike of the HTTP patches) or "mix" (both).
	Set              string  `json:"set"`
	Requests         int     `json:"requests"`
	NsPerRequest     float64 `json:"ns_per_request"`
	RequestsPerSec   float64 `json:"requests_per_sec"`
	AllocsPerRequest int64   `json:"allocs_per_request"`
	BytesPerRequest  int64   `json:"bytes_per_request"`
}

// Measure inspects the requests round-robin with testing.Benchmark and
// reports the cost per request. It runs on one goroutine (one core).
func Measure(in Inspector, set string, reqs []*Prepared) (Speed, error) {
	var ierr error
	r := testing.Benchmark(func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if _, err := in.Inspect(reqs[i]); err != nil {
				ierr = err
				b.FailNow()
			}
			if i++; i == len(reqs) {
				i = 0
			}
		}
	})
	if ierr != nil {
		return Speed{}, ierr
	}
	if r.N == 0 {
		return Speed{}, fmt.Errorf("corazabench: measure %s: benchmark did not run", in.Name())
	}
	ns := float64(r.T.Nanoseconds()) / float64(r.N)
	return Speed{
		Inspector: in.Name(), Set: set, Requests: len(reqs),
		NsPerRequest: ns, RequestsPerSec: 1e9 / ns,
		AllocsPerRequest: r.AllocsPerOp(), BytesPerRequest: r.AllocedBytesPerOp(),
	}, nil
}

// Report is the JSON document the bench runner reads.
type Report struct {
	Time          time.Time `json:"time"`
	GoVersion     string    `json:"go_version"`
	CorazaVersion string    `json:"coraza_version"`
	// Fair states what the compared inspectors do, for the report.
	Fair     string    `json:"fair"`
	Speeds   []Speed   `json:"speeds"`
	Verdicts []Verdict `json:"verdicts"`
	// Disagreements are the corpus requests on which Coraza's verdict differs
	// from patchgate's, with the reason when it is a known gap.
	Disagreements []Disagreement `json:"disagreements"`
}

// Disagreement is a request that patchgate and Coraza judged differently.
type Disagreement struct {
	Name      string   `json:"name"`
	Exploit   bool     `json:"exploit"`
	Patchgate []string `json:"patchgate"`
	Coraza    []string `json:"coraza"`
	Reason    string   `json:"reason,omitempty"`
}

// FairNote is Report.Fair.
const FairNote = "patchgate-http and coraza both start from the same raw request bytes and include their own HTTP parsing " +
	"(patchgate's analyzer; net/http's parser for Coraza, as in a Go server running Coraza), one request per connection " +
	"(a fresh analyzer / transaction each), the same 8 CVEs (patches/http vs bench/waf/cverules.conf); neither sees TCP. " +
	"patchgate-engine adds decoding, flow tracking and TCP reassembly of the request's whole session (handshake to FIN): more work, for context."

// Disagreements compares Coraza's verdicts with patchgate-http's.
func Disagreements(vs []Verdict) []Disagreement {
	var out []Disagreement
	for _, v := range vs {
		pg, cz := v.Blocked["patchgate-http"], v.Blocked["coraza"]
		if (len(pg) > 0) == (len(cz) > 0) {
			continue
		}
		out = append(out, Disagreement{Name: v.Name, Exploit: v.Exploit, Patchgate: pg, Coraza: cz, Reason: KnownGaps[v.Name]})
	}
	return out
}

// Run builds the corpus from the HTTP patches in dir plus a benign mix of
// nBenign requests, judges every request with the three inspectors and
// measures each on the benign mix, the corpus and both together.
func Run(dir string, nBenign int) (*Report, error) {
	corpus, err := waf.Corpus(dir)
	if err != nil {
		return nil, err
	}
	pc, err := Prepare(corpus)
	if err != nil {
		return nil, err
	}
	pb, err := Prepare(waf.Benign(nBenign))
	if err != nil {
		return nil, err
	}
	prog, err := LoadCatalog(dir)
	if err != nil {
		return nil, err
	}
	ins, err := Inspectors(prog)
	if err != nil {
		return nil, err
	}
	rep := &Report{Time: time.Now().UTC(), Fair: FairNote}
	if bi, ok := debug.ReadBuildInfo(); ok {
		rep.GoVersion = bi.GoVersion
		for _, d := range bi.Deps {
			if d.Path == "github.com/corazawaf/coraza/v3" {
				rep.CorazaVersion = d.Version
			}
		}
	}
	if rep.Verdicts, err = Judge(pc, ins...); err != nil {
		return nil, err
	}
	rep.Disagreements = Disagreements(rep.Verdicts)
	sets := []struct {
		name string
		reqs []*Prepared
	}{{"benign", pb}, {"corpus", pc}, {"mix", append(append([]*Prepared{}, pb...), pc...)}}
	for _, in := range ins {
		for _, s := range sets {
			sp, err := Measure(in, s.name, s.reqs)
			if err != nil {
				return nil, err
			}
			rep.Speeds = append(rep.Speeds, sp)
		}
	}
	return rep, nil
}

// Inspectors returns the three inspectors enforcing prog: patchgate-http,
// coraza, patchgate-engine.
func Inspectors(prog *patch.Program) ([]Inspector, error) {
	pe, err := NewPatchgateEngine(prog)
	if err != nil {
		return nil, err
	}
	cz, err := NewCoraza()
	if err != nil {
		return nil, err
	}
	return []Inspector{NewPatchgateHTTP(prog), cz, pe}, nil
}
