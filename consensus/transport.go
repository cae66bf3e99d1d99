package consensus

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
)

// errCut is returned by dials while the transport is cut.
var errCut = errors.New("consensus: raft transport cut")

// streamLayer is raft's TCP stream layer with an advertisable address and a
// switch that cuts the node off: while cut, dials fail, accepted connections
// are closed at once and every open connection is closed. Tests use the switch
// to partition a node on real loopback sockets; production never flips it.
//
// Concurrency: Accept runs on raft's listener goroutine, Dial on any; setCut
// may be called from any goroutine.
type streamLayer struct {
	ln   net.Listener
	adv  net.Addr
	cut  atomic.Bool
	mu   sync.Mutex
	open map[*trackedConn]struct{}
}

var _ raft.StreamLayer = (*streamLayer)(nil)

// newStreamLayer listens on bind and advertises advertise ("" = the bound
// address, which must then be a specific IP).
func newStreamLayer(bind, advertise string) (*streamLayer, error) {
	ln, err := net.Listen("tcp", bind)
	if err != nil {
		return nil, fmt.Errorf("consensus: raft listen %s: %w", bind, err)
	}
	var adv net.Addr = ln.Addr()
	if advertise != "" {
		a, err := net.ResolveTCPAddr("tcp", advertise)
		if err != nil {
			ln.Close()
			return nil, fmt.Errorf("consensus: raft advertise %s: %w", advertise, err)
		}
		adv = a
	}
	if ta, ok := adv.(*net.TCPAddr); !ok || ta.IP == nil || ta.IP.IsUnspecified() || ta.Port == 0 {
		ln.Close()
		return nil, fmt.Errorf("consensus: raft address %s is not advertisable: set RaftAdvertise", adv)
	}
	return &streamLayer{ln: ln, adv: adv, open: map[*trackedConn]struct{}{}}, nil
}

func (s *streamLayer) Accept() (net.Conn, error) {
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return nil, err
		}
		if s.cut.Load() {
			c.Close()
			continue
		}
		return s.track(c), nil
	}
}

func (s *streamLayer) Close() error   { return s.ln.Close() }
func (s *streamLayer) Addr() net.Addr { return s.adv }

func (s *streamLayer) Dial(addr raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	if s.cut.Load() {
		return nil, errCut
	}
	c, err := net.DialTimeout("tcp", string(addr), timeout)
	if err != nil {
		return nil, err
	}
	return s.track(c), nil
}

func (s *streamLayer) track(c net.Conn) net.Conn {
	t := &trackedConn{Conn: c, s: s}
	s.mu.Lock()
	s.open[t] = struct{}{}
	s.mu.Unlock()
	if s.cut.Load() { // cut between the check and the registration
		t.Close()
	}
	return t
}

// setCut cuts (true) or restores (false) the node's raft connectivity.
func (s *streamLayer) setCut(cut bool) {
	s.cut.Store(cut)
	if !cut {
		return
	}
	s.mu.Lock()
	conns := make([]*trackedConn, 0, len(s.open))
	for c := range s.open {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		c.Close()
	}
}

type trackedConn struct {
	net.Conn
	s    *streamLayer
	once sync.Once
}

func (t *trackedConn) Close() error {
	t.once.Do(func() {
		t.s.mu.Lock()
		delete(t.s.open, t)
		t.s.mu.Unlock()
	})
	return t.Conn.Close()
}
