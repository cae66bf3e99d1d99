package nfqueue

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
	ok := DefaultConfig("gw1")
	if err := ok.Validate(); err != nil {
		t.Fatalf("default config: %v", err)
	}
	cases := []struct {
		name string
		mod  func(*Config)
		want string
	}{
		{"bad name", func(c *Config) { c.Name = "gw 1" }, "Name"},
		{"no queues", func(c *Config) { c.Queues = 0 }, "Queues must be 1..64, got 0"},
		{"queue overflow", func(c *Config) { c.QueueBase = 65535; c.Queues = 2 }, "exceeds queue 65535"},
		{"no chains", func(c *Config) { c.Chains = nil }, "Chains must name"},
		{"bad chain", func(c *Config) { c.Chains = []string{"PREROUTING"} }, `Chains[0] "PREROUTING"`},
		{"dup chain", func(c *Config) { c.Chains = []string{"FORWARD", "FORWARD"} }, "listed twice"},
		{"jump in match", func(c *Config) { c.Match = []string{"-d", "198.51.100.0/24", "-j", "ACCEPT"} }, `Match[2] "-j"`},
		{"batch", func(c *Config) { c.Batch = 0 }, "Batch must be 1..1024"},
		{"mark", func(c *Config) { c.Mark = 0 }, "Mark"},
	}
	for _, tc := range cases {
		c := DefaultConfig("gw1")
		tc.mod(&c)
		err := c.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want error containing %q", tc.name, err, tc.want)
		}
	}
}

func TestFamiliesFollowMatch(t *testing.T) {
	for _, tc := range []struct {
		match []string
		want  string
	}{
		{nil, "iptables-legacy ip6tables-legacy"},
		{[]string{"-d", "198.51.100.0/24"}, "iptables-legacy"},
		{[]string{"-s", "2001:db8::/32", "-p", "tcp"}, "ip6tables-legacy"},
		{[]string{"-p", "tcp", "--dport", "80"}, "iptables-legacy ip6tables-legacy"},
	} {
		if got := strings.Join(families(tc.match), " "); got != tc.want {
			t.Errorf("%v: got %s, want %s", tc.match, got, tc.want)
		}
	}
	if got := ChainName(strings.Repeat("x", 40)); len(got) > maxChainName || !strings.HasPrefix(got, chainPrefix) {
		t.Errorf("long name chain %q", got)
	}
}

func TestParseProc(t *testing.T) {
	in := "    0  12345     3 2 65535     7     2       42  1\n    1 -4000     0 2 65535     0     0        9  1\n"
	got := ParseProc([]byte(in))
	if q := got[0]; q.Total != 3 || q.Dropped != 7 || q.UserDropped != 2 || q.IDSequence != 42 {
		t.Errorf("queue 0: %+v", q)
	}
	if _, ok := got[1]; ok {
		t.Error("line with a negative port id parsed as a queue") // portids are unsigned; be strict
	}
}

// start runs a backend on the routed fixture's node and waits until it is ready.
func start(t testing.TB, tp *inlinetest.Topology, fail inline.FailPolicy, mods ...func(*Config)) (*Backend, func() error) {
	t.Helper()
	eng := inlinetest.Engine(t, 2)
	return startWith(t, tp, fail, func() inline.Inspector { return eng.NewWorker() }, mods...)
}

// startWith is start with another inspector.
func startWith(t testing.TB, tp *inlinetest.Topology, fail inline.FailPolicy, newIns func() inline.Inspector, mods ...func(*Config)) (*Backend, func() error) {
	t.Helper()
	cfg := DefaultConfig("t1")
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

func TestInlineBenignPassesExploitIsReset(t *testing.T) {
	inlinetest.RequireRoot(t, IPTables, IP6Tables)
	tp := inlinetest.Routed(t)
	b, stop := start(t, tp, inline.FailOpen)
	exploit := inlinetest.CatalogRequest(t, "CVE-2014-6271", true)
	benign := inlinetest.CatalogRequest(t, "CVE-2014-6271", false)

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
	var st inline.Stats
	inlinetest.CheckFor(t, 2*time.Second, func() error {
		if st = b.Stats(); st.Verdicts[dataplane.Reset] < 2 || st.ResetsSent < 4 || st.Verdicts[dataplane.Pass] == 0 {
			return fmt.Errorf("stats: %+v", st)
		}
		return nil
	})
	if len(st.Units) != 2 || st.Units[0].Packets+st.Units[1].Packets != st.Packets {
		t.Errorf("per-queue stats: %+v", st.Units)
	}

	// Fail-open stop: the rules are gone and traffic flows without the node.
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if out := tp.Run(t, tp.Node, IPTables, "-w", "-S"); strings.Contains(out, chainPrefix) {
		t.Errorf("rules left after a fail-open stop:\n%s", out)
	}
	addr := netip.AddrPortFrom(tp.ServerIP, 8080)
	inlinetest.StartServer(t, tp, tp.Server, addr)
	if _, err := inlinetest.Exchange(tp, tp.Client, addr, exploit, 5*time.Second); err != nil {
		t.Errorf("after a fail-open stop traffic must flow uninspected: %v", err)
	}
}

func TestFailClosedStopBlocksUntilCleanup(t *testing.T) {
	inlinetest.RequireRoot(t, IPTables, IP6Tables)
	tp := inlinetest.Routed(t)
	_, stop := start(t, tp, inline.FailClosed)
	addr := netip.AddrPortFrom(tp.ServerIP, 80)
	inlinetest.StartServer(t, tp, tp.Server, addr)
	req := []byte("GET / HTTP/1.1\r\nHost: example.test\r\n\r\n")
	if _, err := inlinetest.Exchange(tp, tp.Client, addr, req, 5*time.Second); err != nil {
		t.Fatalf("while running: %v", err)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := inlinetest.Exchange(tp, tp.Client, addr, req, 500*time.Millisecond); err == nil {
		t.Fatal("after a fail-closed stop traffic must be blocked")
	}
	out := tp.Run(t, tp.Node, IPTables, "-w", "-S", ChainName("t1"))
	if !strings.Contains(out, "-j DROP") || strings.Contains(out, "NFQUEUE") {
		t.Errorf("fail-closed chain:\n%s", out)
	}
	if err := tp.In(tp.Node, func() error { return Cleanup("t1") }); err != nil {
		t.Fatal(err)
	}
	if _, err := inlinetest.Exchange(tp, tp.Client, addr, req, 5*time.Second); err != nil {
		t.Errorf("after cleanup: %v", err)
	}
	if out := tp.Run(t, tp.Node, IP6Tables, "-w", "-S"); strings.Contains(out, chainPrefix) {
		t.Errorf("cleanup left rules:\n%s", out)
	}
}

func TestInstallAfterCrashIsIdempotent(t *testing.T) {
	inlinetest.RequireRoot(t, IPTables, IP6Tables)
	tp := inlinetest.Routed(t)
	b, err := New(DefaultConfig("crash"), nil)
	if err != nil {
		t.Fatal(err)
	}
	b.rules.hooks = []string{"FORWARD", "OUTPUT"}
	// Two installs without a removal in between: a crashed run, then a new one.
	for i := 0; i < 2; i++ {
		if err := tp.In(tp.Node, b.rules.install); err != nil {
			t.Fatal(err)
		}
	}
	out := tp.Run(t, tp.Node, IPTables, "-w", "-S")
	if n := strings.Count(out, "-j "+ChainName("crash")); n != 2 {
		t.Errorf("want one jump in each of FORWARD and OUTPUT, got %d:\n%s", n, out)
	}
	if err := tp.In(tp.Node, func() error { return Cleanup("crash") }); err != nil {
		t.Fatal(err)
	}
	for _, tool := range []string{IPTables, IP6Tables} {
		if out := tp.Run(t, tp.Node, tool, "-w", "-S"); strings.Contains(out, chainPrefix) {
			t.Errorf("%s rules left after cleanup:\n%s", tool, out)
		}
	}
	// Cleanup of nothing is not an error.
	if err := tp.In(tp.Node, func() error { return Cleanup("crash") }); err != nil {
		t.Error(err)
	}
}

// TestOverloadIsCounted floods a node whose inspection is slow, with a short
// queue: fail-closed drops are read from the kernel's queue counters,
// fail-open bypasses are estimated from the rule counters.
func TestOverloadIsCounted(t *testing.T) {
	inlinetest.RequireRoot(t, IPTables, IP6Tables)
	for _, fail := range []inline.FailPolicy{inline.FailClosed, inline.FailOpen} {
		t.Run(fail.String(), func(t *testing.T) {
			tp := inlinetest.Routed(t)
			dst := netip.AddrPortFrom(tp.ServerIP, 5001)
			rx := inlinetest.StartReceiver(t, tp, tp.Server, dst)
			slow := func() inline.Inspector { return inlinetest.SlowInspector{Delay: 200 * time.Microsecond} }
			b, _ := startWith(t, tp, fail, slow, func(c *Config) { c.MaxQueueLen = 16 })
			res := inlinetest.Flood(t, tp, rx, []netip.Addr{tp.ClientIP}, dst, 5000, 64, 5*time.Second)
			inlinetest.CheckFor(t, 5*time.Second, func() error {
				st := b.Stats()
				var dropped uint64
				for _, u := range st.Units {
					dropped += u.KernelDropped
				}
				switch {
				case fail == inline.FailClosed && (dropped == 0 || st.Bypassed != 0):
					return fmt.Errorf("fail-closed: kernel drops %d, bypassed %d (%v)", dropped, st.Bypassed, res)
				case fail == inline.FailOpen && (st.Bypassed == 0 || dropped != 0):
					return fmt.Errorf("fail-open: kernel drops %d, bypassed %d (%v)", dropped, st.Bypassed, res)
				}
				return nil
			})
		})
	}
}
