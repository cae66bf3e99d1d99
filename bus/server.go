package bus

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nkeys"
)

// serverReadyTimeout bounds the wait for the embedded server to accept
// connections.
const serverReadyTimeout = 10 * time.Second

// Server is an embedded NATS server. The embedded servers of the nodes form a
// NATS cluster through routes; SetRoutes replaces the peers at run time
// (membership reports them).
//
// A Server is safe for concurrent use.
type Server struct {
	ns *server.Server

	mu   sync.Mutex
	opts *server.Options
}

// StartServer starts an embedded NATS server for cfg (cfg.Server, cfg.TLS,
// cfg.Auth) and waits until it accepts connections.
func StartServer(cfg *Config) (*Server, error) {
	opts, err := serverOptions(cfg)
	if err != nil {
		return nil, err
	}
	ns, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("bus: embedded server: %w", err)
	}
	ns.SetLoggerV2(serverLogger{logf: cfg.Logf, node: cfg.NodeID}, false, false, false)
	ns.Start()
	if !ns.ReadyForConnections(serverReadyTimeout) {
		ns.Shutdown()
		return nil, fmt.Errorf("bus: embedded server: not ready within %v (ports %s:%d, cluster %s:%d)",
			serverReadyTimeout, cfg.Server.Host, cfg.Server.Port, cfg.Server.ClusterHost, cfg.Server.ClusterPort)
	}
	return &Server{ns: ns, opts: opts}, nil
}

// serverOptions translates the configuration into nats-server options.
func serverOptions(cfg *Config) (*server.Options, error) {
	sc := cfg.Server
	opts := &server.Options{
		ServerName: cfg.NodeID,
		Host:       sc.Host,
		Port:       sc.Port,
		NoSigs:     true,
		NoLog:      cfg.Logf == nil,
		// Keep slow consumers from stalling the routes: a peer that cannot
		// keep up loses checkpoints (counted on its side as missing), not us.
		WriteDeadline: 2 * time.Second,
	}
	var tc *tls.Config
	if cfg.TLS.CertFile != "" {
		var err error
		tc, err = server.GenTLSConfig(&server.TLSConfigOpts{CertFile: cfg.TLS.CertFile,
			KeyFile: cfg.TLS.KeyFile, CaFile: cfg.TLS.CAFile, Verify: cfg.TLS.VerifyClients})
		if err != nil {
			return nil, fmt.Errorf("bus: TLS: %w", err)
		}
		opts.TLS, opts.TLSConfig, opts.TLSVerify = true, tc, cfg.TLS.VerifyClients
		opts.TLSTimeout = 2
	}
	a := cfg.Auth
	routeUser, routePass := "", ""
	switch {
	case a.User != "":
		opts.Username, opts.Password = a.User, a.Password
		routeUser, routePass = a.User, a.Password
	case a.Token != "":
		opts.Authorization = a.Token
		routeUser, routePass = "patchgate", a.Token
	case a.NKeyFile != "":
		pub, err := nkeyPublic(a.NKeyFile)
		if err != nil {
			return nil, err
		}
		opts.Nkeys = []*server.NkeyUser{{Nkey: pub}}
		// Routes authenticate by mutual TLS (Config.Validate requires it
		// with an nkey): a public key is no secret to route with.
	}
	if sc.ClusterPort != 0 {
		opts.Cluster = server.ClusterOpts{Name: sc.ClusterName, Host: sc.ClusterHost, Port: sc.ClusterPort,
			Username: routeUser, Password: routePass, ConnectRetries: -1,
			PingInterval: routePingInterval, MaxPingsOut: routeMaxPingsOut}
		if tc != nil {
			ctc, err := server.GenTLSConfig(&server.TLSConfigOpts{CertFile: cfg.TLS.CertFile,
				KeyFile: cfg.TLS.KeyFile, CaFile: cfg.TLS.CAFile, Verify: true})
			if err != nil {
				return nil, fmt.Errorf("bus: TLS (routes): %w", err)
			}
			ctc.ClientAuth = tls.RequireAndVerifyClientCert
			ctc.RootCAs = ctc.ClientCAs
			opts.Cluster.TLSConfig, opts.Cluster.TLSTimeout = ctc, 2
		}
		routes, err := routeURLs(sc.Routes, routeUser, routePass)
		if err != nil {
			return nil, err
		}
		opts.Routes = routes
	}
	return opts, nil
}

// routeURLs parses route strings and adds the route credentials to those that
// have none.
func routeURLs(routes []string, user, pass string) ([]*url.URL, error) {
	out := make([]*url.URL, 0, len(routes))
	for i, r := range routes {
		u, err := routeURL(r)
		if err != nil {
			return nil, fmt.Errorf("bus: Server.Routes[%d]: %w", i, err)
		}
		if u.User == nil && user != "" {
			u.User = url.UserPassword(user, pass)
		}
		out = append(out, u)
	}
	return out, nil
}

// nkeyPublic reads an nkey seed file and returns the user's public key.
func nkeyPublic(file string) (string, error) {
	seed, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("bus: Auth.NKeyFile: %w", err)
	}
	kp, err := nkeys.ParseDecoratedNKey(seed)
	if err != nil {
		return "", fmt.Errorf("bus: Auth.NKeyFile: %w", err)
	}
	pub, err := kp.PublicKey()
	if err != nil {
		return "", fmt.Errorf("bus: Auth.NKeyFile: %w", err)
	}
	return pub, nil
}

// SetRoutes replaces the routes to the peers' servers (the same forms as
// ServerConfig.Routes). Routes no longer listed are closed, new ones are
// solicited; the server keeps running.
func (s *Server) SetRoutes(routes []string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.opts.Cluster.Port == 0 {
		return errors.New("bus: SetRoutes: clustering is off (Server.ClusterPort 0)")
	}
	urls, err := routeURLs(routes, s.opts.Cluster.Username, s.opts.Cluster.Password)
	if err != nil {
		return err
	}
	o := s.opts.Clone()
	// Keep the very same TLS configurations so that reload sees no change.
	o.TLSConfig, o.Cluster.TLSConfig = s.opts.TLSConfig, s.opts.Cluster.TLSConfig
	o.Routes = urls
	if err := s.ns.ReloadOptions(o); err != nil {
		return fmt.Errorf("bus: SetRoutes: %w", err)
	}
	s.opts = o
	return nil
}

// ClientURL returns the URL clients connect to ("nats://host:port").
func (s *Server) ClientURL() string { return s.ns.ClientURL() }

// ClusterAddr returns the address routes connect to ("host:port"), or "" when
// clustering is off.
func (s *Server) ClusterAddr() string {
	a := s.ns.ClusterAddr()
	if a == nil {
		return ""
	}
	return net.JoinHostPort(a.IP.String(), strconv.Itoa(a.Port))
}

// NumRoutes returns the number of peer servers this server has a route to
// (NATS may pool several connections per peer; they count once).
func (s *Server) NumRoutes() int {
	rz, err := s.ns.Routez(nil)
	if err != nil {
		return 0
	}
	peers := make(map[string]struct{}, len(rz.Routes))
	for _, r := range rz.Routes {
		peers[r.RemoteID] = struct{}{}
	}
	return len(peers)
}

// Shutdown stops the server and waits for it.
func (s *Server) Shutdown() {
	s.ns.Shutdown()
	s.ns.WaitForShutdown()
}

// serverLogger forwards nats-server log lines to Config.Logf.
type serverLogger struct {
	logf func(string, ...any)
	node string
}

func (l serverLogger) log(level, format string, v []any) {
	if l.logf != nil {
		l.logf("bus: nats-server %s: %s: %s", l.node, level, fmt.Sprintf(format, v...))
	}
}

func (l serverLogger) Noticef(format string, v ...any) { l.log("notice", format, v) }
func (l serverLogger) Warnf(format string, v ...any)   { l.log("warn", format, v) }
func (l serverLogger) Fatalf(format string, v ...any)  { l.log("fatal", format, v) }
func (l serverLogger) Errorf(format string, v ...any)  { l.log("error", format, v) }
func (l serverLogger) Debugf(format string, v ...any)  { l.log("debug", format, v) }
func (l serverLogger) Tracef(format string, v ...any)  { l.log("trace", format, v) }
