package waf

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"time"

	"github.com/patchgate/patchgate/deploy/lab"
)

// pingSize is the UDP payload of one ping.
const pingSize = 64

// echoServer answers every UDP datagram with itself until closed.
type echoServer struct {
	pc net.PacketConn
	wg sync.WaitGroup
}

func serveEcho(pc net.PacketConn) *echoServer {
	e := &echoServer{pc: pc}
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		buf := make([]byte, 2048)
		for {
			n, addr, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			_, _ = pc.WriteTo(buf[:n], addr)
		}
	}()
	return e
}

func (e *echoServer) close() {
	_ = e.pc.Close()
	e.wg.Wait()
}

// ping sends n sequential 64-byte datagrams from namespace ns to addr and
// returns the round trips in microseconds; datagrams not answered within
// timeout count as lost. Answers to earlier (late) pings are skipped by
// sequence number.
func ping(ctx context.Context, ns, addr string, n int, timeout time.Duration) (PingResult, error) {
	var conn net.Conn
	err := lab.InNS(ns, func() error {
		var err error
		conn, err = net.Dial("udp", addr)
		return err
	})
	if err != nil {
		return PingResult{}, fmt.Errorf("bench/waf: ping %s: %w", addr, err)
	}
	defer conn.Close()
	res := PingResult{Sent: n, SamplesUS: make([]float64, 0, n)}
	out := make([]byte, pingSize)
	in := make([]byte, 2048)
	for seq := uint64(1); seq <= uint64(n); seq++ {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		binary.BigEndian.PutUint64(out, seq)
		start := time.Now()
		if _, err := conn.Write(out); err != nil {
			return res, fmt.Errorf("bench/waf: ping %s: %w", addr, err)
		}
		deadline := start.Add(timeout)
		got := false
		for !got {
			_ = conn.SetReadDeadline(deadline)
			m, err := conn.Read(in)
			if errors.Is(err, os.ErrDeadlineExceeded) {
				break
			}
			if err != nil {
				return res, fmt.Errorf("bench/waf: ping %s: %w", addr, err)
			}
			if m >= 8 && binary.BigEndian.Uint64(in) == seq {
				res.SamplesUS = append(res.SamplesUS, float64(time.Since(start).Nanoseconds())/1e3)
				got = true
			}
		}
		if !got {
			res.Lost++
		}
	}
	res.RTT = percentiles(res.SamplesUS)
	return res, nil
}
