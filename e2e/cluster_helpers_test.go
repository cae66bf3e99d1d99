package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/http/httptrace"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/patchgate/patchgate/deploy/lab"
)

// labPatchPath is the harmless path the lab test patch blocks.
const labPatchPath = "/pg-lab/canary-block"

// labPatch is the virtual patch patch set v2 adds: it resets any request for
// labPatchPath, and nothing else.
const labPatch = `id: PG-LAB-1
sid: 9300001
title: lab rollout test patch
severity: low
category: test
protocol: http
event: http.request_headers
when: uri.path_raw == "` + labPatchPath + `"
action: reset
tests:
  - name: the blocked path
    match: true
    to_server: "GET ` + labPatchPath + ` HTTP/1.1\r\nHost: x\r\n\r\n"
  - name: another path
    match: false
    to_server: "GET /pg-lab/other HTTP/1.1\r\nHost: x\r\n\r\n"
`

// copyTree copies the .yaml files of src (recursively) into dst.
func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || filepath.Ext(p) != ".yaml" {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if err := os.MkdirAll(filepath.Join(dst, filepath.Dir(rel)), 0o755); err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), data, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// buildPatchctl builds cmd/patchctl into the test's directory (or uses
// $PATCHCTL_BIN).
func buildPatchctl(t *testing.T) string {
	t.Helper()
	if bin := os.Getenv("PATCHCTL_BIN"); bin != "" {
		return bin
	}
	bin := filepath.Join(t.TempDir(), "patchctl")
	if out, err := exec.Command("go", "build", "-o", bin, "../cmd/patchctl").CombinedOutput(); err != nil {
		t.Fatalf("building patchctl: %v\n%s", err, out)
	}
	return bin
}

// ctl runs patchctl inside a node's namespace against an API address.
type ctl struct {
	l          *lab.Lab
	bin, token string
}

// run runs patchctl in node i's namespace against node i's API.
func (c *ctl) run(i int, args ...string) (string, error) {
	return c.l.Patchctl(i, c.bin, c.token, args...)
}

// clusterStatus is the part of `patchctl status --json` the test reads
// (protojson: camelCase names, 64-bit integers as strings).
type clusterStatus struct {
	Leader string `json:"leader"`
	Nodes  []struct {
		Name           string `json:"name"`
		RaftRole       string `json:"raftRole"`
		Gossip         string `json:"gossip"`
		AppliedVersion string `json:"appliedVersion"`
	} `json:"nodes"`
}

// status asks node i for the cluster's status.
func (c *ctl) status(i int) (clusterStatus, error) {
	var st clusterStatus
	out, err := c.run(i, "status", "--json")
	if err != nil {
		return st, err
	}
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		return st, fmt.Errorf("status --json: %w: %s", err, out)
	}
	return st, nil
}

// applied returns each node's applied version by name.
func (st clusterStatus) applied() map[string]string {
	m := map[string]string{}
	for _, n := range st.Nodes {
		m[n.Name] = n.AppliedVersion
	}
	return m
}

// waitApplied polls node i's status until every node reports the version
// want[name] and node each of them answers the same when asked itself.
func (c *ctl) waitApplied(t *testing.T, want map[string]string) {
	t.Helper()
	var last string
	ok := waitFor(30*time.Second, func() bool {
		for i := range c.l.Nodes {
			st, err := c.status(i + 1)
			if err != nil {
				last = err.Error()
				return false
			}
			got := st.applied()
			last = fmt.Sprintf("asked node %d: leader %q, applied %v", i+1, st.Leader, got)
			if len(got) != len(want) {
				return false
			}
			for name, v := range want {
				if got[name] != v {
					return false
				}
			}
		}
		return true
	})
	if !ok {
		t.Fatalf("applied versions: want %v; %s", want, last)
	}
}

// session is one HTTP keep-alive client sending a request every interval.
type session struct {
	id       int
	client   *http.Client
	url      string
	mu       sync.Mutex
	conns    int // connections opened (a broken session opens another)
	requests int
	errs     []error
}

// sent is how many requests the session has sent.
func (s *session) sent() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests
}

// run sends requests until ctx ends.
func (s *session) run(ctx context.Context, interval time.Duration) {
	trace := &httptrace.ClientTrace{GotConn: func(i httptrace.GotConnInfo) {
		if !i.Reused {
			s.mu.Lock()
			s.conns++
			s.mu.Unlock()
		}
	}}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for n := 0; ; n++ {
		err := s.once(httptrace.WithClientTrace(context.Background(), trace), n)
		s.mu.Lock()
		s.requests++
		if err != nil && len(s.errs) < 5 {
			s.errs = append(s.errs, err)
		}
		s.mu.Unlock()
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

func (s *session) once(ctx context.Context, n int) error {
	req, err := http.NewRequestWithContext(ctx, "GET", fmt.Sprintf("%s/ka/%d/%d", s.url, s.id, n), nil)
	if err != nil {
		return err
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != 200 || !strings.HasPrefix(string(body), "ok ") {
		return fmt.Errorf("request %d: %s %q", n, resp.Status, body)
	}
	return nil
}

// probeResult is what one request for a path through a fixed source port
// got: an HTTP answer, a reset, or another error.
type probeResult struct {
	status int
	reset  bool
	err    error
}

func (r probeResult) String() string {
	return fmt.Sprintf("status %d, reset %v, error %v", r.status, r.reset, r.err)
}

// probePath sends one request for path from client namespace ns, source port
// port, to addr on a new connection, and closes it with a reset (no
// TIME_WAIT, so the port can be used again for the same 5-tuple and so the
// same node).
func probePath(ns string, port int, addr, path string) probeResult {
	var res probeResult
	err := lab.InNS(ns, func() error {
		d := net.Dialer{LocalAddr: &net.TCPAddr{Port: port}, Timeout: 3 * time.Second}
		c, err := d.Dial("tcp", addr)
		if err != nil {
			return err
		}
		tc := c.(*net.TCPConn)
		defer func() { _ = tc.SetLinger(0); tc.Close() }()
		if _, err := fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: lab\r\n\r\n", path); err != nil {
			return err
		}
		_ = c.SetReadDeadline(time.Now().Add(3 * time.Second))
		buf := make([]byte, 512)
		n, err := c.Read(buf)
		if n > 0 {
			fields := strings.Fields(string(buf[:n]))
			if len(fields) > 1 {
				res.status, _ = strconv.Atoi(fields[1])
			}
			return nil
		}
		return err
	})
	res.err = err
	res.reset = outcome{ClientErr: err}.reset()
	return res
}

// portsByNode finds, in a quiet lab, a client source port whose flow to
// addr crosses each node: the routers hash the 5-tuple, so the same port
// later takes the same node. A port's node is the one whose server-side
// interface sent the probe's packets (and no other node's did).
func portsByNode(t *testing.T, l *lab.Lab, ns, addr string) map[int]int {
	t.Helper()
	ports := map[int]int{}
	for port := 41000; port < 41200 && len(ports) < len(l.Nodes); port++ {
		before, err := l.NodeStats()
		if err != nil {
			t.Fatal(err)
		}
		if r := probePath(ns, port, addr, "/pg-lab/probe"); r.status != 200 {
			t.Fatalf("probe from port %d: %v", port, r)
		}
		after, err := l.NodeStats()
		if err != nil {
			t.Fatal(err)
		}
		// The probe sends at least SYN, ACK, request and RST toward the
		// server; any packet on another node makes the port ambiguous.
		crossed, moved := 0, 0
		for i := range after {
			d := after[i][1].Sub(before[i][1]).TxPackets
			if d > 0 {
				moved++
			}
			if d >= 3 {
				crossed = i + 1
			}
		}
		if moved != 1 {
			crossed = 0
		}
		if crossed > 0 {
			if _, seen := ports[crossed]; !seen {
				ports[crossed] = port
			}
		}
	}
	if len(ports) != len(l.Nodes) {
		t.Fatalf("found source ports for nodes %v only", ports)
	}
	return ports
}
