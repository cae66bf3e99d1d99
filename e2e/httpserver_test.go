package e2e

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/patchgate/patchgate/deploy/lab"
)

// seenRequest is what the server's handler got.
type seenRequest struct {
	Remote, Method, URI string
	Header              http.Header
	BodyLen             int
	BodySHA             string
}

// connLog is every byte the server read on one connection.
type connLog struct {
	data   []byte
	closed bool
}

// recordingServer is a real net/http server that records every request its
// handler sees and every byte read on every connection, by client address:
// the server's own proof of what reached it. Safe for concurrent use.
type recordingServer struct {
	srv *http.Server

	mu    sync.Mutex
	reqs  []seenRequest
	conns map[string]*connLog
}

// startHTTPServer serves HTTP on :80 (both families) inside ns until the
// test ends.
func startHTTPServer(t *testing.T, ns string) *recordingServer {
	t.Helper()
	ln, err := lab.Listen(ns, "tcp", ":80")
	if err != nil {
		t.Fatal(err)
	}
	s := &recordingServer{conns: map[string]*connLog{}}
	s.srv = &http.Server{Handler: http.HandlerFunc(s.handle), ReadTimeout: 10 * time.Second, ErrorLog: nil}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = s.srv.Serve(&recListener{Listener: ln, s: s})
	}()
	t.Cleanup(func() {
		s.srv.Close()
		<-done
	})
	return s
}

func (s *recordingServer) handle(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 16<<20))
	sum := sha256.Sum256(body)
	s.mu.Lock()
	s.reqs = append(s.reqs, seenRequest{Remote: r.RemoteAddr, Method: r.Method, URI: r.RequestURI,
		Header: r.Header.Clone(), BodyLen: len(body), BodySHA: hex.EncodeToString(sum[:])})
	s.mu.Unlock()
	w.Header().Set("X-Body-SHA256", hex.EncodeToString(sum[:]))
	fmt.Fprintf(w, "ok %d\n", len(body))
}

// requests returns the handler's record of requests from remote ("" = all).
func (s *recordingServer) requests(remote string) []seenRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []seenRequest
	for _, r := range s.reqs {
		if remote == "" || r.Remote == remote {
			out = append(out, r)
		}
	}
	return out
}

// received returns the bytes the server read from remote and whether that
// connection is closed (ok is false when it never was accepted).
func (s *recordingServer) received(remote string) (data []byte, closed, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.conns[remote]
	if c == nil {
		return nil, false, false
	}
	return append([]byte(nil), c.data...), c.closed, true
}

// recListener wraps accepted connections to record what they read.
type recListener struct {
	net.Listener
	s *recordingServer
}

func (l *recListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.s.mu.Lock()
	l.s.conns[c.RemoteAddr().String()] = &connLog{}
	l.s.mu.Unlock()
	return &recConn{Conn: c, s: l.s}, nil
}

type recConn struct {
	net.Conn
	s *recordingServer
}

func (c *recConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	// net/http aborts its background reads with a past deadline: the
	// connection stays open then.
	c.s.mu.Lock()
	log := c.s.conns[c.RemoteAddr().String()]
	log.data = append(log.data, b[:n]...)
	if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
		log.closed = true
	}
	c.s.mu.Unlock()
	return n, err
}

func (c *recConn) Close() error {
	c.s.mu.Lock()
	c.s.conns[c.RemoteAddr().String()].closed = true
	c.s.mu.Unlock()
	return c.Conn.Close()
}
