package lab

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name  string
		mod   func(*Config)
		field string
	}{
		{"default", func(*Config) {}, ""},
		{"l2", func(c *Config) { c.Variant = L2 }, ""},
		{"prefix", func(c *Config) { c.Prefix = "Bad-Prefix" }, "prefix"},
		{"variant", func(c *Config) { c.Variant = "l4" }, "variant"},
		{"nodes", func(c *Config) { c.Nodes = 0 }, "nodes"},
		{"too many nodes", func(c *Config) { c.Nodes = MaxNodes + 1 }, "nodes"},
		{"clients", func(c *Config) { c.Clients = MaxHosts + 1 }, "clients"},
		{"servers", func(c *Config) { c.Servers = 0 }, "servers"},
		{"state root", func(c *Config) { c.StateRoot = "" }, "state_root"},
		{"fail", func(c *Config) { c.Fail = "maybe" }, "fail"},
		{"queues", func(c *Config) { c.Queues = 0 }, "queues"},
		{"patches", func(c *Config) { c.Patches = "" }, "patches"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := DefaultConfig()
			tc.mod(&c)
			err := c.Validate()
			if tc.field == "" {
				if err != nil {
					t.Fatalf("valid config rejected: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), "config: "+tc.field+":") {
				t.Fatalf("error %v does not name field %s", err, tc.field)
			}
		})
	}
}

func TestNewPrefixIsValidAndGenerated(t *testing.T) {
	for range 20 {
		p := NewPrefix()
		if !prefixRE.MatchString(p) || !generatedRE.MatchString(p+"-r1") {
			t.Fatalf("prefix %q", p)
		}
	}
}

func TestPlanAddresses(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Prefix = "pgtest"
	cfg.Clients, cfg.Servers = 2, 2
	l := plan(cfg)
	if got := l.Clients[1].Addr4.String(); got != "198.51.100.202" {
		t.Errorf("client 2 v4 = %s", got)
	}
	if got := l.Servers[0].Addr6.String(); got != "2001:db8:2::201" {
		t.Errorf("server 1 v6 = %s", got)
	}
	if got := l.R1.NextHops[2].Addr4.String(); got != "198.18.3.2" {
		t.Errorf("R1 next hop 3 = %s", got)
	}
	if got := l.R2.NextHops[0].Addr6.String(); got != "2001:db8:19:1::2" {
		t.Errorf("R2 next hop 1 = %s", got)
	}
	if l.NS("n2") != "pgtest-n2" || l.NS("pgtest-c1") != "pgtest-c1" {
		t.Errorf("NS names: %s %s", l.NS("n2"), l.NS("pgtest-c1"))
	}
	cfg.Variant = L2
	l = plan(cfg)
	// In L2 each router's next hop is the other router across node i's link.
	if got := l.R1.NextHops[1].Addr4.String(); got != "198.18.2.2" {
		t.Errorf("L2 R1 next hop 2 = %s", got)
	}
	if got := l.R2.NextHops[1].MAC.String(); got != l.R1.Links[1].MAC.String() {
		t.Errorf("L2 R2 next hop MAC = %s", got)
	}
	if l.Nodes[0].In.Addr4.IsValid() {
		t.Errorf("L2 node has an address")
	}
}

// TestUpForwardsBothFamilies builds each variant with kernel forwarding and
// checks TCP in both address families, then that Down removes everything.
func TestUpForwardsBothFamilies(t *testing.T) {
	requireRoot(t)
	for _, v := range []Variant{L3, L2} {
		t.Run(string(v), func(t *testing.T) {
			cfg := testConfig(t, v, 3)
			cfg.Clients, cfg.Servers = 2, 2
			l, err := Up(cfg)
			if err != nil {
				t.Fatal(err)
			}
			downDone := false
			t.Cleanup(func() {
				if !downDone {
					_ = l.Down()
				}
			})
			for _, s := range l.Servers {
				echoTCP(t, s.NS, ":7000")
			}
			for _, c := range l.Clients {
				for _, s := range l.Servers {
					for _, a := range []string{s.Addr4.String(), s.Addr6.String()} {
						if err := tcpRoundTrip(c.NS, net.JoinHostPort(a, "7000"), "hello "+a); err != nil {
							t.Errorf("%s → %s: %v", c.Role, a, err)
						}
					}
				}
			}
			if _, err := os.Stat(filepath.Join(l.Dir, stateFile)); err != nil {
				t.Errorf("state file: %v", err)
			}
			loaded, err := Load(cfg.StateRoot, l.Prefix)
			if err != nil {
				t.Fatal(err)
			}
			if loaded.R2.NextHops[2].Addr6 != l.R2.NextHops[2].Addr6 || loaded.Variant != v {
				t.Errorf("loaded lab differs")
			}
			if _, err := Up(l.Config()); !errors.Is(err, ErrExists) {
				t.Errorf("second Up with the same prefix: %v, want ErrExists", err)
			}
			downDone = true
			if err := l.Down(); err != nil {
				t.Fatal(err)
			}
			if left, _ := Namespaces(l.Prefix); len(left) != 0 {
				t.Errorf("namespaces left: %v", left)
			}
			if _, err := os.Stat(l.Dir); !os.IsNotExist(err) {
				t.Errorf("state directory left: %v", err)
			}
		})
	}
}

// TestDownAfterCrash leaves a lab behind as a crashed run would (processes
// inside, no Lab value) and removes it by prefix.
func TestDownAfterCrash(t *testing.T) {
	requireRoot(t)
	cfg := testConfig(t, L3, 2)
	l, err := Up(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = Down(cfg.StateRoot, l.Prefix) })
	// A process left running in a namespace, as a crashed test's server.
	cmd := Command(l.Servers[0].NS, "sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	ps, err := Prefixes(cfg.StateRoot)
	if err != nil || !contains(ps, l.Prefix) {
		t.Fatalf("Prefixes = %v, %v; want %s", ps, err, l.Prefix)
	}
	if err := Down(cfg.StateRoot, l.Prefix); err != nil {
		t.Fatal(err)
	}
	<-waited
	if left, _ := Namespaces(l.Prefix); len(left) != 0 {
		t.Errorf("namespaces left: %v", left)
	}
	if err := Down(cfg.StateRoot, l.Prefix); err != nil {
		t.Errorf("second Down: %v", err)
	}
}

// TestParallelLabs builds two labs at once: same addresses, no collision.
func TestParallelLabs(t *testing.T) {
	requireRoot(t)
	a := up(t, testConfig(t, L3, 2))
	b := up(t, testConfig(t, L2, 2))
	if a.Prefix == b.Prefix {
		t.Fatalf("same prefix %s", a.Prefix)
	}
	for _, l := range []*Lab{a, b} {
		echoTCP(t, l.Servers[0].NS, ":7001")
	}
	for _, l := range []*Lab{a, b} {
		addr := net.JoinHostPort(l.Servers[0].Addr4.String(), "7001")
		if err := tcpRoundTrip(l.Clients[0].NS, addr, l.Prefix); err != nil {
			t.Errorf("lab %s: %v", l.Prefix, err)
		}
	}
}

func TestExec(t *testing.T) {
	requireRoot(t)
	l := up(t, testConfig(t, L3, 1))
	out, err := l.Exec("r1", "ip", "-o", "link", "show", "n1")
	if err != nil || !strings.Contains(out, "02:70:67:01:01:00") {
		t.Errorf("exec: %q, %v", out, err)
	}
	if _, err := l.Exec("r1", "false"); err == nil {
		t.Errorf("failing command: no error")
	}
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}
