package inlinetest

import (
	"bytes"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/google/gopacket/layers"

	"github.com/patchgate/patchgate/dataplane"
	// The engine needs the analyzers registered.
	_ "github.com/patchgate/patchgate/dataplane/analyzer/all"
	"github.com/patchgate/patchgate/dataplane/engine"
	"github.com/patchgate/patchgate/dataplane/patch"
)

// CatalogDir returns the shipped patch catalog (patches/ at the module root).
func CatalogDir(tb testing.TB) string {
	tb.Helper()
	dir, err := os.Getwd()
	if err != nil {
		tb.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return filepath.Join(dir, "patches")
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			tb.Fatal("module root not found")
		}
		dir = parent
	}
}

// Engine returns an engine enforcing the shipped catalog with checksum
// validation on, and the program it runs.
func Engine(tb testing.TB, shards int) *engine.Engine {
	tb.Helper()
	ps, err := patch.LoadDir(CatalogDir(tb))
	if err != nil {
		tb.Fatal(err)
	}
	prog, err := patch.Compile(1, ps)
	if err != nil {
		tb.Fatal(err)
	}
	cfg := engine.DefaultConfig()
	cfg.Shards = shards
	cfg.Checksums = engine.ChecksumValidate
	eng, err := engine.New(cfg, prog, nil)
	if err != nil {
		tb.Fatal(err)
	}
	return eng
}

// CatalogRequest returns the client bytes of the first embedded test of patch
// id whose expectation is match: an exploit (match) or a benign look-alike.
func CatalogRequest(tb testing.TB, id string, match bool) []byte {
	tb.Helper()
	ps, err := patch.LoadDir(CatalogDir(tb))
	if err != nil {
		tb.Fatal(err)
	}
	for _, p := range ps {
		if p.ID != id {
			continue
		}
		for _, t := range p.Tests {
			if t.Match != match || t.Transport != "tcp" {
				continue
			}
			var b []byte
			for _, s := range t.Steps {
				if s.Dir == dataplane.ToServer {
					b = append(b, s.Data...)
				}
			}
			return b
		}
	}
	tb.Fatalf("no %v test in patch %s", match, id)
	return nil
}

// Received is what the server saw on one accepted connection.
type Received struct {
	Data []byte
	// Err ends the connection: io.EOF for an orderly close, ECONNRESET when
	// the gateway reset it.
	Err error
}

// Server is a TCP server in a namespace that answers every complete HTTP
// request head with a small response, and records what each connection
// received and how it ended.
type Server struct {
	ln    net.Listener
	conns chan Received
}

// Response is what Server answers.
const Response = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"

// StartServer starts a Server on addr in namespace ns.
func StartServer(tb testing.TB, tp *Topology, ns string, addr netip.AddrPort) *Server {
	tb.Helper()
	s := &Server{ln: tp.Listen(tb, ns, addr), conns: make(chan Received, 64)}
	go func() {
		for {
			c, err := s.ln.Accept()
			if err != nil {
				return
			}
			go s.serve(c)
		}
	}()
	return s
}

func (s *Server) serve(c net.Conn) {
	defer c.Close()
	var got []byte
	buf := make([]byte, 4096)
	answered := false
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	for {
		n, err := c.Read(buf)
		got = append(got, buf[:n]...)
		if err != nil {
			s.conns <- Received{Data: got, Err: err}
			return
		}
		if !answered && bytes.Contains(got, []byte("\r\n\r\n")) {
			answered = true
			if _, err := c.Write([]byte(Response)); err != nil {
				s.conns <- Received{Data: got, Err: err}
				return
			}
			if tc, ok := c.(*net.TCPConn); ok {
				_ = tc.CloseWrite()
			}
		}
	}
}

// Next returns what the next finished connection received.
func (s *Server) Next(tb testing.TB, timeout time.Duration) Received {
	tb.Helper()
	select {
	case r := <-s.conns:
		return r
	case <-time.After(timeout):
		tb.Fatalf("server: no connection finished within %v", timeout)
		return Received{}
	}
}

// Exchange connects from namespace ns to addr, sends req and reads until the
// server closes (nil error) or the connection fails.
func Exchange(tp *Topology, ns string, addr netip.AddrPort, req []byte, timeout time.Duration) ([]byte, error) {
	c, err := tp.Dial(ns, "tcp", addr, timeout)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(timeout))
	if _, err := c.Write(req); err != nil {
		return nil, err
	}
	resp, err := io.ReadAll(c)
	return resp, err
}

// IsReset reports whether err is a connection reset.
func IsReset(err error) bool { return errors.Is(err, syscall.ECONNRESET) }

// SlowInspector passes every packet after a pause: an overloaded node.
type SlowInspector struct{ Delay time.Duration }

// Process implements inline.Inspector.
func (s SlowInspector) Process(layers.LinkType, []byte, time.Time) engine.Result {
	time.Sleep(s.Delay)
	return engine.Result{}
}
