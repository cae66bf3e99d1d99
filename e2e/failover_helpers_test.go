package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/patchgate/patchgate/deploy/lab"
)

// stallLimit is the longest gap between two answers of a keep-alive
// session that still counts as unbroken.
const stallLimit = 2 * time.Second

// kaSession is an HTTP keep-alive session for the failover tests: one
// client (one connection) sending a request every interval. It records
// errors, extra connections (a broken connection the client replaced, which
// Go's transport may do silently for a GET) and the longest gap between two
// answers. Safe for concurrent use.
type kaSession struct {
	id     int
	client *http.Client
	url    string

	mu      sync.Mutex
	local   netip.AddrPort // the (first) connection's client address
	conns   int
	answers int
	errs    []error
	last    time.Time
	maxGap  time.Duration
}

// newKASession returns session id from client namespace ns to url.
func newKASession(id int, ns, url string) *kaSession {
	return &kaSession{id: id, url: url, client: &http.Client{
		Transport: &http.Transport{DialContext: lab.Dialer(ns), DisableCompression: true, MaxIdleConnsPerHost: 1},
		Timeout:   10 * time.Second,
	}}
}

// run sends requests every interval until ctx ends.
func (s *kaSession) run(ctx context.Context, interval time.Duration) {
	defer s.client.CloseIdleConnections()
	trace := &httptrace.ClientTrace{GotConn: func(i httptrace.GotConnInfo) {
		if !i.Reused {
			s.mu.Lock()
			s.conns++
			if s.conns == 1 {
				if a, ok := i.Conn.LocalAddr().(*net.TCPAddr); ok {
					s.local = a.AddrPort()
				}
			}
			s.mu.Unlock()
		}
	}}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for n := 0; ; n++ {
		err := s.once(httptrace.WithClientTrace(context.Background(), trace), n)
		now := time.Now()
		s.mu.Lock()
		if err != nil {
			if len(s.errs) < 3 {
				s.errs = append(s.errs, err)
			}
		} else {
			if !s.last.IsZero() && now.Sub(s.last) > s.maxGap {
				s.maxGap = now.Sub(s.last)
			}
			s.last = now
			s.answers++
		}
		s.mu.Unlock()
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

func (s *kaSession) once(ctx context.Context, n int) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("%s/fo/%d/%d", s.url, s.id, n), nil)
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
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(string(body), "ok ") {
		return fmt.Errorf("request %d: %s %q", n, resp.Status, body)
	}
	return nil
}

// broken says why the session counts as broken ("" if it does not).
func (s *kaSession) broken() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case len(s.errs) > 0:
		return fmt.Sprintf("errors %v", s.errs)
	case s.conns != 1:
		return fmt.Sprintf("%d connections", s.conns)
	case s.maxGap > stallLimit:
		return fmt.Sprintf("stalled %v", s.maxGap.Round(time.Millisecond))
	case s.answers == 0:
		return "no answer"
	}
	return ""
}

// localAddr is the session's client address (invalid before it connected).
func (s *kaSession) localAddr() netip.AddrPort {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.local
}

// nextHopDevs asks R1's kernel which link (node, "n1") the flows from each
// client address to server port 80 take now, in one `ip -batch` run; "" for
// a flow it could not tell.
func nextHopDevs(l *lab.Lab, locals []netip.AddrPort, server4, server6 netip.Addr) ([]string, error) {
	var in strings.Builder
	for _, a := range locals {
		dst := server4
		if a.Addr().Unmap().Is6() {
			dst = server6
		}
		fmt.Fprintf(&in, "route get %s from %s iif lan ipproto tcp sport %d dport 80\n", dst, a.Addr().Unmap(), a.Port())
	}
	cmd := lab.Command(l.R1.NS, "ip", "-force", "-batch", "-")
	cmd.Stdin = strings.NewReader(in.String())
	out, err := cmd.Output()
	if err != nil && len(out) == 0 {
		return nil, fmt.Errorf("R1 route get: %w", err)
	}
	var devs []string
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || strings.HasPrefix(line, " ") || strings.HasPrefix(line, "\t") {
			continue
		}
		dev := ""
		for j := 0; j+1 < len(f); j++ {
			if f[j] == "dev" {
				dev = f[j+1]
				break
			}
		}
		devs = append(devs, dev)
	}
	if len(devs) != len(locals) {
		return nil, fmt.Errorf("R1 route get: %d answers for %d flows", len(devs), len(locals))
	}
	return devs, nil
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
