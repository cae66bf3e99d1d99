package waf

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/patchgate/patchgate/deploy/lab"
)

// wrkScript prints wrk's summary and latency distribution as one JSON line
// (wrk's --latency shows no p99.9).
const wrkScript = `done = function(summary, latency, requests)
  local ps = {}
  for p = 1, 99 do ps[#ps + 1] = p end
  ps[#ps + 1] = 99.5
  ps[#ps + 1] = 99.9
  ps[#ps + 1] = 99.99
  io.write("PGJSON {")
  io.write(string.format('"requests":%d,"duration_us":%d,"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d,',
    summary.requests, summary.duration, summary.errors.connect, summary.errors.read,
    summary.errors.write, summary.errors.status, summary.errors.timeout))
  io.write(string.format('"mean":%f,"max":%d,"curve":[', latency.mean, latency.max))
  for i, p in ipairs(ps) do
    if i > 1 then io.write(",") end
    io.write(string.format('[%g,%d]', p, latency:percentile(p)))
  end
  io.write("]}\n")
end
`

// wrkHeaders make wrk's request look like a browser's (wrk alone sends only
// Host): a named host, so that CRS does not score a numeric Host on every
// request, and the usual Accept headers. Every path gets the same request.
var wrkHeaders = []string{
	"Host: shop.example.test",
	"User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
	"Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
	"Accept-Language: en-US,en;q=0.5",
}

type wrkJSON struct {
	Requests   int64        `json:"requests"`
	DurationUS int64        `json:"duration_us"`
	Connect    int64        `json:"connect"`
	Read       int64        `json:"read"`
	Write      int64        `json:"write"`
	Status     int64        `json:"status"`
	Timeout    int64        `json:"timeout"`
	Mean       float64      `json:"mean"`
	Max        float64      `json:"max"`
	Curve      [][2]float64 `json:"curve"`
}

// runWrk runs wrk inside namespace ns against url with threads and conns
// and parses its summary.
func runWrk(ctx context.Context, cfg Config, dir, ns, url string, threads, conns int) (WrkResult, string, error) {
	script := filepath.Join(dir, "wrk.lua")
	if err := os.WriteFile(script, []byte(wrkScript), 0o644); err != nil {
		return WrkResult{}, "", fmt.Errorf("bench/waf: wrk script: %w", err)
	}
	secs := int(cfg.Duration.Seconds())
	argv := []string{"wrk", "-t", strconv.Itoa(threads), "-c", strconv.Itoa(conns),
		"-d", strconv.Itoa(secs) + "s", "--timeout", "5s", "-s", script}
	for _, h := range wrkHeaders {
		argv = append(argv, "-H", h)
	}
	argv = append(argv, url)
	cmdline := strings.Join(quoteArgs(argv), " ")
	cmd := lab.Command(ns, argv...)
	out, err := commandOutput(ctx, cmd)
	if err != nil {
		return WrkResult{}, cmdline, fmt.Errorf("bench/waf: %s: %w: %s", cmdline, err, tailString(out, 2000))
	}
	for _, line := range strings.Split(out, "\n") {
		rest, ok := strings.CutPrefix(line, "PGJSON ")
		if !ok {
			continue
		}
		var w wrkJSON
		if err := json.Unmarshal([]byte(rest), &w); err != nil {
			return WrkResult{}, cmdline, fmt.Errorf("bench/waf: wrk summary: %w", err)
		}
		r := WrkResult{
			Requests: w.Requests, DurationUS: w.DurationUS,
			ErrConnect: w.Connect, ErrRead: w.Read, ErrWrite: w.Write, ErrStatus: w.Status, ErrTimeout: w.Timeout,
			MeanUS: w.Mean, MaxUS: w.Max, Curve: w.Curve,
		}
		if w.DurationUS > 0 {
			r.RequestsPerSec = float64(w.Requests) / (float64(w.DurationUS) / 1e6)
		}
		for _, pt := range w.Curve {
			switch pt[0] {
			case 50:
				r.Latency.P50 = pt[1]
			case 90:
				r.Latency.P90 = pt[1]
			case 99:
				r.Latency.P99 = pt[1]
			case 99.9:
				r.Latency.P999 = pt[1]
			}
		}
		return r, cmdline, nil
	}
	return WrkResult{}, cmdline, fmt.Errorf("bench/waf: %s printed no summary: %s", cmdline, tailString(out, 2000))
}

func tailString(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// quoteArgs quotes arguments with spaces for a readable command line.
func quoteArgs(argv []string) []string {
	out := make([]string, len(argv))
	for i, a := range argv {
		if strings.ContainsAny(a, " ;'") {
			a = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
		out[i] = a
	}
	return out
}
