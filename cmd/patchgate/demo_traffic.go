package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/patchgate/patchgate/dataplane"
	"github.com/patchgate/patchgate/deploy/lab"
)

// benignRequest is an ordinary request of the benign traffic.
type benignRequest struct {
	method, path string
	header       map[string]string
	body         []byte
	chunked      bool
}

func benignRequests() []benignRequest {
	blob := bytes.Repeat([]byte("patchgate-demo-0123456789abcdef\n"), 1024) // 32 KiB
	return []benignRequest{
		{method: "GET", path: "/"},
		{method: "GET", path: "/search?q=virtual+patching&page=2", header: map[string]string{
			"User-Agent": "Mozilla/5.0 (X11; Linux x86_64) demo", "Cookie": "session=8a7d0f; theme=dark"}},
		{method: "HEAD", path: "/index.html"},
		{method: "GET", path: "/big.iso", header: map[string]string{"Range": "bytes=0-1073741823"}},
		{method: "GET", path: "/app.js", header: map[string]string{"Range": "bytes=0-99,200-299"}},
		{method: "POST", path: "/login", header: map[string]string{"Content-Type": "application/x-www-form-urlencoded"},
			body: []byte("user=alice&password=correct+horse+battery+staple")},
		{method: "POST", path: "/api/items", header: map[string]string{"Content-Type": "application/json"},
			body: []byte(`{"name":"widget","tags":["a","b"],"price":12.5}`)},
		{method: "PUT", path: "/upload/blob.bin", header: map[string]string{"Content-Type": "application/octet-stream"}, body: blob},
		{method: "POST", path: "/stream", body: blob[:9000], chunked: true},
		{method: "DELETE", path: "/api/items/42"},
		{method: "GET", path: "/docs/a%20b/../c.html", header: map[string]string{"X-Forwarded-For": "192.0.2.33"}},
	}
}

// sessionResult is one benign keep-alive session.
type sessionResult struct {
	// Local is the client address of the session's connection.
	Local      string
	Start, End time.Time
	// OK counts the requests that succeeded; Err is the first failure (the
	// session stops there).
	OK  int
	Err error
}

// benign runs keep-alive sessions, parallel at a time: n sessions, or, when
// n is 0, new sessions until ctx ends (requests already started finish).
// Each session sends requests requests on one connection, pause apart.
func (e *demoEnv) benign(ctx context.Context, n, requests, parallel int, pause time.Duration) []sessionResult {
	var (
		next atomic.Int64
		mu   sync.Mutex
		out  []sessionResult
		wg   sync.WaitGroup
	)
	for range parallel {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if n > 0 && i >= n {
					return
				}
				r := e.session(i, requests, pause)
				mu.Lock()
				out = append(out, r)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return out
}

// session runs benign session i.
func (e *demoEnv) session(i, requests int, pause time.Duration) sessionResult {
	// The session's client port is chosen here, so that the session is
	// found at its node even when its connection never opens.
	local := net.TCPAddrFromAddrPort(netip.AddrPortFrom(e.cli.Addr4, e.clientPort()))
	if i%2 == 1 {
		local.IP = e.cli.Addr6.AsSlice()
	}
	r := sessionResult{Start: time.Now(), Local: local.String()}
	tr := &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			var c net.Conn
			err := lab.InNS(e.cli.NS, func() error {
				d := net.Dialer{LocalAddr: local}
				var err error
				c, err = d.DialContext(ctx, network, addr)
				return err
			})
			return c, err
		},
		MaxConnsPerHost: 1, DisableCompression: true,
	}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: demoRequestTimeout}
	host := net.JoinHostPort(e.host(i), "80")
	reqs := benignRequests()
	for j := range requests {
		if j > 0 && pause > 0 {
			time.Sleep(pause)
		}
		if err := doBenign(client, "http://"+host, reqs[(i+j)%len(reqs)]); err != nil {
			r.Err = fmt.Errorf("request %d: %w", j+1, err)
			break
		}
		r.OK++
	}
	r.End = time.Now()
	if r.Err == nil {
		// The server's own record: its handler saw every request.
		if _, _, seen, _ := e.web[80].record(r.Local); seen != r.OK {
			r.Err = fmt.Errorf("server handler saw %d of %d requests", seen, r.OK)
		}
	}
	return r
}

// doBenign sends r and checks the answer: 200 and the body the server got.
func doBenign(c *http.Client, base string, r benignRequest) error {
	var body io.Reader
	if r.body != nil {
		body = bytes.NewReader(r.body)
		if r.chunked {
			body = io.MultiReader(body) // hides the length: chunked encoding
		}
	}
	req, err := http.NewRequest(r.method, base+r.path, body)
	if err != nil {
		return err
	}
	for k, v := range r.header {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return fmt.Errorf("%s %s: response body: %w", r.method, r.path, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s %s: status %s", r.method, r.path, resp.Status)
	}
	sum := sha256.Sum256(r.body)
	if got := resp.Header.Get("X-Body-SHA256"); got != hex.EncodeToString(sum[:]) {
		return fmt.Errorf("%s %s: the server got a different body", r.method, r.path)
	}
	return nil
}

// caseResult is what crossed the lab in one patch-test conversation.
type caseResult struct {
	Case  *demoCase
	Addr  string // server address
	Local string // client address
	// ToServer and ToClient are the bytes each side received; WantServer
	// and WantClient what the test sends each way.
	ToServer, ToClient, WantServer, WantClient int
	// Reset is true when the client saw its connection reset; Err is the
	// client's first error.
	Reset bool
	Err   error
	// Delivered is true when the test's traffic crossed the lab in full
	// (for an exploit: it reached its target).
	Delivered bool
	// Good is true when the outcome is the one required: an exploit
	// blocked (reset when its patch resets), a look-alike delivered.
	Good bool
}

func (r *caseResult) describe() string {
	kind := "look-alike"
	if r.Case.exploit() {
		kind = "exploit"
	}
	return fmt.Sprintf("%s line %d (%s %q to %s from %s): server got %d/%d bytes, client %d/%d, reset %v, error %v",
		r.Case.Patch.ID, r.Case.Test.Line, kind, r.Case.Test.Name, r.Addr, r.Local,
		r.ToServer, r.WantServer, r.ToClient, r.WantClient, r.Reset, r.Err)
}

// conversations plays the cases, parallel at a time, in case order.
func (e *demoEnv) conversations(ctx context.Context, cases []*demoCase, parallel int) []caseResult {
	out := make([]caseResult, len(cases))
	var next atomic.Int64
	var wg sync.WaitGroup
	for range parallel {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= len(cases) {
					return
				}
				c := cases[i]
				addr := net.JoinHostPort(e.host(i), strconv.Itoa(int(c.Port)))
				switch {
				case c.Test.Transport == "udp":
					out[i] = e.runUDP(c, addr)
				case c.Patch.Protocol == "http":
					out[i] = e.runHTTP(c, addr)
				default:
					out[i] = e.runTCP(c, addr)
				}
			}
		}()
	}
	wg.Wait()
	if ctx.Err() != nil {
		var done []caseResult
		for _, r := range out {
			if r.Case != nil {
				done = append(done, r)
			}
		}
		return done
	}
	return out
}

// dialCase opens the client side of a conversation.
func (e *demoEnv) dialCase(network, addr string) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), demoStepTimeout)
	defer cancel()
	return lab.Dialer(e.cli.NS)(ctx, network, addr)
}

// markSent remembers an exploit's client address (for the server's record).
func (e *demoEnv) markSent(c *demoCase, local string) {
	if c.exploit() {
		e.mu.Lock()
		e.sent[local] = true
		e.mu.Unlock()
	}
}

// exploitRequestsSeen counts the requests of exploit connections that the
// HTTP servers' handlers saw.
func (e *demoEnv) exploitRequestsSeen() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := 0
	for local := range e.sent {
		for _, s := range e.web {
			_, _, seen, _ := s.record(local)
			n += seen
		}
	}
	return n
}

// runHTTP sends an HTTP test's request bytes exactly as written (a client
// library would rewrite them) to the recording net/http server.
func (e *demoEnv) runHTTP(c *demoCase, addr string) caseResult {
	var req []byte
	for _, st := range c.Test.Steps {
		if st.Dir == dataplane.ToServer {
			req = append(req, st.Data...) // the real server writes its own answers
		}
	}
	r := caseResult{Case: c, Addr: addr, WantServer: len(req)}
	conn, err := e.dialCase("tcp", addr)
	if err != nil {
		r.Err = err
		return r
	}
	defer conn.Close()
	r.Local = conn.LocalAddr().String()
	e.markSent(c, r.Local)
	_, werr := conn.Write(req)
	_ = conn.SetReadDeadline(time.Now().Add(demoStepTimeout))
	buf := make([]byte, 4096)
	n, rerr := conn.Read(buf)
	r.ToClient, r.Err = n, rerr
	if werr != nil {
		r.Err = werr
	}
	r.Reset = isReset(r.Err)
	srv := e.web[c.Port]
	if !c.exploit() {
		waitUntil(demoStepTimeout, func() bool { got, _, _, _ := srv.record(r.Local); return got >= len(req) })
		r.ToServer, _, _, _ = srv.record(r.Local)
		r.Delivered = n > 0 && r.ToServer >= len(req)
		r.Good = r.Delivered && !r.Reset
		return r
	}
	// The node resets the server's side too: wait until the server let the
	// connection go (or never accepted it), then read its record.
	waitUntil(demoStepTimeout, func() bool { _, closed, _, ok := srv.record(r.Local); return !ok || closed })
	got, _, seen, _ := srv.record(r.Local)
	r.ToServer = got
	r.Delivered = got >= len(req) || seen > 0 || srv.contains(r.Local, req)
	r.Good = !r.Delivered && n == 0 && (c.Want != dataplane.Reset || r.Reset)
	return r
}

// runTCP plays a test's conversation over TCP; the script listener plays
// the server's part and counts what it receives.
func (e *demoEnv) runTCP(c *demoCase, addr string) caseResult {
	r := caseResult{Case: c, Addr: addr}
	r.WantServer, r.WantClient = lab.StepBytes(c.Test.Steps)
	conn, err := e.dialCase("tcp", addr)
	if err != nil {
		r.Err = err
		return r
	}
	defer conn.Close()
	r.Local = conn.LocalAddr().String()
	e.markSent(c, r.Local)
	served := make(chan int, 1)
	go func() {
		sc := e.tcp[c.Port].take(r.Local, demoStepTimeout)
		if sc == nil {
			served <- 0
			return
		}
		served <- lab.ServeSteps(sc, c.Test.Steps, demoStepTimeout)
	}()
	r.Err = lab.PlaySteps(conn, c.Test.Steps, demoStepTimeout, &r.ToClient)
	r.ToServer = <-served
	r.Reset = isReset(r.Err)
	r.Delivered = r.ToServer >= r.WantServer && r.ToClient >= r.WantClient
	completed := r.Delivered && r.Err == nil
	if c.exploit() {
		r.Good = !r.Delivered && (c.Want != dataplane.Reset || r.Reset)
	} else {
		r.Good = completed
	}
	return r
}

// runUDP plays a UDP test, one datagram per step. A datagram a node drops
// never arrives, and the conversation stops there.
func (e *demoEnv) runUDP(c *demoCase, addr string) caseResult {
	r := caseResult{Case: c, Addr: addr}
	r.WantServer, r.WantClient = lab.StepBytes(c.Test.Steps)
	conn, err := e.dialCase("udp", addr)
	if err != nil {
		r.Err = err
		return r
	}
	defer conn.Close()
	r.Local = conn.LocalAddr().String()
	e.markSent(c, r.Local)
	d := e.udp[c.Port]
	inbox := d.slot(r.Local)
	var peer net.Addr
	buf := make([]byte, 65536)
	r.Err = func() error {
		for _, st := range c.Test.Steps {
			if st.Dir == dataplane.ToServer {
				if _, err := conn.Write(st.Data); err != nil {
					return err
				}
				select {
				case dg := <-inbox:
					r.ToServer += dg.n
					peer = dg.from
				case <-time.After(demoStepTimeout):
					return os.ErrDeadlineExceeded // the datagram did not arrive
				}
				continue
			}
			if peer == nil {
				return errors.New("the test starts with a datagram to the client")
			}
			if _, err := d.pc.WriteTo(st.Data, peer); err != nil {
				return err
			}
			_ = conn.SetReadDeadline(time.Now().Add(demoStepTimeout))
			n, err := conn.Read(buf)
			if err != nil {
				return err
			}
			r.ToClient += n
		}
		return nil
	}()
	r.Delivered = r.ToServer >= r.WantServer && r.ToClient >= r.WantClient
	if c.exploit() {
		r.Good = !r.Delivered
	} else {
		r.Good = r.Delivered && r.Err == nil
	}
	return r
}

// isReset reports whether err says the connection was reset (a reset before
// the half-close makes shutdown fail with ENOTCONN).
func isReset(err error) bool {
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ENOTCONN)
}

// waitUntil polls cond every 20 ms until it holds or timeout passes.
func waitUntil(timeout time.Duration, cond func() bool) bool {
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
