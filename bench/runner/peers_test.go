package runner

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRunCoraza runs a stand-in for bench/coraza's command (it gets
// -patches DIR -o FILE and writes the report) and checks that the report is
// read, and that a failing command or an empty report is an error naming
// the command.
func TestRunCoraza(t *testing.T) {
	data, err := os.ReadFile("testdata/peers.json")
	if err != nil {
		t.Fatal(err)
	}
	var fixture struct {
		Coraza json.RawMessage `json:"coraza"`
	}
	if err := json.Unmarshal(data, &fixture); err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(t.TempDir(), "coraza.json")
	if err := os.WriteFile(src, fixture.Coraza, 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.Patches = "/abs/patches"
	// $1 -patches, $2 DIR, $3 -o, $4 FILE.
	cfg.CorazaCmd = []string{"sh", "-c", `test "$1" = -patches && test "$2" = /abs/patches/http && cp "` + src + `" "$4"`, "sh"}
	rep, cmdline, err := runCoraza(context.Background(), cfg, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(cmdline, "-patches /abs/patches/http -o ") {
		t.Errorf("command line %q", cmdline)
	}
	if rep.Speed(inspCoraza, "mix") == nil || len(rep.Disagreements) != 2 {
		t.Errorf("report: %d speeds, %d disagreements", len(rep.Speeds), len(rep.Disagreements))
	}
	if ex, bl, la, pa := rep.Blocking(inspPatchgateHTTP); ex != 3 || bl != 3 || la != 1 || pa != 1 {
		t.Errorf("patchgate-http blocking %d/%d, look-alikes %d/%d", bl, ex, pa, la)
	}

	cfg.CorazaCmd = []string{"sh", "-c", "echo no go here >&2; exit 3", "sh"}
	if _, _, err := runCoraza(context.Background(), cfg, t.TempDir()); err == nil || !strings.Contains(err.Error(), "no go here") {
		t.Errorf("failing command: %v", err)
	}
	cfg.CorazaCmd = []string{"sh", "-c", `echo '{}' > "$4"`, "sh"}
	if _, _, err := runCoraza(context.Background(), cfg, t.TempDir()); err == nil {
		t.Error("empty report: no error")
	}
}

// TestRunPeersSkipped checks that peers turned off are reported as not run,
// with the reason, in results and report.
func TestRunPeersSkipped(t *testing.T) {
	cfg := DefaultConfig()
	cfg.WAF, cfg.CorazaCmd = false, nil
	res := &Results{}
	runPeers(context.Background(), cfg, t.TempDir(), &strings.Builder{}, res)
	if res.Peers == nil || res.Peers.WAF != nil || res.Peers.Coraza != nil {
		t.Fatalf("peers: %+v", res.Peers)
	}
	var b strings.Builder
	if err := WriteReport(&b, res, nil); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"not run: skipped (--coraza is empty)", "not run: skipped (--waf=false)", "latency per packet and per request comes from bench/waf: skipped"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("report lacks %q", want)
		}
	}
}
