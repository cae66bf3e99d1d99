package main

import (
	"os"
	"strings"
	"testing"
)

func TestLabUsage(t *testing.T) {
	for _, args := range [][]string{
		{"lab"},
		{"lab", "bogus"},
		{"lab", "node", "start"},
		{"lab", "node", "start", "one"},
		{"lab", "exec", "c1"},
		{"lab", "down", "--all", "--prefix", "pg0000"},
	} {
		if code, _, stderr := runCmd(t, args...); code != 2 || stderr == "" {
			t.Errorf("%v: exit %d, stderr %q; want 2 and a usage message", args, code, stderr)
		}
	}
}

// TestLabCommands drives a lab through the command line: up, status,
// exec, down (needs root; the lab forwards with the kernel).
func TestLabCommands(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("lab commands need root (network namespaces)")
	}
	state := t.TempDir()
	code, out, stderr := runCmd(t, "lab", "up", "--nodes", "2", "--variant", "l2", "--prefix", "pgclitest", "--state", state)
	if code != 0 {
		t.Fatalf("lab up: exit %d: %s", code, stderr)
	}
	t.Cleanup(func() { runCmd(t, "lab", "down", "--prefix", "pgclitest", "--state", state) })
	if !strings.Contains(out, "pgclitest-n2") || !strings.Contains(out, "203.0.113.201") {
		t.Errorf("lab up output:\n%s", out)
	}
	if code, out, stderr = runCmd(t, "lab", "status", "--prefix", "pgclitest", "--state", state); code != 0 || !strings.Contains(out, "node 2: patchgate not running") {
		t.Errorf("lab status: exit %d: %s%s", code, out, stderr)
	}
	if code, out, stderr = runCmd(t, "lab", "exec", "--prefix", "pgclitest", "--state", state, "r1", "--", "ip", "-o", "link", "show", "n2"); code != 0 || !strings.Contains(out, "02:70:67:01:02:00") {
		t.Errorf("lab exec: exit %d: %s%s", code, out, stderr)
	}
	if code, _, stderr = runCmd(t, "lab", "exec", "--prefix", "pgclitest", "--state", state, "r1", "--", "false"); code != 1 || !strings.Contains(stderr, "exit status 1") {
		t.Errorf("lab exec false: exit %d: %s", code, stderr)
	}
	if code, out, stderr = runCmd(t, "lab", "down", "--prefix", "pgclitest", "--state", state); code != 0 || !strings.Contains(out, "removed lab pgclitest") {
		t.Errorf("lab down: exit %d: %s%s", code, out, stderr)
	}
	if code, out, _ = runCmd(t, "lab", "status", "--prefix", "pgclitest", "--state", state); code != 0 || !strings.Contains(out, "0 namespaces") {
		t.Errorf("lab status after down: %s", out)
	}
}
