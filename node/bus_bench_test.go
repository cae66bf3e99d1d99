package node

import (
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/patchgate/patchgate/dataplane"
	"github.com/patchgate/patchgate/dataplane/gen"
	"github.com/patchgate/patchgate/dataplane/inline"
)

// BenchmarkBusCheckpointCost measures the packet path with checkpoint
// sharing off and on, in the same run: keep-alive HTTP sessions (4 request /
// response exchanges each, a checkpoint per message boundary) through one
// node's engine; with the bus on, a routed peer receives the checkpoints.
//
//	go test -run '^$' -bench BusCheckpointCost -benchtime 20000x ./node/
func BenchmarkBusCheckpointCost(b *testing.B) {
	const sessions = 1024
	var all [][]gen.Frame
	for i := 0; i < sessions; i++ {
		s, err := gen.NewTCPSession(gen.EP(fmt.Sprintf("198.51.100.%d:%d", 1+i/200, 20000+i)), gen.EP("203.0.113.2:80"), gen.DefaultSessionOptions())
		if err != nil {
			b.Fatal(err)
		}
		for j := 0; j < 4; j++ {
			s.Send(dataplane.ToServer, []byte("GET /index.html HTTP/1.1\r\nHost: example.test\r\n\r\n"))
			s.Send(dataplane.ToClient, []byte("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"))
		}
		s.Close(dataplane.ToClient)
		f, err := s.Frames()
		if err != nil {
			b.Fatal(err)
		}
		all = append(all, f)
	}
	for _, on := range []bool{false, true} {
		b.Run(fmt.Sprintf("sharing=%v", on), func(b *testing.B) {
			cfg := DefaultConfig()
			cfg.Name, cfg.Patches, cfg.EVE, cfg.HTTP.Listen = "gw-bench", benchCatalog(), "", ""
			var peer *Node
			if on {
				peer = benchBusNode(b, "gw-peer", nil)
				cfg.Bus.Enabled = true
				cfg.Bus.Listen, cfg.Bus.ClusterListen = "127.0.0.1:0", "127.0.0.1:0"
				cfg.Bus.Routes = []string{peer.Bus().Server().ClusterAddr()}
			}
			n := benchBusNode(b, "", &cfg)
			if on {
				deadline := time.Now().Add(10 * time.Second)
				for n.Bus().Server().NumRoutes() < 1 || peer.Bus().Server().NumRoutes() < 1 {
					if time.Now().After(deadline) {
						b.Fatal("routes not up")
					}
					time.Sleep(5 * time.Millisecond)
				}
			}
			w := n.Engine().NewWorker()
			b.ResetTimer()
			pkts := 0
			for i := 0; i < b.N; i++ {
				s := i % sessions
				if s == 0 && i > 0 {
					n.Engine().Expire(time.Now().Add(24 * time.Hour))
				}
				process(w, all[s])
				pkts += len(all[s])
			}
			b.StopTimer()
			b.ReportMetric(float64(pkts)/b.Elapsed().Seconds(), "pkts/s")
			if on {
				h := n.Bus().Health()
				b.ReportMetric(float64(h.Published+h.Coalesced+h.Dropped)/b.Elapsed().Seconds(), "ckpts/s")
				b.ReportMetric(float64(h.Dropped), "dropped")
			}
		})
	}
}

// benchCatalog is the patch catalog (catalog ignores its argument).
func benchCatalog() string { return catalog(nil) }

// benchBusNode builds a node from cfg (nil: a bus-only peer named name).
func benchBusNode(b *testing.B, name string, cfg *Config) *Node {
	if cfg == nil {
		c := DefaultConfig()
		c.Name, c.Patches, c.EVE, c.HTTP.Listen = name, benchCatalog(), "", ""
		c.Bus.Enabled = true
		c.Bus.Listen, c.Bus.ClusterListen = "127.0.0.1:0", "127.0.0.1:0"
		cfg = &c
	}
	n, err := New(*cfg, Options{Logger: slog.New(slog.DiscardHandler),
		Backend: func(Config, func() inline.Inspector, *slog.Logger) (inline.Backend, error) { return idleBackend{}, nil }})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(n.closeFiles)
	return n
}
