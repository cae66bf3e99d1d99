package bus

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"time"
)

// Defaults used by DefaultConfig, in one place.
const (
	DefaultSubjectPrefix  = "patchgate"
	DefaultShards         = 16
	DefaultBatchRecords   = 64
	DefaultBatchBytes     = 32 << 10
	DefaultFlushInterval  = 2 * time.Millisecond
	DefaultQueueLen       = 16384
	DefaultCacheEntries   = 1 << 20
	DefaultCacheBytes     = 512 << 20
	DefaultIdleExpiry     = 10 * time.Minute
	DefaultLookupTimeout  = 20 * time.Millisecond
	DefaultLookupGrace    = 2 * time.Millisecond
	DefaultHealthInterval = 10 * time.Second
	DefaultReconnectWait  = 250 * time.Millisecond
	DefaultServerHost     = "127.0.0.1"
	DefaultServerPort     = 4222
	DefaultClusterName    = "patchgate"
	DefaultClusterPort    = 6222

	// maxSubjectPrefix bounds the prefix; NATS subjects should stay short.
	maxSubjectPrefix = 128
	// maxShards bounds the number of subject shards.
	maxShards = 4096
	// maxBatchBytes keeps a batch under the default NATS max_payload (1 MiB).
	maxBatchBytes = 512 << 10
)

// Config configures a Bus. Exactly one of Server (embedded, the default) and
// URLs (an external NATS cluster) is used: when URLs is non-empty no server is
// embedded.
type Config struct {
	// NodeID names this node on the bus. Records a node published itself are
	// ignored by its cache and its lookups are not answered by its own
	// responder. Must be unique in the cluster.
	NodeID string

	// Server configures the embedded NATS server (used when URLs is empty).
	Server ServerConfig
	// URLs of an external NATS cluster ("nats://host:4222", "tls://..."). When
	// set, no server is embedded.
	URLs []string

	// TLS for the client connection to an external cluster and, in embedded
	// mode, the embedded server's certificate for clients and routes.
	TLS TLSConfig
	// Auth are the credentials the client presents and, in embedded mode,
	// the credentials the embedded server requires from clients and routes.
	Auth AuthConfig

	// SubjectPrefix starts every subject: <prefix>.ckpt.<shard> and
	// <prefix>.lookup.<shard>.
	SubjectPrefix string
	// Shards is the number of subject shards; a flow's shard is
	// Key.Hash() % Shards. All nodes of a cluster must agree on it.
	Shards int

	// BatchRecords and BatchBytes bound a batch (one NATS message per shard
	// subject); a batch is flushed when either is reached or FlushInterval
	// after its first record.
	BatchRecords  int
	BatchBytes    int
	FlushInterval time.Duration
	// QueueLen bounds the checkpoints waiting for the batching goroutine;
	// Publish drops (and counts) records when it is full.
	QueueLen int

	// CacheEntries and CacheBytes bound the checkpoint cache (least recently
	// used entries are evicted first); entries untouched for IdleExpiry expire.
	CacheEntries int
	CacheBytes   int64
	IdleExpiry   time.Duration

	// LookupTimeout bounds a bus lookup (and so the time Resume holds a
	// flow's packets), like pfsync's 20 ms defer.
	LookupTimeout time.Duration
	// LookupGrace is how long a lookup that got an answer from another node's
	// cache waits for a fresher answer from the node that holds the flow live.
	LookupGrace time.Duration

	// HealthInterval is the window in which a dropped checkpoint marks the
	// bus degraded.
	HealthInterval time.Duration
	// ReconnectWait is the pause between reconnection attempts.
	ReconnectWait time.Duration

	// Logf receives the embedded server's and the client's log lines
	// (nil: discarded). It may be called from any goroutine.
	Logf func(format string, args ...any) `json:"-" yaml:"-"`
}

// ServerConfig configures the embedded NATS server.
type ServerConfig struct {
	// Host and Port the server listens on for clients (Port -1: random).
	Host string
	Port int
	// ClusterName is the NATS cluster name; all nodes must agree.
	ClusterName string
	// ClusterHost and ClusterPort the server listens on for routes from the
	// other nodes' servers (ClusterPort -1: random, 0: no clustering).
	ClusterHost string
	ClusterPort int
	// Routes are the route URLs of the peers' servers ("host:port" or
	// "nats-route://host:port"). They can be replaced at run time with
	// Server.SetRoutes (membership reports the peers).
	Routes []string
}

// TLSConfig names PEM files. In embedded mode CertFile/KeyFile are the
// server's certificate (for clients and routes) and CAFile verifies route
// peers (and clients when VerifyClients is set). With an external cluster they
// are the client certificate (optional) and the CA that verifies the servers.
type TLSConfig struct {
	CertFile string
	KeyFile  string
	CAFile   string
	// VerifyClients requires client certificates signed by CAFile (embedded).
	VerifyClients bool
}

// Enabled reports whether any TLS file is configured.
func (t TLSConfig) Enabled() bool { return t.CertFile != "" || t.KeyFile != "" || t.CAFile != "" }

// AuthConfig holds one kind of credentials: a user and password, a token, an
// nkey seed file, or (external clusters only) a JWT creds file.
type AuthConfig struct {
	User      string
	Password  string
	Token     string
	NKeyFile  string
	CredsFile string
}

// kind returns which credential is set, or "" for none.
func (a AuthConfig) kind() string {
	var set []string
	if a.User != "" || a.Password != "" {
		set = append(set, "user")
	}
	if a.Token != "" {
		set = append(set, "token")
	}
	if a.NKeyFile != "" {
		set = append(set, "nkey")
	}
	if a.CredsFile != "" {
		set = append(set, "creds")
	}
	return strings.Join(set, "+")
}

// DefaultConfig returns an embedded-server configuration listening on
// loopback with the default ports and no peers.
func DefaultConfig() Config {
	host, _ := os.Hostname()
	if host == "" {
		host = "node"
	}
	return Config{
		NodeID: fmt.Sprintf("%s-%d", host, os.Getpid()),
		Server: ServerConfig{
			Host:        DefaultServerHost,
			Port:        DefaultServerPort,
			ClusterName: DefaultClusterName,
			ClusterHost: DefaultServerHost,
			ClusterPort: DefaultClusterPort,
		},
		SubjectPrefix:  DefaultSubjectPrefix,
		Shards:         DefaultShards,
		BatchRecords:   DefaultBatchRecords,
		BatchBytes:     DefaultBatchBytes,
		FlushInterval:  DefaultFlushInterval,
		QueueLen:       DefaultQueueLen,
		CacheEntries:   DefaultCacheEntries,
		CacheBytes:     DefaultCacheBytes,
		IdleExpiry:     DefaultIdleExpiry,
		LookupTimeout:  DefaultLookupTimeout,
		LookupGrace:    DefaultLookupGrace,
		HealthInterval: DefaultHealthInterval,
		ReconnectWait:  DefaultReconnectWait,
	}
}

// Embedded reports whether the configuration embeds a NATS server.
func (c *Config) Embedded() bool { return len(c.URLs) == 0 }

// Validate reports the first invalid field.
func (c *Config) Validate() error {
	if err := validToken(c.NodeID); err != nil {
		return fmt.Errorf("bus: NodeID: %w", err)
	}
	if len(c.NodeID) > maxNodeID {
		return fmt.Errorf("bus: NodeID: longer than %d bytes", maxNodeID)
	}
	if len(c.SubjectPrefix) > maxSubjectPrefix {
		return fmt.Errorf("bus: SubjectPrefix: longer than %d bytes", maxSubjectPrefix)
	}
	for _, tok := range strings.Split(c.SubjectPrefix, ".") {
		if err := validToken(tok); err != nil {
			return fmt.Errorf("bus: SubjectPrefix %q: %w", c.SubjectPrefix, err)
		}
	}
	if c.Shards < 1 || c.Shards > maxShards {
		return fmt.Errorf("bus: Shards %d: must be in [1, %d]", c.Shards, maxShards)
	}
	if c.BatchRecords < 1 {
		return fmt.Errorf("bus: BatchRecords %d: must be positive", c.BatchRecords)
	}
	if c.BatchBytes < 1 || c.BatchBytes > maxBatchBytes {
		return fmt.Errorf("bus: BatchBytes %d: must be in [1, %d]", c.BatchBytes, maxBatchBytes)
	}
	if c.FlushInterval <= 0 {
		return fmt.Errorf("bus: FlushInterval %v: must be positive", c.FlushInterval)
	}
	if c.QueueLen < 1 {
		return fmt.Errorf("bus: QueueLen %d: must be positive", c.QueueLen)
	}
	if c.CacheEntries < 1 {
		return fmt.Errorf("bus: CacheEntries %d: must be positive", c.CacheEntries)
	}
	if c.CacheBytes < 1 {
		return fmt.Errorf("bus: CacheBytes %d: must be positive", c.CacheBytes)
	}
	if c.IdleExpiry <= 0 {
		return fmt.Errorf("bus: IdleExpiry %v: must be positive", c.IdleExpiry)
	}
	if c.LookupTimeout <= 0 || c.LookupTimeout > 5*time.Second {
		return fmt.Errorf("bus: LookupTimeout %v: must be in (0, 5s] (the node holds packets meanwhile)", c.LookupTimeout)
	}
	if c.LookupGrace < 0 {
		return fmt.Errorf("bus: LookupGrace %v: must not be negative", c.LookupGrace)
	}
	if c.HealthInterval <= 0 {
		return fmt.Errorf("bus: HealthInterval %v: must be positive", c.HealthInterval)
	}
	if c.ReconnectWait <= 0 {
		return fmt.Errorf("bus: ReconnectWait %v: must be positive", c.ReconnectWait)
	}
	if k := c.Auth.kind(); strings.Contains(k, "+") {
		return fmt.Errorf("bus: Auth: set only one kind of credentials, got %s", k)
	}
	if c.Auth.User != "" && c.Auth.Password == "" || c.Auth.User == "" && c.Auth.Password != "" {
		return errors.New("bus: Auth.User and Auth.Password: set both or neither")
	}
	if err := c.TLS.validate(); err != nil {
		return err
	}
	if !c.Embedded() {
		for i, u := range c.URLs {
			pu, err := url.Parse(u)
			if err != nil || pu.Host == "" {
				return fmt.Errorf("bus: URLs[%d] %q: not a URL like nats://host:4222", i, u)
			}
		}
		return nil
	}
	if c.Auth.CredsFile != "" {
		return errors.New("bus: Auth.CredsFile: JWT creds need an external (operator-mode) cluster; the embedded server takes user/password, token or nkey")
	}
	if (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
		return errors.New("bus: TLS.CertFile and TLS.KeyFile: the embedded server needs both")
	}
	if c.TLS.VerifyClients && c.TLS.CAFile == "" {
		return errors.New("bus: TLS.VerifyClients: needs TLS.CAFile")
	}
	if c.Server.ClusterPort != 0 && c.TLS.CertFile != "" && c.TLS.CAFile == "" {
		return errors.New("bus: TLS.CAFile: routes between embedded servers use mutual TLS and need the CA")
	}
	if c.Server.ClusterPort != 0 && c.Auth.NKeyFile != "" && c.TLS.CertFile == "" {
		return errors.New("bus: Auth.NKeyFile: with clustering, routes authenticate by mutual TLS: set TLS.CertFile, TLS.KeyFile and TLS.CAFile")
	}
	if c.TLS.CAFile != "" && c.TLS.CertFile == "" {
		return errors.New("bus: TLS.CAFile: the embedded server also needs TLS.CertFile and TLS.KeyFile")
	}
	return c.Server.validate()
}

func (t TLSConfig) validate() error {
	for name, f := range map[string]string{"TLS.CertFile": t.CertFile, "TLS.KeyFile": t.KeyFile, "TLS.CAFile": t.CAFile} {
		if f == "" {
			continue
		}
		if _, err := os.Stat(f); err != nil {
			return fmt.Errorf("bus: %s: %w", name, err)
		}
	}
	if (t.CertFile == "") != (t.KeyFile == "") {
		return errors.New("bus: TLS.CertFile and TLS.KeyFile: set both or neither")
	}
	return nil
}

func (s *ServerConfig) validate() error {
	if s.Host == "" {
		return errors.New("bus: Server.Host: empty")
	}
	if s.Port < -1 || s.Port > 65535 || s.Port == 0 {
		return fmt.Errorf("bus: Server.Port %d: must be a port or -1 (random)", s.Port)
	}
	if s.ClusterPort < -1 || s.ClusterPort > 65535 {
		return fmt.Errorf("bus: Server.ClusterPort %d: must be a port, -1 (random) or 0 (no cluster)", s.ClusterPort)
	}
	if s.ClusterPort != 0 {
		if err := validToken(s.ClusterName); err != nil {
			return fmt.Errorf("bus: Server.ClusterName: %w", err)
		}
		if s.ClusterHost == "" {
			return errors.New("bus: Server.ClusterHost: empty")
		}
	}
	if s.ClusterPort == 0 && len(s.Routes) > 0 {
		return errors.New("bus: Server.Routes: set but ClusterPort is 0 (clustering off)")
	}
	for i, r := range s.Routes {
		if _, err := routeURL(r); err != nil {
			return fmt.Errorf("bus: Server.Routes[%d]: %w", i, err)
		}
	}
	return nil
}

// routeURL parses "host:port" or "nats-route://[user:pass@]host:port".
func routeURL(r string) (*url.URL, error) {
	if !strings.Contains(r, "://") {
		r = "nats-route://" + r
	}
	u, err := url.Parse(r)
	if err != nil {
		return nil, fmt.Errorf("route %q: %w", r, err)
	}
	if _, _, err := net.SplitHostPort(u.Host); err != nil {
		return nil, fmt.Errorf("route %q: %w", r, err)
	}
	return u, nil
}

// validToken accepts a non-empty NATS subject token without wildcards or
// whitespace.
func validToken(s string) error {
	if s == "" {
		return errors.New("empty")
	}
	if strings.ContainsAny(s, ".*> \t\r\n") {
		return fmt.Errorf("%q contains one of '.', '*', '>' or whitespace", s)
	}
	return nil
}
