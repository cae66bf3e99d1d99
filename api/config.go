package api

import (
	"errors"
	"fmt"
	"net"
	"time"
)

// Defaults of the API configuration.
const (
	DefaultListen         = "127.0.0.1:7400"
	DefaultRatePerSecond  = 200
	DefaultBurst          = 400
	DefaultForwardTimeout = 15 * time.Second
	DefaultPeerTimeout    = time.Second
	// MinTokenLength is the shortest bearer token accepted (a token is a
	// shared secret: generate it, e.g. `openssl rand -hex 32`).
	MinTokenLength = 16
)

// TLSConfig names PEM files for the API's transport security.
type TLSConfig struct {
	// CertFile and KeyFile are this node's certificate and key (server, and
	// client certificate when forwarding or fanning out).
	CertFile string `yaml:"cert"`
	KeyFile  string `yaml:"key"`
	// CAFile is the cluster CA. When set, clients must present a certificate
	// it signed (mutual TLS), which authenticates them; peers' server
	// certificates are verified against it too.
	CAFile string `yaml:"ca"`
}

// Enabled reports whether a certificate is configured.
func (t TLSConfig) Enabled() bool { return t.CertFile != "" }

// Config configures the API server of a node.
//
// Authentication is never off by default: a call needs a valid bearer token
// (Token) or a client certificate signed by the cluster CA (TLS.CAFile). A
// configuration with neither is refused by Validate unless Insecure is set,
// and Insecure is accepted only on a loopback listen address (a one-host lab).
type Config struct {
	// Listen is host:port (port 0 picks one).
	Listen string `yaml:"listen"`
	// Advertise is the address peers and the leader's followers dial ("":
	// the bound address, which then must not be unspecified).
	Advertise string `yaml:"advertise"`
	// Token is the bearer token every caller must send ("authorization:
	// bearer TOKEN"). Nodes use it when forwarding writes.
	Token string    `yaml:"token"`
	TLS   TLSConfig `yaml:"tls"`
	// Insecure accepts unauthenticated calls; loopback listen addresses only.
	Insecure bool `yaml:"insecure"`
	// RatePerSecond and Burst shape the token bucket shared by all callers
	// of this node.
	RatePerSecond float64 `yaml:"rate_per_second"`
	Burst         int     `yaml:"burst"`
	// ForwardTimeout bounds a write forwarded to the leader; PeerTimeout a
	// status query to a peer.
	ForwardTimeout time.Duration `yaml:"forward_timeout"`
	PeerTimeout    time.Duration `yaml:"peer_timeout"`
}

// DefaultConfig returns the defaults. They are not usable as they are: set
// Token or TLS (or Insecure for a loopback lab).
func DefaultConfig() Config {
	return Config{Listen: DefaultListen, RatePerSecond: DefaultRatePerSecond, Burst: DefaultBurst,
		ForwardTimeout: DefaultForwardTimeout, PeerTimeout: DefaultPeerTimeout}
}

// ErrOpen is returned by Validate for a configuration without any
// authentication.
var ErrOpen = errors.New("no token and no client CA: the API would be open (set token, tls.ca, or insecure: true on a loopback address)")

// Validate reports the first wrong field.
func (c *Config) Validate() error {
	bad := func(field, format string, args ...any) error {
		return fmt.Errorf("api: config: %s: %s", field, fmt.Sprintf(format, args...))
	}
	host, _, err := net.SplitHostPort(c.Listen)
	if err != nil {
		return bad("listen", "%q is not host:port: %v", c.Listen, err)
	}
	if c.Advertise != "" {
		if _, _, err := net.SplitHostPort(c.Advertise); err != nil {
			return bad("advertise", "%q is not host:port: %v", c.Advertise, err)
		}
	}
	if c.Token != "" && len(c.Token) < MinTokenLength {
		return bad("token", "shorter than %d characters", MinTokenLength)
	}
	if (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
		return bad("tls.cert", "cert and key must be set together")
	}
	if c.TLS.CAFile != "" && !c.TLS.Enabled() {
		return bad("tls.ca", "client certificates need a server certificate (tls.cert, tls.key)")
	}
	if c.Token == "" && c.TLS.CAFile == "" {
		if !c.Insecure {
			return bad("token", "%v", ErrOpen)
		}
		if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
			return bad("insecure", "allowed only on a loopback listen address, not %q", host)
		}
	}
	if c.RatePerSecond <= 0 {
		return bad("rate_per_second", "%v must be positive", c.RatePerSecond)
	}
	if c.Burst < 1 {
		return bad("burst", "%d must be at least 1", c.Burst)
	}
	if c.ForwardTimeout <= 0 {
		return bad("forward_timeout", "%v must be positive", c.ForwardTimeout)
	}
	if c.PeerTimeout <= 0 {
		return bad("peer_timeout", "%v must be positive", c.PeerTimeout)
	}
	return nil
}
