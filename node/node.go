// Package node is the composition root of an inline gateway node: it loads
// the configuration and the patch set, builds the inspection engine, attaches
// the configured inline backend (NFQUEUE or AF_PACKET), writes EVE alerts and
// structured logs, and serves Prometheus metrics and health endpoints.
package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/patchgate/patchgate/api"
	"github.com/patchgate/patchgate/bus"
	"github.com/patchgate/patchgate/consensus"
	// The engine needs the protocol analyzers registered.
	_ "github.com/patchgate/patchgate/dataplane/analyzer/all"
	"github.com/patchgate/patchgate/dataplane/engine"
	"github.com/patchgate/patchgate/dataplane/eve"
	"github.com/patchgate/patchgate/dataplane/inline"
	"github.com/patchgate/patchgate/dataplane/inline/afpacket"
	"github.com/patchgate/patchgate/dataplane/inline/nfqueue"
	"github.com/patchgate/patchgate/dataplane/patch"
)

// housekeepingEvery is how often idle flows expire and EVE output is flushed.
const housekeepingEvery = time.Second

// BackendFactory builds the inline backend of a node; newInspector is called
// once per backend worker.
type BackendFactory func(cfg Config, newInspector func() inline.Inspector, log *slog.Logger) (inline.Backend, error)

// Options adjust a node for embedding and tests. The zero value is the daemon.
type Options struct {
	// Netns, if set, is the path of the network namespace the backend works in.
	Netns string
	// Logger overrides the logger built from the configuration.
	Logger *slog.Logger
	// Backend overrides the backend the configuration selects.
	Backend BackendFactory
	// EVE overrides the EVE destination of the configuration.
	EVE io.Writer
}

// Node is one running gateway node. Create it with New and run it with Run.
type Node struct {
	cfg     Config
	log     *slog.Logger
	prog    *patch.Program
	eng     *engine.Engine
	backend inline.Backend
	eve     *eve.Writer
	closers []io.Closer
	reg     *prometheus.Registry

	// Cluster wiring (cfg.Cluster set): the alert hub and local view exist
	// from New; the agent runs while Run does.
	alerts *api.AlertHub
	view   *localView

	// bus shares flow state (nil when the bus section is off);
	// busRoutesSet is the route list last set from membership
	// (housekeeping goroutine only).
	bus          *bus.Bus
	busRoutesSet []string
	drain        *drainer
	healthSent   string // health word last gossiped (housekeeping only)

	mu    sync.Mutex
	addr  string // HTTP address once listening
	agent *Agent
}

// New loads the patch set and builds the node; it does not touch the kernel.
func New(cfg Config, opts Options) (*Node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log := opts.Logger
	if log == nil {
		log = NewLogger(cfg.Log, os.Stderr)
	}
	log = log.With("node", cfg.Name)
	n := &Node{cfg: cfg, log: log}
	prog, err := loadPatches(cfg.Patches)
	if err != nil {
		return nil, err
	}
	n.prog = prog

	var sink engine.AlertSink
	switch {
	case opts.EVE != nil:
		n.eve = eve.NewWriter(opts.EVE, cfg.Name)
	case cfg.EVE == "-":
		n.eve = eve.NewWriter(os.Stdout, cfg.Name)
	case cfg.EVE != "":
		if err := os.MkdirAll(filepath.Dir(cfg.EVE), 0o755); err != nil {
			return nil, fmt.Errorf("node: eve: %w", err)
		}
		f, err := os.OpenFile(cfg.EVE, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return nil, fmt.Errorf("node: eve: %w", err)
		}
		n.closers = append(n.closers, f)
		n.eve = eve.NewWriter(f, cfg.Name)
	}
	if n.eve != nil {
		sink = n.eve
	}
	if cfg.Cluster != nil {
		n.alerts = api.NewAlertHub()
		sink = &alertTee{next: sink, hub: n.alerts, node: cfg.Name}
	}
	shards := cfg.Dataplane.NFQueue.Queues
	if cfg.Dataplane.Mode == ModeAFPacket {
		shards = 2 * cfg.Dataplane.AFPacket.Fanout
	}
	ec := cfg.engineConfig(shards)
	if n.bus, err = openBus(cfg, log); err != nil {
		n.closeFiles()
		return nil, err
	}
	if n.bus != nil {
		n.closers = append(n.closers, n.bus)
		ec.Hooks = busHooks(n.bus)
	}
	n.eng, err = engine.New(ec, prog, sink)
	if err != nil {
		n.closeFiles()
		return nil, fmt.Errorf("node: %w", err)
	}
	if n.bus != nil {
		n.bus.SetLive(liveFunc(n.eng))
	}
	factory := opts.Backend
	if factory == nil {
		factory = func(c Config, ni func() inline.Inspector, l *slog.Logger) (inline.Backend, error) {
			return newBackend(c, opts.Netns, ni, l)
		}
	}
	n.drain = newDrainer(cfg.Drain, n.bus != nil)
	n.drain.synced.Store(cfg.Cluster == nil) // a cluster node first learns its drain flag
	n.backend, err = factory(cfg, n.newInspector, log)
	if err != nil {
		n.closeFiles()
		return nil, err
	}
	n.view = &localView{eng: n.eng, ready: n.Ready, failover: n.failover, drain: n.DrainStatus}
	n.reg = prometheus.NewRegistry()
	reg := prometheus.WrapRegistererWith(prometheus.Labels{"node": cfg.Name}, n.reg)
	reg.MustRegister(newCollector(n))
	if n.bus != nil {
		reg.MustRegister(newBusCollector(n.bus))
	}
	return n, nil
}

// newBackend builds the backend the configuration selects.
func newBackend(cfg Config, netns string, newIns func() inline.Inspector, log *slog.Logger) (inline.Backend, error) {
	dp := cfg.Dataplane
	if dp.Mode == ModeAFPacket {
		c := afpacket.DefaultConfig(cfg.Name, dp.AFPacket.Interfaces[0], dp.AFPacket.Interfaces[1])
		c.Fanout, c.BlockSize, c.NumBlocks = dp.AFPacket.Fanout, dp.AFPacket.BlockSize, dp.AFPacket.NumBlocks
		c.Fail, c.Netns, c.Logger = cfg.fail(), netns, log
		return afpacket.New(c, newIns)
	}
	c := nfqueue.DefaultConfig(cfg.Name)
	c.QueueBase, c.Queues, c.Batch = uint16(dp.NFQueue.QueueBase), dp.NFQueue.Queues, dp.NFQueue.Batch
	c.Chains, c.Match = dp.NFQueue.Chains, dp.NFQueue.Match
	c.Fail, c.Netns, c.Logger = cfg.fail(), netns, log
	return nfqueue.New(c, newIns)
}

// loadPatches loads and compiles the patch directory.
func loadPatches(dir string) (*patch.Program, error) {
	ps, err := patch.LoadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("node: patches: %w", err)
	}
	prog, err := patch.Compile(1, ps)
	if err != nil {
		return nil, fmt.Errorf("node: patches: %w", err)
	}
	return prog, nil
}

// Agent returns the cluster agent while Run runs with a cluster section
// (nil otherwise).
func (n *Node) Agent() *Agent {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.agent
}

// Engine returns the node's inspection engine.
func (n *Node) Engine() *engine.Engine { return n.eng }

// Ready reports whether the node enforces patches on live traffic: patches
// loaded and the backend attached.
func (n *Node) Ready() bool { return n.prog != nil && n.backend.Ready() }

// HTTPAddr returns the address the HTTP endpoint listens on ("" before Run
// opened it or when it is off).
func (n *Node) HTTPAddr() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.addr
}

// Run serves HTTP, runs the backend until ctx ends (SIGTERM in the daemon),
// and shuts down: the backend leaves the kernel as the fail policy says, the
// EVE output is flushed.
func (n *Node) Run(ctx context.Context) error {
	defer n.closeFiles()
	var srv *http.Server
	if n.cfg.HTTP.Listen != "" {
		ln, err := net.Listen("tcp", n.cfg.HTTP.Listen)
		if err != nil {
			return fmt.Errorf("node: http: %w", err)
		}
		n.mu.Lock()
		n.addr = ln.Addr().String()
		n.mu.Unlock()
		srv = &http.Server{Handler: n.Handler(), ReadHeaderTimeout: 5 * time.Second}
		go func() {
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				n.log.Error("http server failed", "err", err)
			}
		}()
		n.log.Info("http listening", "addr", n.addr)
	}
	hctx, stopHK := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); n.housekeeping(hctx) }()
	go func() { defer wg.Done(); n.drainLoop(hctx) }()

	if n.cfg.Cluster != nil {
		ag, err := StartAgent(*n.cfg.Cluster, n.cfg.Name, n.eng, n.view, n.alerts, n.log)
		if err != nil {
			stopHK()
			wg.Wait()
			return err
		}
		n.mu.Lock()
		n.agent = ag
		n.mu.Unlock()
		if adv := n.busAdvertise(); adv != "" {
			ag.Cluster().UpdateMeta(func(m *consensus.NodeMeta) { m.BusAddr = adv })
		}
		defer func() {
			if err := ag.Stop(true); err != nil {
				n.log.Warn("leaving the cluster", "err", err)
			}
		}()
	}
	n.log.Info("starting", "mode", n.cfg.Dataplane.Mode, "fail", n.cfg.Dataplane.Fail,
		"patches", len(n.prog.Patches), "patch_set", n.prog.Version)
	err := n.backend.Run(ctx)
	stopHK()
	wg.Wait()
	if n.eve != nil {
		if ferr := n.eve.Flush(); ferr != nil {
			err = errors.Join(err, ferr)
		}
	}
	if srv != nil {
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_ = srv.Shutdown(sctx)
		cancel()
	}
	if err != nil {
		n.log.Error("stopped with error", "err", err)
		return err
	}
	n.log.Info("stopped")
	return nil
}

// housekeeping expires idle flows and flushes EVE output.
func (n *Node) housekeeping(ctx context.Context) {
	t := time.NewTicker(housekeepingEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			n.eng.Expire(now)
			n.view.sample(now)
			n.syncBusRoutes()
			n.gossipHealth()
			if n.eve != nil {
				if err := n.eve.Flush(); err != nil {
					n.log.Error("eve output failed", "err", err)
				}
			}
		}
	}
}

func (n *Node) closeFiles() {
	for _, c := range n.closers {
		c.Close()
	}
	n.closers = nil
}

// Handler returns the HTTP handler: /metrics (Prometheus), /healthz (the
// process is alive), /readyz (patches loaded and backend attached; the body
// adds a line when the bus is enabled and failover protection is degraded,
// and one with the drain state while draining — neither makes the node
// unready) and /routez (the route announcement, see routez).
func (n *Node) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", metricsHandler(n.reg))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !n.Ready() {
			http.Error(w, "not ready: backend not attached", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ready")
		if deg, why := n.failover(); deg {
			fmt.Fprintln(w, "failover protection degraded:", why)
		}
		if st := n.DrainStatus(); st.Phase != PhaseAnnounce {
			fmt.Fprintln(w, st)
		}
	})
	mux.HandleFunc("/routez", n.routez)
	return mux
}

// NewLogger returns the structured logger the configuration asks for.
func NewLogger(c LogConfig, w io.Writer) *slog.Logger {
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(c.Level))
	opts := &slog.HandlerOptions{Level: lvl}
	if c.Format == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}
