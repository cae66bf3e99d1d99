package lab

import (
	"io"
	"net"
	"time"

	"github.com/patchgate/patchgate/dataplane"
	"github.com/patchgate/patchgate/dataplane/patch"
)

// A patch test's conversation (patch.Test.Steps) can be played over real
// sockets through the lab: the client side from a client namespace, the
// server side in a server namespace. The demo and the end-to-end tests use
// these players so that what crosses the nodes is exactly the test's bytes.

// StepBytes returns the bytes a conversation sends each way.
func StepBytes(steps []patch.Step) (toServer, toClient int) {
	for _, s := range steps {
		if s.Dir == dataplane.ToServer {
			toServer += len(s.Data)
		} else {
			toClient += len(s.Data)
		}
	}
	return
}

// ServeSteps plays the server's side of steps on c (each read bounded by
// timeout), waits for the client to close, closes c and returns the bytes
// received. It stops at the first failed read or write: a node that reset or
// dropped the conversation ends it there.
func ServeSteps(c net.Conn, steps []patch.Step, timeout time.Duration) int {
	defer c.Close()
	got := 0
	for _, st := range steps {
		if st.Dir == dataplane.ToServer {
			_ = c.SetReadDeadline(time.Now().Add(timeout))
			n, err := io.ReadFull(c, make([]byte, len(st.Data)))
			got += n
			if err != nil {
				return got
			}
		} else if _, err := c.Write(st.Data); err != nil {
			return got
		}
	}
	// Wait for the client's close; anything more counts as received.
	_ = c.SetReadDeadline(time.Now().Add(timeout))
	n, _ := io.Copy(io.Discard, c)
	return got + int(n)
}

// PlaySteps plays the client's side of steps on c (each read bounded by
// timeout), adding the bytes received to *got. It returns nil when the server
// closed the connection in order after the last step.
func PlaySteps(c net.Conn, steps []patch.Step, timeout time.Duration, got *int) error {
	for _, st := range steps {
		if st.Dir == dataplane.ToServer {
			if _, err := c.Write(st.Data); err != nil {
				return err
			}
			continue
		}
		_ = c.SetReadDeadline(time.Now().Add(timeout))
		n, err := io.ReadFull(c, make([]byte, len(st.Data)))
		*got += n
		if err != nil {
			return err
		}
	}
	if tc, ok := c.(*net.TCPConn); ok {
		if err := tc.CloseWrite(); err != nil {
			return err
		}
	}
	_ = c.SetReadDeadline(time.Now().Add(timeout))
	n, err := io.Copy(io.Discard, c)
	*got += int(n)
	return err
}
