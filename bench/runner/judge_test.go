package runner

import "testing"

// TestJudge: order drops over the threshold make a step lossy (the strict
// maximum stops before it) but not for the looser maximum; steps after a
// ramp's first lossy step never count; ratios are to the same lab's kernel.
func TestJudge(t *testing.T) {
	step := func(pps float64, lossPct float64, order uint64) Step {
		return Step{DeliveredPPS: pps, LossPct: lossPct, OrderDrops: order, Offered: ReplayStats{Packets: 10000}}
	}
	res := &Results{Config: Config{MaxLossPct: DefaultMaxLossPct}, Labs: []LabRun{{Variant: "l3", Nodes: 1, Configs: []ConfigRun{
		{Name: ConfKernel, Steps: []Step{step(100, 0, 0), step(200, 0, 0)}},
		{Name: ConfFull, Steps: []Step{step(50, 0, 0), step(90, 0, 500), step(120, 0.5, 0), step(150, 0, 0)}},
	}}}}
	Judge(res)
	full := res.Labs[0].Configs[1]
	if full.MaxLossless == nil || full.MaxLossless.DeliveredPPS != 50 {
		t.Fatalf("strict max: %+v", full.MaxLossless)
	}
	if full.MaxNoCapacityLoss == nil || full.MaxNoCapacityLoss.DeliveredPPS != 90 {
		t.Fatalf("max with order drops allowed: %+v", full.MaxNoCapacityLoss)
	}
	if full.RatioVsKernel != 0.25 {
		t.Fatalf("ratio %v, want 50/200", full.RatioVsKernel)
	}
	if full.Steps[1].Lossless || full.Steps[2].Lossless || !full.Steps[3].Lossless {
		t.Fatalf("verdicts %v %v %v", full.Steps[1].Lossless, full.Steps[2].Lossless, full.Steps[3].Lossless)
	}
}
