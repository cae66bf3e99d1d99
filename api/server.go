package api

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/patchgate/patchgate/api/pb"
	"github.com/patchgate/patchgate/consensus"
)

// Traffic are a node's data-plane figures.
type Traffic struct {
	Packets          uint64
	Alerts           uint64
	PacketsPerSecond float64
}

// Local is the node-local side the API reports on. Its methods are called
// from gRPC handler goroutines, concurrently: implementations must be safe
// for concurrent use and must not block on the packet path.
type Local interface {
	// Traffic returns the node's counters and current packet rate.
	Traffic() Traffic
	// Health is the node's own health word ("ok", "degraded", ...).
	Health() string
	// TopFlows summarises the flow table, at most limit groups.
	TopFlows(limit int) *pb.TopFlowsResponse
}

// DrainReporter is implemented by a Local that knows its node's drain
// phase; the API then reports it in the node's own status row (a node's
// gossiped metadata carries the same, refreshed less often). Like Local, it
// is called concurrently from gRPC handlers and must be safe for it.
type DrainReporter interface {
	// Drain returns the drain phase (announce, draining, drained) and the
	// flows still sending through the node while it drains.
	Drain() (phase string, flowsRemaining uint64)
}

// Server is a node's API server. Create it with New (which opens the
// listener, so the address can be advertised before the cluster starts), then
// Serve it.
type Server struct {
	pb.UnimplementedPatchGateServer

	cfg     Config
	log     *slog.Logger
	ln      net.Listener
	adv     string
	grpc    *grpc.Server
	limiter *TokenBucket

	cl     *consensus.Cluster
	local  Local
	alerts *AlertHub

	mu    sync.Mutex
	peers map[string]*grpc.ClientConn
	done  chan struct{}
}

// New validates cfg and opens the listener.
func New(cfg Config, log *slog.Logger) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	tc, err := cfg.serverTLS()
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("api: listen: %w", err)
	}
	adv := cfg.Advertise
	if adv == "" {
		a := ln.Addr().(*net.TCPAddr)
		if a.IP.IsUnspecified() {
			ln.Close()
			return nil, fmt.Errorf("api: config: advertise: needed when listening on %s", cfg.Listen)
		}
		adv = a.String()
	}
	s := &Server{cfg: cfg, log: log, ln: ln, adv: adv, limiter: NewTokenBucket(cfg.RatePerSecond, cfg.Burst),
		peers: map[string]*grpc.ClientConn{}, done: make(chan struct{})}
	opts := cfg.serverOptions(log, s.limiter)
	opts = append(opts, grpc.MaxRecvMsgSize(pb.MaxBundleBytes+(1<<20)))
	if tc != nil {
		opts = append(opts, grpc.Creds(credentials.NewTLS(tc)))
	}
	s.grpc = grpc.NewServer(opts...)
	pb.RegisterPatchGateServer(s.grpc, s)
	return s, nil
}

// Addr returns the advertised address.
func (s *Server) Addr() string { return s.adv }

// Serve serves the API for the cluster member cl until Stop. local and
// alerts may be nil (a node without a data plane: status shows no traffic,
// alerts tail stays silent).
func (s *Server) Serve(cl *consensus.Cluster, local Local, alerts *AlertHub) {
	s.cl, s.local, s.alerts = cl, local, alerts
	if s.alerts == nil {
		s.alerts = NewAlertHub()
	}
	go func() {
		defer close(s.done)
		if err := s.grpc.Serve(s.ln); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			s.log.Error("api: serve failed", "err", err)
		}
	}()
	s.log.Info("api: listening", "addr", s.adv)
}

// Stop stops the server (open streams are cancelled) and closes peer
// connections.
func (s *Server) Stop() {
	s.grpc.Stop()
	s.ln.Close()
	s.mu.Lock()
	for _, c := range s.peers {
		c.Close()
	}
	s.peers = map[string]*grpc.ClientConn{}
	s.mu.Unlock()
}

// peer returns a cached client for another node's API.
func (s *Server) peer(addr string) (pb.PatchGateClient, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, ok := s.peers[addr]; ok {
		return pb.NewPatchGateClient(c), nil
	}
	c, err := Dial(s.cfg.peerClientConfig(addr))
	if err != nil {
		return nil, err
	}
	s.peers[addr] = c
	return pb.NewPatchGateClient(c), nil
}
