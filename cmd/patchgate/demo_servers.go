package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/patchgate/patchgate/deploy/lab"
)

// demoEnv is the demo's traffic: servers in the first server namespace
// that record what reaches them, and clients in the first client namespace.
type demoEnv struct {
	l     *lab.Lab
	w     io.Writer
	cases []*demoCase
	cli   lab.Host
	srv   lab.Host
	web   map[uint16]*webRecorder    // HTTP ports
	tcp   map[uint16]*scriptListener // other TCP ports
	udp   map[uint16]*datagramDemux  // UDP ports
	mu    sync.Mutex
	sent  map[string]bool // client addresses of exploit conversations
	ports atomic.Int32    // client ports handed out to benign sessions
}

// Benign sessions bind client ports from demoPortBase on (below the
// kernel's ephemeral range), each port once per lab.
const (
	demoPortBase  = 20000
	demoPortCount = 10000
)

// clientPort returns the next client port of a benign session.
func (e *demoEnv) clientPort() uint16 {
	return uint16(demoPortBase + (e.ports.Add(1)-1)%demoPortCount)
}

// newDemoEnv starts a server for every port the cases talk to.
func newDemoEnv(l *lab.Lab, cases []*demoCase, w io.Writer) (*demoEnv, error) {
	e := &demoEnv{l: l, w: w, cases: cases, cli: l.Clients[0], srv: l.Servers[0],
		web: map[uint16]*webRecorder{}, tcp: map[uint16]*scriptListener{}, udp: map[uint16]*datagramDemux{},
		sent: map[string]bool{}}
	type listener struct {
		kind string // http, tcp or udp
		port uint16
	}
	need := map[listener]bool{{"http", 80}: true} // benign traffic
	for _, c := range cases {
		switch {
		case c.Test.Transport == "udp":
			need[listener{"udp", c.Port}] = true
		case c.Patch.Protocol == "http":
			need[listener{"http", c.Port}] = true
		default:
			need[listener{"tcp", c.Port}] = true
		}
	}
	for ls := range need {
		kind, port := ls.kind, ls.port
		addr := fmt.Sprintf(":%d", port)
		var err error
		switch kind {
		case "http":
			var ln net.Listener
			if ln, err = lab.Listen(e.srv.NS, "tcp", addr); err == nil {
				e.web[port] = newWebRecorder(ln)
			}
		case "tcp":
			var ln net.Listener
			if ln, err = lab.Listen(e.srv.NS, "tcp", addr); err == nil {
				e.tcp[port] = newScriptListener(ln)
			}
		case "udp":
			var pc net.PacketConn
			if pc, err = lab.ListenPacket(e.srv.NS, "udp", addr); err == nil {
				e.udp[port] = newDatagramDemux(pc)
			}
		}
		if err != nil {
			e.close()
			return nil, fmt.Errorf("demo: server on %s port %d: %w", kind, port, err)
		}
	}
	return e, nil
}

// close stops every server.
func (e *demoEnv) close() {
	for _, s := range e.web {
		s.close()
	}
	for _, s := range e.tcp {
		s.close()
	}
	for _, s := range e.udp {
		s.close()
	}
}

// host returns the server's address for the i-th session: IPv4 and IPv6 alternate.
func (e *demoEnv) host(i int) string {
	if i%2 == 1 {
		return e.srv.Addr6.String()
	}
	return e.srv.Addr4.String()
}

// webRecorder is a net/http server that records, per client address, every
// byte it read and every request its handler saw: the server's own proof of
// what reached it. Safe for concurrent use.
type webRecorder struct {
	srv  *http.Server
	done chan struct{}
	mu   sync.Mutex
	conn map[string]*webConn
}

type webConn struct {
	data     []byte
	closed   bool
	requests int
}

// webRecordLimit bounds the bytes recorded per connection.
const webRecordLimit = 4 << 20

func newWebRecorder(ln net.Listener) *webRecorder {
	s := &webRecorder{done: make(chan struct{}), conn: map[string]*webConn{}}
	// Exploits make the server complain; the demo reads its record instead.
	s.srv = &http.Server{Handler: http.HandlerFunc(s.handle), ReadTimeout: 10 * time.Second,
		ErrorLog: log.New(io.Discard, "", 0)}
	go func() {
		defer close(s.done)
		_ = s.srv.Serve(&webListener{Listener: ln, s: s})
	}()
	return s
}

func (s *webRecorder) close() {
	s.srv.Close()
	<-s.done
}

func (s *webRecorder) handle(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 16<<20))
	sum := sha256.Sum256(body)
	s.mu.Lock()
	if c := s.conn[r.RemoteAddr]; c != nil {
		c.requests++
	}
	s.mu.Unlock()
	w.Header().Set("X-Body-SHA256", hex.EncodeToString(sum[:]))
	fmt.Fprintf(w, "ok %d\n", len(body))
}

// record returns what the server read from remote, whether that connection
// is closed, how many requests its handler saw, and whether it was accepted.
func (s *webRecorder) record(remote string) (n int, closed bool, requests int, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.conn[remote]
	if c == nil {
		return 0, false, 0, false
	}
	return len(c.data), c.closed, c.requests, true
}

// contains reports whether the bytes read from remote contain b.
func (s *webRecorder) contains(remote string, b []byte) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.conn[remote]
	return c != nil && len(b) > 0 && bytes.Contains(c.data, b)
}

type webListener struct {
	net.Listener
	s *webRecorder
}

func (l *webListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.s.mu.Lock()
	l.s.conn[c.RemoteAddr().String()] = &webConn{}
	l.s.mu.Unlock()
	return &webRecConn{Conn: c, s: l.s}, nil
}

type webRecConn struct {
	net.Conn
	s *webRecorder
}

func (c *webRecConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	c.s.mu.Lock()
	rc := c.s.conn[c.RemoteAddr().String()]
	if len(rc.data)+n <= webRecordLimit {
		rc.data = append(rc.data, b[:n]...)
	}
	// net/http aborts its background reads with a past deadline: the
	// connection stays open then.
	if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
		rc.closed = true
	}
	c.s.mu.Unlock()
	return n, err
}

func (c *webRecConn) Close() error {
	c.s.mu.Lock()
	c.s.conn[c.RemoteAddr().String()].closed = true
	c.s.mu.Unlock()
	return c.Conn.Close()
}

// scriptListener accepts TCP connections and hands each to the conversation
// waiting for its client address, so conversations can run concurrently.
type scriptListener struct {
	ln   net.Listener
	done chan struct{}
	mu   sync.Mutex
	wait map[string]chan net.Conn
}

func newScriptListener(ln net.Listener) *scriptListener {
	s := &scriptListener{ln: ln, done: make(chan struct{}), wait: map[string]chan net.Conn{}}
	go func() {
		defer close(s.done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			select {
			case s.slot(c.RemoteAddr().String()) <- c:
			default:
				c.Close()
			}
		}
	}()
	return s
}

func (s *scriptListener) slot(remote string) chan net.Conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	ch := s.wait[remote]
	if ch == nil {
		ch = make(chan net.Conn, 1)
		s.wait[remote] = ch
	}
	return ch
}

// take returns the connection from remote, or nil after timeout.
func (s *scriptListener) take(remote string, timeout time.Duration) net.Conn {
	ch := s.slot(remote)
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case c := <-ch:
		s.mu.Lock()
		delete(s.wait, remote)
		s.mu.Unlock()
		return c
	case <-t.C:
		return nil
	}
}

func (s *scriptListener) close() {
	s.ln.Close()
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, ch := range s.wait {
		select {
		case c := <-ch:
			c.Close()
		default:
		}
	}
}

// datagramDemux reads a UDP server socket and hands each datagram to the
// conversation waiting for its sender.
type datagramDemux struct {
	pc   net.PacketConn
	done chan struct{}
	mu   sync.Mutex
	wait map[string]chan datagram
}

type datagram struct {
	n    int
	from net.Addr
}

func newDatagramDemux(pc net.PacketConn) *datagramDemux {
	d := &datagramDemux{pc: pc, done: make(chan struct{}), wait: map[string]chan datagram{}}
	go func() {
		defer close(d.done)
		buf := make([]byte, 65536)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			select {
			case d.slot(from.String()) <- datagram{n: n, from: from}:
			default:
			}
		}
	}()
	return d
}

func (d *datagramDemux) slot(from string) chan datagram {
	d.mu.Lock()
	defer d.mu.Unlock()
	ch := d.wait[from]
	if ch == nil {
		ch = make(chan datagram, 8)
		d.wait[from] = ch
	}
	return ch
}

func (d *datagramDemux) close() {
	d.pc.Close()
	<-d.done
}
