package waf

import (
	"fmt"
	"path/filepath"
	"time"
)

// Defaults of Config.
const (
	DefaultDuration         = 10 * time.Second
	DefaultUnloadedDuration = 5 * time.Second
	DefaultConnections      = 32
	DefaultThreads          = 2
	DefaultPings            = 2000
	DefaultPingTimeout      = time.Second
	DefaultRequestWait      = 3 * time.Second
	DefaultModSecModule     = "/usr/lib/nginx/modules/ngx_http_modsecurity_module.so"
	DefaultNDKModule        = "/usr/lib/nginx/modules/ndk_http_module.so"
	DefaultCRSSetup         = "/etc/modsecurity/crs/crs-setup.conf"
	DefaultCRSRules         = "/usr/share/modsecurity-crs/rules"
	// BackendPort, ProxyPort and EchoPort are the ports in the server
	// namespace: the backend, nginx in front of it, the UDP echo server.
	BackendPort = 8080
	ProxyPort   = 8081
	EchoPort    = 7007
)

// Config configures Run. Start from DefaultConfig.
type Config struct {
	// Patches is the full shipped catalog (the node's patch directory, e.g.
	// /abs/patches); its http/ subdirectory gives the exploit corpus.
	Patches string `json:"patches"`
	// Binary is the patchgate executable the lab node runs.
	Binary string `json:"binary"`
	// StateRoot holds the lab's state directory; empty means a temporary
	// directory removed afterwards.
	StateRoot string `json:"state_root,omitempty"`
	// Duration is the length of each wrk run.
	Duration time.Duration `json:"duration"`
	// UnloadedDuration is the length of a second wrk run per path with one
	// connection (latency without queueing); 0 skips it.
	UnloadedDuration time.Duration `json:"unloaded_duration"`
	// Connections and Threads are wrk's -c and -t.
	Connections int `json:"connections"`
	Threads     int `json:"threads"`
	// Pings is the number of UDP round trips per path for per-packet latency.
	Pings int `json:"pings"`
	// PingTimeout bounds one round trip (a lost datagram counts as lost).
	PingTimeout time.Duration `json:"ping_timeout"`
	// RequestWait bounds the wait for the answer to one corpus request.
	RequestWait time.Duration `json:"request_wait"`
	// ModSecModule, NDKModule are the nginx modules loaded; CRSSetup and
	// CRSRules the Debian CRS files.
	ModSecModule string `json:"modsec_module"`
	NDKModule    string `json:"ndk_module"`
	CRSSetup     string `json:"crs_setup"`
	CRSRules     string `json:"crs_rules"`
	// Nginx are the nginx paths measured, in order: ModeProxy (no
	// ModSecurity), ModeCVE (the CVE rules only), ModeCRS (CRS and the
	// CVE rules).
	Nginx []string `json:"nginx"`
	// Log, when set, receives progress lines.
	Log func(format string, args ...any) `json:"-"`
}

// DefaultConfig returns 10 s wrk runs with 32 connections on 2 threads and
// 5 s with one connection, 2000
// pings per path, the three nginx modes and the Debian paths of nginx's
// ModSecurity module and CRS.
// Patches and Binary must be set.
func DefaultConfig() Config {
	return Config{
		Duration:         DefaultDuration,
		UnloadedDuration: DefaultUnloadedDuration,
		Connections:      DefaultConnections,
		Threads:          DefaultThreads,
		Pings:            DefaultPings,
		PingTimeout:      DefaultPingTimeout,
		RequestWait:      DefaultRequestWait,
		ModSecModule:     DefaultModSecModule,
		NDKModule:        DefaultNDKModule,
		CRSSetup:         DefaultCRSSetup,
		CRSRules:         DefaultCRSRules,
		Nginx:            []string{ModeProxy, ModeCVE, ModeCRS},
	}
}

// Validate names the first field that is wrong.
func (c Config) Validate() error {
	switch {
	case c.Patches == "" || !filepath.IsAbs(c.Patches):
		return fmt.Errorf("bench/waf: config: patches: must be an absolute directory, got %q", c.Patches)
	case c.Binary == "" || !filepath.IsAbs(c.Binary):
		return fmt.Errorf("bench/waf: config: binary: must be an absolute path to patchgate, got %q", c.Binary)
	case c.Duration < time.Second:
		return fmt.Errorf("bench/waf: config: duration: must be at least 1s (wrk's resolution), got %v", c.Duration)
	case c.UnloadedDuration != 0 && c.UnloadedDuration < time.Second:
		return fmt.Errorf("bench/waf: config: unloaded_duration: must be 0 or at least 1s, got %v", c.UnloadedDuration)
	case c.Connections < 1:
		return fmt.Errorf("bench/waf: config: connections: must be at least 1, got %d", c.Connections)
	case c.Threads < 1 || c.Threads > c.Connections:
		return fmt.Errorf("bench/waf: config: threads: must be 1..connections (%d), got %d", c.Connections, c.Threads)
	case c.Pings < 1:
		return fmt.Errorf("bench/waf: config: pings: must be at least 1, got %d", c.Pings)
	case c.PingTimeout <= 0:
		return fmt.Errorf("bench/waf: config: ping_timeout: must be positive, got %v", c.PingTimeout)
	case c.RequestWait <= 0:
		return fmt.Errorf("bench/waf: config: request_wait: must be positive, got %v", c.RequestWait)
	case c.ModSecModule == "" || c.CRSSetup == "" || c.CRSRules == "":
		return fmt.Errorf("bench/waf: config: modsec_module, crs_setup and crs_rules must be set")
	}
	for _, m := range c.Nginx {
		if m != ModeProxy && m != ModeCVE && m != ModeCRS {
			return fmt.Errorf("bench/waf: config: nginx: unknown mode %q (want %s, %s or %s)", m, ModeProxy, ModeCVE, ModeCRS)
		}
	}
	return nil
}

func (c Config) logf(format string, args ...any) {
	if c.Log != nil {
		c.Log(format, args...)
	}
}
