package node

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/patchgate/patchgate/bus"
)

// BusConfig is the `bus:` section: the shared flow-state bus (package bus)
// over which nodes exchange flow checkpoints so that a flow moved to another
// node keeps being inspected (and stays blocked). Off unless Enabled.
//
// By default the node embeds a NATS server listening on Listen for clients and
// on ClusterListen for routes from the other nodes' servers. The peers are
// taken from the cluster membership when the `cluster:` section is set (each
// node gossips ClusterAdvertise), else from Routes. With URLs set the node is
// a client of an external NATS cluster and embeds no server.
type BusConfig struct {
	Enabled bool `yaml:"enabled"`
	// NodeID names the node on the bus ("": the node's name).
	NodeID string `yaml:"node_id"`
	// Listen is host:port for NATS clients of the embedded server (port 0:
	// random).
	Listen string `yaml:"listen"`
	// ClusterListen is host:port for routes from peers (port 0: random, "":
	// no clustering); ClusterAdvertise is what peers dial ("": ClusterListen).
	ClusterListen    string `yaml:"cluster_listen"`
	ClusterAdvertise string `yaml:"cluster_advertise"`
	// ClusterName must be the same on every node.
	ClusterName string `yaml:"cluster_name"`
	// Routes are the peers' route addresses (host:port) when there is no
	// cluster membership to take them from.
	Routes []string `yaml:"routes"`
	// URLs of an external NATS cluster (nats://host:4222, tls://...).
	URLs []string `yaml:"urls"`
	// SubjectPrefix and Shards must be the same on every node.
	SubjectPrefix string  `yaml:"subject_prefix"`
	Shards        int     `yaml:"shards"`
	TLS           BusTLS  `yaml:"tls"`
	Auth          BusAuth `yaml:"auth"`
	// LookupTimeout bounds how long the node holds the packets of a flow it
	// does not know while it asks the bus for its checkpoint.
	LookupTimeout time.Duration `yaml:"lookup_timeout"`
	// CacheEntries and CacheBytes bound the checkpoint cache; entries idle
	// for IdleExpiry expire.
	CacheEntries int           `yaml:"cache_entries"`
	CacheBytes   int64         `yaml:"cache_bytes"`
	IdleExpiry   time.Duration `yaml:"idle_expiry"`
}

// BusTLS names PEM files (see bus.TLSConfig).
type BusTLS struct {
	CertFile      string `yaml:"cert_file"`
	KeyFile       string `yaml:"key_file"`
	CAFile        string `yaml:"ca_file"`
	VerifyClients bool   `yaml:"verify_clients"`
}

// BusAuth holds one kind of bus credentials (see bus.AuthConfig).
type BusAuth struct {
	User      string `yaml:"user"`
	Password  string `yaml:"password"`
	Token     string `yaml:"token"`
	NKeyFile  string `yaml:"nkey_file"`
	CredsFile string `yaml:"creds_file"`
}

// DefaultBusConfig returns the defaults of the bus section (disabled).
func DefaultBusConfig() BusConfig {
	d := bus.DefaultConfig()
	return BusConfig{
		Listen:        net.JoinHostPort(d.Server.Host, strconv.Itoa(d.Server.Port)),
		ClusterListen: net.JoinHostPort(d.Server.ClusterHost, strconv.Itoa(d.Server.ClusterPort)),
		ClusterName:   d.Server.ClusterName, SubjectPrefix: d.SubjectPrefix, Shards: d.Shards,
		LookupTimeout: d.LookupTimeout, CacheEntries: d.CacheEntries, CacheBytes: d.CacheBytes,
		IdleExpiry: d.IdleExpiry,
	}
}

// busFieldPaths maps bus.Config field names in bus.Validate errors to the
// YAML paths of this section (longest first).
var busFieldPaths = []struct{ goName, path string }{
	{"Server.ClusterHost", "bus.cluster_listen"}, {"Server.ClusterPort", "bus.cluster_listen"},
	{"Server.ClusterName", "bus.cluster_name"}, {"Server.Routes", "bus.routes"},
	{"Server.Host", "bus.listen"}, {"Server.Port", "bus.listen"},
	{"TLS.CertFile", "bus.tls.cert_file"}, {"TLS.KeyFile", "bus.tls.key_file"}, {"TLS.CAFile", "bus.tls.ca_file"},
	{"TLS.VerifyClients", "bus.tls.verify_clients"},
	{"Auth.NKeyFile", "bus.auth.nkey_file"}, {"Auth.CredsFile", "bus.auth.creds_file"},
	{"Auth.User", "bus.auth.user"}, {"Auth", "bus.auth"},
	{"NodeID", "bus.node_id"}, {"SubjectPrefix", "bus.subject_prefix"}, {"Shards", "bus.shards"},
	{"URLs", "bus.urls"}, {"LookupTimeout", "bus.lookup_timeout"}, {"CacheEntries", "bus.cache_entries"},
	{"CacheBytes", "bus.cache_bytes"}, {"IdleExpiry", "bus.idle_expiry"},
}

// validate appends problems of the section to bad (paths under bus.). It is
// only called when the section is enabled.
func (c *BusConfig) validate(name string, bad func(path, format string, args ...any)) {
	bc, err := c.busConfig(name)
	if err != nil {
		var fe *FieldError
		if ok := asFieldError(err, &fe); ok {
			bad(fe.Path, "%s", fe.Msg)
			return
		}
		bad("bus", "%v", err)
		return
	}
	if c.ClusterAdvertise != "" {
		if _, _, err := net.SplitHostPort(c.ClusterAdvertise); err != nil {
			bad("bus.cluster_advertise", "%q is not host:port", c.ClusterAdvertise)
		}
	}
	if err := bc.Validate(); err != nil {
		msg := strings.TrimPrefix(err.Error(), "bus: ")
		for _, f := range busFieldPaths {
			if strings.HasPrefix(msg, f.goName) {
				bad(f.path, "%s", msg)
				return
			}
		}
		bad("bus", "%s", msg)
	}
}

func asFieldError(err error, fe **FieldError) bool {
	e, ok := err.(*FieldError)
	if ok {
		*fe = e
	}
	return ok
}

// splitListen parses host:port for the embedded server; port 0 becomes -1
// (random) as package bus expects.
func splitListen(path, s string) (string, int, error) {
	host, port, err := net.SplitHostPort(s)
	p, perr := strconv.Atoi(port)
	if err != nil || perr != nil || p < 0 || p > 65535 || host == "" {
		return "", 0, &FieldError{Path: path, Msg: fmt.Sprintf("must be host:port with a host, got %q", s)}
	}
	if p == 0 {
		p = -1
	}
	return host, p, nil
}

// busConfig builds the bus configuration of node name. Errors are
// *FieldError for this section's own syntax; bus.Config.Validate is not run.
func (c *BusConfig) busConfig(name string) (bus.Config, error) {
	bc := bus.DefaultConfig()
	bc.NodeID = c.NodeID
	if bc.NodeID == "" {
		bc.NodeID = name
	}
	bc.URLs = append([]string(nil), c.URLs...)
	if len(c.URLs) == 0 {
		host, port, err := splitListen("bus.listen", c.Listen)
		if err != nil {
			return bc, err
		}
		bc.Server.Host, bc.Server.Port = host, port
		bc.Server.ClusterPort = 0
		if c.ClusterListen != "" {
			host, port, err := splitListen("bus.cluster_listen", c.ClusterListen)
			if err != nil {
				return bc, err
			}
			bc.Server.ClusterHost, bc.Server.ClusterPort = host, port
		}
		bc.Server.ClusterName = c.ClusterName
		bc.Server.Routes = append([]string(nil), c.Routes...)
	} else if len(c.Routes) > 0 {
		return bc, &FieldError{Path: "bus.routes", Msg: "routes are for the embedded server; with urls no server is embedded"}
	}
	bc.SubjectPrefix, bc.Shards = c.SubjectPrefix, c.Shards
	bc.TLS = bus.TLSConfig{CertFile: c.TLS.CertFile, KeyFile: c.TLS.KeyFile, CAFile: c.TLS.CAFile, VerifyClients: c.TLS.VerifyClients}
	bc.Auth = bus.AuthConfig{User: c.Auth.User, Password: c.Auth.Password, Token: c.Auth.Token,
		NKeyFile: c.Auth.NKeyFile, CredsFile: c.Auth.CredsFile}
	bc.LookupTimeout = c.LookupTimeout
	bc.CacheEntries, bc.CacheBytes, bc.IdleExpiry = c.CacheEntries, c.CacheBytes, c.IdleExpiry
	return bc, nil
}
