package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/patchgate/patchgate/consensus"
	"github.com/patchgate/patchgate/consensus/patchset"
	"github.com/patchgate/patchgate/dataplane/engine"
	"github.com/patchgate/patchgate/node"
)

const token = "patchctl-test-token-0123456789"

const patchYAML = `id: X-1
sid: 9100001
title: long uri
severity: high
category: dos
protocol: http
event: http.request_headers
when: len(uri.raw) > LIMIT
action: drop
tests:
  - name: long uri
    match: true
    to_server: "GET /aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa HTTP/1.1\r\nHost: x\r\n\r\n"
  - name: short uri
    match: false
    to_server: "GET / HTTP/1.1\r\nHost: x\r\n\r\n"
`

func ctl(t *testing.T, server string, args ...string) (string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	full := append([]string{}, args...)
	if server != "" {
		full = append(full, "--server", server, "--token", token, "--timeout", "20s")
	}
	code := run(full, &out, &errb)
	return out.String() + errb.String(), code
}

func mustCtl(t *testing.T, server string, args ...string) string {
	t.Helper()
	out, code := ctl(t, server, args...)
	if code != 0 {
		t.Fatalf("patchctl %v: exit %d: %s", args, code, out)
	}
	return out
}

// startNode runs a one-node cluster trusting pub and returns its API address
// and engine.
func startNode(t *testing.T, pub string) (string, *engine.Engine) {
	keys, err := patchset.LoadKeySet(pub)
	if err != nil {
		t.Fatal(err)
	}
	cfg := node.DefaultClusterConfig()
	tun := consensus.FastConfig()
	cfg.Tuning = &tun
	cfg.NodeID, cfg.ClusterName = "solo", fmt.Sprintf("patchctl-%d", os.Getpid())
	cfg.DataDir = t.TempDir()
	cfg.RaftAddr, cfg.GossipAddr = "127.0.0.1:0", "127.0.0.1:0"
	cfg.BootstrapExpect, cfg.Voters = 1, 1
	cfg.Keys = keys
	cfg.API.Listen, cfg.API.Token = "127.0.0.1:0", token
	eng, err := engine.New(engine.DefaultConfig(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	ag, err := node.StartAgent(cfg, "solo", eng, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ag.Stop(false) })
	deadline := time.Now().Add(15 * time.Second)
	for !ag.Cluster().IsLeader() || len(ag.Cluster().FSM().State().Nodes) != 1 {
		if time.Now().After(deadline) {
			t.Fatal("no leader")
		}
		time.Sleep(10 * time.Millisecond)
	}
	return ag.APIAddr(), eng
}

func waitVersion(t *testing.T, eng *engine.Engine, v uint64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for eng.Program().Version != v {
		if time.Now().After(deadline) {
			t.Fatalf("engine runs %d, want %d", eng.Program().Version, v)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestPatchctlEndToEnd(t *testing.T) {
	dir := t.TempDir()
	key := filepath.Join(dir, "ops.key")
	mustCtl(t, "", "keygen", "--out", key, "--comment", "test")
	srv, eng := startNode(t, key+".pub")

	for v, limit := range map[int]int{1: 40, 2: 30} {
		pd := filepath.Join(dir, fmt.Sprintf("p%d", v))
		os.MkdirAll(pd, 0o755)
		os.WriteFile(filepath.Join(pd, "X-1.yaml"), []byte(strings.Replace(patchYAML, "LIMIT", fmt.Sprint(limit), 1)), 0o644)
		out := mustCtl(t, "", "patchset", "build", pd, "--key", key, "--version", fmt.Sprint(v), "--message", "m", "-o", filepath.Join(dir, fmt.Sprintf("v%d.bundle", v)))
		if !strings.Contains(out, "signed by") {
			t.Fatalf("build: %s", out)
		}
	}
	mustCtl(t, srv, "patchset", "push", filepath.Join(dir, "v1.bundle"))
	waitVersion(t, eng, 1)
	mustCtl(t, srv, "patchset", "push", filepath.Join(dir, "v2.bundle"), "--strategy", "canary", "--canary-nodes", "solo")
	waitVersion(t, eng, 2)
	out := mustCtl(t, srv, "rollout", "status", "--watch", "--interval", "20ms")
	if !strings.Contains(out, "converged") || !strings.Contains(out, "stage canary") {
		t.Fatalf("rollout status --watch: %s", out)
	}
	mustCtl(t, srv, "rollout", "promote")
	mustCtl(t, srv, "patchset", "rollback", "1")
	waitVersion(t, eng, 1)

	out = mustCtl(t, srv, "status", "--json")
	var st struct {
		Leader string `json:"leader"`
		Nodes  []struct {
			Name     string `json:"name"`
			RaftRole string `json:"raftRole"`
		} `json:"nodes"`
	}
	if err := json.Unmarshal([]byte(out), &st); err != nil || st.Leader != "solo" || len(st.Nodes) != 1 || st.Nodes[0].RaftRole != "leader" {
		t.Fatalf("status --json: %v %s", err, out)
	}
	if out = mustCtl(t, srv, "status"); !strings.Contains(out, "PACKETS/S") || !strings.Contains(out, "solo") {
		t.Fatalf("status: %s", out)
	}
	if out = mustCtl(t, srv, "patchset", "list"); !strings.Contains(out, "VERSION") || strings.Count(out, "\n") != 3 {
		t.Fatalf("list: %s", out)
	}
	if out = mustCtl(t, srv, "patchset", "diff", "1", "2"); !strings.Contains(out, "~ X-1") {
		t.Fatalf("diff: %s", out)
	}
	if out = mustCtl(t, srv, "patchset", "show", "2"); !strings.Contains(out, "X-1.yaml") {
		t.Fatalf("show: %s", out)
	}
	out = mustCtl(t, srv, "patchset", "history", "--json")
	var h struct {
		Entries []struct{ Version string } `json:"entries"`
		Rollout struct{ Rollback bool }    `json:"rollout"`
	}
	if err := json.Unmarshal([]byte(out), &h); err != nil || len(h.Entries) != 2 || !h.Rollout.Rollback {
		t.Fatalf("history --json: %v %s", err, out)
	}
	// A member without a data plane reports no drain phase: don't wait.
	mustCtl(t, srv, "node", "drain", "solo", "--reason", "test", "--wait=false")
	mustCtl(t, srv, "node", "undrain", "solo", "--wait=false")
	mustCtl(t, srv, "flows", "top")

	// No token: refused, and the message says why.
	var o, e bytes.Buffer
	if code := run([]string{"status", "--server", srv}, &o, &e); code != 1 || !strings.Contains(e.String(), "unauthenticated") {
		t.Fatalf("status without token: exit %d: %s", code, e.String())
	}
	// A bundle signed by another key is refused.
	other := filepath.Join(dir, "other.key")
	mustCtl(t, "", "keygen", "--out", other)
	mustCtl(t, "", "patchset", "build", filepath.Join(dir, "p2"), "--key", other, "--version", "3", "-o", filepath.Join(dir, "v3.bundle"))
	if out, code := ctl(t, srv, "patchset", "push", filepath.Join(dir, "v3.bundle")); code != 1 || !strings.Contains(out, "permissiondenied") {
		t.Fatalf("foreign bundle: exit %d: %s", code, out)
	}
}

func TestCompletionAndUsage(t *testing.T) {
	out := mustCtl(t, "", "completion", "bash")
	for _, w := range []string{"complete -o default -F _patchctl patchctl", "patchset", "rollout", "--watch"} {
		if !strings.Contains(out, w) {
			t.Errorf("completion lacks %q", w)
		}
	}
	if _, code := ctl(t, "", "nonsense"); code != 2 {
		t.Errorf("unknown command: exit %d", code)
	}
}
