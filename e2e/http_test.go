package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/patchgate/patchgate/dataplane"
	"github.com/patchgate/patchgate/dataplane/patch"
	"github.com/patchgate/patchgate/deploy/lab"
)

// benignRequest is an ordinary request a client sends through the lab.
type benignRequest struct {
	method, path string
	header       map[string]string
	body         []byte
	chunked      bool // send the body without a length (chunked encoding)
}

func benignRequests() []benignRequest {
	big := bytes.Repeat([]byte("0123456789abcdef"), 8<<10) // 128 KiB: many segments
	return []benignRequest{
		{method: "GET", path: "/"},
		{method: "GET", path: "/search?q=virtual+patching&page=2", header: map[string]string{
			"User-Agent": "Mozilla/5.0 (X11; Linux x86_64) e2e", "Accept-Language": "en, de;q=0.8",
			"Cookie": "session=8a7d0f; theme=dark"}},
		{method: "HEAD", path: "/index.html"},
		{method: "GET", path: "/big.iso", header: map[string]string{"Range": "bytes=0-1073741823"}},
		{method: "GET", path: "/static/app.js", header: map[string]string{"Range": "bytes=0-99,200-299"}},
		{method: "POST", path: "/login", header: map[string]string{"Content-Type": "application/x-www-form-urlencoded"},
			body: []byte("user=alice&password=correct+horse+battery+staple")},
		{method: "POST", path: "/api/items", header: map[string]string{"Content-Type": "application/json"},
			body: []byte(`{"name":"widget","tags":["a","b"],"price":12.5}`)},
		{method: "PUT", path: "/upload/blob.bin", header: map[string]string{"Content-Type": "application/octet-stream"}, body: big},
		{method: "POST", path: "/stream", body: big[:40000], chunked: true},
		{method: "DELETE", path: "/api/items/42"},
		{method: "GET", path: "/cgi-bin/status", header: map[string]string{"X-Forwarded-For": "192.0.2.33"}},
		{method: "GET", path: "/docs/a%20b/../c.html"},
	}
}

// TestHTTPThroughLab runs a real net/http server behind a 3-node lab and real
// clients in front of it, in both variants and both address families.
// Benign requests (new connection each, so they spread over the nodes, and
// a keep-alive session) succeed and arrive intact. Every embedded test of
// every shipped HTTP patch is sent as raw bytes on its own connection: the
// exploits are reset, and the server's record of every byte it read proves
// the exploit request never reached it; the look-alikes arrive whole.
func TestHTTPThroughLab(t *testing.T) {
	requireE2E(t)
	prog := loadCatalog(t)
	for _, v := range variants {
		t.Run(string(v), func(t *testing.T) {
			l := startLab(t, v, "open")
			srv := startHTTPServer(t, l.Servers[0].NS)
			cli := l.Clients[0]
			hosts := []string{l.Servers[0].Addr4.String(), "[" + l.Servers[0].Addr6.String() + "]"}
			t.Run("benign", func(t *testing.T) {
				for _, host := range hosts {
					client := labClient(cli.NS, true)
					for _, r := range benignRequests() {
						if err := doBenign(client, srv, "http://"+host+r.path, r); err != nil {
							t.Errorf("%s %s%s: %v", r.method, host, r.path, err)
						}
					}
				}
			})
			t.Run("keepalive", func(t *testing.T) {
				client := labClient(cli.NS, false)
				for i := 0; i < 20; i++ {
					r := benignRequests()[i%len(benignRequests())]
					if err := doBenign(client, srv, "http://"+hosts[i%2]+r.path, r); err != nil {
						t.Errorf("request %d %s %s: %v", i, r.method, r.path, err)
					}
				}
			})
			t.Run("patch-tests", func(t *testing.T) {
				n := 0
				for _, c := range prog.Patches {
					p := c.Patch
					if p.Protocol != "http" {
						continue
					}
					for i := range p.Tests {
						tc := &p.Tests[i]
						want, err := offlineVerdict(prog, p, tc)
						if err != nil {
							t.Fatal(err)
						}
						if tc.Match && want == dataplane.Pass {
							t.Errorf("%s: exploit passes the offline engine", caseName(p, tc))
						}
						sendRaw(t, cli.NS, srv, net.JoinHostPort(strings.Trim(hosts[n%2], "[]"), "80"), p, tc, want)
						n++
					}
				}
				t.Logf("%d HTTP patch tests sent", n)
			})
		})
	}
}

// labClient is an HTTP client whose connections start in namespace ns.
func labClient(ns string, fresh bool) *http.Client {
	return &http.Client{
		Transport: &http.Transport{DialContext: lab.Dialer(ns), DisableKeepAlives: fresh, DisableCompression: true},
		Timeout:   5 * time.Second,
	}
}

// doBenign sends r and checks the answer and the server's record of it.
func doBenign(c *http.Client, srv *recordingServer, url string, r benignRequest) error {
	var body io.Reader
	if r.body != nil {
		body = bytes.NewReader(r.body)
		if r.chunked {
			body = io.MultiReader(body) // hides the length: chunked encoding
		}
	}
	req, err := http.NewRequestWithContext(context.Background(), r.method, url, body)
	if err != nil {
		return err
	}
	for k, v := range r.header {
		req.Header.Set(k, v)
	}
	before := len(srv.requests(""))
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return fmt.Errorf("response body: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %s", resp.Status)
	}
	sum := sha256.Sum256(r.body)
	if got := resp.Header.Get("X-Body-SHA256"); got != hex.EncodeToString(sum[:]) {
		return fmt.Errorf("server got a different body (sha256 %s)", got)
	}
	if len(srv.requests("")) != before+1 {
		return fmt.Errorf("server recorded %d requests, want 1", len(srv.requests(""))-before)
	}
	return nil
}

// sendRaw sends a patch test's request bytes on a fresh connection and
// checks the outcome against the offline verdict.
func sendRaw(t *testing.T, ns string, srv *recordingServer, addr string, p *patch.Patch, tc *patch.Test, want dataplane.Verdict) {
	t.Helper()
	name := fmt.Sprintf("%s (match: %v, to %s)", caseName(p, tc), tc.Match, addr)
	var req []byte
	for _, st := range tc.Steps {
		if st.Dir == dataplane.ToServer {
			req = append(req, st.Data...) // the real server writes its own responses
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), stepTimeout)
	defer cancel()
	c, err := lab.Dialer(ns)(ctx, "tcp", addr)
	if err != nil {
		t.Errorf("%s: dial: %v", name, err)
		return
	}
	defer c.Close()
	local := c.LocalAddr().String()
	_, werr := c.Write(req)
	_ = c.SetReadDeadline(time.Now().Add(stepTimeout))
	resp := make([]byte, 4096)
	n, rerr := c.Read(resp)
	o := outcome{ClientErr: rerr}
	if werr != nil {
		o.ClientErr = werr
	}
	if want == dataplane.Pass {
		if n == 0 || o.reset() {
			t.Errorf("%s: look-alike got no answer: %v", name, o.ClientErr)
		}
		// The server reads everything it answers; wait until it has it all.
		if !waitFor(stepTimeout, func() bool { d, _, _ := srv.received(local); return len(d) >= len(req) }) {
			d, _, _ := srv.received(local)
			t.Errorf("%s: server received %d of %d bytes", name, len(d), len(req))
		}
		return
	}
	if want == dataplane.Reset && !o.reset() {
		t.Errorf("%s: not reset (read %d bytes: %q, error %v)", name, n, resp[:n], o.ClientErr)
	}
	if n > 0 {
		t.Errorf("%s: the client got an answer: %q", name, resp[:n])
	}
	// The node resets the server side too: wait until the server has let
	// the connection go (or never accepted it), then read its record.
	waitFor(stepTimeout, func() bool { _, closed, ok := srv.received(local); return !ok || closed })
	data, _, _ := srv.received(local)
	if len(data) >= len(req) || (len(data) > 0 && bytes.Contains(data, req)) {
		t.Errorf("%s: the server read %d of the exploit's %d bytes", name, len(data), len(req))
	}
	if got := srv.requests(local); len(got) != 0 {
		t.Errorf("%s: the server's handler saw %d requests: %+v", name, len(got), got[0])
	}
}
