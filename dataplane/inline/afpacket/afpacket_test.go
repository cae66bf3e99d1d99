package afpacket

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/patchgate/patchgate/dataplane"
	"github.com/patchgate/patchgate/dataplane/inline"
	"github.com/patchgate/patchgate/dataplane/inline/inlinetest"
)

func TestConfigValidate(t *testing.T) {
	if err := DefaultConfig("gw1", "eth0", "eth1").Validate(); err != nil {
		t.Fatalf("default config: %v", err)
	}
	cases := []struct {
		name string
		mod  func(*Config)
		want string
	}{
		{"bad name", func(c *Config) { c.Name = "" }, "Name"},
		{"same interface", func(c *Config) { c.Interfaces[1] = "eth0" }, "two different interfaces"},
		{"bad interface", func(c *Config) { c.Interfaces[0] = "a/b" }, `Interfaces[0] "a/b"`},
		{"long interface", func(c *Config) { c.Interfaces[1] = "abcdefghijklmnop" }, "Interfaces[1]"},
		{"fanout", func(c *Config) { c.Fanout = 0 }, "Fanout must be 1..64, got 0"},
		{"block size", func(c *Config) { c.BlockSize = 100000 }, "BlockSize"},
		{"blocks", func(c *Config) { c.NumBlocks = 1 }, "NumBlocks must be 2..4096, got 1"},
	}
	for _, tc := range cases {
		c := DefaultConfig("gw1", "eth0", "eth1")
		tc.mod(&c)
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want error containing %q", tc.name, err, tc.want)
		}
	}
	if n := BridgeName(strings.Repeat("n", 30)); len(n) > 15 {
		t.Errorf("bridge name %q too long", n)
	}
}

// start runs a bridge backend on the fixture's node and waits until it is ready.
func start(t testing.TB, tp *inlinetest.Topology, fail inline.FailPolicy, mods ...func(*Config)) (*Backend, func() error) {
	t.Helper()
	eng := inlinetest.Engine(t, 4)
	return startWith(t, tp, fail, func() inline.Inspector { return eng.NewWorker() }, mods...)
}

// startWith is start with another inspector.
func startWith(t testing.TB, tp *inlinetest.Topology, fail inline.FailPolicy, newIns func() inline.Inspector, mods ...func(*Config)) (*Backend, func() error) {
	t.Helper()
	cfg := DefaultConfig("t1", tp.NodeIfs[0], tp.NodeIfs[1])
	cfg.BlockSize, cfg.NumBlocks = MinBlockSize, 8
	cfg.Fail = fail
	cfg.Netns = inlinetest.NsPath(tp.Node)
	for _, m := range mods {
		m(&cfg)
	}
	b, err := New(cfg, newIns)
	if err != nil {
		t.Fatal(err)
	}
	return b, inlinetest.Run(t, b)
}

func TestBridgeBenignPassesExploitIsReset(t *testing.T) {
	inlinetest.RequireRoot(t)
	tp := inlinetest.Bridged(t)
	b, stop := start(t, tp, inline.FailOpen)
	exploit := inlinetest.CatalogRequest(t, "CVE-2014-6271", true)
	benign := inlinetest.CatalogRequest(t, "CVE-2014-6271", false)
	big := append([]byte("POST /upload HTTP/1.1\r\nHost: example.test\r\nContent-Length: 200000\r\n\r\n"),
		make([]byte, 200000)...)

	for _, srvIP := range []netip.Addr{tp.ServerIP, tp.ServerIP6} {
		addr := netip.AddrPortFrom(srvIP, 80)
		t.Run(addr.String(), func(t *testing.T) {
			srv := inlinetest.StartServer(t, tp, tp.Server, addr)
			resp, err := inlinetest.Exchange(tp, tp.Client, addr, benign, 5*time.Second)
			if err != nil || string(resp) != inlinetest.Response {
				t.Fatalf("benign request: %q, %v", resp, err)
			}
			if got := srv.Next(t, 5*time.Second); string(got.Data) != string(benign) {
				t.Fatalf("server got %q (%v), want the benign request", got.Data, got.Err)
			}
			// A large upload crosses the bridge as GSO super-frames with
			// partial checksums: they must arrive intact.
			if _, err := inlinetest.Exchange(tp, tp.Client, addr, big, 10*time.Second); err != nil {
				t.Fatalf("large request: %v", err)
			}
			if got := srv.Next(t, 10*time.Second); len(got.Data) != len(big) {
				t.Fatalf("server got %d bytes of the large request, want %d (%v)", len(got.Data), len(big), got.Err)
			}

			_, err = inlinetest.Exchange(tp, tp.Client, addr, exploit, 5*time.Second)
			if !inlinetest.IsReset(err) {
				t.Errorf("client: want ECONNRESET, got %v", err)
			}
			got := srv.Next(t, 5*time.Second)
			if !inlinetest.IsReset(got.Err) {
				t.Errorf("server's accepted connection: want ECONNRESET, got %v", got.Err)
			}
			if strings.Contains(string(got.Data), "() {") {
				t.Errorf("the exploit reached the server: %q", got.Data)
			}
		})
	}
	inlinetest.CheckFor(t, 2*time.Second, func() error {
		if st := b.Stats(); st.Verdicts[dataplane.Reset] < 2 || st.ResetsSent < 4 || st.Errors != 0 {
			return fmt.Errorf("stats: %+v", st)
		}
		return nil
	})

	// Fail-open stop: a kernel bridge keeps the traffic flowing.
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	addr := netip.AddrPortFrom(tp.ServerIP, 8080)
	inlinetest.StartServer(t, tp, tp.Server, addr)
	if _, err := inlinetest.Exchange(tp, tp.Client, addr, exploit, 5*time.Second); err != nil {
		t.Errorf("after a fail-open stop traffic must flow uninspected: %v", err)
	}
	if out := tp.Run(t, tp.Node, "ip", "-o", "link", "show", "master", BridgeName("t1")); strings.Count(out, "\n") != 2 {
		t.Errorf("fallback bridge ports:\n%s", out)
	}
	// A new start takes over from the bridge; cleanup removes it.
	_, stop2 := start(t, tp, inline.FailClosed)
	if out := tp.Run(t, tp.Node, "ip", "-o", "link", "show", "type", "bridge"); out != "" {
		t.Errorf("bridge left while the node runs:\n%s", out)
	}
	if _, err := inlinetest.Exchange(tp, tp.Client, addr, []byte("GET / HTTP/1.1\r\nHost: a\r\n\r\n"), 5*time.Second); err != nil {
		t.Errorf("through the restarted node: %v", err)
	}
	if err := stop2(); err != nil {
		t.Fatal(err)
	}
	if _, err := inlinetest.Exchange(tp, tp.Client, addr, []byte("GET / HTTP/1.1\r\nHost: a\r\n\r\n"), 500*time.Millisecond); err == nil {
		t.Error("after a fail-closed stop traffic must be blocked")
	}
	if err := tp.In(tp.Node, func() error { return Cleanup("t1") }); err != nil {
		t.Error(err)
	}
}

// TestOverloadIsCounted floods a node whose inspection is slow, with a small
// ring: fail-closed leaves the kernel dropping (PACKET_STATISTICS), fail-open
// forwards uninspected blocks to catch up and counts them.
func TestOverloadIsCounted(t *testing.T) {
	inlinetest.RequireRoot(t)
	for _, fail := range []inline.FailPolicy{inline.FailClosed, inline.FailOpen} {
		t.Run(fail.String(), func(t *testing.T) {
			tp := inlinetest.Bridged(t)
			dst := netip.AddrPortFrom(tp.ServerIP, 5001)
			rx := inlinetest.StartReceiver(t, tp, tp.Server, dst)
			// ARP must cross before the node is slowed down.
			_, stop := start(t, tp, fail)
			inlinetest.Flood(t, tp, rx, []netip.Addr{tp.ClientIP}, dst, 10, 64, time.Second)
			if err := stop(); err != nil {
				t.Fatal(err)
			}
			_ = tp.In(tp.Node, func() error { return Cleanup("t1") })
			slow := func() inline.Inspector { return inlinetest.SlowInspector{Delay: 200 * time.Microsecond} }
			b, _ := startWith(t, tp, fail, slow, func(c *Config) { c.Fanout, c.NumBlocks = 1, 4 })
			res := inlinetest.Flood(t, tp, rx, []netip.Addr{tp.ClientIP}, dst, 20000, 64, 5*time.Second)
			inlinetest.CheckFor(t, 5*time.Second, func() error {
				st := b.Stats()
				var dropped uint64
				for _, u := range st.Units {
					dropped += u.KernelDropped
				}
				switch {
				case fail == inline.FailClosed && (dropped == 0 || st.Bypassed != 0):
					return fmt.Errorf("fail-closed: ring drops %d, bypassed %d (%v)", dropped, st.Bypassed, res)
				case fail == inline.FailOpen && st.Bypassed == 0:
					return fmt.Errorf("fail-open: ring drops %d, bypassed %d (%v)", dropped, st.Bypassed, res)
				}
				return nil
			})
		})
	}
}
