package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/patchgate/patchgate/dataplane"
	"github.com/patchgate/patchgate/dataplane/gen"
	"github.com/patchgate/patchgate/deploy/lab"
)

// replayPPS paces the replay so that each flow's two directions, sent from
// the tap's two sides, reach the node in capture order. A replay is not
// causal (the "server" answers whether or not the request got through), so
// the node must see the directions in order. The AF_PACKET bridge reads each
// direction from its own TPACKET_V3 ring, handed over a block at a time
// (when the block retire timer fires, a few ms), so frames of the two
// directions closer than that may be inspected out of order; at 1000 pps and
// more that showed as benign segments dropped (tcp_state) and exploit
// sessions partly crossing. Real TCP is causal and not affected.
var replayPPS = map[lab.Variant]int{lab.L3: 1000, lab.L2: 100}

// TestReplayThroughLab plays a generated capture with tcpreplay through a
// 3-node lab in both variants: a seeded mix of concurrent HTTP/1.1
// keep-alive sessions over IPv4 and IPv6, with every shipped HTTP exploit
// placed in one of them. Counting at the receivers (the tap's far side):
// every data segment of every benign session arrives, in both directions,
// and no segment of an exploit session from the exploit on does.
func TestReplayThroughLab(t *testing.T) {
	requireE2E(t)
	prog := loadCatalog(t)
	var exploits [][]byte
	for _, c := range prog.Patches {
		if c.Protocol != "http" || !c.Enforced() {
			continue
		}
		for _, tc := range c.Tests {
			if !tc.Match {
				continue
			}
			var req []byte
			for _, st := range tc.Steps {
				if st.Dir == dataplane.ToServer {
					req = append(req, st.Data...)
				}
			}
			exploits = append(exploits, req)
		}
	}
	capture, placements, err := gen.Mix(gen.MixOptions{Seed: 20261122, Sessions: 64, Concurrency: 8,
		MinRequests: 1, MaxRequests: 3, MaxBody: 4096, LargeEvery: 12, LargeSize: 32 << 10, IPv6Every: 3,
		Exploits: exploits})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "mix.pcap")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := capture.WritePcap(f); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	// Where each exploit session must stop: from its exploit's first frame.
	stopAt := map[int]int{}
	for _, p := range placements {
		stopAt[p.Flow] = p.FirstFrame
	}
	for _, v := range variants {
		t.Run(string(v), func(t *testing.T) {
			l := startLab(t, v, "open")
			res, err := l.Replay(path, lab.ReplayOptions{PPS: replayPPS[v]})
			if err != nil {
				t.Fatal(err)
			}
			if res.Dropped != 0 {
				t.Fatalf("the receivers' recorder dropped %d frames: counts would be wrong", res.Dropped)
			}
			got := map[string]bool{}
			for _, fr := range append(append([]lab.Frame{}, res.AtServer...), res.AtClient...) {
				if k, ok := segmentKey(fr.Data); ok {
					got[k] = true
				}
			}
			benign, benignGot, blocked := 0, 0, 0
			for i, fr := range capture.Frames {
				k, ok := segmentKey(fr.Data)
				if !ok {
					continue // no payload: handshakes and ACKs are not counted
				}
				stop, exploitFlow := stopAt[fr.Meta.Flow]
				switch {
				case exploitFlow && i >= stop:
					// The exploit's first segments may pass (the request is
					// not complete yet), but never its last: from there on
					// nothing of the flow may arrive.
					if i >= lastFrame(placements, fr.Meta.Flow) && got[k] {
						t.Errorf("frame %d (flow %d, %s) of an exploit session crossed the lab after the exploit", i, fr.Meta.Flow, fr.Meta.Dir)
					}
					blocked++
				default:
					benign++
					if got[k] {
						benignGot++
					} else if benign-benignGot <= 10 {
						t.Errorf("benign frame %d (flow %d, %s) did not arrive", i, fr.Meta.Flow, fr.Meta.Dir)
					}
				}
			}
			if benignGot != benign {
				t.Errorf("%d of %d benign data segments arrived", benignGot, benign)
			}
			t.Logf("%d frames replayed in %v; %d/%d benign data segments arrived; %d exploits in %d segments stopped",
				res.Sent, res.Elapsed.Round(1e6), benignGot, benign, len(placements), blocked)
		})
	}
}

// lastFrame is the last frame of flow's exploit request.
func lastFrame(ps []gen.Placement, flow int) int {
	for _, p := range ps {
		if p.Flow == flow {
			return p.LastFrame
		}
	}
	return -1
}

// segmentKey identifies a TCP segment with payload by addresses, ports,
// sequence number and length (what routing does not change).
func segmentKey(frame []byte) (string, bool) {
	pkt := gopacket.NewPacket(frame, layers.LayerTypeEthernet, gopacket.DecodeOptions{Lazy: true, NoCopy: true})
	tcp, _ := pkt.Layer(layers.LayerTypeTCP).(*layers.TCP)
	if tcp == nil || len(tcp.Payload) == 0 {
		return "", false
	}
	var src, dst string
	switch ip := pkt.NetworkLayer().(type) {
	case *layers.IPv4:
		src, dst = ip.SrcIP.String(), ip.DstIP.String()
	case *layers.IPv6:
		src, dst = ip.SrcIP.String(), ip.DstIP.String()
	default:
		return "", false
	}
	return fmt.Sprintf("%s.%d>%s.%d seq %d len %d", src, tcp.SrcPort, dst, tcp.DstPort, tcp.Seq, len(tcp.Payload)), true
}
