package e2e

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/patchgate/patchgate/deploy/lab"
)

// workloadConfig sizes the failover workload.
type workloadConfig struct {
	// Sessions are plain HTTP/1.1 keep-alive sessions, TLSSessions HTTP/1.1
	// over TLS; each sends a request every Interval on one connection.
	Sessions, TLSSessions int
	Interval              time.Duration
	// Downloads and Uploads are rate-limited bulk transfers of BulkBytes at
	// BulkRate bytes per second (they must outlast the event; the test stops
	// those still running).
	Downloads, Uploads int
	BulkBytes          int64
	BulkRate           int64
	// Bound stops everything whatever happens.
	Bound time.Duration
}

// defaultWorkload is the scale: 510 HTTP and 24 TLS keep-alive
// sessions at 10 requests per second each, 2 downloads and 2 uploads of
// 16 MiB at 512 KiB/s (32 s: they outlast every single-event test).
func defaultWorkload() workloadConfig {
	return workloadConfig{Sessions: 510, TLSSessions: 24, Interval: 100 * time.Millisecond,
		Downloads: 2, Uploads: 2, BulkBytes: 16 << 20, BulkRate: 512 << 10, Bound: 100 * time.Second}
}

// workload is the failover tests' traffic: keep-alive sessions (HTTP, one in
// three over IPv6, and TLS) from every client namespace to server 1, bulk
// transfers to server 2 from ports chosen so that they cross given nodes,
// and per-event probes (a benign connection and a blocked one through the
// node about to move).
type workload struct {
	t   *testing.T
	fl  *foLab
	cfg workloadConfig

	srv      *workServer
	bulkSrv  *bulkServer
	sessions []*kaSession // HTTP then TLS
	tls      int          // sessions[len-tls:] are TLS
	bulks    []*bulkTransfer
	bulkVia  []int // node each bulk transfer crossed at the start

	ctx      context.Context
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	nextPort int // next client port handed to a fixed-port flow
	stopped  time.Time
	stopOnce sync.Once
	// mark is the last withdrawal (UnixNano): stalls count from it.
	mark atomic.Int64
}

// fixedPortBase is the first client port of flows with a chosen port
// (below the kernel's ephemeral range, so they never collide with sessions).
const fixedPortBase = 20000

// startWorkload starts the servers and the traffic and waits until every
// session got an answer and every bulk transfer moved data. Bulk transfer i
// starts through node bulkNodes[i % len]. Everything stops when the test
// ends (or at cfg.Bound).
func startWorkload(t *testing.T, fl *foLab, cfg workloadConfig, bulkNodes ...int) *workload {
	t.Helper()
	raiseNoFile(t, 4*(cfg.Sessions+cfg.TLSSessions)+1024)
	l := fl.l
	s1, s2 := l.Servers[0], l.Servers[1]
	w := &workload{t: t, fl: fl, cfg: cfg, nextPort: fixedPortBase, tls: cfg.TLSSessions,
		srv: startWorkServer(t, s1.NS, s1.Addr4, s1.Addr6)}
	w.bulkSrv = startBulkServer(t, s2.NS, &w.mark)
	w.ctx, w.cancel = context.WithTimeout(context.Background(), cfg.Bound)
	t.Cleanup(w.stop)

	for i := 0; i < cfg.Sessions; i++ {
		url := "http://" + s1.Addr4.String()
		if i%3 == 2 {
			url = "http://[" + s1.Addr6.String() + "]"
		}
		w.sessions = append(w.sessions, newKASession(i, l.Clients[i%len(l.Clients)].NS, url))
	}
	for i := 0; i < cfg.TLSSessions; i++ {
		host := s1.Addr4.String()
		if i%3 == 2 {
			host = "[" + s1.Addr6.String() + "]"
		}
		id := cfg.Sessions + i
		w.sessions = append(w.sessions, newTLSSession(id, l.Clients[id%len(l.Clients)].NS, "https://"+host, w.srv.roots))
	}
	if len(bulkNodes) == 0 {
		bulkNodes = []int{1}
	}
	for i := 0; i < cfg.Downloads+cfg.Uploads; i++ {
		c := l.Clients[i%len(l.Clients)]
		src, dst, url := c.Addr4, netip.AddrPortFrom(s2.Addr4, 80), "http://"+s2.Addr4.String()
		if i%4 == 3 {
			src, dst, url = c.Addr6, netip.AddrPortFrom(s2.Addr6, 80), "http://["+s2.Addr6.String()+"]"
		}
		node := bulkNodes[i%len(bulkNodes)]
		ports, err := portsVia(l, src, dst, node, 1, &w.nextPort)
		if err != nil {
			t.Fatal(err)
		}
		w.bulks = append(w.bulks, &bulkTransfer{id: strconv.Itoa(i), up: i%2 == 1, ns: c.NS, port: ports[0],
			url: url, bytes: cfg.BulkBytes, rate: cfg.BulkRate, srv: w.bulkSrv, prog: progress{mark: &w.mark}})
		w.bulkVia = append(w.bulkVia, node)
	}

	for _, s := range w.sessions {
		s.mark = &w.mark
	}
	// Stagger the session starts over two intervals' worth of seconds.
	spread := 2 * time.Second
	for i, s := range w.sessions {
		w.wg.Add(1)
		go func(s *kaSession, delay time.Duration) {
			defer w.wg.Done()
			select {
			case <-time.After(delay):
			case <-w.ctx.Done():
				return
			}
			s.run(w.ctx, cfg.Interval)
		}(s, time.Duration(i)*spread/time.Duration(len(w.sessions)))
	}
	for _, b := range w.bulks {
		w.wg.Add(1)
		go func(b *bulkTransfer) {
			defer w.wg.Done()
			b.run(w.ctx)
		}(b)
	}
	var last string
	if !waitFor(30*time.Second, func() bool {
		for _, s := range w.sessions {
			if s.answered() == 0 {
				last = fmt.Sprintf("session %d (%s) has no answer yet", s.id, s.url)
				return false
			}
		}
		for _, b := range w.bulks {
			if n, _, _ := b.state(time.Now()); n == 0 {
				last = fmt.Sprintf("bulk transfer %s has moved no data yet", b.id)
				return false
			}
		}
		return true
	}) {
		t.Fatalf("the workload did not start: %s", last)
	}
	return w
}

// withdrawn marks a withdrawal at time at: from then on a session's gap is
// counted from it, not from its last answer before the event.
func (w *workload) withdrawn(at time.Time) { w.mark.Store(at.UnixNano()) }

// rawMaxGap is the longest gap between two answers of any keep-alive
// session, counting the routers' detection time.
func (w *workload) rawMaxGap() time.Duration {
	var g time.Duration
	for _, s := range w.sessions {
		s.mu.Lock()
		g = max(g, s.rawGap)
		s.mu.Unlock()
	}
	return g
}

// flows returns every session's and bulk transfer's flow (sessions that
// have not connected have an invalid source).
func (w *workload) flows() []flowKey {
	s1, s2 := w.fl.l.Servers[0], w.fl.l.Servers[1]
	var out []flowKey
	for i, s := range w.sessions {
		a := s.localAddr()
		port := uint16(80)
		if i >= len(w.sessions)-w.tls {
			port = 443
		}
		dst := s1.Addr4
		if a.Addr().Unmap().Is6() {
			dst = s1.Addr6
		}
		out = append(out, flowKey{a, netip.AddrPortFrom(dst, port)})
	}
	for i, b := range w.bulks {
		c := w.fl.l.Clients[i%len(w.fl.l.Clients)]
		src, dst := c.Addr4, s2.Addr4
		if i%4 == 3 {
			src, dst = c.Addr6, s2.Addr6
		}
		out = append(out, flowKey{netip.AddrPortFrom(src, uint16(b.port)), netip.AddrPortFrom(dst, 80)})
	}
	return out
}

// routes returns the node link ("n1") each flow of flows() takes now.
func (w *workload) routes() []string {
	devs, err := flowDevs(w.fl.l, w.flows())
	if err != nil {
		w.t.Fatalf("flows' nodes: %v", err)
	}
	return devs
}

// perNode counts flows by node link.
func perNode(devs []string) map[string]int {
	m := map[string]int{}
	for _, d := range devs {
		m[d]++
	}
	return m
}

// changed counts the flows whose node differs between two routes() results.
func changed(before, after []string) int {
	n := 0
	for i := range before {
		if i < len(after) && before[i] != after[i] {
			n++
		}
	}
	return n
}

// flowing waits until every session answered k more requests (traffic
// crossed the lab in its current state); it fails the test after bound.
func (w *workload) flowing(name string, k int, bound time.Duration) {
	w.t.Helper()
	base := make([]int, len(w.sessions))
	for i, s := range w.sessions {
		base[i] = s.answered()
	}
	if !waitFor(bound, func() bool {
		for i, s := range w.sessions {
			if s.answered() < base[i]+k {
				return false
			}
		}
		return true
	}) {
		w.t.Errorf("%s: not every session got %d more answers within %v", name, k, bound)
	}
}

// stop ends the traffic (idempotent).
func (w *workload) stop() {
	w.stopOnce.Do(func() {
		w.stopped = time.Now()
		w.cancel()
		w.wg.Wait()
	})
}

// total is the number of long-lived sessions (keep-alive and bulk).
func (w *workload) total() int { return len(w.sessions) + len(w.bulks) }

// broken stops the traffic and returns how many sessions broke, logging the
// first few reasons.
func (w *workload) broken() int {
	w.stop()
	n := 0
	report := func(what, why string) {
		n++
		if n <= 8 {
			w.t.Logf("%s broken: %s", what, why)
		}
	}
	for i, s := range w.sessions {
		if why := s.broken(w.stopped); why != "" {
			kind := "HTTP"
			if i >= len(w.sessions)-w.tls {
				kind = "TLS"
			}
			report(fmt.Sprintf("%s session %d (%s, %v)", kind, s.id, s.url, s.localAddr()), why)
		}
	}
	for i, b := range w.bulks {
		if why := b.broken(w.stopped); why != "" {
			report(fmt.Sprintf("bulk %s %s via node %d (port %d)", b.id, map[bool]string{true: "upload", false: "download"}[b.up], w.bulkVia[i], b.port), why)
		}
	}
	return n
}

// bulkSummary describes the bulk transfers' progress.
func (w *workload) bulkSummary() string {
	out := ""
	for i, b := range w.bulks {
		n, done, gap := b.state(w.stopped)
		kind := "down"
		if b.up {
			kind = "up"
		}
		out += fmt.Sprintf(" %s#%s(n%d): %.1f MiB done=%v gap=%v;", kind, b.id, w.bulkVia[i], float64(n)/(1<<20), done, gap.Round(time.Millisecond))
	}
	return out
}

// eventProbes are the connections that check inspection across one event:
// a benign keep-alive connection and a blocked one through the node whose
// flows will move.
type eventProbes struct {
	node    int
	moved   *rawConn
	blocked *blockedProbe
	// split carries the first half of an exploit request (a header line cut
	// in the middle) sent through node before the event; check sends the
	// rest, which reaches the node that took the flow over.
	split      *rawConn
	splitLocal string
	srv        *workServer
}

// splitHead and splitTail are a Shellshock request cut inside the exploit
// header: neither half is an exploit on its own line; only a node that
// resumed the flow with the first half (the analyzer's partial line) sees it.
const (
	splitHead = "GET /probe/split HTTP/1.1\r\nHost: %s\r\nUser-Agent: () "
	splitTail = "{ :; }; /bin/id\r\n\r\n"
)

// armProbes opens both probes through node (client 1, server 1, IPv4).
func (w *workload) armProbes(node int) *eventProbes {
	w.t.Helper()
	l := w.fl.l
	c, s1 := l.Clients[0], l.Servers[0]
	dst := netip.AddrPortFrom(s1.Addr4, 80)
	ports, err := portsVia(l, c.Addr4, dst, node, 3, &w.nextPort)
	if err != nil {
		w.t.Fatal(err)
	}
	p := &eventProbes{node: node, srv: w.srv}
	mc, err := dialPort(c.NS, ports[0], dst.String())
	if err != nil {
		w.t.Fatalf("probe connection through node %d: %v", node, err)
	}
	p.moved = &rawConn{Conn: mc, r: bufio.NewReader(mc), host: s1.Addr4.String()}
	w.t.Cleanup(func() { p.moved.Close() })
	if err := p.moved.get("/probe/moved/before"); err != nil {
		w.t.Fatalf("probe connection through node %d before the event: %v", node, err)
	}
	if p.blocked, err = armBlocked(l, w.srv, node, c, dst, ports[1]); err != nil {
		w.t.Fatal(err)
	}
	w.t.Cleanup(p.blocked.close)
	sc, err := dialPort(c.NS, ports[2], dst.String())
	if err != nil {
		w.t.Fatalf("split probe through node %d: %v", node, err)
	}
	p.split = &rawConn{Conn: sc, r: bufio.NewReader(sc), host: s1.Addr4.String()}
	p.splitLocal = sc.LocalAddr().String()
	w.t.Cleanup(func() { p.split.Close() })
	if _, err := fmt.Fprintf(sc, splitHead, s1.Addr4); err != nil {
		w.t.Fatalf("split probe through node %d: %v", node, err)
	}
	return p
}

// probeResult is what the probes found after the move.
type probeOutcome struct {
	benignErr    error // a benign request on the moved connection
	exploitReset bool  // the exploit on the moved connection was reset
	exploitErr   error
	blockedErr   error // nil: the blocked flow stayed blocked
	// splitReset: the exploit request cut across the move was reset;
	// splitServed: the server's handler got it.
	splitReset  bool
	splitServed bool
	splitErr    error
}

// moved records the blocked flow's R1 counter; call it right after the
// withdrawal.
func (p *eventProbes) movedNow() error { return p.blocked.moved() }

// check runs the probes after the move.
func (p *eventProbes) check() probeOutcome {
	var o probeOutcome
	o.benignErr = p.moved.get("/probe/moved/after")
	o.exploitErr = p.moved.get("/probe/moved/exploit", shellshock)
	o.exploitReset = outcome{ClientErr: o.exploitErr}.reset()
	o.blockedErr = p.blocked.check(8 * time.Second)
	_ = p.split.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := p.split.Write([]byte(splitTail)); err != nil {
		o.splitErr = err
	} else {
		_, o.splitErr = http.ReadResponse(p.split.r, nil)
	}
	o.splitReset = outcome{ClientErr: o.splitErr}.reset()
	o.splitServed = p.srv.exploitsFrom(p.splitLocal) > 0
	return o
}

// assert fails the test on any probe failure.
func (o probeOutcome) assert(t *testing.T, node int) {
	t.Helper()
	if o.benignErr != nil {
		t.Errorf("a benign request on the connection moved off node %d failed: %v", node, o.benignErr)
	}
	if !o.exploitReset {
		t.Errorf("the exploit sent on the connection moved off node %d was not reset: %v", node, o.exploitErr)
	}
	if o.blockedErr != nil {
		t.Errorf("the flow node %d blocked did not stay blocked after the move: %v", node, o.blockedErr)
	}
	if !o.splitReset || o.splitServed {
		t.Errorf("the exploit request cut across the move off node %d: reset %v, reached the server %v (%v)", node, o.splitReset, o.splitServed, o.splitErr)
	}
}

// newTLSSession is a keep-alive session over TLS (HTTP/1.1) to url
// (https://host), trusting roots.
func newTLSSession(id int, ns, url string, roots *x509.CertPool) *kaSession {
	host := strings.TrimPrefix(url, "https://")
	return &kaSession{id: id, url: url, host: host, dial: func(ctx context.Context) (net.Conn, error) {
		c, err := lab.Dialer(ns)(ctx, "tcp", withPort(host, "443"))
		if err != nil {
			return nil, err
		}
		tc := tls.Client(c, &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12, NextProtos: []string{"http/1.1"},
			ServerName: strings.Trim(host, "[]")})
		if err := tc.HandshakeContext(ctx); err != nil {
			c.Close()
			return nil, fmt.Errorf("TLS handshake: %w", err)
		}
		return tc, nil
	}}
}

// raiseNoFile raises the soft limit of open files to at least want (up to
// the hard limit): every session holds a descriptor on each side.
func raiseNoFile(t *testing.T, want int) {
	t.Helper()
	var r syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r); err != nil {
		t.Fatalf("getrlimit: %v", err)
	}
	if r.Cur >= uint64(want) {
		return
	}
	r.Cur = min(max(uint64(want), r.Cur), r.Max)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &r); err != nil {
		t.Fatalf("setrlimit: %v", err)
	}
	if r.Cur < uint64(want) {
		t.Fatalf("open files limited to %d, the workload needs about %d", r.Cur, want)
	}
}

// summary logs the per-test summary line.
func summary(t *testing.T, name string, w *workload, broken, moved, resumed int, withdrawal time.Duration) {
	t.Helper()
	t.Logf("SUMMARY %s: sessions %d (HTTP %d, TLS %d, bulk %d), broken %d, moved %d, resumed %d, withdrawal %v, longest gap incl. detection %v, requests served %d;%s",
		name, w.total(), len(w.sessions)-w.tls, w.tls, len(w.bulks), broken, moved, resumed,
		withdrawal.Round(time.Millisecond), w.rawMaxGap().Round(time.Millisecond), w.srv.handled(), w.bulkSummary())
}
