package e2e

import (
	"bufio"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/patchgate/patchgate/deploy/lab"
)

// blockedProbe is a connection that a node blocked before a failover event
// and that must stay blocked after its flow moved to another node.
//
// The node resets a blocked flow both ways; the probe's client namespace
// drops the reset meant for the client (one iptables rule for this port), so
// the client's socket lives on and keeps retransmitting the exploit and
// sending whatever the test writes: every later packet of the 4-tuple
// crosses the lab again, after the move through a survivor. Two iptables
// counters tell what happened to them: packets of the flow R1 forwarded
// (any node), and packets without RST that reached the server's namespace.
// The second must not grow after the exploit, before or after the move, and
// the server's handler must never see the exploit.
type blockedProbe struct {
	l      *lab.Lab
	node   int
	client lab.Host
	server netip.AddrPort
	port   int
	tag    string
	conn   net.Conn
	srv    *workServer

	srvBase int64 // server-side counter once the exploit was sent
	r1Moved int64 // R1's counter when the flow moved
}

// tcpRTOMaxMS is the TCP_RTO_MAX_MS socket option (linux/tcp.h).
const tcpRTOMaxMS = 44

// armBlocked opens the probe from client port port (whose flow crosses
// node), sends one benign request (answered) and then an exploit, which the
// node must block. It returns an error when the benign request fails or the
// exploit is answered or reaches the server.
func armBlocked(l *lab.Lab, srv *workServer, node int, client lab.Host, server netip.AddrPort, port int) (*blockedProbe, error) {
	p := &blockedProbe{l: l, node: node, client: client, server: server, port: port, srv: srv,
		tag: fmt.Sprintf("pgblocked-%d", port)}
	c4, s4 := client.Addr4.String(), server.Addr().String()
	sp, cp := strconv.Itoa(int(server.Port())), strconv.Itoa(port)
	rules := []struct {
		ns   string
		argv []string
	}{
		{client.NS, []string{"-I", "INPUT", "-p", "tcp", "-s", s4, "--sport", sp, "--dport", cp, "--tcp-flags", "RST", "RST"}},
		{l.Servers[0].NS, []string{"-I", "INPUT", "-p", "tcp", "-s", c4, "--sport", cp, "--dport", sp, "--tcp-flags", "RST", "NONE"}},
		{l.R1.NS, []string{"-I", "FORWARD", "-p", "tcp", "-s", c4, "--sport", cp, "--dport", sp}},
	}
	for i, r := range rules {
		target := "ACCEPT"
		if i == 0 {
			target = "DROP"
		}
		argv := append(append([]string{"iptables-legacy"}, r.argv...), "-m", "comment", "--comment", p.tag, "-j", target)
		if _, err := l.Exec(r.ns, argv...); err != nil {
			return nil, fmt.Errorf("blocked probe: %w", err)
		}
	}
	var err error
	if p.conn, err = dialPort(client.NS, port, server.String()); err != nil {
		return nil, fmt.Errorf("blocked probe: dial from port %d: %w", port, err)
	}
	// Retransmit at least every second (TCP_RTO_MAX_MS, Linux 6.15+), so a
	// packet of the blocked flow crosses the lab soon after the move; older
	// kernels back off further and check waits longer.
	if tc, ok := p.conn.(*net.TCPConn); ok {
		if sc, err := tc.SyscallConn(); err == nil {
			_ = sc.Control(func(fd uintptr) {
				_ = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, tcpRTOMaxMS, 1000)
			})
		}
	}
	rc := &rawConn{Conn: p.conn, r: bufio.NewReader(p.conn), host: s4}
	if err := rc.get("/blocked/before"); err != nil {
		p.close()
		return nil, fmt.Errorf("blocked probe: benign request: %w", err)
	}
	// The client's last ACK may still be on its way: wait until the server's
	// counter stands still.
	prev := int64(-1)
	waitFor(2*time.Second, func() bool {
		v, err := p.count(l.Servers[0].NS, "INPUT")
		if err != nil {
			return false
		}
		same := v == prev
		prev = v
		if !same {
			time.Sleep(150 * time.Millisecond)
		}
		return same
	})
	if p.srvBase, err = p.count(l.Servers[0].NS, "INPUT"); err != nil {
		p.close()
		return nil, err
	}
	_ = p.conn.SetDeadline(time.Now().Add(1500 * time.Millisecond))
	fmt.Fprintf(p.conn, "GET /blocked/exploit HTTP/1.1\r\nHost: %s\r\n%s\r\n\r\n", s4, shellshock)
	buf := make([]byte, 256)
	if n, _ := p.conn.Read(buf); n > 0 {
		p.close()
		return nil, fmt.Errorf("blocked probe: the exploit through node %d was answered: %q", node, buf[:n])
	}
	if err := p.stillBlocked(); err != nil {
		p.close()
		return nil, fmt.Errorf("blocked probe: before the move: %w", err)
	}
	return p, nil
}

// remote is the probe's client address as the server sees it.
func (p *blockedProbe) remote() string {
	return net.JoinHostPort(p.client.Addr4.String(), strconv.Itoa(p.port))
}

// stillBlocked checks that nothing of the flow but resets reached the server
// since the exploit, and that the handler saw one request (the benign one).
func (p *blockedProbe) stillBlocked() error {
	v, err := p.count(p.l.Servers[0].NS, "INPUT")
	if err != nil {
		return err
	}
	if v != p.srvBase {
		return fmt.Errorf("%d packets of the blocked flow reached the server after the exploit", v-p.srvBase)
	}
	if n := p.srv.requests(p.remote()); n != 1 {
		return fmt.Errorf("the server handled %d requests of the blocked flow, want 1 (the benign one)", n)
	}
	if n := p.srv.exploitsSeen(); n != 0 {
		return fmt.Errorf("the server handled %d requests carrying the exploit", n)
	}
	return nil
}

// moved records R1's counter of the flow at the time the flow moved off the
// node (call it right after the withdrawal).
func (p *blockedProbe) moved() error {
	v, err := p.count(p.l.R1.NS, "FORWARD")
	p.r1Moved = v
	return err
}

// check runs after the move: it writes another request on the blocked
// connection, waits (at most bound) until R1 forwarded a packet of the flow
// after the move — through a survivor — and gives it time to arrive, then
// checks that the flow is still blocked.
func (p *blockedProbe) check(bound time.Duration) error {
	_ = p.conn.SetWriteDeadline(time.Now().Add(time.Second))
	fmt.Fprintf(p.conn, "GET /blocked/after HTTP/1.1\r\nHost: %s\r\n\r\n", p.server.Addr())
	var crossed int64
	if !waitFor(bound, func() bool {
		v, err := p.count(p.l.R1.NS, "FORWARD")
		crossed = v - p.r1Moved
		return err == nil && crossed > 0
	}) {
		return fmt.Errorf("no packet of the blocked flow crossed R1 within %v after the move", bound)
	}
	// A packet R1 forwarded reaches the server within a few ms if the
	// survivor lets it through.
	deadline := time.Now().Add(500 * time.Millisecond)
	for time.Now().Before(deadline) {
		if err := p.stillBlocked(); err != nil {
			return fmt.Errorf("after the move (%d packets crossed R1): %w", crossed, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return p.stillBlocked()
}

// count reads the packet counter of the probe's rule in chain of ns.
func (p *blockedProbe) count(ns, chain string) (int64, error) {
	out, err := p.l.Exec(ns, "iptables-legacy", "-L", chain, "-v", "-x", "-n")
	if err != nil {
		return 0, fmt.Errorf("blocked probe: counters: %w", err)
	}
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(line, "/* "+p.tag+" */") {
			f := strings.Fields(line)
			if len(f) > 0 {
				return strconv.ParseInt(f[0], 10, 64)
			}
		}
	}
	return 0, fmt.Errorf("blocked probe: no rule %s in %s %s", p.tag, ns, chain)
}

// close aborts the probe's connection (a reset; the rules go with the lab).
func (p *blockedProbe) close() {
	if tc, ok := p.conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	if p.conn != nil {
		p.conn.Close()
	}
}

// dialPort connects from namespace ns, source port port, to addr.
func dialPort(ns string, port int, addr string) (net.Conn, error) {
	var c net.Conn
	err := lab.InNS(ns, func() error {
		d := net.Dialer{LocalAddr: &net.TCPAddr{Port: port}, Timeout: 3 * time.Second}
		var err error
		c, err = d.Dial("tcp", addr)
		return err
	})
	return c, err
}
