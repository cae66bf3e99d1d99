package lab

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
)

// The lab's address plan. Every address is from a documentation range
// (RFC 5737, RFC 3849) or the benchmarking range (RFC 2544) and exists only
// inside the lab's namespaces.
var (
	// ClientLAN4 and ClientLAN6 are the clients' LAN behind R1. Hosts .1 to
	// .200 (::1 to ::c8) are what dataplane/gen.Mix uses for the client side
	// of generated captures, which the replay tap plays; lab clients are .201
	// upward (::201 upward).
	ClientLAN4 = netip.MustParsePrefix("198.51.100.0/24")
	ClientLAN6 = netip.MustParsePrefix("2001:db8:1::/64")
	// ServerLAN4 and ServerLAN6 are the servers' LAN behind R2 (gen.Mix
	// servers are .10 to .13 and ::a to ::d; lab servers .201 upward).
	ServerLAN4 = netip.MustParsePrefix("203.0.113.0/24")
	ServerLAN6 = netip.MustParsePrefix("2001:db8:2::/64")
	// R1LAN4/6 and R2LAN4/6 are the routers' addresses on those LANs, the
	// hosts' default gateways.
	R1LAN4 = netip.MustParseAddr("198.51.100.254")
	R1LAN6 = netip.MustParseAddr("2001:db8:1::fe")
	R2LAN4 = netip.MustParseAddr("203.0.113.254")
	R2LAN6 = netip.MustParseAddr("2001:db8:2::fe")
)

// hostBase is added to a host's 1-based index for its last address byte.
const hostBase = 200

// Iface is one interface of a namespace. Addr4/Addr6 are invalid when the
// interface has no address (an L2 node's ports, the replay tap).
type Iface struct {
	Name  string
	MAC   net.HardwareAddr
	Addr4 netip.Prefix
	Addr6 netip.Prefix
}

// Host is a client or server namespace with one interface, eth0.
type Host struct {
	// Role is the short name ("c1", "s2"); NS the namespace name.
	Role string
	NS   string
	// Addr4 and Addr6 are the host's addresses on its LAN.
	Addr4 netip.Addr
	Addr6 netip.Addr
	MAC   net.HardwareAddr
}

// Node is one gateway node namespace.
type Node struct {
	// Index is the node's number, from 1.
	Index int
	// Role is "n<Index>"; NS the namespace; Name the node name written into
	// its config ("<prefix>-n<Index>").
	Role string
	NS   string
	Name string
	// In faces R1 (eth0), Out faces R2 (eth1). In the L2 variant neither has
	// an address.
	In  Iface
	Out Iface
}

// Router is R1 (client side) or R2 (server side).
type Router struct {
	NS string
	// LAN is the bridge the hosts (and the replay tap) attach to.
	LAN Iface
	// Links are the interfaces toward the nodes, Links[i-1] for node i.
	Links []Iface
	// NextHops are the multipath route's next hops, NextHops[i-1] through
	// node i: the node's interface (L3) or the other router's (L2).
	NextHops []NextHop
}

// NextHop is one member of a router's ECMP group.
type NextHop struct {
	Dev   string
	Addr4 netip.Addr
	Addr6 netip.Addr
	MAC   net.HardwareAddr
}

// Tap is the replay namespace: C is a port on R1's LAN, S a port on R2's
// LAN. tcpreplay in the tap sends the client side of a capture out of C and
// the server side out of S, in one ordered stream; what crosses the lab comes
// back on the other interface. Neither interface has an address, so the tap
// never answers what it receives.
type Tap struct {
	NS string
	C  Iface
	S  Iface
}

// MAC addresses: 02:70:67 ("pg", locally administered), a role byte, an
// index and a side, so every frame in a capture says where it came from.
const (
	roleR1     = 0x01
	roleR2     = 0x02
	roleServer = 0x05
	roleTap    = 0x07
	roleClient = 0x0c
	roleNode   = 0x0e
)

func mac(role, idx, side byte) net.HardwareAddr {
	return net.HardwareAddr{0x02, 0x70, 0x67, role, idx, side}
}

func pfx(s string) netip.Prefix { return netip.MustParsePrefix(s) }

// transit returns the address of host h in transit net (18 or 19) of link i.
func transit4(net, i, h int) netip.Prefix { return pfx(fmt.Sprintf("198.%d.%d.%d/24", net, i, h)) }
func transit6(net, i, h int) netip.Prefix {
	return pfx(fmt.Sprintf("2001:db8:%d:%x::%d/64", net, i, h))
}

// hostAddrs returns host i's addresses on a LAN (v4 .200+i, v6 ::2xx).
func hostAddrs(lan4, lan6 netip.Prefix, i int) (netip.Addr, netip.Addr) {
	a4 := lan4.Addr().As4()
	a4[3] = byte(hostBase + i)
	a6 := lan6.Addr().As16()
	v := 0x200 + i
	a6[14], a6[15] = byte(v>>8), byte(v)
	return netip.AddrFrom4(a4), netip.AddrFrom16(a6)
}

// nsName is the namespace of a role in the lab with the given prefix.
func nsName(prefix, role string) string { return prefix + "-" + role }

// plan computes the lab's topology from a validated config with a prefix.
// It is deterministic: Load recomputes it from the saved config.
func plan(cfg Config) *Lab {
	l := &Lab{Prefix: cfg.Prefix, Variant: cfg.Variant, cfg: cfg}
	p := cfg.Prefix
	l.R1 = Router{NS: nsName(p, "r1"), LAN: Iface{Name: "lan", MAC: mac(roleR1, 0, 0),
		Addr4: netip.PrefixFrom(R1LAN4, 24), Addr6: netip.PrefixFrom(R1LAN6, 64)}}
	l.R2 = Router{NS: nsName(p, "r2"), LAN: Iface{Name: "lan", MAC: mac(roleR2, 0, 0),
		Addr4: netip.PrefixFrom(R2LAN4, 24), Addr6: netip.PrefixFrom(R2LAN6, 64)}}
	for i := 1; i <= cfg.Clients; i++ {
		a4, a6 := hostAddrs(ClientLAN4, ClientLAN6, i)
		role := fmt.Sprintf("c%d", i)
		l.Clients = append(l.Clients, Host{Role: role, NS: nsName(p, role), Addr4: a4, Addr6: a6,
			MAC: mac(roleClient, byte(i), 0)})
	}
	for i := 1; i <= cfg.Servers; i++ {
		a4, a6 := hostAddrs(ServerLAN4, ServerLAN6, i)
		role := fmt.Sprintf("s%d", i)
		l.Servers = append(l.Servers, Host{Role: role, NS: nsName(p, role), Addr4: a4, Addr6: a6,
			MAC: mac(roleServer, byte(i), 0)})
	}
	for i := 1; i <= cfg.Nodes; i++ {
		role := fmt.Sprintf("n%d", i)
		n := Node{Index: i, Role: role, NS: nsName(p, role), Name: nsName(p, role),
			In:  Iface{Name: "eth0", MAC: mac(roleNode, byte(i), 0)},
			Out: Iface{Name: "eth1", MAC: mac(roleNode, byte(i), 1)}}
		r1 := Iface{Name: role, MAC: mac(roleR1, byte(i), 0), Addr4: transit4(18, i, 1), Addr6: transit6(18, i, 1)}
		r2 := Iface{Name: role, MAC: mac(roleR2, byte(i), 0)}
		if cfg.Variant == L3 {
			n.In.Addr4, n.In.Addr6 = transit4(18, i, 2), transit6(18, i, 2)
			n.Out.Addr4, n.Out.Addr6 = transit4(19, i, 2), transit6(19, i, 2)
			r2.Addr4, r2.Addr6 = transit4(19, i, 1), transit6(19, i, 1)
			l.R1.NextHops = append(l.R1.NextHops, NextHop{Dev: role, Addr4: n.In.Addr4.Addr(), Addr6: n.In.Addr6.Addr(), MAC: n.In.MAC})
			l.R2.NextHops = append(l.R2.NextHops, NextHop{Dev: role, Addr4: n.Out.Addr4.Addr(), Addr6: n.Out.Addr6.Addr(), MAC: n.Out.MAC})
		} else {
			r2.Addr4, r2.Addr6 = transit4(18, i, 2), transit6(18, i, 2)
			l.R1.NextHops = append(l.R1.NextHops, NextHop{Dev: role, Addr4: r2.Addr4.Addr(), Addr6: r2.Addr6.Addr(), MAC: r2.MAC})
			l.R2.NextHops = append(l.R2.NextHops, NextHop{Dev: role, Addr4: r1.Addr4.Addr(), Addr6: r1.Addr6.Addr(), MAC: r1.MAC})
		}
		l.R1.Links = append(l.R1.Links, r1)
		l.R2.Links = append(l.R2.Links, r2)
		l.Nodes = append(l.Nodes, n)
	}
	l.Tap = Tap{NS: nsName(p, "t"), C: Iface{Name: "c", MAC: mac(roleTap, 0, 0)}, S: Iface{Name: "s", MAC: mac(roleTap, 0, 1)}}
	return l
}

// namespaces returns every namespace of the lab, routers first.
func (l *Lab) namespaces() []string {
	out := []string{l.R1.NS, l.R2.NS}
	for _, n := range l.Nodes {
		out = append(out, n.NS)
	}
	for _, h := range l.Clients {
		out = append(out, h.NS)
	}
	for _, h := range l.Servers {
		out = append(out, h.NS)
	}
	return append(out, l.Tap.NS)
}

// NS returns the namespace name of a role ("r1", "c1", "n2", "s1", "t"); a
// name that already carries the lab's prefix is returned as it is.
func (l *Lab) NS(role string) string {
	if strings.HasPrefix(role, l.Prefix+"-") {
		return role
	}
	return nsName(l.Prefix, role)
}

// roleRE matches the role part of a lab namespace name.
func isRole(s string) bool {
	switch {
	case s == "r1" || s == "r2" || s == "t":
		return true
	case len(s) >= 2 && (s[0] == 'c' || s[0] == 's' || s[0] == 'n'):
		for _, r := range s[1:] {
			if r < '0' || r > '9' {
				return false
			}
		}
		return true
	}
	return false
}
