package runner

// Rate is one offered rate of a ramp: Mbps for tcpreplay --mbps, or top
// speed.
type Rate struct {
	Mbps     float64 `json:"mbps,omitempty"`
	TopSpeed bool    `json:"topspeed,omitempty"`
}

// String is "200 Mbps" or "top speed".
func (r Rate) String() string {
	if r.TopSpeed {
		return "top speed"
	}
	return trimFloat(r.Mbps) + " Mbps"
}

// Outcome is what a ramp needs to know about a step.
type Outcome struct {
	// Lossless is true when the step stayed under the loss threshold (and
	// inspected everything it passed).
	Lossless bool
	// DeliveredPPS is the delivered rate, which the highest lossless rate
	// reports.
	DeliveredPPS, DeliveredMbps float64
}

// RampResult is the outcome of a ramp: the steps run, in order, and the
// index of the highest lossless step (-1 when even the first lost).
type RampResult struct {
	Ran          int
	BestLossless int
}

// Ramp runs step for each rate in order and stops after the first step
// that is not lossless (the Maglev paper's "ramp until the first loss").
// A step that fails with an error ends the ramp with that error.
func Ramp(rates []Rate, step func(i int, r Rate) (Outcome, error)) (RampResult, error) {
	res := RampResult{BestLossless: -1}
	for i, r := range rates {
		o, err := step(i, r)
		res.Ran = i + 1
		if err != nil {
			return res, err
		}
		if !o.Lossless {
			break
		}
		res.BestLossless = i
	}
	return res, nil
}

// Loops is how many times a capture of captureBytes must be replayed at
// mbps to last about seconds (at least 1, at most maxLoops). At top speed
// (mbps ≤ 0) topMbps is the rate assumed.
func Loops(captureBytes int64, mbps, topMbps, seconds float64, maxLoops int) int {
	if mbps <= 0 {
		mbps = topMbps
	}
	if captureBytes <= 0 || mbps <= 0 || seconds <= 0 {
		return 1
	}
	n := int(mbps*1e6/8*seconds/float64(captureBytes) + 0.5)
	return max(1, min(n, maxLoops))
}
