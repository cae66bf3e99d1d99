package inlinetest

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// AddClientAddrs adds n more IPv4 addresses (198.18.1.10, .11, ...) to the
// client: NFQUEUE's --queue-balance hashes on addresses only, so several
// address pairs are needed to spread a load over several queues.
func (tp *Topology) AddClientAddrs(tb testing.TB, n int) []netip.Addr {
	tb.Helper()
	var out []netip.Addr
	for i := 0; i < n; i++ {
		a := netip.AddrFrom4([4]byte{198, 18, 1, byte(10 + i)})
		tp.Run(tb, tp.Client, "ip", "addr", "add", a.String()+"/24", "dev", "c0")
		out = append(out, a)
	}
	return out
}

// Receiver counts UDP datagrams of the current flood in the server namespace.
type Receiver struct {
	conn  *net.UDPConn
	run   atomic.Uint64
	count atomic.Uint64
	last  atomic.Int64 // unix nanoseconds of the last datagram counted
}

// StartReceiver listens on addr in namespace ns until the test ends.
func StartReceiver(tb testing.TB, tp *Topology, ns string, addr netip.AddrPort) *Receiver {
	tb.Helper()
	r := &Receiver{}
	err := tp.In(ns, func() error {
		var err error
		r.conn, err = net.ListenUDP("udp", net.UDPAddrFromAddrPort(addr))
		return err
	})
	if err != nil {
		tb.Fatal(err)
	}
	_ = r.conn.SetReadBuffer(8 << 20)
	tb.Cleanup(func() { r.conn.Close() })
	go func() {
		buf := make([]byte, 2048)
		for {
			n, err := r.conn.Read(buf)
			if err != nil {
				return
			}
			if n >= 8 && binary.BigEndian.Uint64(buf) == r.run.Load() {
				r.count.Add(1)
				r.last.Store(time.Now().UnixNano())
			}
		}
	}()
	return r
}

// FloodResult is what one flood measured.
type FloodResult struct {
	Sent, Received int
	// Elapsed runs from the first send to the last datagram received.
	Elapsed time.Duration
}

// PPS is the received packet rate.
func (f FloodResult) PPS() float64 { return float64(f.Received) / f.Elapsed.Seconds() }

var floodRun atomic.Uint64

// Flood sends count UDP datagrams of size bytes from the client addresses srcs
// (round robin, one socket each) to dst as fast as one goroutine can, for at
// most maxTime, and waits until the receiver has been idle for 200 ms.
func Flood(tb testing.TB, tp *Topology, r *Receiver, srcs []netip.Addr, dst netip.AddrPort, count, size int, maxTime time.Duration) FloodResult {
	tb.Helper()
	if size < 8 {
		size = 8
	}
	run := floodRun.Add(1)
	r.run.Store(run)
	r.count.Store(0)
	var conns []*net.UDPConn
	err := tp.In(tp.Client, func() error {
		for _, s := range srcs {
			c, err := net.DialUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(s, 0)), net.UDPAddrFromAddrPort(dst))
			if err != nil {
				return err
			}
			_ = c.SetWriteBuffer(4 << 20)
			conns = append(conns, c)
		}
		return nil
	})
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	if err != nil {
		tb.Fatal(err)
	}
	payload := make([]byte, size)
	binary.BigEndian.PutUint64(payload, run)
	start := time.Now()
	deadline := start.Add(maxTime)
	sent := 0
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for sent < count && (sent%1024 != 0 || time.Now().Before(deadline)) {
			if _, err := conns[sent%len(conns)].Write(payload); err == nil {
				sent++
			}
		}
	}()
	wg.Wait()
	idleSince, lastCount := time.Now(), r.count.Load()
	for time.Since(idleSince) < 200*time.Millisecond && time.Since(start) < maxTime+5*time.Second {
		time.Sleep(10 * time.Millisecond)
		if c := r.count.Load(); c != lastCount {
			lastCount, idleSince = c, time.Now()
		}
	}
	res := FloodResult{Sent: sent, Received: int(r.count.Load())}
	if last := r.last.Load(); last > start.UnixNano() {
		res.Elapsed = time.Duration(last - start.UnixNano())
	} else {
		res.Elapsed = time.Since(start)
	}
	return res
}

// Report adds a flood's figures to a benchmark.
func Report(b *testing.B, res []FloodResult) {
	var recv, sent int
	var el time.Duration
	for _, r := range res {
		recv += r.Received
		sent += r.Sent
		el += r.Elapsed
	}
	b.ReportMetric(float64(recv)/el.Seconds(), "pps")
	b.ReportMetric(100*float64(recv)/float64(max(sent, 1)), "%delivered")
	b.Logf("%s: sent %d, received %d in %v", b.Name(), sent, recv, el.Round(time.Millisecond))
}

// String formats a result.
func (f FloodResult) String() string {
	return fmt.Sprintf("sent %d received %d in %v (%.0f pps)", f.Sent, f.Received, f.Elapsed, f.PPS())
}
