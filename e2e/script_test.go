package e2e

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"
	"time"

	"github.com/patchgate/patchgate/dataplane"
	"github.com/patchgate/patchgate/dataplane/patch"
	"github.com/patchgate/patchgate/deploy/lab"
)

// stepTimeout bounds every read of a scripted conversation: a blocked
// (dropped) step shows as a timeout.
const stepTimeout = 2 * time.Second

// outcome is what crossed the lab in one scripted conversation.
type outcome struct {
	// ToServer and ToClient are the bytes each side received; WantServer
	// and WantClient what the script sends each way.
	ToServer, ToClient     int
	WantServer, WantClient int
	// ClientErr is the client's first error (nil when the conversation
	// ended with the server's orderly close).
	ClientErr error
}

// completed reports whether every byte arrived and the connection ended
// cleanly.
func (o outcome) completed() bool {
	return o.ToServer == o.WantServer && o.ToClient == o.WantClient && o.ClientErr == nil
}

// reset reports whether the client saw its connection reset (a reset
// before the half-close makes shutdown fail with ENOTCONN).
func (o outcome) reset() bool {
	return errors.Is(o.ClientErr, syscall.ECONNRESET) || errors.Is(o.ClientErr, syscall.EPIPE) ||
		errors.Is(o.ClientErr, syscall.ENOTCONN) // shutdown(2) after a reset
}

func (o outcome) String() string {
	return fmt.Sprintf("server got %d/%d bytes, client got %d/%d, client error %v",
		o.ToServer, o.WantServer, o.ToClient, o.WantClient, o.ClientErr)
}

// scriptServer plays the server side of patch tests on one TCP port inside
// a namespace, one conversation at a time.
type scriptServer struct {
	ln net.Listener
}

func newScriptServer(ns string, port uint16) (*scriptServer, error) {
	ln, err := lab.Listen(ns, "tcp", fmt.Sprintf(":%d", port))
	if err != nil {
		return nil, err
	}
	return &scriptServer{ln: ln}, nil
}

func (s *scriptServer) Close() error { return s.ln.Close() }

// accept returns the connection from remote, closing any other (a late
// connection of an earlier conversation).
func (s *scriptServer) accept(remote string) (net.Conn, error) {
	tl := s.ln.(*net.TCPListener)
	_ = tl.SetDeadline(time.Now().Add(stepTimeout))
	defer tl.SetDeadline(time.Time{})
	for {
		c, err := tl.Accept()
		if err != nil {
			return nil, err
		}
		if c.RemoteAddr().String() == remote {
			return c, nil
		}
		c.Close()
	}
}

// runTCP plays a test's conversation over a real TCP connection from client
// namespace ns to addr, whose server side s plays.
func runTCP(ns string, s *scriptServer, addr string, steps []patch.Step) outcome {
	var o outcome
	o.WantServer, o.WantClient = lab.StepBytes(steps)
	ctx, cancel := context.WithTimeout(context.Background(), stepTimeout)
	defer cancel()
	c, err := lab.Dialer(ns)(ctx, "tcp", addr)
	if err != nil {
		o.ClientErr = err
		return o
	}
	defer c.Close()
	served := make(chan int, 1)
	go func() {
		sc, err := s.accept(c.LocalAddr().String())
		if err != nil {
			served <- 0
			return
		}
		served <- lab.ServeSteps(sc, steps, stepTimeout)
	}()
	o.ClientErr = lab.PlaySteps(c, steps, stepTimeout, &o.ToClient)
	o.ToServer = <-served
	return o
}

// runUDP plays a UDP test: every step one datagram. A datagram the node
// drops never arrives; the conversation stops there.
func runUDP(clientNS string, server net.PacketConn, addr string, steps []patch.Step) outcome {
	var o outcome
	o.WantServer, o.WantClient = lab.StepBytes(steps)
	ctx, cancel := context.WithTimeout(context.Background(), stepTimeout)
	defer cancel()
	c, err := lab.Dialer(clientNS)(ctx, "udp", addr)
	if err != nil {
		o.ClientErr = err
		return o
	}
	defer c.Close()
	var peer net.Addr
	buf := make([]byte, 65536)
	for _, st := range steps {
		if st.Dir == dataplane.ToServer {
			if _, err := c.Write(st.Data); err != nil {
				o.ClientErr = err
				return o
			}
			_ = server.SetReadDeadline(time.Now().Add(stepTimeout))
			for {
				n, from, err := server.ReadFrom(buf)
				if err != nil {
					o.ClientErr = err // the datagram did not arrive
					return o
				}
				if from.String() == c.LocalAddr().String() {
					o.ToServer += n
					peer = from
					break
				}
			}
			continue
		}
		if peer == nil {
			o.ClientErr = errors.New("script starts with a datagram to the client")
			return o
		}
		if _, err := server.WriteTo(st.Data, peer); err != nil {
			o.ClientErr = err
			return o
		}
		_ = c.SetReadDeadline(time.Now().Add(stepTimeout))
		n, err := c.Read(buf)
		if err != nil {
			o.ClientErr = err
			return o
		}
		o.ToClient += n
	}
	return o
}

// isTimeout reports a deadline error.
func isTimeout(err error) bool { return errors.Is(err, os.ErrDeadlineExceeded) }
