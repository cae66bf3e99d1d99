package lab

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
)

// batch collects `ip` commands for one namespace, run with `ip -n NS -batch -`.
type batch struct {
	ns    string
	lines []string
}

func (b *batch) add(format string, args ...any) {
	b.lines = append(b.lines, fmt.Sprintf(format, args...))
}

func (b *batch) run() error {
	if len(b.lines) == 0 {
		return nil
	}
	_, err := runInput([]byte(strings.Join(b.lines, "\n")+"\n"), "ip", "-n", b.ns, "-batch", "-")
	return err
}

// build creates the namespaces, links, addresses, neighbours and routes.
func (l *Lab) build() error {
	for _, ns := range l.namespaces() {
		if _, err := run("ip", "netns", "add", ns); err != nil {
			return err
		}
	}
	if err := l.sysctls(); err != nil {
		return err
	}
	if err := l.links(); err != nil {
		return err
	}
	if err := l.offloads(); err != nil {
		return err
	}
	if err := l.mtu(); err != nil {
		return err
	}
	return l.addressesAndRoutes()
}

// mtu sets the configured MTU on every veth of the lab (bridges follow
// their ports).
func (l *Lab) mtu() error {
	if l.cfg.MTU == DefaultMTU {
		return nil
	}
	ifs := map[string][]string{l.R1.NS: {"tc"}, l.R2.NS: {"ts"}, l.Tap.NS: {l.Tap.C.Name, l.Tap.S.Name}}
	for _, h := range l.Clients {
		ifs[h.NS] = []string{"eth0"}
		ifs[l.R1.NS] = append(ifs[l.R1.NS], h.Role)
	}
	for _, h := range l.Servers {
		ifs[h.NS] = []string{"eth0"}
		ifs[l.R2.NS] = append(ifs[l.R2.NS], h.Role)
	}
	for i, n := range l.Nodes {
		ifs[n.NS] = []string{n.In.Name, n.Out.Name}
		ifs[l.R1.NS] = append(ifs[l.R1.NS], l.R1.Links[i].Name)
		ifs[l.R2.NS] = append(ifs[l.R2.NS], l.R2.Links[i].Name)
	}
	for ns, names := range ifs {
		b := &batch{ns: ns}
		for _, n := range names {
			b.add("link set %s mtu %d", n, l.cfg.MTU)
		}
		if err := b.run(); err != nil {
			return err
		}
	}
	return nil
}

// sysctls sets each namespace's forwarding, hashing and noise-reduction knobs
// before any interface exists, so that new interfaces inherit the defaults.
func (l *Lab) sysctls() error {
	common := [][2]string{
		{"net.ipv4.conf.all.rp_filter", "0"},
		{"net.ipv4.conf.default.rp_filter", "0"},
		{"net.ipv4.conf.all.send_redirects", "0"},
		{"net.ipv4.conf.default.send_redirects", "0"},
		{"net.ipv6.conf.all.accept_dad", "0"},
		{"net.ipv6.conf.default.accept_dad", "0"},
		{"net.ipv6.conf.default.accept_ra", "0"},
		{"net.ipv6.conf.default.router_solicitations", "0"},
	}
	forward := [][2]string{
		{"net.ipv4.ip_forward", "1"},
		{"net.ipv6.conf.all.forwarding", "1"},
	}
	noIPv6 := [][2]string{
		{"net.ipv6.conf.all.disable_ipv6", "1"},
		{"net.ipv6.conf.default.disable_ipv6", "1"},
	}
	router := append(append([][2]string{}, forward...),
		[2]string{"net.ipv4.fib_multipath_hash_policy", "3"},
		[2]string{"net.ipv4.fib_multipath_hash_fields", "0x37"},
		[2]string{"net.ipv6.fib_multipath_hash_policy", "3"},
		[2]string{"net.ipv6.fib_multipath_hash_fields", "0x37"})
	seed := "net.ipv4.fib_multipath_hash_seed"
	set := map[string][][2]string{}
	for _, ns := range l.namespaces() {
		set[ns] = common
	}
	set[l.R1.NS] = append(append([][2]string{}, common...), router...)
	set[l.R2.NS] = append(append([][2]string{}, common...), router...)
	for _, n := range l.Nodes {
		if l.Variant == L3 {
			set[n.NS] = append(append([][2]string{}, common...), forward...)
		} else {
			set[n.NS] = append(append([][2]string{}, common...), noIPv6...)
		}
	}
	set[l.Tap.NS] = append(append([][2]string{}, common...), noIPv6...)
	for ns, kvs := range set {
		isRouter := ns == l.R1.NS || ns == l.R2.NS
		err := InNS(ns, func() error {
			for _, kv := range kvs {
				if err := writeSysctl(kv[0], kv[1]); err != nil {
					return err
				}
			}
			if isRouter && sysctlExists(seed) {
				return writeSysctl(seed, strconv.FormatUint(uint64(l.cfg.HashSeed), 10))
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("sysctls %s: %w", ns, err)
		}
	}
	return nil
}

// links creates the veth pairs (from the routers' side) and bridges.
func (l *Lab) links() error {
	for _, side := range []struct {
		r     *Router
		hosts []Host
		tap   Iface
		tapP  string // the tap's port on the router's LAN bridge
		nodeP func(Node) Iface
	}{
		{&l.R1, l.Clients, l.Tap.C, "tc", func(n Node) Iface { return n.In }},
		{&l.R2, l.Servers, l.Tap.S, "ts", func(n Node) Iface { return n.Out }},
	} {
		b := &batch{ns: side.r.NS}
		b.add("link add %s address %s type bridge", side.r.LAN.Name, side.r.LAN.MAC)
		for _, h := range side.hosts {
			b.add("link add %s type veth peer name eth0 address %s netns %s", h.Role, h.MAC, h.NS)
			b.add("link set %s master %s", h.Role, side.r.LAN.Name)
		}
		b.add("link add %s type veth peer name %s address %s netns %s", side.tapP, side.tap.Name, side.tap.MAC, l.Tap.NS)
		b.add("link set %s master %s", side.tapP, side.r.LAN.Name)
		for i, n := range l.Nodes {
			link, peer := side.r.Links[i], side.nodeP(n)
			b.add("link add %s address %s type veth peer name %s address %s netns %s", link.Name, link.MAC, peer.Name, peer.MAC, n.NS)
		}
		if err := b.run(); err != nil {
			return err
		}
	}
	if l.Variant == L2 {
		for _, n := range l.Nodes {
			if err := l.kernelBridge(n, true); err != nil {
				return err
			}
		}
	}
	return nil
}

// offloads switches off offloads on every interface of the lab.
func (l *Lab) offloads() error {
	ifs := map[string][]string{}
	for _, r := range []*Router{&l.R1, &l.R2} {
		names := []string{r.LAN.Name}
		for _, li := range r.Links {
			names = append(names, li.Name)
		}
		ifs[r.NS] = names
	}
	for _, h := range l.Clients {
		ifs[h.NS] = []string{"eth0"}
		ifs[l.R1.NS] = append(ifs[l.R1.NS], h.Role)
	}
	for _, h := range l.Servers {
		ifs[h.NS] = []string{"eth0"}
		ifs[l.R2.NS] = append(ifs[l.R2.NS], h.Role)
	}
	ifs[l.R1.NS] = append(ifs[l.R1.NS], "tc")
	ifs[l.R2.NS] = append(ifs[l.R2.NS], "ts")
	ifs[l.Tap.NS] = []string{l.Tap.C.Name, l.Tap.S.Name}
	for _, n := range l.Nodes {
		ifs[n.NS] = []string{n.In.Name, n.Out.Name}
	}
	for ns, names := range ifs {
		if err := InNS(ns, func() error { return offloadsOff(names...) }); err != nil {
			return fmt.Errorf("%s: %w", ns, err)
		}
	}
	return nil
}

// ifaceUp adds an interface's addresses and brings it up.
func ifaceUp(b *batch, i Iface) {
	if i.Addr4.IsValid() {
		b.add("addr add %s dev %s", i.Addr4, i.Name)
	}
	if i.Addr6.IsValid() {
		b.add("addr add %s dev %s nodad", i.Addr6, i.Name)
	}
	b.add("link set %s up", i.Name)
}

// neigh adds a permanent neighbour entry: the lab resolves no address with
// ARP or neighbour discovery, so no control traffic disturbs packet counts
// and nothing depends on a node forwarding ARP.
func neigh(b *batch, dev string, addr netip.Addr, hw net.HardwareAddr) {
	if addr.IsValid() {
		b.add("neigh replace %s lladdr %s dev %s nud permanent", addr, hw, dev)
	}
}

// multipath adds a route over the next hops (a plain route for one).
func multipath(b *batch, dst netip.Prefix, hops []NextHop, v6 bool) {
	var s strings.Builder
	fmt.Fprintf(&s, "route add %s", dst)
	for _, h := range hops {
		a := h.Addr4
		if v6 {
			a = h.Addr6
		}
		if len(hops) == 1 {
			fmt.Fprintf(&s, " via %s dev %s", a, h.Dev)
		} else {
			fmt.Fprintf(&s, " nexthop via %s dev %s weight 1", a, h.Dev)
		}
	}
	b.add("%s", s.String())
}

// addressesAndRoutes configures every namespace: addresses, links up,
// permanent neighbours, routes.
func (l *Lab) addressesAndRoutes() error {
	var batches []*batch
	// Hosts.
	for _, side := range []struct {
		hosts    []Host
		gw4, gw6 netip.Addr
		gwMAC    net.HardwareAddr
		lan4     netip.Prefix
		lan6     netip.Prefix
	}{
		{l.Clients, R1LAN4, R1LAN6, l.R1.LAN.MAC, ClientLAN4, ClientLAN6},
		{l.Servers, R2LAN4, R2LAN6, l.R2.LAN.MAC, ServerLAN4, ServerLAN6},
	} {
		for _, h := range side.hosts {
			b := &batch{ns: h.NS}
			b.add("link set lo up")
			ifaceUp(b, Iface{Name: "eth0", Addr4: netip.PrefixFrom(h.Addr4, side.lan4.Bits()), Addr6: netip.PrefixFrom(h.Addr6, side.lan6.Bits())})
			neigh(b, "eth0", side.gw4, side.gwMAC)
			neigh(b, "eth0", side.gw6, side.gwMAC)
			b.add("route add default via %s dev eth0", side.gw4)
			b.add("route add ::/0 via %s dev eth0", side.gw6)
			batches = append(batches, b)
		}
	}
	// Routers.
	for _, side := range []struct {
		r          *Router
		hosts      []Host
		ports      []string
		far4, far6 netip.Prefix
	}{
		{&l.R1, l.Clients, []string{"tc"}, ServerLAN4, ServerLAN6},
		{&l.R2, l.Servers, []string{"ts"}, ClientLAN4, ClientLAN6},
	} {
		b := &batch{ns: side.r.NS}
		b.add("link set lo up")
		for _, h := range side.hosts {
			side.ports = append(side.ports, h.Role)
		}
		for _, p := range side.ports {
			b.add("link set %s up", p)
		}
		ifaceUp(b, side.r.LAN)
		for _, h := range side.hosts {
			neigh(b, side.r.LAN.Name, h.Addr4, h.MAC)
			neigh(b, side.r.LAN.Name, h.Addr6, h.MAC)
		}
		for i, li := range side.r.Links {
			ifaceUp(b, li)
			nh := side.r.NextHops[i]
			neigh(b, li.Name, nh.Addr4, nh.MAC)
			neigh(b, li.Name, nh.Addr6, nh.MAC)
		}
		multipath(b, side.far4, side.r.NextHops, false)
		multipath(b, side.far6, side.r.NextHops, true)
		batches = append(batches, b)
	}
	// Nodes.
	for i, n := range l.Nodes {
		b := &batch{ns: n.NS}
		b.add("link set lo up")
		ifaceUp(b, n.In)
		ifaceUp(b, n.Out)
		if l.Variant == L3 {
			r1, r2 := l.R1.Links[i], l.R2.Links[i]
			neigh(b, n.In.Name, r1.Addr4.Addr(), r1.MAC)
			neigh(b, n.In.Name, r1.Addr6.Addr(), r1.MAC)
			neigh(b, n.Out.Name, r2.Addr4.Addr(), r2.MAC)
			neigh(b, n.Out.Name, r2.Addr6.Addr(), r2.MAC)
			b.add("route add %s via %s dev %s", ClientLAN4, r1.Addr4.Addr(), n.In.Name)
			b.add("route add %s via %s dev %s", ClientLAN6, r1.Addr6.Addr(), n.In.Name)
			b.add("route add %s via %s dev %s", ServerLAN4, r2.Addr4.Addr(), n.Out.Name)
			b.add("route add %s via %s dev %s", ServerLAN6, r2.Addr6.Addr(), n.Out.Name)
		} else {
			b.add("link set br0 up")
		}
		batches = append(batches, b)
	}
	// Tap.
	b := &batch{ns: l.Tap.NS}
	b.add("link set lo up")
	b.add("link set %s up", l.Tap.C.Name)
	b.add("link set %s up", l.Tap.S.Name)
	batches = append(batches, b)
	// Interfaces first everywhere (routes need their peers' links up).
	for _, b := range batches {
		if err := b.run(); err != nil {
			return err
		}
	}
	return nil
}

// kernelBridge joins (on) or separates (off) an L2 node's two interfaces
// with a kernel bridge, br0: the lab's forwarding while patchgate does not
// run there.
func (l *Lab) kernelBridge(n Node, on bool) error {
	b := &batch{ns: n.NS}
	if on {
		b.add("link add br0 address %s type bridge", mac(roleNode, byte(n.Index), 2))
		b.add("link set %s master br0", n.In.Name)
		b.add("link set %s master br0", n.Out.Name)
		b.add("link set br0 up")
	} else {
		b.add("link del br0")
		b.add("link set %s up", n.In.Name)
		b.add("link set %s up", n.Out.Name)
	}
	if err := b.run(); err != nil {
		return fmt.Errorf("node %d: kernel bridge: %w", n.Index, err)
	}
	if on {
		if err := InNS(n.NS, func() error { return offloadsOff("br0") }); err != nil {
			return fmt.Errorf("node %d: %w", n.Index, err)
		}
	}
	return nil
}

// hasKernelBridge reports whether the lab's kernel bridge br0 exists in an
// L2 node.
func (l *Lab) hasKernelBridge(n Node) bool {
	_, err := run("ip", "-n", n.NS, "link", "show", "br0")
	return err == nil
}

// bridged reports whether an L2 node's In interface is a port of any bridge
// (the lab's br0, or the fallback bridge a fail-open node leaves).
func (l *Lab) bridged(n Node) bool {
	out, err := run("ip", "-n", n.NS, "-o", "link", "show", n.In.Name)
	return err == nil && strings.Contains(out, " master ")
}
