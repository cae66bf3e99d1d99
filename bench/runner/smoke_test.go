package runner

import (
	"context"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/patchgate/patchgate/deploy/lab"
)

// testLog routes progress output to t.Log.
type testLog struct{ t *testing.T }

func (w testLog) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// TestSmokeRun runs a tiny ramp through a 1-node L3 lab (kernel, then
// patchgate with the full catalog, one paced rate) and checks what users
// of the results depend on: both configurations ran, the replay crossed
// the lab, the catalog's exploits were blocked, and results.json and
// report.md exist. Needs root and tcpreplay; PATCHGATE_BIN names a
// patchgate binary (else one is built).
func TestSmokeRun(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (network namespaces, tcpreplay)")
	}
	if _, err := exec.LookPath("tcpreplay"); err != nil {
		t.Skip("needs tcpreplay (Debian package tcpreplay)")
	}
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(file), "..", "..")
	bin := os.Getenv("PATCHGATE_BIN")
	if bin == "" {
		bin = filepath.Join(t.TempDir(), "patchgate")
		cmd := exec.Command("go", "build", "-o", bin, "./cmd/patchgate")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go build: %v: %s", err, out)
		}
	}
	cfg := QuickConfig()
	cfg.Variants, cfg.Nodes = []lab.Variant{lab.L3}, []int{1}
	cfg.Configs = []string{ConfKernel, ConfFull}
	cfg.RatesMbps, cfg.TopSpeed = []float64{20}, false
	cfg.StepSeconds, cfg.Sessions, cfg.EnginePackets = 0.5, 40, 0
	cfg.Binary, cfg.Patches = bin, filepath.Join(root, "patches")
	cfg.Out, cfg.StateRoot = t.TempDir(), t.TempDir()
	cfg.WAF, cfg.CorazaCmd = false, nil // the peers have their own tests
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	res, err := Run(ctx, cfg, true, "go test -run TestSmokeRun ./bench/runner/", nil, testLog{t})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Labs) != 1 || res.Labs[0].Error != "" {
		t.Fatalf("labs: %+v", res.Labs)
	}
	l := res.Labs[0]
	if len(l.Configs) != 2 {
		t.Fatalf("%d configurations ran, want 2", len(l.Configs))
	}
	for _, c := range l.Configs {
		if c.Error != "" || len(c.Steps) != 1 {
			t.Fatalf("%s: error %q, %d steps", c.Name, c.Error, len(c.Steps))
		}
		s := c.Steps[0]
		if s.Offered.Packets == 0 || s.DeliveredPackets == 0 {
			t.Fatalf("%s: offered %d, delivered %d", c.Name, s.Offered.Packets, s.DeliveredPackets)
		}
		// Injected RSTs are not delivered replay frames: delivered never
		// exceeds offered (but for a few stray control frames as the lab's
		// interfaces come up).
		if s.DeliveredPackets > s.Offered.Packets+s.Offered.Packets/1000+20 {
			t.Errorf("%s: delivered %d > offered %d (tap %d, injected %d)", c.Name, s.DeliveredPackets, s.Offered.Packets, s.TapPackets, s.Injected)
		}
	}
	if l.Spacing == nil || l.Spacing.Gap != DefaultTurnGap || l.Spacing.Turns == 0 {
		t.Errorf("replay order not reported: %+v", l.Spacing)
	}
	full := l.Configs[1].Steps[0]
	if full.ExploitsDistinct == 0 || full.ExploitsBlocked != full.ExploitsDistinct {
		t.Errorf("exploits blocked %d of %d", full.ExploitsBlocked, full.ExploitsDistinct)
	}
	if full.Dropped["patch"] == 0 {
		t.Errorf("no patch drops: %v", full.Dropped)
	}
	data, err := os.ReadFile(filepath.Join(cfg.Out, "results.json"))
	if err != nil {
		t.Fatal(err)
	}
	var back Results
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(filepath.Join(cfg.Out, "report.md"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	md, _ := io.ReadAll(f)
	if !strings.Contains(string(md), "patchgate-full") {
		t.Fatal("report.md lacks the full-catalog configuration")
	}
}
