package runner

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// lossless is a step's verdict: under maxPct of the offered packets were
// lost for lack of capacity, passed uninspected under overload, or dropped
// because a flow's answer overtook its cause. The last count is zero at
// rates the nodes keep up with (the runner spaces a flow's turns); it grows
// when a node's queueing delay exceeds that spacing, which is overload too.
func lossless(st *Step, maxPct float64) bool {
	return noCapacityLoss(st, maxPct) && 100*float64(st.OrderDrops)/float64(st.Offered.Packets) < maxPct
}

// noCapacityLoss is lossless with order drops allowed.
func noCapacityLoss(st *Step, maxPct float64) bool {
	if st.Offered.Packets == 0 {
		return false
	}
	return st.LossPct < maxPct && 100*float64(st.Uninspected)/float64(st.Offered.Packets) < maxPct
}

// Judge recomputes, from the recorded counters, every step's Lossless, each
// ramp's MaxLossless (steps after a ramp's first lossy step do not count:
// the ramp stops there) and the ratios to the kernel configuration of the
// same lab. Run uses it; `pgbench report` applies it to an older results
// file after the rule changed.
func Judge(res *Results) {
	for li := range res.Labs {
		lr := &res.Labs[li]
		kernelPPS := 0.0
		for ci := range lr.Configs {
			cr := &lr.Configs[ci]
			cr.MaxLossless, cr.MaxNoCapacityLoss = nil, nil
			stopped, stoppedLoose := false, false
			for si := range cr.Steps {
				s := &cr.Steps[si]
				s.Lossless = lossless(s, res.Config.MaxLossPct)
				stopped = stopped || !s.Lossless
				if !stopped && (cr.MaxLossless == nil || s.DeliveredPPS > cr.MaxLossless.DeliveredPPS) {
					cp := *s
					cr.MaxLossless = &cp
				}
				stoppedLoose = stoppedLoose || !noCapacityLoss(s, res.Config.MaxLossPct)
				if !stoppedLoose && (cr.MaxNoCapacityLoss == nil || s.DeliveredPPS > cr.MaxNoCapacityLoss.DeliveredPPS) {
					cp := *s
					cr.MaxNoCapacityLoss = &cp
				}
			}
			if cr.Name == ConfKernel && cr.MaxLossless != nil {
				kernelPPS = cr.MaxLossless.DeliveredPPS
			}
		}
		for ci := range lr.Configs {
			cr := &lr.Configs[ci]
			cr.RatioVsKernel = 0
			if cr.Name != ConfKernel && cr.MaxLossless != nil && kernelPPS > 0 {
				cr.RatioVsKernel = cr.MaxLossless.DeliveredPPS / kernelPPS
			}
		}
	}
}

// Rewrite regenerates results.json, the plots and report.md in dir from
// dir/results.json after Judge.
func Rewrite(dir string, plotCmd []string, progressOut io.Writer) error {
	dir, err := filepath.Abs(dir) // the plot command runs in its own directory
	if err != nil {
		return fmt.Errorf("runner: %w", err)
	}
	data, err := os.ReadFile(filepath.Join(dir, "results.json"))
	if err != nil {
		return fmt.Errorf("runner: %w", err)
	}
	var res Results
	if err := json.Unmarshal(data, &res); err != nil {
		return fmt.Errorf("runner: %s: %w", filepath.Join(dir, "results.json"), err)
	}
	Judge(&res)
	notes := res.Notes[:0]
	for _, n := range res.Notes {
		if !strings.HasPrefix(n, "plots not drawn") {
			notes = append(notes, n)
		}
	}
	res.Notes = notes
	return writeOutputs(&res, dir, plotCmd, progressOut)
}
