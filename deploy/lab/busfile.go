package lab

import (
	"net/netip"
)

// BusFile is the node file's bus section (node.BusConfig, node/README.md):
// the shared flow-state bus. Empty fields are left out, so the node's
// defaults apply.
type BusFile struct {
	Enabled          bool     `yaml:"enabled"`
	Listen           string   `yaml:"listen,omitempty"`
	ClusterListen    string   `yaml:"cluster_listen,omitempty"`
	ClusterAdvertise string   `yaml:"cluster_advertise,omitempty"`
	Routes           []string `yaml:"routes,omitempty"`
	LookupTimeout    string   `yaml:"lookup_timeout,omitempty"`
}

// BusClusterPort is the port of a node's embedded NATS server's routes on
// its ClusterAddr.
const BusClusterPort = 6222

// DefaultBusFile returns node i's bus section for an embedded NATS cluster
// of every lab node: clients on loopback, routes on ClusterAddr(i) port
// BusClusterPort, static routes to the other nodes' (which they reach once
// ClusterRoutes has been applied). L3 variant only.
func (l *Lab) DefaultBusFile(i int) (*BusFile, error) {
	addr, err := l.ClusterAddr(i)
	if err != nil {
		return nil, err
	}
	f := &BusFile{Enabled: true, Listen: "127.0.0.1:4222",
		ClusterListen: netip.AddrPortFrom(addr, BusClusterPort).String()}
	for _, o := range l.Nodes {
		if o.Index == i {
			continue
		}
		oa, err := l.ClusterAddr(o.Index)
		if err != nil {
			return nil, err
		}
		f.Routes = append(f.Routes, netip.AddrPortFrom(oa, BusClusterPort).String())
	}
	return f, nil
}

// HealthListen is the http.listen that makes node i's /healthz reachable
// from R1 (for StartWithdrawal): its ClusterAddr and port.
func (l *Lab) HealthListen(i, port int) (string, error) {
	addr, err := l.ClusterAddr(i)
	if err != nil {
		return "", err
	}
	return netip.AddrPortFrom(addr, uint16(port)).String(), nil
}
