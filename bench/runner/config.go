package runner

import (
	"fmt"
	"time"

	"github.com/patchgate/patchgate/deploy/lab"
)

// Defaults of a full run (`make bench`) and a quick one (`make bench-quick`).
const (
	// DefaultMaxLossPct is the loss threshold of a lossless step (0.1 %).
	DefaultMaxLossPct = 0.1
	// DefaultStepSeconds is how long each step replays (by looping).
	DefaultStepSeconds = 3.0
	QuickStepSeconds   = 1.5
	// DefaultSessions and QuickSessions size the generated capture.
	DefaultSessions = 1500
	QuickSessions   = 300
	// DefaultSeed seeds the capture.
	DefaultSeed = 7
	// DefaultMTU fits the generator's full-MSS segments with TCP options.
	DefaultMTU = 1600
	// MaxLoops bounds tcpreplay --loop.
	MaxLoops = 200
	// assumedTopMbps sizes the loops of a top-speed step.
	assumedTopMbps = 1500
	// DefaultWAFSeconds and QuickWAFSeconds are bench/waf's wrk runs;
	// DefaultWAFPings and QuickWAFPings its UDP round trips per path.
	DefaultWAFSeconds = 10.0
	QuickWAFSeconds   = 3.0
	DefaultWAFPings   = 2000
	QuickWAFPings     = 500
	// DefaultEnginePackets bounds the callgrind capture prefix.
	DefaultEnginePackets = 20000
)

// Config describes a run. Start from DefaultConfig or QuickConfig.
type Config struct {
	// Variants and Nodes span the lab bring-ups (every pair).
	Variants []lab.Variant `json:"variants"`
	Nodes    []int         `json:"nodes"`
	// Configs are the configurations ramped in every bring-up
	// (ConfKernel, ConfNoPatches, ConfFull; ConfFullBus runs where the
	// variant allows it and N ≥ 2).
	Configs []string `json:"configs"`
	// RatesMbps are the --mbps steps, ascending; TopSpeed adds a last
	// --topspeed step.
	RatesMbps []float64 `json:"rates_mbps"`
	TopSpeed  bool      `json:"topspeed"`
	// StepSeconds is each step's target replay time (by --loop).
	StepSeconds float64 `json:"step_seconds"`
	// MaxLossPct is the loss threshold of a lossless step.
	MaxLossPct float64 `json:"max_loss_pct"`
	// Sessions and Seed size and seed the generated capture.
	Sessions int    `json:"sessions"`
	Seed     uint64 `json:"seed"`
	// Capture, when set, is a capture to replay instead of generating one
	// (its exploit manifest, when any, is Capture + ".manifest.json").
	Capture string `json:"capture,omitempty"`
	// Binary is the patchgate executable, Patches the catalog.
	Binary  string `json:"binary"`
	Patches string `json:"patches"`
	// Queues per node (NFQUEUE queues / AF_PACKET fanout) and the lab MTU.
	Queues int `json:"queues"`
	MTU    int `json:"mtu"`
	// Out is the results directory.
	Out string `json:"out"`
	// EnginePackets bounds the capture prefix callgrind counts (0: skip).
	EnginePackets int `json:"engine_packets"`
	// StateRoot is the labs' state root.
	StateRoot string `json:"state_root"`
	// WAF runs bench/waf (kernel vs patchgate vs nginx+ModSecurity, wrk,
	// latency per packet and per request) with wrk runs of WAFSeconds and
	// WAFPings UDP round trips per path.
	WAF        bool    `json:"waf"`
	WAFSeconds float64 `json:"waf_seconds"`
	WAFPings   int     `json:"waf_pings"`
	// CorazaCmd is bench/coraza's report command (it gets -patches DIR -o
	// FILE); empty skips Coraza.
	CorazaCmd []string `json:"coraza_cmd,omitempty"`
	// TurnGap spaces the turns of every flow in the replayed capture by
	// this many frames (DefaultTurnGap; 0 or 1 keeps the capture's order).
	TurnGap int `json:"turn_gap"`
	// NodeLossWait bounds waiting for the nodes to drain after a step.
	DrainTimeout time.Duration `json:"drain_timeout"`
}

// DefaultConfig is `make bench`: both variants, 1 to 3 nodes, every
// configuration, a ramp of 7 rates and top speed.
func DefaultConfig() Config {
	return Config{
		Variants:      []lab.Variant{lab.L3, lab.L2},
		Nodes:         []int{1, 2, 3},
		Configs:       []string{ConfKernel, ConfFull, ConfNoPatches, ConfFullBus},
		RatesMbps:     []float64{25, 50, 100, 200, 400, 800},
		TopSpeed:      true,
		StepSeconds:   DefaultStepSeconds,
		MaxLossPct:    DefaultMaxLossPct,
		Sessions:      DefaultSessions,
		Seed:          DefaultSeed,
		Binary:        "bin/patchgate",
		Patches:       "patches",
		Queues:        lab.DefaultQueues,
		MTU:           DefaultMTU,
		EnginePackets: DefaultEnginePackets,
		StateRoot:     lab.DefaultStateRoot,
		DrainTimeout:  5 * time.Second,
		TurnGap:       DefaultTurnGap,
		WAF:           true,
		WAFSeconds:    DefaultWAFSeconds,
		WAFPings:      DefaultWAFPings,
		CorazaCmd:     DefaultCorazaCmd(),
	}
}

// QuickConfig is `make bench-quick`: both variants with 3 nodes only, 3
// rates and top speed, a small capture.
func QuickConfig() Config {
	c := DefaultConfig()
	c.Nodes = []int{3}
	c.RatesMbps = []float64{50, 150, 450}
	c.StepSeconds = QuickStepSeconds
	c.Sessions = QuickSessions
	c.EnginePackets = 8000
	c.WAFSeconds, c.WAFPings = QuickWAFSeconds, QuickWAFPings
	return c
}

// Validate names the first field that is wrong.
func (c Config) Validate() error {
	if len(c.Variants) == 0 {
		return fmt.Errorf("runner: config: variants: none")
	}
	for _, v := range c.Variants {
		if v != lab.L3 && v != lab.L2 {
			return fmt.Errorf("runner: config: variants: %q is not l3 or l2", v)
		}
	}
	if len(c.Nodes) == 0 {
		return fmt.Errorf("runner: config: nodes: none")
	}
	for _, n := range c.Nodes {
		if n < 1 || n > lab.MaxNodes {
			return fmt.Errorf("runner: config: nodes: %d outside 1..%d", n, lab.MaxNodes)
		}
	}
	if len(c.Configs) == 0 {
		return fmt.Errorf("runner: config: configs: none")
	}
	for _, n := range c.Configs {
		switch n {
		case ConfKernel, ConfNoPatches, ConfFull, ConfFullBus:
		default:
			return fmt.Errorf("runner: config: configs: unknown %q", n)
		}
	}
	if len(c.RatesMbps) == 0 && !c.TopSpeed {
		return fmt.Errorf("runner: config: rates_mbps: no rates and no top speed")
	}
	for i, r := range c.RatesMbps {
		if r <= 0 || (i > 0 && r <= c.RatesMbps[i-1]) {
			return fmt.Errorf("runner: config: rates_mbps: must be positive and ascending, got %v", c.RatesMbps)
		}
	}
	switch {
	case c.StepSeconds <= 0 || c.StepSeconds > 600:
		return fmt.Errorf("runner: config: step_seconds: must be in (0, 600], got %v", c.StepSeconds)
	case c.MaxLossPct <= 0 || c.MaxLossPct >= 100:
		return fmt.Errorf("runner: config: max_loss_pct: must be in (0, 100), got %v", c.MaxLossPct)
	case c.Capture == "" && (c.Sessions < 1 || c.Sessions > 100000):
		return fmt.Errorf("runner: config: sessions: must be 1..100000, got %d", c.Sessions)
	case c.Binary == "":
		return fmt.Errorf("runner: config: binary: must name the patchgate executable")
	case c.Patches == "":
		return fmt.Errorf("runner: config: patches: must name the catalog directory")
	case c.Queues < 1 || c.Queues > 64:
		return fmt.Errorf("runner: config: queues: must be 1..64, got %d", c.Queues)
	case c.MTU < lab.MinMTU || c.MTU > lab.MaxMTU:
		return fmt.Errorf("runner: config: mtu: must be %d..%d, got %d", lab.MinMTU, lab.MaxMTU, c.MTU)
	case c.Out == "":
		return fmt.Errorf("runner: config: out: must name the results directory")
	case c.EnginePackets < 0:
		return fmt.Errorf("runner: config: engine_packets: must not be negative, got %d", c.EnginePackets)
	case c.TurnGap < 0 || c.TurnGap > 100000:
		return fmt.Errorf("runner: config: turn_gap: must be 0..100000 frames, got %d", c.TurnGap)
	case c.WAF && (c.WAFSeconds < 1 || c.WAFSeconds > 600):
		return fmt.Errorf("runner: config: waf_seconds: must be 1..600, got %v", c.WAFSeconds)
	case c.WAF && (c.WAFPings < 1 || c.WAFPings > 1000000):
		return fmt.Errorf("runner: config: waf_pings: must be 1..1000000, got %d", c.WAFPings)
	case c.DrainTimeout <= 0:
		return fmt.Errorf("runner: config: drain_timeout: must be positive, got %v", c.DrainTimeout)
	}
	return nil
}

// DefaultCorazaCmd runs bench/coraza's report command from the repository
// root (bench/coraza is a separate module: Coraza stays out of go.mod).
func DefaultCorazaCmd() []string {
	return []string{"go", "-C", "bench/coraza", "run", "./cmd/corazabench"}
}

// Rates are the ramp's steps in order.
func (c Config) Rates() []Rate {
	var out []Rate
	for _, m := range c.RatesMbps {
		out = append(out, Rate{Mbps: m})
	}
	if c.TopSpeed {
		out = append(out, Rate{TopSpeed: true})
	}
	return out
}
