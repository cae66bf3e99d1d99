package waf

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/patchgate/patchgate/deploy/lab"
)

// Run builds a 1-node L3 lab, serves a backend in the server namespace and
// measures, one after the other in the same run: kernel forwarding
// (baseline), patchgate inline with the full catalog, and nginx in front of
// the backend (patchgate off) in each mode of cfg.Nginx: a plain proxy,
// ModSecurity with CVERules, ModSecurity with CRS and CVERules. For each it
// runs wrk from the client namespace and sends the HTTP patch corpus; it
// measures the UDP round trip through the node with and without patchgate.
// Everything it started (lab, nginx, wrk, node) is gone when it returns,
// also on failure or when ctx is cancelled. It needs root and the packages
// Prerequisites names; it installs nothing.
func Run(ctx context.Context, cfg Config) (res *Result, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := Prerequisites(cfg); err != nil {
		return nil, err
	}
	corpus, err := Corpus(filepath.Join(cfg.Patches, "http"))
	if err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp("", "pgwaf-")
	if err != nil {
		return nil, fmt.Errorf("bench/waf: %w", err)
	}
	defer os.RemoveAll(tmp)
	lc := lab.DefaultConfig()
	lc.Nodes, lc.Variant = 1, lab.L3
	lc.Patches, lc.Binary = cfg.Patches, cfg.Binary
	lc.StateRoot = cfg.StateRoot
	if lc.StateRoot == "" {
		lc.StateRoot = filepath.Join(tmp, "lab")
	}
	cfg.logf("bench/waf: building the lab")
	l, err := lab.Up(lc)
	if err != nil {
		return nil, fmt.Errorf("bench/waf: %w", err)
	}
	defer func() {
		if derr := l.Down(); derr != nil && err == nil {
			err = fmt.Errorf("bench/waf: lab down: %w", derr)
		}
	}()
	client, server := l.Clients[0], l.Servers[0]
	srvAddr := server.Addr4.String()
	ln, err := lab.Listen(server.NS, "tcp", ":"+strconv.Itoa(BackendPort))
	if err != nil {
		return nil, fmt.Errorf("bench/waf: backend: %w", err)
	}
	be := serveBackend(ln)
	defer be.close()
	pc, err := lab.ListenPacket(server.NS, "udp", ":"+strconv.Itoa(EchoPort))
	if err != nil {
		return nil, fmt.Errorf("bench/waf: echo: %w", err)
	}
	echo := serveEcho(pc)
	defer echo.close()

	res = &Result{Start: time.Now().UTC(), Config: cfg, AddedPerRequest: map[string]Percentiles{}, AddedPerRequestLoaded: map[string]Percentiles{}}
	backendAddr := net.JoinHostPort(srvAddr, strconv.Itoa(BackendPort))
	proxyAddr := net.JoinHostPort(srvAddr, strconv.Itoa(ProxyPort))
	echoAddr := net.JoinHostPort(srvAddr, strconv.Itoa(EchoPort))

	// measure sends the corpus and runs wrk through one path; gatewayPID,
	// when not nil, names the process whose CPU time (with its children)
	// is read around the wrk run.
	measure := func(name, addr string, gatewayPID func() int) error {
		pr := PathResult{Name: name, Target: "http://" + addr + "/"}
		cfg.logf("bench/waf: %s: corpus (%d requests)", name, len(corpus))
		if pr.Exploits, err = sendCorpus(ctx, client.NS, addr, corpus, be, cfg.RequestWait); err != nil {
			return fmt.Errorf("bench/waf: %s: corpus: %w", name, err)
		}
		cfg.logf("bench/waf: %s: wrk %v", name, cfg.Duration)
		var cpu0 float64
		if gatewayPID != nil {
			if cpu0, err = treeCPU(gatewayPID()); err != nil {
				return err
			}
		}
		if pr.Wrk, pr.Command, err = runWrk(ctx, cfg, tmp, client.NS, pr.Target, cfg.Threads, cfg.Connections); err != nil {
			return fmt.Errorf("bench/waf: %s: %w", name, err)
		}
		if gatewayPID != nil {
			cpu1, err := treeCPU(gatewayPID())
			if err != nil {
				return err
			}
			pr.GatewayCPUSeconds = cpu1 - cpu0
			if pr.Wrk.Requests > 0 {
				pr.GatewayCPUPerRequestUS = pr.GatewayCPUSeconds / float64(pr.Wrk.Requests) * 1e6
			}
		}
		if cfg.UnloadedDuration > 0 {
			uc := cfg
			uc.Duration = cfg.UnloadedDuration
			cfg.logf("bench/waf: %s: wrk, one connection, %v", name, uc.Duration)
			if pr.Unloaded, pr.UnloadedCommand, err = runWrk(ctx, uc, tmp, client.NS, pr.Target, 1, 1); err != nil {
				return fmt.Errorf("bench/waf: %s: %w", name, err)
			}
		}
		cfg.logf("bench/waf: %s: %.0f requests/s, p50 %.0f µs, p99 %.0f µs (one connection: p50 %.0f µs), gateway CPU %.0f µs/request; exploits blocked %d/%d, look-alikes passed %d/%d",
			name, pr.Wrk.RequestsPerSec, pr.Wrk.Latency.P50, pr.Wrk.Latency.P99, pr.Unloaded.Latency.P50, pr.GatewayCPUPerRequestUS,
			pr.Exploits.ExploitsBlocked, pr.Exploits.Exploits, pr.Exploits.LookalikesPassed, pr.Exploits.Lookalikes)
		res.Paths = append(res.Paths, pr)
		return nil
	}
	pingPath := func(name string) error {
		cfg.logf("bench/waf: %s: %d pings", name, cfg.Pings)
		p, err := ping(ctx, client.NS, echoAddr, cfg.Pings, cfg.PingTimeout)
		if err != nil {
			return err
		}
		p.Path = name
		res.PacketRTT = append(res.PacketRTT, p)
		return nil
	}

	// (a) kernel forwarding.
	if err := pingPath(PathBaseline); err != nil {
		return nil, err
	}
	if err := measure(PathBaseline, backendAddr, nil); err != nil {
		return nil, err
	}
	// (b) patchgate inline.
	cfg.logf("bench/waf: starting patchgate on node 1")
	if err := l.StartNode(1); err != nil {
		return nil, fmt.Errorf("bench/waf: %w", err)
	}
	stopNode := func() error {
		if l.NodePID(1) == 0 {
			return nil
		}
		if err := l.StopNode(1); err != nil {
			return fmt.Errorf("bench/waf: %w", err)
		}
		if !waitFor(15*time.Second, func() bool { return l.NodePID(1) == 0 }) {
			_ = l.KillNode(1)
			if !waitFor(5*time.Second, func() bool { return l.NodePID(1) == 0 }) {
				return fmt.Errorf("bench/waf: node 1 did not stop")
			}
		}
		return l.Bypass(1)
	}
	defer func() { _ = stopNode() }()
	if err := pingPath(PathPatchgate); err != nil {
		return nil, err
	}
	if err := measure(PathPatchgate, backendAddr, func() int { return l.NodePID(1) }); err != nil {
		return nil, err
	}
	if err := stopNode(); err != nil {
		return nil, err
	}
	// (c) nginx as a reverse proxy in front of the same backend, patchgate
	// off: without ModSecurity, with the CVE rules only, with CRS and the
	// CVE rules.
	for _, mode := range cfg.Nginx {
		if err := runNginx(ctx, cfg, filepath.Join(tmp, "nginx-"+mode), mode, server.NS, lab.Dialer(client.NS), proxyAddr, measure); err != nil {
			return nil, err
		}
	}

	base, pg := res.PacketRTT[0].RTT, res.PacketRTT[1].RTT
	res.AddedPerPacket = pg.Sub(base).Scale(0.5)
	for _, p := range res.Paths[1:] {
		res.AddedPerRequestLoaded[p.Name] = p.Wrk.Latency.Sub(res.Paths[0].Wrk.Latency)
		if cfg.UnloadedDuration > 0 {
			res.AddedPerRequest[p.Name] = p.Unloaded.Latency.Sub(res.Paths[0].Unloaded.Latency)
		}
		if res.Paths[0].Wrk.RequestsPerSec > 0 {
			res.RatioVsBaseline = append(res.RatioVsBaseline, Ratio{Path: p.Name, RequestsPerSec: p.Wrk.RequestsPerSec / res.Paths[0].Wrk.RequestsPerSec})
		}
	}
	res.Duration = time.Since(res.Start).Seconds()
	if ctx.Err() != nil {
		return nil, errors.Join(fmt.Errorf("bench/waf: cancelled"), ctx.Err())
	}
	return res, nil
}

// pathName is the result name of an nginx mode.
func pathName(mode string) string {
	switch mode {
	case ModeProxy:
		return PathNginxProxy
	case ModeCVE:
		return PathNginxCVE
	}
	return PathNginx
}

// runNginx starts nginx in mode in namespace ns, measures it through
// proxyAddr and stops it.
func runNginx(ctx context.Context, cfg Config, dir, mode, ns string, dial func(context.Context, string, string) (net.Conn, error),
	proxyAddr string, measure func(name, addr string, pid func() int) error) error {
	conf, err := writeNginx(cfg, dir, mode)
	if err != nil {
		return err
	}
	cfg.logf("bench/waf: starting nginx (%s) in %s", mode, ns)
	ng, err := startProc(lab.Command(ns, "nginx", "-c", conf, "-p", dir, "-g", "daemon off;"))
	if err != nil {
		return fmt.Errorf("bench/waf: nginx: %w", err)
	}
	defer func() { _ = ng.stop(5 * time.Second) }()
	if !waitFor(30*time.Second, func() bool {
		if ng.exited() {
			return true
		}
		c, err := dial(ctx, "tcp", proxyAddr)
		if err != nil {
			return false
		}
		_ = c.Close()
		return true
	}) || ng.exited() {
		errlog, _ := os.ReadFile(filepath.Join(dir, "error.log"))
		return fmt.Errorf("bench/waf: nginx (%s) did not start: %s %s", mode, ng.out.String(), tailString(string(errlog), 2000))
	}
	pid := ng.cmd.Process.Pid
	if err := measure(pathName(mode), proxyAddr, func() int { return pid }); err != nil {
		return err
	}
	return ng.stop(5 * time.Second)
}
