package e2e

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/patchgate/patchgate/consensus/patchset"
	"github.com/patchgate/patchgate/deploy/lab"
)

// keepAliveSessions is how many benign keep-alive sessions run through every
// rollout step, each sending a request every sessionInterval.
const (
	keepAliveSessions = 50
	sessionInterval   = 100 * time.Millisecond
	// sessionBound stops the sessions whatever happens.
	sessionBound = 75 * time.Second
)

// TestClusterRolloutThroughLab is the control plane's acceptance test: a
// 3-node L3 lab whose nodes form a cluster (raft, gossip and API on each
// node's R1-side address, bearer token, one trusted key). While 50 HTTP
// keep-alive sessions send a request every 100 ms through the lab, a signed
// patch set v2 that adds a test patch (reset requests for labPatchPath) is
// canaried on one node, promoted, and rolled back to v1. After each step
// `patchctl status` shows every node's applied version, and a request for the
// path through each node (a source port whose flow the routers hash onto
// that node) is reset exactly where v2 is applied. No session breaks.
func TestClusterRolloutThroughLab(t *testing.T) {
	requireE2E(t)
	dir := t.TempDir()
	l := upLab(t, lab.L3, "open")
	if err := l.ClusterRoutes(); err != nil {
		t.Fatal(err)
	}

	// Key, token, node files with a cluster section.
	key, err := patchset.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	keyPath := filepath.Join(dir, "ops.key")
	if err := patchset.WriteKeyPair(key, keyPath, "e2e"); err != nil {
		t.Fatal(err)
	}
	tok := make([]byte, 16)
	_, _ = rand.Read(tok)
	c := &ctl{l: l, bin: buildPatchctl(t), token: hex.EncodeToString(tok)}
	names := map[int]string{}
	for _, n := range l.Nodes {
		f, err := l.DefaultNodeFile(n.Index)
		if err != nil {
			t.Fatal(err)
		}
		if f.Cluster, err = l.DefaultClusterFile(n.Index, c.token, keyPath+".pub"); err != nil {
			t.Fatal(err)
		}
		names[n.Index] = f.Cluster.NodeID
		if _, err := l.WriteNodeConfig(n.Index, f); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range l.Nodes {
		if err := l.StartNode(n.Index); err != nil {
			t.Fatal(err)
		}
	}
	var st clusterStatus
	if !waitFor(30*time.Second, func() bool {
		st, err = c.status(1)
		return err == nil && st.Leader != "" && len(st.Nodes) == 3
	}) {
		t.Fatalf("cluster did not form: %+v, %v", st, err)
	}
	want := func(v1, v2, v3 string) map[string]string {
		return map[string]string{names[1]: v1, names[2]: v2, names[3]: v3}
	}
	step := func(name string, w map[string]string) {
		t.Helper()
		c.waitApplied(t, w)
		out, err := c.run(2, "status")
		if err != nil {
			t.Fatalf("%s: patchctl status: %v", name, err)
		}
		t.Logf("after %s, patchctl status:\n%s", name, out)
	}

	// v1: the shipped catalog, all at once (before the sessions start).
	srv := startHTTPServer(t, l.Servers[0].NS)
	addr := net.JoinHostPort(l.Servers[0].Addr4.String(), "80")
	cli := l.Clients[0].NS
	v1, err := patchset.Build(catalog, 1, key, patchset.Meta{Author: "e2e", Message: "catalog"})
	if err != nil {
		t.Fatal(err)
	}
	pushFile := func(b *patchset.Bundle, args ...string) {
		t.Helper()
		data, err := b.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		// The node namespaces share the file system: patchctl reads the file.
		path := filepath.Join(dir, fmt.Sprintf("v%d.bundle", b.Version()))
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		if out, err := c.run(3, append([]string{"patchset", "push", path}, args...)...); err != nil {
			t.Fatalf("push v%d: %v\n%s", b.Version(), err, out)
		}
	}
	pushFile(v1)
	step("push v1", want("1", "1", "1"))
	ports := portsByNode(t, l, cli, addr)
	t.Logf("source ports by node: %v", ports)

	// The sessions, spread over both clients and so over the nodes.
	ctx, stop := context.WithTimeout(context.Background(), sessionBound)
	defer stop()
	var sessions []*session
	var wg sync.WaitGroup
	for i := 0; i < keepAliveSessions; i++ {
		ns := l.Clients[i%len(l.Clients)].NS
		s := &session{id: i, url: "http://" + addr, client: &http.Client{Timeout: 5 * time.Second,
			Transport: &http.Transport{DialContext: lab.Dialer(ns), MaxIdleConnsPerHost: 1, MaxConnsPerHost: 1, DisableCompression: true}}}
		sessions = append(sessions, s)
		wg.Add(1)
		go func() {
			defer wg.Done()
			time.Sleep(time.Duration(i) * sessionInterval / keepAliveSessions) // stagger
			s.run(ctx, sessionInterval)
		}()
	}
	sessionsDone := false
	stopSessions := func() {
		if !sessionsDone {
			sessionsDone = true
			stop()
			wg.Wait()
		}
	}
	t.Cleanup(stopSessions)
	// flowing waits until every session has sent 5 more requests: traffic
	// crossed the lab in the state a step left.
	flowing := func(name string) {
		t.Helper()
		base := make([]int, len(sessions))
		for i, s := range sessions {
			base[i] = s.sent()
		}
		if !waitFor(20*time.Second, func() bool {
			for i, s := range sessions {
				if s.sent() < base[i]+5 {
					return false
				}
			}
			return true
		}) {
			t.Fatalf("%s: the sessions stopped sending", name)
		}
	}
	flowing("start")

	// blocked checks, for each node, whether the lab patch resets a request
	// through it.
	blocked := func(name string, wantBlocked map[int]bool) {
		t.Helper()
		for i := 1; i <= len(l.Nodes); i++ {
			r := probePath(cli, ports[i], addr, labPatchPath)
			if wantBlocked[i] && !r.reset {
				t.Errorf("%s: request for %s through node %d not reset: %v", name, labPatchPath, i, r)
			}
			if !wantBlocked[i] && r.status != 200 {
				t.Errorf("%s: request for %s through node %d: want 200, got %v", name, labPatchPath, i, r)
			}
		}
	}
	blocked("v1", nil)

	// v2 = catalog + the lab patch, canary on node 2.
	v2dir := filepath.Join(dir, "v2")
	copyTree(t, catalog, v2dir)
	if err := os.WriteFile(filepath.Join(v2dir, "PG-LAB-1.yaml"), []byte(labPatch), 0o644); err != nil {
		t.Fatal(err)
	}
	v2, err := patchset.Build(v2dir, 2, key, patchset.Meta{Author: "e2e", Message: "lab test patch"})
	if err != nil {
		t.Fatal(err)
	}
	pushFile(v2, "--strategy", "canary", "--canary-nodes", names[2])
	step("canary v2 on "+names[2], want("1", "2", "1"))
	blocked("canary", map[int]bool{2: true})
	flowing("canary")

	if out, err := c.run(1, "rollout", "promote"); err != nil {
		t.Fatalf("promote: %v\n%s", err, out)
	}
	step("promote v2", want("2", "2", "2"))
	blocked("promoted", map[int]bool{1: true, 2: true, 3: true})
	flowing("promoted")

	if out, err := c.run(2, "patchset", "rollback", "1"); err != nil {
		t.Fatalf("rollback: %v\n%s", err, out)
	}
	step("rollback to v1", want("1", "1", "1"))
	blocked("rolled back", nil)
	flowing("rolled back")

	stopSessions()
	total := 0
	for _, s := range sessions {
		s.mu.Lock()
		total += s.requests
		if len(s.errs) > 0 {
			t.Errorf("session %d: %d requests, errors: %v", s.id, s.requests, s.errs)
		}
		if s.conns != 1 {
			t.Errorf("session %d: %d connections, want 1 (the session broke)", s.id, s.conns)
		}
		s.mu.Unlock()
	}
	if len(srv.requests("")) < total {
		t.Errorf("server handled %d requests, sessions sent %d", len(srv.requests("")), total)
	}
	t.Logf("%d keep-alive sessions, %d requests, none broken", len(sessions), total)
}
