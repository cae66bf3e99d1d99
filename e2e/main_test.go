package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/patchgate/patchgate/dataplane/patch"
	"github.com/patchgate/patchgate/deploy/lab"
)

// catalog is the shipped patch directory, relative to this package.
const catalog = "../patches"

var (
	// patchgateBin is the patchgate executable the nodes run.
	patchgateBin string
	// skipReason is why the suite cannot run here ("" when it can).
	skipReason string
)

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	skipReason = prerequisites()
	tmp := ""
	if skipReason == "" {
		patchgateBin = os.Getenv("PATCHGATE_BIN")
		if patchgateBin == "" {
			var err error
			if tmp, err = os.MkdirTemp("", "patchgate-e2e-"); err != nil {
				fmt.Fprintln(os.Stderr, "e2e:", err)
				return 1
			}
			patchgateBin = filepath.Join(tmp, "patchgate")
			out, err := exec.Command("go", "build", "-o", patchgateBin, "../cmd/patchgate").CombinedOutput()
			if err != nil {
				fmt.Fprintf(os.Stderr, "e2e: building patchgate: %v\n%s", err, out)
				os.RemoveAll(tmp)
				return 1
			}
		}
		out, _ := exec.Command(patchgateBin, "node", "--help").CombinedOutput()
		if strings.Contains(string(out), "unknown command") {
			skipReason = "the patchgate binary has no node command"
		}
	}
	code := m.Run()
	if tmp != "" {
		os.RemoveAll(tmp)
	}
	return code
}

// prerequisites returns why the suite cannot run on this machine.
func prerequisites() string {
	if os.Geteuid() != 0 {
		return "end-to-end tests need root (network namespaces, iptables, AF_PACKET); run as root, as CI does"
	}
	for _, bin := range []string{"ip", "iptables-legacy", "ip6tables-legacy", "tcpreplay", "tcpprep"} {
		if _, err := exec.LookPath(bin); err != nil {
			return fmt.Sprintf("%s is missing (Debian packages iproute2, iptables, tcpreplay; `make deps` installs them)", bin)
		}
	}
	return ""
}

// requireE2E skips without root; a missing tool fails in CI, where the
// suite must run, and skips elsewhere.
func requireE2E(t *testing.T) {
	t.Helper()
	switch {
	case skipReason == "":
	case os.Geteuid() != 0 || os.Getenv("CI") == "":
		t.Skip(skipReason)
	default:
		t.Fatal(skipReason)
	}
}

// variants are the two lab layouts every test runs on.
var variants = []lab.Variant{lab.L3, lab.L2}

// startLab builds a 3-node lab of the variant, starts patchgate on every
// node with the fail policy, and tears everything down when the test ends.
func startLab(t *testing.T, v lab.Variant, fail string) *lab.Lab {
	t.Helper()
	l := upLab(t, v, fail)
	for _, n := range l.Nodes {
		if err := l.StartNode(n.Index); err != nil {
			t.Fatal(err)
		}
	}
	return l
}

// upLab builds a 3-node lab of the variant with the shipped catalog and the
// fail policy, without starting the nodes (tests that write their own node
// files start them), and tears it down when the test ends. Node logs and
// metrics are printed when the test fails.
func upLab(t *testing.T, v lab.Variant, fail string) *lab.Lab {
	t.Helper()
	return upLabWith(t, v, fail, nil)
}

// upLabWith is upLab with a hook that adjusts the lab's configuration (more
// clients or servers) before it is built.
func upLabWith(t *testing.T, v lab.Variant, fail string, adjust func(*lab.Config)) *lab.Lab {
	t.Helper()
	patches, err := filepath.Abs(catalog)
	if err != nil {
		t.Fatal(err)
	}
	cfg := lab.DefaultConfig()
	cfg.Variant, cfg.Nodes, cfg.Fail = v, 3, fail
	cfg.Patches, cfg.Binary = patches, patchgateBin
	cfg.StateRoot = t.TempDir()
	cfg.MTU = 1600 // generated captures carry full-MSS segments plus TCP options
	if adjust != nil {
		adjust(&cfg)
	}
	l, err := lab.Up(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			for _, n := range l.Nodes {
				if data, err := os.ReadFile(l.NodeLogPath(n.Index)); err == nil {
					t.Logf("node %d log:\n%s", n.Index, tail(data, 4096))
				}
				if code, body, err := l.NodeGet(n.Index, "/metrics"); err == nil && code == 200 {
					t.Logf("node %d metrics:\n%s", n.Index, interestingMetrics(body))
				}
			}
		}
		if err := l.Down(); err != nil {
			t.Errorf("lab down: %v", err)
		}
	})
	return l
}

// interestingMetrics keeps the non-zero verdict, drop and alert counters.
func interestingMetrics(body []byte) string {
	var out []string
	for _, line := range strings.Split(string(body), "\n") {
		if strings.HasPrefix(line, "#") || strings.HasSuffix(line, " 0") {
			continue
		}
		for _, m := range []string{"verdicts", "drops", "alerts", "bypass", "errors", "packets_total"} {
			if strings.Contains(line, m) {
				out = append(out, line)
				break
			}
		}
	}
	return strings.Join(out, "\n")
}

func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

// loadCatalog loads and compiles the shipped patches.
func loadCatalog(t *testing.T) *patch.Program {
	t.Helper()
	ps, err := patch.LoadDir(catalog)
	if err != nil {
		t.Fatal(err)
	}
	prog, err := patch.Compile(1, ps)
	if err != nil {
		t.Fatal(err)
	}
	return prog
}

// waitFor polls cond every 20 ms until it holds or timeout passes.
func waitFor(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
}
