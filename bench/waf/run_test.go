package waf

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// TestRun runs a short comparison (2 s of wrk per path) in a 1-node lab and
// checks that every path reports its corpus counts, that the baseline
// delivers every corpus request to the backend (the harness sees what a
// gateway blocks, not what the server refuses) and that patchgate blocks
// every HTTP exploit. It needs root and the Debian packages nginx,
// libnginx-mod-http-modsecurity, modsecurity-crs and wrk; it skips without.
// PATCHGATE_BIN names the patchgate binary (built into a temp dir otherwise).
func TestRun(t *testing.T) {
	cfg := DefaultConfig()
	if err := Prerequisites(cfg); errors.Is(err, ErrMissing) {
		t.Skip(err)
	}
	if testing.Short() {
		t.Skip("-short: the lab run takes about a minute")
	}
	patches, err := filepath.Abs("../../patches")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Patches = patches
	cfg.Binary = os.Getenv("PATCHGATE_BIN")
	if cfg.Binary == "" {
		cfg.Binary = filepath.Join(t.TempDir(), "patchgate")
		if out, err := exec.Command("go", "build", "-o", cfg.Binary, "../../cmd/patchgate").CombinedOutput(); err != nil {
			t.Fatalf("building patchgate: %v\n%s", err, out)
		}
	}
	cfg.StateRoot = t.TempDir()
	cfg.Duration = 2 * time.Second
	cfg.UnloadedDuration = time.Second
	cfg.Pings = 300
	cfg.Log = t.Logf
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	res, err := Run(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	corpus, err := Corpus(filepath.Join(patches, "http"))
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Paths) != 2+len(cfg.Nginx) {
		t.Fatalf("%d paths, want baseline, patchgate and %v", len(res.Paths), cfg.Nginx)
	}
	for _, p := range res.Paths[1:] {
		if p.GatewayCPUSeconds <= 0 {
			t.Errorf("%s: gateway CPU %v s during wrk, want > 0", p.Name, p.GatewayCPUSeconds)
		}
	}
	for _, p := range res.Paths {
		e := p.Exploits
		if len(e.Requests) != len(corpus) || e.Exploits+e.Lookalikes != len(corpus) || e.Exploits == 0 {
			t.Errorf("%s: corpus counts %d exploits + %d look-alikes (%d outcomes), want %d requests",
				p.Name, e.Exploits, e.Lookalikes, len(e.Requests), len(corpus))
		}
		if p.Unloaded.Requests == 0 || p.Unloaded.Latency.P50 <= 0 {
			t.Errorf("%s: one-connection wrk reported %d requests", p.Name, p.Unloaded.Requests)
		}
		if p.Wrk.Requests == 0 || p.Wrk.Latency.P50 <= 0 {
			t.Errorf("%s: wrk reported %d requests, p50 %v µs", p.Name, p.Wrk.Requests, p.Wrk.Latency.P50)
		}
		t.Logf("%s: %.0f req/s p50/p99/p999 %.0f/%.0f/%.0f µs; exploits blocked %d/%d, look-alikes passed %d/%d",
			p.Name, p.Wrk.RequestsPerSec, p.Wrk.Latency.P50, p.Wrk.Latency.P99, p.Wrk.Latency.P999,
			e.ExploitsBlocked, e.Exploits, e.LookalikesPassed, e.Lookalikes)
	}
	for _, o := range res.Paths[0].Exploits.Requests {
		if !o.Reached {
			t.Errorf("baseline: %s did not reach the backend (%s)", o.Name, o.Answer)
		}
	}
	for _, o := range res.Paths[1].Exploits.Requests {
		if o.Exploit && o.Reached {
			t.Errorf("patchgate: exploit %s reached the backend (%s)", o.Name, o.Answer)
		}
	}
	for _, p := range res.PacketRTT {
		if len(p.SamplesUS) == 0 {
			t.Errorf("%s: no UDP round trips (%d lost)", p.Path, p.Lost)
		}
		t.Logf("%s: UDP RTT p50/p99/p999 %.0f/%.0f/%.0f µs, %d lost", p.Path, p.RTT.P50, p.RTT.P99, p.RTT.P999, p.Lost)
	}
	t.Logf("added per packet (µs): %+v; per request: %+v", res.AddedPerPacket, res.AddedPerRequest)
	if out := os.Getenv("PGWAF_JSON"); out != "" {
		data, _ := json.MarshalIndent(res, "", "  ")
		if err := os.WriteFile(out, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
