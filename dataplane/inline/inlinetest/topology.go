// Package inlinetest builds the small network-namespace fixtures the inline
// backends are tested and benchmarked in: a client namespace, a node namespace
// and a server namespace joined by veth pairs, either routed (the node is the
// router between two subnets, for NFQUEUE) or bridged (the node sits between
// two links of one subnet, for AF_PACKET). Addresses come from the benchmarking
// range 198.18.0.0/15 and the documentation prefix 2001:db8::/32; namespace
// names carry the process id and a random suffix, and everything is deleted in
// t.Cleanup, also when the test fails.
package inlinetest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/patchgate/patchgate/dataplane/inline"
)

// Topology is client — node — server in three network namespaces.
type Topology struct {
	// Client, Node and Server are namespace names (see NsPath).
	Client, Node, Server string
	// ClientIP/ServerIP (IPv4) and ClientIP6/ServerIP6 are the endpoints' addresses.
	ClientIP, ServerIP, ClientIP6, ServerIP6 netip.Addr
	// NodeIfs are the node's interfaces towards the client and the server.
	NodeIfs [2]string
}

// NsPath returns the path of a namespace created by ip netns.
func NsPath(name string) string { return filepath.Join("/run/netns", name) }

// RequireRoot skips the test unless it runs as root with iproute2 available.
func RequireRoot(tb testing.TB, tools ...string) {
	tb.Helper()
	if os.Geteuid() != 0 {
		tb.Skip("needs root to create network namespaces (runs in CI as root)")
	}
	for _, tool := range append([]string{"ip"}, tools...) {
		if _, err := exec.LookPath(tool); err != nil {
			tb.Skipf("needs %s (Debian package iproute2/iptables)", tool)
		}
	}
}

// newNamespaces creates client, node and server namespaces with unique names
// and registers their deletion.
func newNamespaces(tb testing.TB) *Topology {
	tb.Helper()
	prefix := fmt.Sprintf("pgt%d%04x", os.Getpid(), rand.IntN(1<<16))
	tp := &Topology{Client: prefix + "-c", Node: prefix + "-n", Server: prefix + "-s", NodeIfs: [2]string{"n0", "n1"}}
	for _, ns := range []string{tp.Client, tp.Node, tp.Server} {
		run(tb, "ip", "netns", "add", ns)
		tb.Cleanup(func() { _ = exec.Command("ip", "netns", "del", ns).Run() })
		run(tb, "ip", "-n", ns, "link", "set", "lo", "up")
	}
	// Veth pairs are created directly inside the namespaces: no name is ever
	// taken in the caller's namespace.
	run(tb, "ip", "-n", tp.Client, "link", "add", "c0", "type", "veth", "peer", "name", "n0", "netns", tp.Node)
	run(tb, "ip", "-n", tp.Server, "link", "add", "s0", "type", "veth", "peer", "name", "n1", "netns", tp.Node)
	return tp
}

// Routed builds the L3 fixture: client 198.18.1.2/24 and 2001:db8:1::2/64,
// node 198.18.1.1 / 198.18.2.1 (forwarding on), server 198.18.2.2/24 and
// 2001:db8:2::2/64, each endpoint routing through the node.
func Routed(tb testing.TB) *Topology {
	tb.Helper()
	tp := newNamespaces(tb)
	tp.ClientIP, tp.ServerIP = netip.MustParseAddr("198.18.1.2"), netip.MustParseAddr("198.18.2.2")
	tp.ClientIP6, tp.ServerIP6 = netip.MustParseAddr("2001:db8:1::2"), netip.MustParseAddr("2001:db8:2::2")
	addr := func(ns, dev, a string) { run(tb, "ip", "-n", ns, "addr", "add", a, "dev", dev, "nodad") }
	addr(tp.Client, "c0", "2001:db8:1::2/64")
	addr(tp.Node, "n0", "2001:db8:1::1/64")
	addr(tp.Node, "n1", "2001:db8:2::1/64")
	addr(tp.Server, "s0", "2001:db8:2::2/64")
	run(tb, "ip", "-n", tp.Client, "addr", "add", "198.18.1.2/24", "dev", "c0")
	run(tb, "ip", "-n", tp.Node, "addr", "add", "198.18.1.1/24", "dev", "n0")
	run(tb, "ip", "-n", tp.Node, "addr", "add", "198.18.2.1/24", "dev", "n1")
	run(tb, "ip", "-n", tp.Server, "addr", "add", "198.18.2.2/24", "dev", "s0")
	for _, l := range [][2]string{{tp.Client, "c0"}, {tp.Node, "n0"}, {tp.Node, "n1"}, {tp.Server, "s0"}} {
		run(tb, "ip", "-n", l[0], "link", "set", l[1], "up")
	}
	run(tb, "ip", "-n", tp.Client, "route", "add", "default", "via", "198.18.1.1")
	run(tb, "ip", "-n", tp.Server, "route", "add", "default", "via", "198.18.2.1")
	run(tb, "ip", "-n", tp.Client, "-6", "route", "add", "default", "via", "2001:db8:1::1")
	run(tb, "ip", "-n", tp.Server, "-6", "route", "add", "default", "via", "2001:db8:2::1")
	tp.sysctl(tb, tp.Node, "net/ipv4/ip_forward", "1")
	tp.sysctl(tb, tp.Node, "net/ipv6/conf/all/forwarding", "1")
	return tp
}

// Bridged builds the L2 fixture: client 198.18.1.2/24 and server
// 198.18.1.3/24 (2001:db8:1::2 and ::3) on one subnet, whose only path is
// through the node's interfaces n0 and n1. The node has no addresses and
// IPv6 is off on its interfaces, so it never speaks itself.
func Bridged(tb testing.TB) *Topology {
	tb.Helper()
	tp := newNamespaces(tb)
	tp.ClientIP, tp.ServerIP = netip.MustParseAddr("198.18.1.2"), netip.MustParseAddr("198.18.1.3")
	tp.ClientIP6, tp.ServerIP6 = netip.MustParseAddr("2001:db8:1::2"), netip.MustParseAddr("2001:db8:1::3")
	for _, dev := range tp.NodeIfs {
		tp.sysctl(tb, tp.Node, "net/ipv6/conf/"+dev+"/disable_ipv6", "1")
	}
	run(tb, "ip", "-n", tp.Client, "addr", "add", "198.18.1.2/24", "dev", "c0")
	run(tb, "ip", "-n", tp.Server, "addr", "add", "198.18.1.3/24", "dev", "s0")
	run(tb, "ip", "-n", tp.Client, "addr", "add", "2001:db8:1::2/64", "dev", "c0", "nodad")
	run(tb, "ip", "-n", tp.Server, "addr", "add", "2001:db8:1::3/64", "dev", "s0", "nodad")
	for _, l := range [][2]string{{tp.Client, "c0"}, {tp.Node, "n0"}, {tp.Node, "n1"}, {tp.Server, "s0"}} {
		run(tb, "ip", "-n", l[0], "link", "set", l[1], "up")
	}
	return tp
}

// In runs fn inside namespace ns (sockets it opens stay there).
func (tp *Topology) In(ns string, fn func() error) error { return inline.InNetns(NsPath(ns), fn) }

// Run runs a command inside namespace ns and fails the test on error.
func (tp *Topology) Run(tb testing.TB, ns string, args ...string) string {
	tb.Helper()
	var out string
	err := tp.In(ns, func() error {
		var err error
		out, err = inline.Command(args[0], args[1:]...)
		return err
	})
	if err != nil {
		tb.Fatal(err)
	}
	return out
}

func (tp *Topology) sysctl(tb testing.TB, ns, key, val string) {
	tb.Helper()
	err := tp.In(ns, func() error { return os.WriteFile("/proc/sys/"+key, []byte(val), 0o644) })
	if err != nil {
		tb.Fatalf("sysctl %s=%s in %s: %v", key, val, ns, err)
	}
}

// Listen opens a TCP listener in namespace ns.
func (tp *Topology) Listen(tb testing.TB, ns string, addr netip.AddrPort) net.Listener {
	tb.Helper()
	var ln net.Listener
	err := tp.In(ns, func() error {
		var err error
		ln, err = net.Listen("tcp", addr.String())
		return err
	})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { ln.Close() })
	return ln
}

// Dial connects from namespace ns within timeout.
func (tp *Topology) Dial(ns, network string, addr netip.AddrPort, timeout time.Duration) (net.Conn, error) {
	var c net.Conn
	err := tp.In(ns, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		var err error
		c, err = (&net.Dialer{}).DialContext(ctx, network, addr.String())
		return err
	})
	return c, err
}

// CheckFor polls f every 10 ms until it returns nil or timeout passes, then
// fails the test with f's last error.
func CheckFor(tb testing.TB, timeout time.Duration, f func() error) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("condition not met within %v: %v", timeout, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func run(tb testing.TB, args ...string) {
	tb.Helper()
	if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
		tb.Fatalf("%s: %v: %s", strings.Join(args, " "), err, out)
	}
}
