package e2e

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/patchgate/patchgate/deploy/lab"
)

// Bounds of the SIGTERM test's probing.
const (
	maxProbes     = 60 // new connections tried at most
	wantViaNode   = 3  // probes wanted through the stopped node, and through the others
	probeTimeout  = 1500 * time.Millisecond
	keepaliveConn = 6
)

// TestNodeSIGTERM stops one of three nodes with SIGTERM while the others
// run, in both variants and with both fail policies. The node must exit
// cleanly. Fail-open: every new connection succeeds, also those ECMP hashes
// through the stopped node, and connections opened before the stop carry on.
// Fail-closed: connections through the stopped node get nowhere (the server
// never sees them), those through the other nodes still work.
func TestNodeSIGTERM(t *testing.T) {
	requireE2E(t)
	for _, v := range variants {
		for _, fail := range []string{"open", "closed"} {
			t.Run(string(v)+"/fail-"+fail, func(t *testing.T) {
				l := startLab(t, v, fail)
				srv := startHTTPServer(t, l.Servers[0].NS)
				cli := l.Clients[0]
				hosts := []string{l.Servers[0].Addr4.String(), l.Servers[0].Addr6.String()}
				var kept []*kaConn
				if fail == "open" {
					for i := 0; i < keepaliveConn; i++ {
						c, err := dialKeepalive(cli.NS, hosts[i%2])
						if err != nil {
							t.Fatalf("keep-alive connection %d: %v", i, err)
						}
						kept = append(kept, c)
					}
				}
				if err := l.StopNode(1); err != nil {
					t.Fatal(err)
				}
				if err := l.NodeExit(1); err != nil {
					t.Errorf("node 1 did not exit cleanly after SIGTERM: %v", err)
				}
				for i, c := range kept {
					if err := c.get("/after-stop"); err != nil {
						t.Errorf("keep-alive connection %d broke when node 1 stopped (fail-open): %v", i, err)
					}
					c.Close() // before probing: its closing packets would blur the counts
				}
				recs := nodeRecorders(t, l)
				via := map[bool][2]int{} // through node 1? → [succeeded, failed]
				for i := 0; i < maxProbes && (via[true][0]+via[true][1] < wantViaNode || via[false][0]+via[false][1] < wantViaNode); i++ {
					node, err := probe(t, recs, cli.NS, hosts[i%2], i, srv)
					c := via[node == 1]
					if err == nil {
						c[0]++
					} else {
						c[1]++
					}
					via[node == 1] = c
					switch {
					case node == 1 && fail == "open" && err != nil:
						t.Errorf("probe %d through the stopped node failed (fail-open): %v", i, err)
					case node == 1 && fail == "closed" && err == nil:
						t.Errorf("probe %d through the stopped node succeeded (fail-closed)", i)
					case node == 1 && fail == "closed" && errors.Is(err, errReachedServer):
						t.Errorf("probe %d through the stopped node reached the server (fail-closed)", i)
					case node != 1 && err != nil:
						t.Errorf("probe %d through running node %d failed: %v", i, node, err)
					}
				}
				if via[true][0]+via[true][1] < wantViaNode || via[false][0]+via[false][1] < wantViaNode {
					t.Fatalf("after %d probes: %v through node 1 and %v through the others, want %d each", maxProbes, via[true], via[false], wantViaNode)
				}
				t.Logf("through stopped node 1: %d ok, %d failed; through nodes 2-3: %d ok, %d failed",
					via[true][0], via[true][1], via[false][0], via[false][1])
			})
		}
	}
}

// probeBasePort is the first client port of the probes: each probe binds
// its own, so the node it crossed is found by port in the recordings.
const probeBasePort = 42000

// nodeRecorders records what arrives on every node's R1-side interface.
func nodeRecorders(t *testing.T, l *lab.Lab) []*lab.Recorder {
	t.Helper()
	var out []*lab.Recorder
	for _, n := range l.Nodes {
		r, err := l.RecordIncoming(n.NS, n.In.Name)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _, _, _ = r.Stop() })
		out = append(out, r)
	}
	return out
}

// probe makes one new HTTP request from client port probeBasePort+i and
// returns the node whose R1-side interface saw the flow, and the request's
// error. A failed request that still reached the server's handler says so.
func probe(t *testing.T, recs []*lab.Recorder, ns, host string, i int, srv *recordingServer) (int, error) {
	t.Helper()
	port := probeBasePort + i
	served := len(srv.requests(""))
	ctx, cancel := context.WithTimeout(context.Background(), probeTimeout)
	d := net.Dialer{LocalAddr: &net.TCPAddr{Port: port}}
	var c net.Conn
	rerr := lab.InNS(ns, func() error {
		var err error
		c, err = d.DialContext(ctx, "tcp", net.JoinHostPort(host, "80"))
		return err
	})
	cancel()
	if rerr == nil {
		k := &kaConn{Conn: c, r: bufio.NewReader(c), host: host}
		rerr = k.get("/probe")
		c.Close()
	}
	if rerr != nil && len(srv.requests("")) != served {
		rerr = fmt.Errorf("%w: %w", rerr, errReachedServer)
	}
	node := 0
	found := waitFor(time.Second, func() bool {
		node = 0
		for n, r := range recs {
			for _, f := range r.Frames() {
				if srcPort(f.Data) == port {
					if node != 0 && node != n+1 {
						t.Fatalf("probe %d crossed nodes %d and %d", i, node, n+1)
					}
					node = n + 1
				}
			}
		}
		return node != 0
	})
	if !found {
		t.Fatalf("probe %d (port %d) reached no node: %v", i, port, rerr)
	}
	return node, rerr
}

var errReachedServer = errors.New("the request reached the server")

// srcPort returns the TCP source port of an Ethernet frame (0 if none).
func srcPort(f []byte) int {
	if len(f) < 14 {
		return 0
	}
	off := 0
	switch binary.BigEndian.Uint16(f[12:14]) {
	case 0x0800:
		if len(f) < 14+20 || f[14+9] != 6 {
			return 0
		}
		off = 14 + int(f[14]&0x0f)*4
	case 0x86dd:
		if len(f) < 14+40 || f[14+6] != 6 {
			return 0
		}
		off = 14 + 40
	default:
		return 0
	}
	if len(f) < off+2 {
		return 0
	}
	return int(binary.BigEndian.Uint16(f[off : off+2]))
}

// kaConn is a raw HTTP/1.1 keep-alive connection.
type kaConn struct {
	net.Conn
	r    *bufio.Reader
	host string
}

func dialKeepalive(ns, host string) (*kaConn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), stepTimeout)
	defer cancel()
	c, err := lab.Dialer(ns)(ctx, "tcp", net.JoinHostPort(host, "80"))
	if err != nil {
		return nil, err
	}
	k := &kaConn{Conn: c, r: bufio.NewReader(c), host: host}
	if err := k.get("/before-stop"); err != nil {
		c.Close()
		return nil, err
	}
	return k, nil
}

// get sends one GET on the connection and reads the whole answer.
func (k *kaConn) get(path string) error {
	_ = k.SetDeadline(time.Now().Add(probeTimeout))
	if _, err := fmt.Fprintf(k, "GET %s HTTP/1.1\r\nHost: %s\r\n\r\n", path, k.host); err != nil {
		return err
	}
	resp, err := http.ReadResponse(k.r, nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %s", resp.Status)
	}
	return nil
}
