package runner

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/patchgate/patchgate/deploy/lab"
)

func mustAP(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

func TestRampStopsAtFirstLoss(t *testing.T) {
	rates := []Rate{{Mbps: 10}, {Mbps: 20}, {Mbps: 40}, {Mbps: 80}, {TopSpeed: true}}
	var ran []Rate
	res, err := Ramp(rates, func(i int, r Rate) (Outcome, error) {
		ran = append(ran, r)
		return Outcome{Lossless: r.Mbps < 40}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Ran != 3 || res.BestLossless != 1 || len(ran) != 3 {
		t.Fatalf("ran %d (%v), best %d; want 3 steps, best index 1", res.Ran, ran, res.BestLossless)
	}
}

func TestRampAllLosslessAndFirstLossy(t *testing.T) {
	rates := []Rate{{Mbps: 1}, {TopSpeed: true}}
	res, _ := Ramp(rates, func(int, Rate) (Outcome, error) { return Outcome{Lossless: true}, nil })
	if res.Ran != 2 || res.BestLossless != 1 {
		t.Fatalf("all lossless: %+v", res)
	}
	res, _ = Ramp(rates, func(int, Rate) (Outcome, error) { return Outcome{}, nil })
	if res.Ran != 1 || res.BestLossless != -1 {
		t.Fatalf("first lossy: %+v", res)
	}
	boom := errors.New("boom")
	res, err := Ramp(rates, func(int, Rate) (Outcome, error) { return Outcome{}, boom })
	if !errors.Is(err, boom) || res.Ran != 1 {
		t.Fatalf("error: %+v %v", res, err)
	}
}

func TestLoops(t *testing.T) {
	cases := []struct {
		bytes        int64
		mbps, top, s float64
		max, want    int
	}{
		{10e6, 80, 1000, 2, 100, 2},   // 80 Mbps × 2 s = 20 MB = 2 passes
		{10e6, 8, 1000, 2, 100, 1},    // less than one pass: 1
		{10e6, 0, 800, 1, 100, 10},    // top speed assumes 800 Mbps
		{1e3, 1000, 1000, 10, 50, 50}, // bounded
		{0, 100, 100, 1, 10, 1},       // degenerate
	}
	for _, c := range cases {
		if got := Loops(c.bytes, c.mbps, c.top, c.s, c.max); got != c.want {
			t.Errorf("Loops(%v, %v, %v, %v, %v) = %d, want %d", c.bytes, c.mbps, c.top, c.s, c.max, got, c.want)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	good := DefaultConfig()
	good.Out = "x"
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	q := QuickConfig()
	q.Out = "x"
	if err := q.Validate(); err != nil {
		t.Fatal(err)
	}
	if !q.WAF || q.WAFSeconds != QuickWAFSeconds || len(q.CorazaCmd) == 0 || q.TurnGap != DefaultTurnGap {
		t.Fatalf("quick: waf %v (%v s), coraza %v, turn gap %d; want the peers with short runs and spaced turns", q.WAF, q.WAFSeconds, q.CorazaCmd, q.TurnGap)
	}
	if len(q.Nodes) != 1 || q.Nodes[0] != 3 || len(q.Rates()) != 4 {
		t.Fatalf("quick: nodes %v, %d rates; want N=3 and 3 rates + top speed", q.Nodes, len(q.Rates()))
	}
	for field, mut := range map[string]func(*Config){
		"variants":     func(c *Config) { c.Variants = []lab.Variant{"l4"} },
		"nodes":        func(c *Config) { c.Nodes = []int{0} },
		"configs":      func(c *Config) { c.Configs = []string{"nginx"} },
		"rates_mbps":   func(c *Config) { c.RatesMbps = []float64{100, 50} },
		"step_seconds": func(c *Config) { c.StepSeconds = 0 },
		"max_loss_pct": func(c *Config) { c.MaxLossPct = 0 },
		"mtu":          func(c *Config) { c.MTU = 100 },
		"out":          func(c *Config) { c.Out = "" },
		"turn_gap":     func(c *Config) { c.TurnGap = -1 },
		"waf_seconds":  func(c *Config) { c.WAFSeconds = 0.5 },
		"waf_pings":    func(c *Config) { c.WAFPings = 0 },
	} {
		c := good
		mut(&c)
		err := c.Validate()
		if err == nil || !strings.Contains(err.Error(), field) {
			t.Errorf("%s: error %v does not name the field", field, err)
		}
	}
}
