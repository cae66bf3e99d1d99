package lab

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/patchgate/patchgate/dataplane/gen"
)

// TestReplayKernelForwarding plays a generated mix (IPv4 and IPv6, both
// directions) through each variant with kernel forwarding: every frame of
// each side must arrive on the other side of the tap, no more, no less.
func TestReplayKernelForwarding(t *testing.T) {
	requireRoot(t)
	if _, err := exec.LookPath("tcpreplay"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("tcpreplay missing in CI: %v", err)
		}
		t.Skipf("needs tcpreplay: %v", err)
	}
	capture, _, err := gen.Mix(gen.MixOptions{Seed: 7, Sessions: 12, Concurrency: 4, MaxRequests: 2,
		MaxBody: 2048, LargeEvery: 1000, IPv6Every: 3})
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
	f.Close()
	for _, v := range []Variant{L3, L2} {
		t.Run(string(v), func(t *testing.T) {
			cfg := testConfig(t, v, 3)
			cfg.MTU = 1600 // gen.Mix frames carry 1460 bytes of payload plus TCP options
			l := up(t, cfg)
			res, err := l.Replay(path, ReplayOptions{PPS: 5000})
			if err != nil {
				t.Fatal(err)
			}
			if res.Dropped != 0 {
				t.Fatalf("recorder dropped %d frames", res.Dropped)
			}
			if res.Sent != len(capture.Frames) {
				t.Errorf("sent %d of %d frames", res.Sent, len(capture.Frames))
			}
			if len(res.AtServer) != res.ToServer || len(res.AtClient) != res.Sent-res.ToServer {
				t.Errorf("crossed: %d of %d to the server, %d of %d to the client\n%s",
					len(res.AtServer), res.ToServer, len(res.AtClient), res.Sent-res.ToServer, res.Output)
			}
			// Frames arrive routed: the server side sees R2's MAC as source.
			if len(res.AtServer) > 0 {
				if got := res.AtServer[0].Data[6:12]; string(got) != string(l.R2.LAN.MAC) {
					t.Errorf("frame at server from %x, want R2 %s", got, l.R2.LAN.MAC)
				}
			}
		})
	}
}
