package lab

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// WithdrawalConfig configures the lab's route controller (StartWithdrawal):
// the route check that R1 and R2 run against every node (GET /routez) and
// how many failures withdraw a node.
type WithdrawalConfig struct {
	// Interval between two health checks of a node.
	Interval time.Duration
	// Timeout bounds one check. A dead node refuses the connection at once,
	// so detection does not depend on it; it only keeps a live node that
	// answers slowly under load (a busy machine, GC) from being withdrawn.
	Timeout time.Duration
	// Failures is how many consecutive failed checks (refused, timed out,
	// an unexpected answer) withdraw a node, and how many consecutive good
	// ones restore it. A node that answers 503 (draining, drained, not
	// ready) is withdrawn at the first such answer.
	Failures int
	// HealthPort is the port of the nodes' /routez on their R1-side
	// address (the node file's http.listen must be 198.18.i.2:HealthPort).
	HealthPort int
	// Buckets is the size of each resilient nexthop group.
	Buckets int
	// OnChange, when set, is called (from the controller's goroutine) after a
	// node was withdrawn (up false) or restored (up true).
	OnChange func(node int, up bool, at time.Time)
}

// DefaultWithdrawalConfig returns checks every 100 ms with a 1 s timeout,
// 3 failures, health port 9100, 128 buckets.
func DefaultWithdrawalConfig() WithdrawalConfig {
	return WithdrawalConfig{Interval: 100 * time.Millisecond, Timeout: time.Second, Failures: 3,
		HealthPort: DefaultHealthPort, Buckets: 128}
}

// DefaultHealthPort is the port of a node's /routez and /healthz (that of
// DefaultMetricsAddr).
const DefaultHealthPort = 9100

// Validate names the first wrong field.
func (c WithdrawalConfig) Validate() error {
	switch {
	case c.Interval < 10*time.Millisecond || c.Interval > time.Minute:
		return fmt.Errorf("lab: withdrawal: Interval %v is not within 10ms..1m", c.Interval)
	case c.Timeout < 10*time.Millisecond || c.Timeout > time.Minute:
		return fmt.Errorf("lab: withdrawal: Timeout %v is not within 10ms..1m", c.Timeout)
	case c.Failures < 1 || c.Failures > 100:
		return fmt.Errorf("lab: withdrawal: Failures %d is not within 1..100", c.Failures)
	case c.HealthPort < 1 || c.HealthPort > 65535:
		return fmt.Errorf("lab: withdrawal: HealthPort %d is not a port", c.HealthPort)
	case c.Buckets < 2 || c.Buckets > 4096:
		return fmt.Errorf("lab: withdrawal: Buckets %d is not within 2..4096", c.Buckets)
	}
	return nil
}

// Nexthop object ids in both routers: next hop i (node i) is nhID4+i and
// nhID6+i, the groups nhGroup4 and nhGroup6. The same ids in R1 and R2 make
// both routers' bucket tables evolve identically, which keeps the return
// path on the forward path's node.
const (
	nhID4    = 1000
	nhID6    = 2000
	nhGroup4 = 1999
	nhGroup6 = 2999
)

// HealthURL is the URL of node i's /healthz (the process is alive) on its
// R1-side address (L3 variant).
func (l *Lab) HealthURL(i, port int) (string, error) { return l.nodeURL(i, port, "/healthz") }

// RouteURL is the URL the route controller checks for node i: /routez on
// its R1-side address (L3 variant). 200 means announce the node's next hop,
// 503 withdraw it (draining, drained or not ready).
func (l *Lab) RouteURL(i, port int) (string, error) { return l.nodeURL(i, port, "/routez") }

func (l *Lab) nodeURL(i, port int, path string) (string, error) {
	a, err := l.ClusterAddr(i)
	if err != nil {
		return "", err
	}
	return "http://" + net.JoinHostPort(a.String(), strconv.Itoa(port)) + path, nil
}

// Withdrawal is a running route controller. Its methods are safe for
// concurrent use.
type Withdrawal struct {
	l      *Lab
	cfg    WithdrawalConfig
	cancel context.CancelFunc
	done   chan struct{}

	mu    sync.Mutex
	up    []bool // by node index-1: in the routers' groups
	err   error  // last error applying routes
	since []time.Time
}

// StartWithdrawal makes R1 and R2 route through resilient nexthop groups
// (one next hop per node, the same ids and order on both routers, v4 and
// v6), then checks every node's route announcement from R1's namespace
// (HTTP GET of /routez on the node's R1-side address) every cfg.Interval,
// the way a BGP speaker would follow it. A node answering 503 (it is
// draining, drained or not ready) leaves both routers' groups at once; a
// node that fails cfg.Failures checks in a row (dead: connection refused or
// no answer) leaves them too. The kernel moves only that node's buckets
// (flows) to the others. After cfg.Failures good checks (200) in a row it is
// put back (its buckets return as they go idle). The last next hop is never
// removed.
//
// Converting the routes rehashes flows once: call it before traffic starts.
// L3 variant only. Stop ends the controller.
func (l *Lab) StartWithdrawal(cfg WithdrawalConfig) (*Withdrawal, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if l.Variant != L3 {
		return nil, fmt.Errorf("lab: withdrawal: needs the L3 variant")
	}
	w := &Withdrawal{l: l, cfg: cfg, done: make(chan struct{}),
		up: make([]bool, len(l.Nodes)), since: make([]time.Time, len(l.Nodes))}
	for i := range w.up {
		w.up[i] = true
	}
	if err := w.install(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	w.cancel = cancel
	go w.loop(ctx)
	return w, nil
}

// install creates the nexthop objects and groups and points the far-LAN
// routes of both routers at them.
func (w *Withdrawal) install() error {
	l := w.l
	for _, r := range w.routers() {
		for i, h := range r.hops {
			if _, err := l.Exec(r.ns, "ip", "nexthop", "replace", "id", strconv.Itoa(nhID4+i+1), "via", h.Addr4.String(), "dev", h.Dev); err != nil {
				return fmt.Errorf("lab: withdrawal: %s: %w", r.ns, err)
			}
			if _, err := l.Exec(r.ns, "ip", "nexthop", "replace", "id", strconv.Itoa(nhID6+i+1), "via", h.Addr6.String(), "dev", h.Dev); err != nil {
				return fmt.Errorf("lab: withdrawal: %s: %w", r.ns, err)
			}
		}
		for _, fam := range []struct {
			flag, dst string
			group     int
		}{{"-4", r.dst4, nhGroup4}, {"-6", r.dst6, nhGroup6}} {
			if _, err := l.Exec(r.ns, w.groupArgv("replace", fam.group)...); err != nil {
				return fmt.Errorf("lab: withdrawal: %s: resilient nexthop group: %w", r.ns, err)
			}
			if _, err := l.Exec(r.ns, "ip", fam.flag, "route", "replace", fam.dst, "nhid", strconv.Itoa(fam.group)); err != nil {
				return fmt.Errorf("lab: withdrawal: %s: route: %w", r.ns, err)
			}
		}
	}
	return nil
}

// router is one side's namespace, next hops and far LANs.
type router struct {
	ns         string
	hops       []NextHop
	dst4, dst6 string
}

func (w *Withdrawal) routers() []router {
	l := w.l
	return []router{
		{"r1", l.R1.NextHops, ServerLAN4.String(), ServerLAN6.String()},
		{"r2", l.R2.NextHops, ClientLAN4.String(), ClientLAN6.String()},
	}
}

// groupArgv is `ip nexthop OP id G group a/b/c type resilient ...` over the
// nodes currently up (caller holds w.mu or is install).
func (w *Withdrawal) groupArgv(op string, group int) []string {
	base := nhID4
	if group == nhGroup6 {
		base = nhID6
	}
	members := ""
	for i, up := range w.up {
		if up {
			if members != "" {
				members += "/"
			}
			members += strconv.Itoa(base + i + 1)
		}
	}
	// idle_timer 0: buckets move as soon as the group changes, on both
	// routers at once. With the kernel's default (120 s), a restored node's
	// buckets return only once idle, and each router judges idleness from
	// its own direction of traffic, so for a while R1 and R2 could send a
	// new flow's two directions through different nodes. Flows on the
	// buckets that return to a restored node move to it like any other move
	// (resumed from checkpoints).
	return []string{"ip", "nexthop", op, "id", strconv.Itoa(group), "group", members,
		"type", "resilient", "buckets", strconv.Itoa(w.cfg.Buckets), "idle_timer", "0"}
}

// loop checks every node each interval until ctx ends.
func (w *Withdrawal) loop(ctx context.Context) {
	defer close(w.done)
	n := len(w.l.Nodes)
	fails, goods := make([]int, n), make([]int, n)
	client := &http.Client{
		Transport: &http.Transport{DialContext: Dialer(w.l.R1.NS), DisableKeepAlives: true},
		Timeout:   w.cfg.Timeout,
	}
	tick := time.NewTicker(w.cfg.Interval)
	defer tick.Stop()
	for {
		var wg sync.WaitGroup
		res := make([]checkResult, n)
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				res[i] = w.check(ctx, client, i+1)
			}(i)
		}
		wg.Wait()
		for i := 0; i < n; i++ {
			if res[i] == announce {
				fails[i], goods[i] = 0, goods[i]+1
			} else {
				fails[i], goods[i] = fails[i]+1, 0
			}
			w.mu.Lock()
			up := w.up[i]
			w.mu.Unlock()
			switch {
			case up && (res[i] == withdraw || fails[i] >= w.cfg.Failures):
				w.set(i+1, false)
			case !up && goods[i] >= w.cfg.Failures:
				w.set(i+1, true)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// checkResult is the outcome of one route check.
type checkResult uint8

const (
	// failed: refused, timed out or an unexpected answer (counted).
	failed checkResult = iota
	// announce: 200, the node asks to be routed to.
	announce
	// withdraw: 503, the node asks to be withdrawn (draining, not ready).
	withdraw
)

// check is one route check of node i.
func (w *Withdrawal) check(ctx context.Context, c *http.Client, i int) checkResult {
	url, err := w.l.RouteURL(i, w.cfg.HealthPort)
	if err != nil {
		return failed
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return failed
	}
	resp, err := c.Do(req)
	if err != nil {
		return failed
	}
	resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
		return announce
	case http.StatusServiceUnavailable:
		return withdraw
	}
	return failed
}

// set withdraws (up false) or restores node i in both routers' groups.
func (w *Withdrawal) set(i int, up bool) {
	w.mu.Lock()
	if !up {
		left := 0
		for j, u := range w.up {
			if u && j != i-1 {
				left++
			}
		}
		if left == 0 {
			w.mu.Unlock()
			return // never the last next hop
		}
	}
	w.up[i-1] = up
	var errs []error
	for _, r := range w.routers() {
		for _, g := range []int{nhGroup4, nhGroup6} {
			if _, err := w.l.Exec(r.ns, w.groupArgv("replace", g)...); err != nil {
				errs = append(errs, err)
			}
		}
	}
	now := time.Now()
	w.since[i-1] = now
	if err := errors.Join(errs...); err != nil {
		w.err = fmt.Errorf("lab: withdrawal: node %d: %w", i, err)
	}
	w.mu.Unlock()
	if w.cfg.OnChange != nil {
		w.cfg.OnChange(i, up, now)
	}
}

// Up reports whether node i is in the routers' groups, and since when it
// has been in its current state (zero when it never changed).
func (w *Withdrawal) Up(i int) (bool, time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if i < 1 || i > len(w.up) {
		return false, time.Time{}
	}
	return w.up[i-1], w.since[i-1]
}

// Err returns the last error applying a route change (nil if none).
func (w *Withdrawal) Err() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// Stop ends the controller and waits for it. The routes stay as they are.
func (w *Withdrawal) Stop() {
	w.cancel()
	<-w.done
}
