package e2e

import (
	"fmt"
	"net"
	"strconv"
	"testing"

	"github.com/patchgate/patchgate/dataplane"
	"github.com/patchgate/patchgate/dataplane/patch"
	"github.com/patchgate/patchgate/deploy/lab"
)

// TestPatchConversations replays the conversation of every embedded test of
// every shipped non-HTTP patch (TLS, DNS over TCP and UDP, SMB) over real
// sockets through the lab: a scripted server in the server namespace plays
// the server's part and records every byte it receives. The nodes must
// decide as the offline engine does: an exploit is stopped before its
// offending message arrives (the conversation never completes; a reset patch
// resets the client), a benign conversation completes byte for byte.
// Address families alternate between tests.
func TestPatchConversations(t *testing.T) {
	requireE2E(t)
	prog := loadCatalog(t)
	for _, v := range variants {
		t.Run(string(v), func(t *testing.T) {
			l := startLab(t, v, "open")
			runConversations(t, l, prog, func(p *patch.Patch) bool { return p.Protocol != "http" })
		})
	}
}

// runConversations plays the tests of the patches keep selects.
func runConversations(t *testing.T, l *lab.Lab, prog *patch.Program, keep func(*patch.Patch) bool) {
	srv, cli := l.Servers[0], l.Clients[0]
	tcp := map[uint16]*scriptServer{}
	udp := map[uint16]net.PacketConn{}
	t.Cleanup(func() {
		for _, s := range tcp {
			s.Close()
		}
		for _, pc := range udp {
			pc.Close()
		}
	})
	n, blocked := 0, 0
	for _, c := range prog.Patches {
		p := c.Patch
		if !keep(p) {
			continue
		}
		for i := range p.Tests {
			tc := &p.Tests[i]
			want, err := offlineVerdict(prog, p, tc)
			if err != nil {
				t.Fatalf("%s: offline: %v", caseName(p, tc), err)
			}
			port, err := serverPort(p, tc)
			if err != nil {
				t.Fatalf("%s: %v", caseName(p, tc), err)
			}
			host := srv.Addr4.String()
			if n%2 == 1 {
				host = srv.Addr6.String()
			}
			addr := net.JoinHostPort(host, strconv.Itoa(int(port)))
			n++
			var o outcome
			if tc.Transport == "udp" {
				pc := udp[port]
				if pc == nil {
					if pc, err = lab.ListenPacket(srv.NS, "udp", fmt.Sprintf(":%d", port)); err != nil {
						t.Fatal(err)
					}
					udp[port] = pc
				}
				o = runUDP(cli.NS, pc, addr, tc.Steps)
			} else {
				s := tcp[port]
				if s == nil {
					if s, err = newScriptServer(srv.NS, port); err != nil {
						t.Fatal(err)
					}
					tcp[port] = s
				}
				o = runTCP(cli.NS, s, addr, tc.Steps)
			}
			name := fmt.Sprintf("%s (match: %v, to %s)", caseName(p, tc), tc.Match, addr)
			switch {
			case want == dataplane.Pass && !o.completed():
				t.Errorf("%s: benign conversation did not complete: %s", name, o)
			case want != dataplane.Pass && o.completed():
				t.Errorf("%s: offline verdict %v, but the conversation crossed the lab: %s", name, want, o)
			case want == dataplane.Reset && tc.Transport != "udp" && !o.reset():
				t.Errorf("%s: blocked, but the client saw no reset: %s", name, o)
			case want != dataplane.Pass:
				blocked++
			}
		}
	}
	if n == 0 {
		t.Fatal("no patch tests selected")
	}
	t.Logf("%d conversations, %d blocked as the offline engine decides", n, blocked)
}
