package nfqueue

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

// BenchmarkForwarding measures packets/s through the routed fixture with the
// same sender and receiver, first with plain kernel forwarding, then through
// the node (fail-closed, so a full queue drops instead of letting packets
// bypass inspection). Run as root:
//
//	go test -run '^$' -bench Forwarding -benchtime 3x ./dataplane/inline/nfqueue/
func BenchmarkForwarding(b *testing.B) {
	inlinetest.RequireRoot(b, IPTables, IP6Tables)
	tp := inlinetest.Routed(b)
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
	b.Run("kernel", flood)
	b.Run("patchgate", func(b *testing.B) {
		_, stop := start(b, tp, inline.FailClosed)
		flood(b)
		b.StopTimer()
		if err := stop(); err != nil {
			b.Fatal(err)
		}
	})
}
