package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/patchgate/patchgate/deploy/lab"
)

// stallLimit is the longest gap between two answers of a keep-alive
// session that still counts as unbroken.
const stallLimit = 2 * time.Second

// kaSession is an HTTP keep-alive session for the failover tests: one TCP
// (or TLS) connection, opened once, sending a request every interval and
// reading the answer. It deliberately does not use net/http's transport,
// which replaces a connection it considers unusable without telling (and
// on a loaded machine sometimes dials a spare one): here any reset, EOF,
// timeout or bad answer is an error on the session's only connection, and
// the session stops there. It records the errors and the longest gap
// between two answers. Safe for concurrent use.
type kaSession struct {
	id   int
	url  string // for logs: http://host or https://host
	host string // Host header
	dial func(ctx context.Context) (net.Conn, error)

	mu    sync.Mutex
	local netip.AddrPort // the connection's client address
	// mark, when set, holds the time (UnixNano) of the last withdrawal: a
	// gap spanning it counts from the withdrawal (detection time is the
	// router's, not the gateway's).
	mark    *atomic.Int64
	rawGap  time.Duration // longest gap, withdrawals or not
	answers int
	errs    []error
	last    time.Time
	maxGap  time.Duration
}

// sessionTimeout bounds one request and its answer.
const sessionTimeout = 10 * time.Second

// newKASession returns session id from client namespace ns to url
// (http://host or http://[v6]).
func newKASession(id int, ns, url string) *kaSession {
	host := strings.TrimPrefix(url, "http://")
	return &kaSession{id: id, url: url, host: host, dial: func(ctx context.Context) (net.Conn, error) {
		return lab.Dialer(ns)(ctx, "tcp", withPort(host, "80"))
	}}
}

// withPort appends port to host (an IPv4 address or a bracketed IPv6 one).
func withPort(host, port string) string {
	return net.JoinHostPort(strings.Trim(host, "[]"), port)
}

// run connects, then sends requests every interval until ctx ends or the
// connection fails.
func (s *kaSession) run(ctx context.Context, interval time.Duration) {
	dctx, cancel := context.WithTimeout(ctx, sessionTimeout)
	c, err := s.dial(dctx)
	cancel()
	if err != nil {
		s.fail(fmt.Errorf("connect: %w", err))
		return
	}
	defer c.Close()
	if a, ok := c.LocalAddr().(*net.TCPAddr); ok {
		s.mu.Lock()
		s.local = a.AddrPort()
		s.mu.Unlock()
	}
	r := bufio.NewReader(c)
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for n := 0; ; n++ {
		if err := s.once(c, r, n); err != nil {
			if ctx.Err() == nil {
				s.fail(err)
			}
			return
		}
		now := time.Now()
		s.mu.Lock()
		if !s.last.IsZero() {
			s.maxGap = max(s.maxGap, gapSince(s.last, now, s.mark))
			s.rawGap = max(s.rawGap, now.Sub(s.last))
		}
		s.last = now
		s.answers++
		s.mu.Unlock()
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// fail records err (the session is broken).
func (s *kaSession) fail(err error) {
	s.mu.Lock()
	s.errs = append(s.errs, fmt.Errorf("%w (at %s)", err, time.Now().Format("15:04:05.000")))
	s.mu.Unlock()
}

// once sends request n on c and reads its answer.
func (s *kaSession) once(c net.Conn, r *bufio.Reader, n int) error {
	_ = c.SetDeadline(time.Now().Add(sessionTimeout))
	if _, err := fmt.Fprintf(c, "GET /fo/%d/%d HTTP/1.1\r\nHost: %s\r\nUser-Agent: patchgate-e2e\r\n\r\n", s.id, n, s.host); err != nil {
		return fmt.Errorf("request %d: %w", n, err)
	}
	resp, err := http.ReadResponse(r, nil)
	if err != nil {
		return fmt.Errorf("request %d: %w", n, err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return fmt.Errorf("request %d: body: %w", n, err)
	}
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(string(body), "ok ") || resp.Close {
		return fmt.Errorf("request %d: %s %q (close %v)", n, resp.Status, body, resp.Close)
	}
	return nil
}

// gapSince is the gap between two answers at prev and now, counted from
// the last withdrawal (mark) when it falls between them.
func gapSince(prev, now time.Time, mark *atomic.Int64) time.Duration {
	if mark != nil {
		if m := time.Unix(0, mark.Load()); m.After(prev) && !m.After(now) {
			return now.Sub(m)
		}
	}
	return now.Sub(prev)
}

// broken says why the session counts as broken ("" if it does not); at is
// when the traffic stopped (zero: not checked for a final stall).
func (s *kaSession) broken(at ...time.Time) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	final := time.Duration(0)
	if len(at) > 0 && !s.last.IsZero() {
		final = gapSince(s.last, at[0], s.mark)
	}
	switch {
	case len(s.errs) > 0:
		return fmt.Sprintf("errors %v", s.errs)
	case s.maxGap > stallLimit:
		return fmt.Sprintf("stalled %v", s.maxGap.Round(time.Millisecond))
	case final > stallLimit+sessionInterval:
		return fmt.Sprintf("stalled at the end for %v", final.Round(time.Millisecond))
	case s.answers == 0:
		return "no answer"
	}
	return ""
}

// answered is how many answers the session got.
func (s *kaSession) answered() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.answers
}

// localAddr is the session's client address (invalid before it connected).
func (s *kaSession) localAddr() netip.AddrPort {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.local
}

// rawConn is a raw HTTP/1.1 keep-alive connection from a fixed source port
// (so a known node carries it).
type rawConn struct {
	net.Conn
	r    *bufio.Reader
	host string
}

// dialFrom connects from namespace ns, source port port, to host:80.
func dialFrom(ns string, port int, host string) (*rawConn, error) {
	var c net.Conn
	err := lab.InNS(ns, func() error {
		d := net.Dialer{LocalAddr: &net.TCPAddr{Port: port}, Timeout: 3 * time.Second}
		var err error
		c, err = d.Dial("tcp", net.JoinHostPort(host, "80"))
		return err
	})
	if err != nil {
		return nil, err
	}
	return &rawConn{Conn: c, r: bufio.NewReader(c), host: host}, nil
}

// get sends one GET with the extra header lines and reads the answer.
func (k *rawConn) get(path string, header ...string) error {
	_ = k.SetDeadline(time.Now().Add(5 * time.Second))
	h := ""
	for _, l := range header {
		h += l + "\r\n"
	}
	if _, err := fmt.Fprintf(k, "GET %s HTTP/1.1\r\nHost: %s\r\n%s\r\n", path, k.host, h); err != nil {
		return err
	}
	resp, err := http.ReadResponse(k.r, nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %s", resp.Status)
	}
	return nil
}

// metric returns the sum of the samples of a Prometheus metric (name, or
// name{labels...} prefix) in node i's /metrics.
func metric(l *lab.Lab, i int, name string) (float64, error) {
	code, body, err := l.NodeGet(i, "/metrics")
	if err != nil {
		return 0, err
	}
	if code != http.StatusOK {
		return 0, fmt.Errorf("node %d: /metrics: status %d", i, code)
	}
	sum, found := 0.0, false
	for _, line := range strings.Split(string(body), "\n") {
		if strings.HasPrefix(line, "#") || !strings.HasPrefix(line, name) {
			continue
		}
		rest := line[len(name):]
		if len(rest) > 0 && rest[0] != ' ' && rest[0] != '{' && rest[0] != ',' && rest[0] != '}' {
			continue
		}
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err == nil {
			sum += v
			found = true
		}
	}
	if !found {
		return 0, fmt.Errorf("node %d: no metric %s", i, name)
	}
	return sum, nil
}
