package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/patchgate/patchgate/dataplane"
	"github.com/patchgate/patchgate/dataplane/analyzer"
	"github.com/patchgate/patchgate/dataplane/engine"
	"github.com/patchgate/patchgate/dataplane/patch"
	"github.com/patchgate/patchgate/deploy/lab"
)

// The cluster demo's defaults, in one place.
const (
	demoDefaultSessions = 120 // benign keep-alive sessions
	demoDefaultRequests = 20  // requests per benign session
	demoDefaultParallel = 8   // sessions or conversations at a time
	demoDefaultKill     = 2   // the node killed mid-traffic
	demoDefaultKillFor  = 6 * time.Second
	demoDefaultTimeout  = 4 * time.Minute
	// demoStepTimeout bounds every read and dial of a conversation: a
	// dropped step shows as a timeout.
	demoStepTimeout = 2 * time.Second
	// demoRequestTimeout bounds one benign HTTP request.
	demoRequestTimeout = 4 * time.Second
	// demoKillRequests requests demoKillPause apart make a session of the
	// kill phase, so that sessions are in flight when the node dies.
	demoKillRequests = 20
	demoKillPause    = 100 * time.Millisecond
	// demoNewPatch is the patch the L3 demo holds back from patch set v1
	// and rolls out as v2 with patchctl.
	demoNewPatch = "CVE-2022-22965"
)

// demoOptions configures `patchgate demo`.
type demoOptions struct {
	// Patches is the patch directory the nodes load (absolute).
	Patches string
	// Variant and Nodes shape the lab; Prefix and StateRoot name it
	// (an empty Prefix means a random one).
	Variant   lab.Variant
	Nodes     int
	Prefix    string
	StateRoot string
	// Sessions benign keep-alive sessions of Requests requests each,
	// Parallel sessions or patch-test conversations at a time.
	Sessions, Requests, Parallel int
	// Kill is the node killed mid-traffic (0: skip that phase); KillFor how
	// long traffic runs around the kill.
	Kill    int
	KillFor time.Duration
	// Timeout bounds the whole demo.
	Timeout time.Duration
	// NewPatch is the patch id held back from patch set v1 and rolled out
	// as v2 (L3 variant; "" or an id the catalog lacks skips that phase).
	NewPatch string
}

// defaultDemoOptions returns a 3-node L3 (NFQUEUE) demo of the shipped catalog.
func defaultDemoOptions() demoOptions {
	return demoOptions{
		Patches: defaultPatchDir(), Variant: lab.L3, Nodes: lab.DefaultNodes, StateRoot: lab.DefaultStateRoot,
		Sessions: demoDefaultSessions, Requests: demoDefaultRequests, Parallel: demoDefaultParallel,
		Kill: demoDefaultKill, KillFor: demoDefaultKillFor, Timeout: demoDefaultTimeout, NewPatch: demoNewPatch,
	}
}

// validate names the first option that is out of range.
func (o demoOptions) validate() error {
	switch {
	case o.Patches == "":
		return fmt.Errorf("demo: patches: must not be empty")
	case o.Variant != lab.L3 && o.Variant != lab.L2:
		return fmt.Errorf("demo: variant: must be %q or %q, got %q", lab.L3, lab.L2, o.Variant)
	case o.Nodes < 2 || o.Nodes > lab.MaxNodes:
		return fmt.Errorf("demo: nodes: must be 2..%d (one is killed), got %d", lab.MaxNodes, o.Nodes)
	case o.Sessions < 1 || o.Sessions > 10000:
		return fmt.Errorf("demo: sessions: must be 1..10000, got %d", o.Sessions)
	case o.Requests < 1 || o.Requests > 1000:
		return fmt.Errorf("demo: requests: must be 1..1000, got %d", o.Requests)
	case o.Parallel < 1 || o.Parallel > 64:
		return fmt.Errorf("demo: parallel: must be 1..64, got %d", o.Parallel)
	case o.Kill < 0 || o.Kill > o.Nodes:
		return fmt.Errorf("demo: kill: must be 0 (none) or a node 1..%d, got %d", o.Nodes, o.Kill)
	case o.Kill > 0 && (o.KillFor < time.Second || o.KillFor > 5*time.Minute):
		return fmt.Errorf("demo: kill-for: must be 1s..5m, got %v", o.KillFor)
	case o.Timeout < 10*time.Second:
		return fmt.Errorf("demo: timeout: must be at least 10s, got %v", o.Timeout)
	}
	return nil
}

func cmdDemo(args []string, stdout, stderr io.Writer) error {
	o := defaultDemoOptions()
	fs := newFlags("demo", "demo [flags]  (root: builds a lab in network namespaces)", stderr)
	fs.StringVar(&o.Patches, "patches", o.Patches, "patch directory the nodes enforce")
	variant := fs.String("variant", string(o.Variant), "l3 (routed nodes, NFQUEUE) or l2 (bridging nodes, AF_PACKET)")
	fs.IntVar(&o.Nodes, "nodes", o.Nodes, "gateway nodes behind the ECMP router")
	fs.StringVar(&o.Prefix, "prefix", "", "namespace prefix (default: random pgXXXX)")
	fs.StringVar(&o.StateRoot, "state", o.StateRoot, "directory holding the labs' state")
	fs.IntVar(&o.Sessions, "sessions", o.Sessions, "benign keep-alive HTTP sessions")
	fs.IntVar(&o.Requests, "requests", o.Requests, "requests per benign session")
	fs.IntVar(&o.Parallel, "parallel", o.Parallel, "sessions or conversations at a time")
	fs.IntVar(&o.Kill, "kill", o.Kill, "node to kill (SIGKILL) mid-traffic; 0 skips that phase")
	fs.DurationVar(&o.KillFor, "kill-for", o.KillFor, "how long traffic runs around the kill")
	fs.DurationVar(&o.Timeout, "timeout", o.Timeout, "bound on the whole demo")
	fs.StringVar(&o.NewPatch, "new-patch", o.NewPatch, "patch held back from v1 and rolled out as v2 with patchctl (l3; \"\" skips)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		fs.Usage()
		return errUsage
	}
	o.Variant = lab.Variant(strings.ToLower(*variant))
	if abs, err := filepath.Abs(o.Patches); err == nil {
		o.Patches = abs
	}
	if err := o.validate(); err != nil {
		return err
	}
	if os.Geteuid() != 0 {
		return errors.New("demo: needs root (network namespaces, iptables, AF_PACKET): sudo make demo")
	}
	// Ctrl-C or SIGTERM end the traffic early; the lab is torn down all the
	// same. Further signals are ignored until the teardown is done.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	err := runDemo(ctx, o, stdout)
	if err != nil && ctx.Err() != nil {
		cause := "interrupted"
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			cause = fmt.Sprintf("timed out after %v", o.Timeout)
		}
		return fmt.Errorf("demo: %s: %w", cause, err)
	}
	return err
}

// demoCase is one embedded patch test and what the offline engine decides
// for it: the verdict every inline node must reach for the same conversation.
type demoCase struct {
	Patch *patch.Patch
	Test  *patch.Test
	Want  dataplane.Verdict
	Port  uint16
}

// exploit reports whether the case must be blocked.
func (c *demoCase) exploit() bool { return c.Want != dataplane.Pass }

// demoCases runs every patch test of prog through the offline engine with the
// whole catalog.
func demoCases(prog *patch.Program) ([]*demoCase, error) {
	var out []*demoCase
	for _, c := range prog.Patches {
		for i := range c.Tests {
			dc, err := evalCase(prog, c.Patch, &c.Tests[i])
			if err != nil {
				return nil, err
			}
			if dc.Test.Match && dc.Want == dataplane.Pass {
				return nil, fmt.Errorf("demo: %s line %d: exploit %q passes the offline engine", c.ID, dc.Test.Line, dc.Test.Name)
			}
			out = append(out, dc)
		}
	}
	return out, nil
}

// evalCase decides what the offline engine enforcing prog does with test tc
// of patch p (which prog need not contain).
func evalCase(prog *patch.Program, p *patch.Patch, tc *patch.Test) (*demoCase, error) {
	capture, err := engine.TestFrames(p, tc, engine.PlainVariant)
	if err != nil {
		return nil, fmt.Errorf("demo: %s line %d: %w", p.ID, tc.Line, err)
	}
	cfg := engine.DefaultConfig()
	cfg.Checksums = engine.ChecksumValidate
	e, err := engine.New(cfg, prog, &engine.AlertRecorder{})
	if err != nil {
		return nil, fmt.Errorf("demo: engine: %w", err)
	}
	w := e.NewWorker()
	v := dataplane.Pass
	for _, fr := range capture.Frames {
		v = v.Stronger(w.Process(capture.LinkType, fr.Data, fr.CI.Timestamp).Verdict)
	}
	port := tc.ServerPort
	if port == 0 {
		spec, ok := analyzer.Lookup(p.Protocol)
		if !ok || len(spec.Ports) == 0 {
			return nil, fmt.Errorf("demo: %s: protocol %q has no default port", p.ID, p.Protocol)
		}
		port = spec.Ports[0]
	}
	return &demoCase{Patch: p, Test: tc, Want: v, Port: port}, nil
}

// runDemo builds the lab, runs the phases, prints the tables and tears the
// lab down, whatever happens. It fails when a check failed.
func runDemo(ctx context.Context, o demoOptions, w io.Writer) (err error) {
	start := time.Now()
	prog, err := loadProgram(o.Patches)
	if err != nil {
		return err
	}
	// The L3 demo runs the nodes as a cluster: patch set v1 is the catalog
	// without o.NewPatch, which is rolled out later as v2.
	clustered := o.Variant == lab.L3
	enforced, v1Dir := prog, o.Patches
	var rollout []rolloutCase
	if clustered && o.NewPatch != "" {
		tmp, err := os.MkdirTemp("", "patchgate-demo-v1-")
		if err != nil {
			return fmt.Errorf("demo: %w", err)
		}
		defer os.RemoveAll(tmp)
		held, err := splitCatalog(o.Patches, tmp, o.NewPatch)
		if err != nil {
			return err
		}
		if held != "" {
			if enforced, err = loadProgram(tmp); err != nil {
				return err
			}
			v1Dir = tmp
			if rollout, err = rolloutCases(prog, enforced, o.NewPatch); err != nil {
				return err
			}
		}
	}
	cases, err := demoCases(enforced)
	if err != nil {
		return err
	}
	cfg := lab.DefaultConfig()
	cfg.Variant, cfg.Nodes, cfg.Prefix, cfg.StateRoot, cfg.Patches = o.Variant, o.Nodes, o.Prefix, o.StateRoot, o.Patches
	if clustered {
		// With flow sharing, a dead node's share is better dropped until the
		// routers withdraw it (TCP retransmits to the node that takes it
		// over) than forwarded uninspected by its queue-bypass rules.
		cfg.Fail = "closed"
	}
	if exe, err := os.Executable(); err == nil {
		cfg.Binary = exe
	}
	fmt.Fprintf(w, "== bringing up a %d-node %s lab (%s)\n", o.Nodes, o.Variant, dataplaneName(o.Variant))
	l, err := lab.Up(cfg)
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	defer func() {
		derr := l.Down()
		if nss, nerr := lab.Namespaces(l.Prefix); nerr == nil && len(nss) > 0 {
			derr = errors.Join(derr, fmt.Errorf("demo: namespaces left after teardown: %s", strings.Join(nss, " ")))
		}
		if derr != nil {
			err = errors.Join(err, derr)
			return
		}
		fmt.Fprintf(w, "\n== lab %s torn down: no namespaces, interfaces or rules left (%.0fs in all)\n", l.Prefix, time.Since(start).Seconds())
	}()
	fmt.Fprintf(w, "   lab %s: client %s → R1 (ECMP over %d nodes) → R2 → server %s; state in %s\n",
		l.Prefix, l.Clients[0].Addr4, len(l.Nodes), l.Servers[0].Addr4, l.Dir)
	var cl *demoCluster
	if clustered {
		if cl, err = newDemoCluster(l, w, v1Dir); err != nil {
			return err
		}
		defer cl.close()
	}
	for _, n := range l.Nodes {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("demo: %w", err)
		}
		if err := l.StartNode(n.Index); err != nil {
			return fmt.Errorf("demo: %w", err)
		}
	}
	servers := cases
	for _, r := range rollout {
		servers = append(servers, r.after)
	}
	env, err := newDemoEnv(l, servers, w)
	if err != nil {
		return err
	}
	defer env.close()
	if clustered {
		if err := env.formCluster(ctx, cl, v1Dir, len(enforced.Patches)); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(w, "   patchgate running on %s with %d patches (%s)\n", nodeList(l.Nodes, 0), len(prog.Patches), o.Patches)
	}
	var failures []string
	fail := func(format string, args ...any) { failures = append(failures, fmt.Sprintf(format, args...)) }

	// Benign traffic and every patch test, recorded at the nodes so that
	// every session is attributed to the node ECMP chose for it.
	rec, err := env.record()
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "\n== benign traffic: %d keep-alive sessions × %d requests, %d at a time, IPv4 and IPv6\n", o.Sessions, o.Requests, o.Parallel)
	t0 := time.Now()
	benign := env.benign(ctx, o.Sessions, o.Requests, o.Parallel, 0)
	fmt.Fprintf(w, "   %d/%d sessions ok in %.1fs\n", countOK(benign), len(benign), time.Since(t0).Seconds())
	fmt.Fprintf(w, "== every shipped patch test through the lab: %d conversations (HTTP to a net/http server, TLS/SMB/DNS over raw TCP and UDP)\n", len(cases))
	t0 = time.Now()
	results := env.conversations(ctx, cases, o.Parallel)
	fmt.Fprintf(w, "   done in %.1fs\n", time.Since(t0).Seconds())
	flows, err := rec.stop()
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	stats := env.nodeStats(ctx)
	fmt.Fprintln(w)
	writeCaseTable(w, l.Nodes, results, stats)
	fmt.Fprintln(w, "EXPLOITS: the patch's tests the catalog must block (one patch's look-alike can be another's exploit);\n"+
		"DELIVERED: crossed the lab in full (must be 0); ALERTS: from each node's EVE file")
	fmt.Fprintln(w)
	writeNodeTable(w, l.Nodes, benign, results, flows, stats)
	for _, s := range benign {
		if s.Err != nil {
			fail("benign session from %s: %d of %d requests ok: %v", s.Local, s.OK, o.Requests, s.Err)
		}
	}
	for _, r := range results {
		if !r.Good {
			fail("%s", r.describe())
		}
	}
	for _, st := range stats {
		if st.EVETotal != st.MetricsTotal {
			fail("node %d: %d alerts in its EVE file, %d in /metrics", st.Index, st.EVETotal, st.MetricsTotal)
		}
	}
	seen := env.exploitRequestsSeen()
	fmt.Fprintf(w, "\nserver's own record: %d exploit requests reached its HTTP handler; %d exploit conversations delivered in full\n",
		seen, countDelivered(results))
	if seen > 0 {
		fail("the HTTP server's handler saw %d exploit requests", seen)
	}

	switch {
	case o.Kill > 0 && clustered:
		if err := env.clusterKillPhase(ctx, o, cl, fail); err != nil {
			return err
		}
	case o.Kill > 0:
		if err := env.killPhase(ctx, o, fail); err != nil {
			return err
		}
	}
	if clustered && len(rollout) > 0 {
		if err := env.rolloutPhase(ctx, o, cl, rollout, fail); err != nil {
			return err
		}
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	if len(failures) > 0 {
		fmt.Fprintf(w, "\n== FAILED: %d checks\n", len(failures))
		for _, f := range failures {
			fmt.Fprintln(w, "   "+f)
		}
		return fmt.Errorf("demo: %d checks failed", len(failures))
	}
	if clustered {
		fmt.Fprintf(w, "\n== PASS: every exploit of the enforced patch sets blocked (none reached the server), all benign traffic delivered,\n"+
			"   no session broken by the node failure or the rollout\n")
		return nil
	}
	fmt.Fprintf(w, "\n== PASS: every exploit blocked (none reached the server), all benign traffic delivered\n")
	return nil
}

// killPhase (L2 variant, no cluster) kills one node mid-traffic and reports
// what happened to the sessions through it and through the others; then it
// withdraws the node from both routers' ECMP groups by hand and shows the
// remaining nodes still block every exploit.
func (e *demoEnv) killPhase(ctx context.Context, o demoOptions, fail func(string, ...any)) error {
	w, l := e.w, e.l
	fmt.Fprintf(w, "\n== killing node %d (SIGKILL) mid-traffic: new keep-alive sessions of %d requests for %v, %d at a time\n",
		o.Kill, demoKillRequests, o.KillFor, 2*o.Parallel)
	kr, err := e.killUnderTraffic(ctx, o)
	if err != nil {
		return err
	}
	k := kr.summary
	fmt.Fprintf(w, "\n   traffic continued: %d new sessions after the kill ok through %s; through n%d: %d ok, %d failed\n",
		k.cells[1][2].ok, nodeList(l.Nodes, o.Kill), o.Kill, k.cells[0][2].ok, k.cells[0][2].failed)
	fmt.Fprintf(w, "   n%d's AF_PACKET bridge died with it: nothing forwards on its link, so its ECMP share is lost until\n"+
		"   the routers withdraw it (run `patchgate node fallback` from the service manager to bridge instead).\n"+
		"   The L2 lab's nodes have no addresses for the flow-sharing bus: no other node can take over their sessions\n"+
		"   (the L3 demo shows that).\n", o.Kill)
	for _, c := range k.cells[1] {
		if c.failed > 0 {
			fail("%d sessions through the running nodes failed while node %d died", c.failed, o.Kill)
		}
	}

	fmt.Fprintf(w, "\n== withdrawing n%d from both routers' ECMP groups (what a health check or BFD would do)\n", o.Kill)
	if err := e.withdraw(o.Kill); err != nil {
		return err
	}
	rec, err := e.record()
	if err != nil {
		return err
	}
	var exploits []*demoCase
	for _, c := range e.cases {
		if c.exploit() {
			exploits = append(exploits, c)
		}
	}
	after := e.benign(ctx, 2*o.Parallel, 3, o.Parallel, 0)
	again := e.conversations(ctx, exploits, o.Parallel)
	flows, err := rec.stop()
	if err != nil {
		return err
	}
	byNode := map[int]int{}
	okSessions, blocked := 0, 0
	for _, s := range after {
		byNode[flows[s.Local]]++
		if s.Err == nil {
			okSessions++
		} else {
			fail("after withdrawal: benign session from %s failed: %v", s.Local, s.Err)
		}
	}
	for _, r := range again {
		byNode[flows[r.Local]]++
		if r.Good {
			blocked++
		} else {
			fail("after withdrawal: %s", r.describe())
		}
	}
	if byNode[o.Kill] > 0 {
		fail("after withdrawal: %d sessions still crossed node %d", byNode[o.Kill], o.Kill)
	}
	var spread []string
	for _, n := range l.Nodes {
		if n.Index != o.Kill {
			spread = append(spread, fmt.Sprintf("n%d %d", n.Index, byNode[n.Index]))
		}
	}
	fmt.Fprintf(w, "   benign sessions: %d/%d ok; exploits: %d/%d blocked; sessions per node: %s (n%d: %d)\n",
		okSessions, len(after), blocked, len(again), strings.Join(spread, ", "), o.Kill, byNode[o.Kill])
	return nil
}

// hookedPackets sums the counters of node i's jumps from FORWARD into its
// patchgate chains, IPv4 and IPv6: every packet its NFQUEUE rules took,
// whether a running node inspected it or the kernel bypassed the queue.
func (e *demoEnv) hookedPackets(i int) (uint64, error) {
	var total uint64
	for _, bin := range []string{"iptables-legacy", "ip6tables-legacy"} {
		out, err := e.l.Exec(fmt.Sprintf("n%d", i), bin, "-t", "filter", "-L", "FORWARD", "-v", "-x", "-n")
		if err != nil {
			return 0, fmt.Errorf("demo: node %d rules: %w", i, err)
		}
		total += jumpPackets(out, "PATCHGATE")
	}
	return total, nil
}

// jumpPackets sums the packet counters of the rules in `iptables -L -v -x -n`
// output whose target starts with prefix.
func jumpPackets(listing, prefix string) uint64 {
	var total uint64
	for _, line := range strings.Split(listing, "\n") {
		f := strings.Fields(line)
		if len(f) < 3 || !strings.HasPrefix(f[2], prefix) {
			continue
		}
		if n, err := strconv.ParseUint(f[0], 10, 64); err == nil {
			total += n
		}
	}
	return total
}

// withdraw removes node i from both routers' multipath routes, in both
// address families, keeping the other next hops in their order.
func (e *demoEnv) withdraw(i int) error {
	l := e.l
	for _, r := range []struct {
		ns         string
		hops       []lab.NextHop
		dst4, dst6 string
	}{
		{"r1", l.R1.NextHops, lab.ServerLAN4.String(), lab.ServerLAN6.String()},
		{"r2", l.R2.NextHops, lab.ClientLAN4.String(), lab.ClientLAN6.String()},
	} {
		for _, v6 := range []bool{false, true} {
			argv := []string{"ip", "-4", "route", "replace", r.dst4}
			if v6 {
				argv = []string{"ip", "-6", "route", "replace", r.dst6}
			}
			var keep []lab.NextHop
			for j, h := range r.hops {
				if j+1 != i {
					keep = append(keep, h)
				}
			}
			for _, h := range keep {
				a := h.Addr4
				if v6 {
					a = h.Addr6
				}
				if len(keep) == 1 {
					argv = append(argv, "via", a.String(), "dev", h.Dev)
				} else {
					argv = append(argv, "nexthop", "via", a.String(), "dev", h.Dev, "weight", "1")
				}
			}
			if _, err := l.Exec(r.ns, argv...); err != nil {
				return fmt.Errorf("demo: withdraw node %d: %w", i, err)
			}
		}
	}
	return nil
}

// countOK counts the sessions without error.
func countOK(ss []sessionResult) int {
	n := 0
	for _, s := range ss {
		if s.Err == nil {
			n++
		}
	}
	return n
}

// dataplaneName names the nodes' dataplane in a variant.
func dataplaneName(v lab.Variant) string {
	if v == lab.L2 {
		return "nodes bridge with AF_PACKET"
	}
	return "nodes are routed hops with NFQUEUE"
}

// nodeList names the nodes, leaving out node skip ("n1, n3").
func nodeList(nodes []lab.Node, skip int) string {
	var out []string
	for _, n := range nodes {
		if n.Index != skip {
			out = append(out, fmt.Sprintf("n%d", n.Index))
		}
	}
	return strings.Join(out, ", ")
}

// killResult is what killUnderTraffic saw.
type killResult struct {
	sessions     []sessionResult
	flows        map[string]int // client address → node that carried it
	killAt       time.Time
	hookedAtKill uint64 // node's NFQUEUE rule counters at the kill (L3)
	summary      killSummary
}

// killUnderTraffic runs new keep-alive sessions for o.KillFor, SIGKILLs node
// o.Kill a third of the way in, and prints when it died and the sessions by
// node group and period.
func (e *demoEnv) killUnderTraffic(ctx context.Context, o demoOptions) (*killResult, error) {
	l := e.l
	rec, err := e.record()
	if err != nil {
		return nil, err
	}
	phaseCtx, cancel := context.WithTimeout(ctx, o.KillFor)
	defer cancel()
	r := &killResult{}
	killed := make(chan error, 1)
	go func() {
		select {
		case <-time.After(o.KillFor / 3):
		case <-phaseCtx.Done():
			killed <- phaseCtx.Err()
			return
		}
		if l.Variant == lab.L3 {
			var err error
			if r.hookedAtKill, err = e.hookedPackets(o.Kill); err != nil {
				killed <- err
				return
			}
		}
		r.killAt = time.Now()
		killed <- l.KillNode(o.Kill)
	}()
	began := time.Now()
	r.sessions = e.benign(phaseCtx, 0, demoKillRequests, 2*o.Parallel, demoKillPause)
	if err := <-killed; err != nil {
		return nil, fmt.Errorf("demo: kill node %d: %w", o.Kill, err)
	}
	if r.flows, err = rec.stop(); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("demo: %w", err)
	}
	r.summary = summarizeKill(r.sessions, r.flows, o.Kill, r.killAt)
	fmt.Fprintf(e.w, "   node %d killed %.1fs into the traffic; %d sessions in all\n\n", o.Kill, r.killAt.Sub(began).Seconds(), len(r.sessions))
	writeKillTable(e.w, l.Nodes, o.Kill, r.summary)
	return r, nil
}
