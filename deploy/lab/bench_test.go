package lab

import (
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/gopacket/layers"

	"github.com/patchgate/patchgate/dataplane"
	"github.com/patchgate/patchgate/dataplane/gen"
)

// benchFrames is the size of the replayed capture: UDP datagrams of 64
// payload bytes (106-byte frames) in 256 flows, client to server, which the
// engine tracks and passes (no analyzer listens on their port).
const benchFrames = 200000

// BenchmarkLabForwarding measures packets per second through a 1-node lab:
// tcpreplay at top speed from the tap's client side, counted by the kernel on
// the tap's server side (delivered packets over the sending time plus the
// time the lab still delivered afterwards). For each variant it runs kernel forwarding (routing
// or a kernel bridge); with PATCHGATE_BIN set (a patchgate binary) and
// PATCHGATE_PATCHES (a patch directory) also patchgate's dataplane, same
// sender, same capture. Reported: delivered pps and the share lost.
//
//	sudo PATCHGATE_BIN=$PWD/bin/patchgate PATCHGATE_PATCHES=$PWD/patches \
//	  go test -run '^$' -bench LabForwarding -benchtime 3x ./deploy/lab/
func BenchmarkLabForwarding(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("needs root")
	}
	if _, err := exec.LookPath("tcpreplay"); err != nil {
		b.Skip("needs tcpreplay")
	}
	path := filepath.Join(b.TempDir(), "udp.pcap")
	if err := writeUDPCapture(path, benchFrames); err != nil {
		b.Fatal(err)
	}
	bin, patches := os.Getenv("PATCHGATE_BIN"), os.Getenv("PATCHGATE_PATCHES")
	for _, v := range []Variant{L3, L2} {
		for _, mode := range []string{"kernel", "patchgate"} {
			b.Run(string(v)+"/"+mode, func(b *testing.B) {
				if mode == "patchgate" && (bin == "" || patches == "") {
					b.Skip("set PATCHGATE_BIN and PATCHGATE_PATCHES")
				}
				cfg := DefaultConfig()
				cfg.Variant, cfg.Nodes, cfg.StateRoot = v, 1, b.TempDir()
				cfg.Binary, cfg.Patches = bin, patches
				l, err := Up(cfg)
				if err != nil {
					b.Fatal(err)
				}
				defer l.Down()
				if mode == "patchgate" {
					if err := l.StartNode(1); err != nil {
						b.Fatal(err)
					}
				}
				var sent, got uint64
				var secs float64
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					before, err := l.Stats(l.Tap.NS)
					if err != nil {
						b.Fatal(err)
					}
					res, err := l.Replay(path, ReplayOptions{TopSpeed: true, NoRecord: true})
					if err != nil {
						b.Fatal(err)
					}
					replayEnd, lastChange := time.Now(), time.Now()
					recv := func() uint64 {
						st, err := l.Stats(l.Tap.NS)
						if err != nil {
							b.Fatal(err)
						}
						return st[l.Tap.S.Name].Sub(before[l.Tap.S.Name]).RxPackets
					}
					// Let the last frames drain through the node.
					last := recv()
					for j := 0; j < 50; j++ {
						time.Sleep(20 * time.Millisecond)
						if n := recv(); n == last {
							break
						} else {
							last, lastChange = n, time.Now()
						}
					}
					sent += uint64(res.Sent)
					got += last
					// Sending time, plus how long the node still delivered.
					secs += (res.Elapsed + lastChange.Sub(replayEnd)).Seconds()
				}
				b.ReportMetric(float64(got)/secs, "pps")
				b.ReportMetric(100*(float64(sent)-float64(got))/float64(sent), "%lost")
			})
		}
	}
}

// writeUDPCapture writes n client-to-server UDP frames in 256 flows.
func writeUDPCapture(path string, n int) error {
	c := &gen.Capture{LinkType: layers.LinkTypeEthernet}
	payload := make([]byte, 64)
	for i := 0; i < n; i++ {
		client := gen.Endpoint{Addr: netip.AddrFrom4([4]byte{198, 51, 100, byte(1 + i%100)}), Port: uint16(20000 + i%256)}
		server := gen.Endpoint{Addr: netip.MustParseAddr("203.0.113.10"), Port: 9}
		f, err := gen.UDPDatagram(client, server, dataplane.ToServer, payload)
		if err != nil {
			return fmt.Errorf("frame %d: %w", i, err)
		}
		c.Frames = append(c.Frames, f)
	}
	out, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := c.WritePcap(out); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
