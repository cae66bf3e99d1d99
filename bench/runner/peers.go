package runner

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/patchgate/patchgate/bench/waf"
)

// Peers are the side-by-side results of the same run: bench/coraza (Coraza
// vs patchgate's HTTP inspection, in process) and bench/waf (kernel
// forwarding vs patchgate inline vs nginx+ModSecurity, through a lab).
// A peer that did not run has its error instead.
type Peers struct {
	WAF      *waf.Result `json:"waf,omitempty"`
	WAFError string      `json:"waf_error,omitempty"`
	// Coraza is bench/coraza's report (cmd/corazabench's JSON).
	Coraza      *CorazaReport `json:"coraza,omitempty"`
	CorazaError string        `json:"coraza_error,omitempty"`
}

// CorazaReport is the part of bench/coraza's JSON report (corazabench.Report;
// a separate module, so read as JSON) the report uses.
type CorazaReport struct {
	Time          time.Time            `json:"time"`
	GoVersion     string               `json:"go_version"`
	CorazaVersion string               `json:"coraza_version"`
	Fair          string               `json:"fair"`
	Speeds        []CorazaSpeed        `json:"speeds"`
	Verdicts      []CorazaVerdict      `json:"verdicts"`
	Disagreements []CorazaDisagreement `json:"disagreements"`
}

// CorazaSpeed is one inspector's cost per request over a request set.
type CorazaSpeed struct {
	Inspector        string  `json:"inspector"`
	Set              string  `json:"set"`
	Requests         int     `json:"requests"`
	NsPerRequest     float64 `json:"ns_per_request"`
	RequestsPerSec   float64 `json:"requests_per_sec"`
	AllocsPerRequest int64   `json:"allocs_per_request"`
	BytesPerRequest  int64   `json:"bytes_per_request"`
}

// CorazaVerdict is what each inspector decided for one corpus request: the
// ids of the patches or rules that blocked it, by inspector (empty: passed).
type CorazaVerdict struct {
	Name    string              `json:"name"`
	CVE     string              `json:"cve,omitempty"`
	Exploit bool                `json:"exploit"`
	Blocked map[string][]string `json:"blocked"`
}

// CorazaDisagreement is a corpus request patchgate and Coraza judged
// differently, with the reason when it is a known gap of SecLang.
type CorazaDisagreement struct {
	Name      string   `json:"name"`
	Exploit   bool     `json:"exploit"`
	Patchgate []string `json:"patchgate"`
	Coraza    []string `json:"coraza"`
	Reason    string   `json:"reason,omitempty"`
}

// Blocking counts, for one inspector, the corpus exploits it blocked and
// the look-alikes it passed.
func (r *CorazaReport) Blocking(inspector string) (exploits, blocked, lookalikes, passed int) {
	for _, v := range r.Verdicts {
		hit := len(v.Blocked[inspector]) > 0
		if v.Exploit {
			exploits++
			if hit {
				blocked++
			}
		} else {
			lookalikes++
			if !hit {
				passed++
			}
		}
	}
	return
}

// Speed returns the inspector's speed on a set (nil when not measured).
func (r *CorazaReport) Speed(inspector, set string) *CorazaSpeed {
	for i := range r.Speeds {
		if r.Speeds[i].Inspector == inspector && r.Speeds[i].Set == set {
			return &r.Speeds[i]
		}
	}
	return nil
}

// runPeers runs the peer benchmarks the configuration asks for. Failures
// are recorded in the result (and the run goes on): a peer that cannot run
// on this machine must not cost the lab figures.
func runPeers(ctx context.Context, cfg Config, work string, progressOut io.Writer, res *Results) {
	p := &Peers{}
	res.Peers = p
	if len(cfg.CorazaCmd) == 0 {
		p.CorazaError = "skipped (--coraza is empty)"
	} else {
		fmt.Fprintf(progressOut, "pgbench: Coraza vs patchgate (bench/coraza)\n")
		rep, cmdline, err := runCoraza(ctx, cfg, work)
		res.Commands = append(res.Commands, cmdline)
		if err != nil {
			p.CorazaError = err.Error()
		} else {
			p.Coraza = rep
		}
	}
	if !cfg.WAF {
		p.WAFError = "skipped (--waf=false)"
		return
	}
	wc := waf.DefaultConfig()
	wc.Patches, wc.Binary = cfg.Patches, cfg.Binary
	wc.Duration = time.Duration(cfg.WAFSeconds * float64(time.Second))
	wc.UnloadedDuration = time.Duration(max(1, math.Round(cfg.WAFSeconds/2))) * time.Second
	wc.Pings = cfg.WAFPings
	wc.Log = func(format string, args ...any) { fmt.Fprintf(progressOut, "  "+format+"\n", args...) }
	if err := waf.Prerequisites(wc); err != nil {
		p.WAFError = err.Error()
		return
	}
	fmt.Fprintf(progressOut, "pgbench: kernel vs patchgate vs nginx+ModSecurity (bench/waf, about %.0f s)\n", wafSeconds(cfg))
	wr, err := waf.Run(ctx, wc)
	if err != nil {
		p.WAFError = err.Error()
		return
	}
	p.WAF = wr
	for _, pr := range wr.Paths {
		res.Commands = append(res.Commands, pr.Command+"   # "+pr.Name+", in the lab's client namespace")
		if pr.UnloadedCommand != "" {
			res.Commands = append(res.Commands, pr.UnloadedCommand+"   # "+pr.Name+", one request at a time")
		}
	}
}

// wafSeconds estimates bench/waf's run time: a lab bring-up, two wrk runs
// and the corpus for each of five paths, two ping series.
func wafSeconds(cfg Config) float64 {
	return 25 + 5*(cfg.WAFSeconds+max(1, math.Round(cfg.WAFSeconds/2))+3) + 2*float64(cfg.WAFPings)*0.0005
}

// runCoraza runs bench/coraza's command, which writes its JSON report.
func runCoraza(ctx context.Context, cfg Config, work string) (*CorazaReport, string, error) {
	out := filepath.Join(work, "coraza.json")
	argv := append(append([]string{}, cfg.CorazaCmd...), "-patches", filepath.Join(cfg.Patches, "http"), "-o", out)
	cmdline := strings.Join(argv, " ")
	cctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(cctx, argv[0], argv[1:]...)
	if o, err := cmd.CombinedOutput(); err != nil {
		return nil, cmdline, fmt.Errorf("runner: coraza: %s: %w: %s", cmdline, err, tail(string(o), 1000))
	}
	data, err := os.ReadFile(out)
	if err != nil {
		return nil, cmdline, fmt.Errorf("runner: coraza: %w", err)
	}
	var rep CorazaReport
	if err := json.Unmarshal(data, &rep); err != nil {
		return nil, cmdline, fmt.Errorf("runner: coraza: %s: %w", out, err)
	}
	if len(rep.Speeds) == 0 {
		return nil, cmdline, fmt.Errorf("runner: coraza: %s has no speeds", out)
	}
	return &rep, cmdline, nil
}
