package traffic

import (
	"errors"
	"fmt"
	"io"
	"math"
	"time"

	"github.com/patchgate/patchgate/dataplane/gen"
	"github.com/patchgate/patchgate/dataplane/patch"
)

// Limits and defaults. The defaults are the model documented in README.md.
const (
	// MaxFlows bounds Options.Flows: client addresses × ports give every
	// flow of a capture its own 5-tuple up to 200 × 64512 flows.
	MaxFlows = 10_000_000
	// MaxConcurrency bounds the flows open at once (and so memory: every
	// open flow holds its frames).
	MaxConcurrency = 16384

	DefaultFlows       = 10_000
	DefaultConcurrency = 256
	// DefaultStep stamps frames 10 µs apart (a nominal 100 kpps capture;
	// tcpreplay --mbps/--topspeed ignore it).
	DefaultStep = 10 * time.Microsecond

	// EveryTest, as Options.Exploits or Options.LookAlikes, places every
	// exploit (look-alike) test of the catalog once.
	EveryTest = -1

	// FormatPcap and FormatPcapNG are the capture formats.
	FormatPcap   = "pcap"
	FormatPcapNG = "pcapng"
)

// Weights are the relative shares of flow kinds among benign flows.
type Weights struct {
	HTTP   float64 `json:"http"`
	TLS    float64 `json:"tls"`
	DNSUDP float64 `json:"dns_udp"`
	DNSTCP float64 `json:"dns_tcp"`
}

// DefaultWeights is the benign mix: web traffic in front of servers, where
// plaintext HTTP is what a virtual-patching gateway inspects most, DNS flows
// numerous but tiny.
func DefaultWeights() Weights { return Weights{HTTP: 40, TLS: 30, DNSUDP: 25, DNSTCP: 5} }

func (w Weights) slice() []float64 { return []float64{w.HTTP, w.TLS, w.DNSUDP, w.DNSTCP} }

// Options configure Generate. Start from DefaultOptions.
type Options struct {
	// Seed selects the capture: the same options give a byte-identical
	// capture and manifest.
	Seed uint64 `json:"seed"`
	// Flows is the total number of flows, exploits and look-alikes included.
	Flows int `json:"flows"`
	// Weights are the shares of benign flow kinds.
	Weights Weights `json:"weights"`
	// Patches is the catalog whose tests provide exploits (match: true) and
	// look-alikes (match: false). May be empty when Exploits and LookAlikes
	// are 0.
	Patches []*patch.Patch `json:"-"`
	// Exploits is the number of exploit flows (the catalog's exploit tests
	// taken in order, cycling); EveryTest places each test once.
	Exploits int `json:"exploits"`
	// ExploitRate, when positive, overrides Exploits with ceil(rate×Flows),
	// at least one per exploit test.
	ExploitRate float64 `json:"exploit_rate,omitempty"`
	// LookAlikes is the number of look-alike flows; EveryTest places each
	// look-alike test once.
	LookAlikes int `json:"lookalikes"`
	// IPv6Share is the fraction of flows carried over IPv6, in [0, 1].
	IPv6Share float64 `json:"ipv6_share"`
	// Concurrency is how many flows are open at once; their frames
	// interleave in bursts of 1–4.
	Concurrency int `json:"concurrency"`
	// Clock stamps frame i at Start + i×Step.
	Clock gen.Clock `json:"clock"`
	// Out is the capture path; the manifest goes to Out + ".manifest.json".
	Out string `json:"out,omitempty"`
	// Writer, when set, receives the capture instead of Out (no manifest
	// file is written; Result.Manifest holds it). For benchmarks.
	Writer io.Writer `json:"-"`
	// Format is FormatPcap (default) or FormatPcapNG.
	Format string `json:"format"`
}

// DefaultOptions returns the documented model with 10k flows and every
// exploit and look-alike test once. Set Patches and Out.
func DefaultOptions() Options {
	return Options{
		Seed:        1,
		Flows:       DefaultFlows,
		Weights:     DefaultWeights(),
		Exploits:    EveryTest,
		LookAlikes:  EveryTest,
		IPv6Share:   0.2,
		Concurrency: DefaultConcurrency,
		Clock:       gen.Clock{Start: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC), Step: DefaultStep},
		Format:      FormatPcap,
	}
}

// Validate names the first wrong field.
func (o Options) Validate() error {
	w := o.Weights.slice()
	sum := 0.0
	for _, x := range w {
		if x < 0 || math.IsNaN(x) || math.IsInf(x, 0) {
			return fmt.Errorf("traffic: Weights: %v has a negative or non-finite share", o.Weights)
		}
		sum += x
	}
	switch {
	case o.Flows < 1 || o.Flows > MaxFlows:
		return fmt.Errorf("traffic: Flows %d outside 1..%d", o.Flows, MaxFlows)
	case sum <= 0:
		return errors.New("traffic: Weights: all shares are zero")
	case o.Exploits < EveryTest:
		return fmt.Errorf("traffic: Exploits %d: want a count or EveryTest (-1)", o.Exploits)
	case o.LookAlikes < EveryTest:
		return fmt.Errorf("traffic: LookAlikes %d: want a count or EveryTest (-1)", o.LookAlikes)
	case o.ExploitRate < 0 || o.ExploitRate > 1 || math.IsNaN(o.ExploitRate):
		return fmt.Errorf("traffic: ExploitRate %v outside [0, 1]", o.ExploitRate)
	case o.IPv6Share < 0 || o.IPv6Share > 1 || math.IsNaN(o.IPv6Share):
		return fmt.Errorf("traffic: IPv6Share %v outside [0, 1]", o.IPv6Share)
	case o.Concurrency < 1 || o.Concurrency > MaxConcurrency:
		return fmt.Errorf("traffic: Concurrency %d outside 1..%d", o.Concurrency, MaxConcurrency)
	case o.Clock.Step < 0:
		return fmt.Errorf("traffic: Clock.Step %v is negative", o.Clock.Step)
	case o.Format != "" && o.Format != FormatPcap && o.Format != FormatPcapNG:
		return fmt.Errorf("traffic: Format %q is not %q or %q", o.Format, FormatPcap, FormatPcapNG)
	case o.Out == "" && o.Writer == nil:
		return errors.New("traffic: Out: no capture path (and no Writer)")
	}
	return nil
}
