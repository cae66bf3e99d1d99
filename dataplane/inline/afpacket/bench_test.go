package afpacket

import (
	"net/netip"
	"testing"
	"time"

	"github.com/patchgate/patchgate/dataplane/inline"
	"github.com/patchgate/patchgate/dataplane/inline/inlinetest"
)

// Bench parameters: a bounded UDP flood per iteration.
const (
	benchPackets = 200000
	benchSize    = 64
	benchMaxTime = 10 * time.Second
)

// BenchmarkForwarding measures packets/s through the bridged fixture with the
// same sender and receiver, first through a kernel bridge of the node's two
// interfaces, then through the node. Run as root:
//
//	go test -run '^$' -bench Forwarding -benchtime 3x ./dataplane/inline/afpacket/
func BenchmarkForwarding(b *testing.B) {
	inlinetest.RequireRoot(b)
	tp := inlinetest.Bridged(b)
	srcs := tp.AddClientAddrs(b, 4)
	dst := netip.AddrPortFrom(tp.ServerIP, 5001)
	rx := inlinetest.StartReceiver(b, tp, tp.Server, dst)
	flood := func(b *testing.B) {
		var res []inlinetest.FloodResult
		for i := 0; i < b.N; i++ {
			res = append(res, inlinetest.Flood(b, tp, rx, srcs, dst, benchPackets, benchSize, benchMaxTime))
		}
		inlinetest.Report(b, res)
	}
	b.Run("kernel-bridge", func(b *testing.B) {
		if err := tp.In(tp.Node, func() error { return addBridge("pgbench", [2]string(tp.NodeIfs)) }); err != nil {
			b.Fatal(err)
		}
		flood(b)
		b.StopTimer()
		if err := tp.In(tp.Node, func() error { return removeBridge("pgbench") }); err != nil {
			b.Fatal(err)
		}
	})
	b.Run("patchgate", func(b *testing.B) {
		_, stop := start(b, tp, inline.FailClosed, func(c *Config) { c.BlockSize, c.NumBlocks = 1<<20, 16 })
		flood(b)
		b.StopTimer()
		if err := stop(); err != nil {
			b.Fatal(err)
		}
	})
}
