package lab

import (
	"context"
	"fmt"
	"net"
	"runtime"
	"syscall"
	"testing"
	"time"
	"unsafe"
)

// TestECMPSymmetric proves the lab's central property: both directions of
// every flow cross the same node, and flows spread over the nodes. Each
// flow (a UDP socket or a TCP connection with its own source port, both
// address families) exchanges packets with an echo server; the node whose
// R1-side interface received the requests must be the one whose R2-side
// interface received the replies, and no other node may have seen the flow.
func TestECMPSymmetric(t *testing.T) {
	requireRoot(t)
	const (
		flows   = 64
		packets = 8 // per UDP flow and direction
		tcpMin  = 3 // a TCP echo: at least SYN, data, FIN one way, SYN-ACK, data, FIN back
	)
	for _, v := range []Variant{L3, L2} {
		t.Run(string(v), func(t *testing.T) {
			l := up(t, testConfig(t, v, 3))
			srv, cli := l.Servers[0], l.Clients[0]
			echoUDP(t, srv.NS, ":7002")
			echoTCP(t, srv.NS, ":7002")
			used := map[int]int{}
			for f := 0; f < flows; f++ {
				addr := srv.Addr4.String()
				if f%2 == 1 {
					addr = srv.Addr6.String()
				}
				addr = net.JoinHostPort(addr, "7002")
				before, err := l.NodeStats()
				if err != nil {
					t.Fatal(err)
				}
				var min uint64 = packets
				if f%4 < 2 {
					err = udpFlow(cli.NS, addr, packets)
				} else {
					min = tcpMin
					err = tcpRoundTrip(cli.NS, addr, "flow")
				}
				if err != nil {
					t.Fatalf("flow %d to %s: %v", f, addr, err)
				}
				after, err := l.NodeStats()
				if err != nil {
					t.Fatal(err)
				}
				fwd, rev := -1, -1
				for i := range after {
					in := after[i][0].Sub(before[i][0]).RxPackets
					out := after[i][1].Sub(before[i][1]).RxPackets
					switch {
					case in >= min && fwd == -1:
						fwd = i
					case in >= min:
						t.Fatalf("flow %d: forward direction on nodes %d and %d", f, fwd+1, i+1)
					}
					switch {
					case out >= min && rev == -1:
						rev = i
					case out >= min:
						t.Fatalf("flow %d: return direction on nodes %d and %d", f, rev+1, i+1)
					}
				}
				if fwd < 0 || fwd != rev {
					t.Fatalf("flow %d to %s: forward via node %d, return via node %d", f, addr, fwd+1, rev+1)
				}
				used[fwd+1]++
			}
			if len(used) < 2 {
				t.Errorf("%d flows all crossed one node: %v", flows, used)
			}
			t.Logf("flows per node: %v", used)
		})
	}
}

// udpFlow sends n datagrams from a fresh socket in ns and waits for their echoes.
func udpFlow(ns, addr string, n int) error {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	c, err := Dialer(ns)(ctx, "udp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	buf := make([]byte, 64)
	for i := 0; i < n; i++ {
		if _, err := c.Write([]byte(fmt.Sprintf("ping %d", i))); err != nil {
			return err
		}
		_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
		if _, err := c.Read(buf); err != nil {
			return fmt.Errorf("echo %d: %w", i, err)
		}
	}
	return nil
}

// TestOffloadsOff checks that lab interfaces carry no offloads (final
// checksums, no super-packets), what an AF_PACKET bridge needs.
func TestOffloadsOff(t *testing.T) {
	requireRoot(t)
	l := up(t, testConfig(t, L2, 1))
	n := l.Nodes[0]
	err := InNS(n.NS, func() error {
		for _, ifc := range []string{n.In.Name, n.Out.Name} {
			for _, cmd := range []uint32{0x16 /* GTXCSUM */, 0x1e /* GTSO */, 0x23 /* GGSO */, 0x2b /* GGRO */} {
				v, err := getOffload(ifc, cmd)
				if err != nil {
					return fmt.Errorf("%s %#x: %w", ifc, cmd, err)
				}
				if v != 0 {
					return fmt.Errorf("%s: ethtool get %#x = %d, want 0", ifc, cmd, v)
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func getOffload(name string, cmd uint32) (uint32, error) {
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_DGRAM, 0)
	if err != nil {
		return 0, err
	}
	defer syscall.Close(fd)
	v := &ethtoolValue{cmd: cmd}
	req := &ifreqPtr{data: unsafe.Pointer(v)}
	copy(req.name[:], name)
	_, _, errno := syscall.Syscall(syscall.SYS_IOCTL, uintptr(fd), siocEthtool, uintptr(unsafe.Pointer(req)))
	runtime.KeepAlive(v)
	runtime.KeepAlive(req)
	if errno != 0 {
		return 0, errno
	}
	return v.data, nil
}
