package runner

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/patchgate/patchgate/deploy/lab"
)

// busFormTimeout bounds waiting for the nodes' embedded NATS servers to
// route to each other.
const busFormTimeout = 20 * time.Second

// labRunner runs every configuration's ramp in one lab bring-up.
type labRunner struct {
	cfg     Config
	lab     *lab.Lab
	capture *benchCapture
	prep    *prepared
	nopDir  string
	eve     *eveTail
	alerted []eveAlert // alerts since the configuration started
	prog    *progress
	idleCPU []float64 // per node, the configuration's idle CPU %
	// lastMbps is the previous step's achieved offered rate (0 at the
	// start of a ramp).
	lastMbps float64
}

// idleSample is how long the nodes' idle CPU use is sampled.
const idleSample = time.Second

// sampleIdle measures each node's CPU use with no traffic.
func (r *labRunner) sampleIdle() error {
	before, err := r.snap(true)
	if err != nil {
		return err
	}
	start := time.Now()
	time.Sleep(idleSample)
	after, err := r.snap(true)
	if err != nil {
		return err
	}
	secs := time.Since(start).Seconds()
	r.idleCPU = nil
	for i := range after.cpu {
		r.idleCPU = append(r.idleCPU, 100*(after.cpu[i].Seconds()-before.cpu[i].Seconds())/secs)
	}
	return nil
}

// Settling bounds: the tap's receive counters must not move for
// settleQuiet, within settleTimeout (then the run goes on regardless).
const (
	settleQuiet   = 1500 * time.Millisecond
	settleTimeout = 8 * time.Second
)

// settle waits until no frame reaches the tap for settleQuiet (bounded by
// settleTimeout).
func (r *labRunner) settle() error {
	start, err := r.lab.Stats(r.lab.Tap.NS)
	if err != nil {
		return err
	}
	last, _, err := r.delivered(start)
	if err != nil {
		return err
	}
	lastChange := time.Now()
	for deadline := time.Now().Add(settleTimeout); time.Now().Before(deadline); {
		time.Sleep(100 * time.Millisecond)
		n, _, err := r.delivered(start)
		if err != nil {
			return err
		}
		if n != last {
			last, lastChange = n, time.Now()
		} else if time.Since(lastChange) >= settleQuiet {
			return nil
		}
	}
	return nil
}

func (r *labRunner) evePaths() []string {
	var out []string
	for _, n := range r.lab.Nodes {
		out = append(out, r.lab.NodeEVEPath(n.Index))
	}
	return out
}

// runLab brings up a lab of variant v with n nodes, ramps every
// configuration and tears the lab down.
func runLab(ctx context.Context, cfg Config, v lab.Variant, n int, bc *benchCapture, nopDir, work string, prog *progress) LabRun {
	lr := LabRun{Variant: string(v), Nodes: n}
	lc := lab.DefaultConfig()
	lc.Variant, lc.Nodes, lc.MTU, lc.Queues = v, n, cfg.MTU, cfg.Queues
	lc.StateRoot, lc.Binary, lc.Patches = cfg.StateRoot, cfg.Binary, cfg.Patches
	l, err := lab.Up(lc)
	if err != nil {
		lr.Error = err.Error()
		return lr
	}
	defer func() {
		if err := l.Down(); err != nil && lr.Error == "" {
			lr.Error = "lab down: " + err.Error()
		}
	}()
	lr.Prefix = l.Prefix
	dir := filepath.Join(work, l.Prefix)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		lr.Error = err.Error()
		return lr
	}
	p, err := prepare(l, bc.Info.Path, dir, cfg.TurnGap)
	if err != nil {
		lr.Error = err.Error()
		return lr
	}
	lr.Spacing = &Spacing{Gap: p.Spacing.Gap, Turns: p.Spacing.Turns, Short: p.Spacing.Short, LoopShort: p.Spacing.LoopShort}
	r := &labRunner{cfg: cfg, lab: l, capture: bc, prep: p, nopDir: nopDir, eve: newEVETail(), prog: prog}
	// Interfaces that just came up send a few control frames of their own
	// (IPv6 multicast listener reports and the like) that reach the tap:
	// counted in the first step, they made delivered exceed offered by a
	// few frames. Wait until the tap's counters stay still.
	if err := r.settle(); err != nil {
		lr.Error = err.Error()
		return lr
	}
	var full, bus *ConfigRun
	for _, conf := range cfg.Configs {
		if conf == ConfFullBus && (v != lab.L3 || n < 2) {
			continue
		}
		if ctx.Err() != nil {
			lr.Error = ctx.Err().Error()
			break
		}
		lr.Configs = append(lr.Configs, r.rampConfig(ctx, v, n, conf))
	}
	// Maxima and ratios to the kernel: Judge, once every lab has run.
	for i := range lr.Configs {
		c := &lr.Configs[i]
		switch c.Name {
		case ConfFull:
			full = c
		case ConfFullBus:
			bus = c
		}
	}
	if full != nil && bus != nil {
		lr.Bus = busOverhead(full, bus)
	}
	return lr
}

// rampConfig sets a configuration up on every node and ramps it.
func (r *labRunner) rampConfig(ctx context.Context, v lab.Variant, n int, conf string) ConfigRun {
	cr := ConfigRun{Name: conf}
	r.idleCPU, r.lastMbps = nil, 0
	if err := r.setup(conf); err != nil {
		cr.Error = err.Error()
		r.prog.skip(len(r.cfg.Rates()))
		return cr
	}
	rates := r.cfg.Rates()
	res, err := Ramp(rates, func(i int, rate Rate) (Outcome, error) {
		if ctx.Err() != nil {
			return Outcome{}, ctx.Err()
		}
		r.prog.begin(fmt.Sprintf("%s N=%d %s %s", v, n, conf, rate))
		st, err := r.runStep(ctx, conf, rate)
		r.prog.done()
		if err != nil {
			return Outcome{}, err
		}
		cr.Steps = append(cr.Steps, st)
		r.prog.note(fmt.Sprintf("offered %.0f pps / %.1f Mbps, delivered %.0f pps, loss %.3f %%, uninspected %d, lossless %v",
			st.Offered.PPS, st.Offered.Mbps, st.DeliveredPPS, st.LossPct, st.Uninspected, st.Lossless))
		return Outcome{Lossless: st.Lossless, DeliveredPPS: st.DeliveredPPS, DeliveredMbps: st.DeliveredMbps}, nil
	})
	r.prog.skip(len(rates) - res.Ran)
	cr.IdleCPUPct = r.idleCPU
	if err != nil {
		cr.Error = err.Error()
	}
	return cr
}

// setup stops whatever runs on the nodes and starts the configuration.
func (r *labRunner) setup(conf string) error {
	l := r.lab
	for _, n := range l.Nodes {
		if l.NodePID(n.Index) != 0 {
			if err := l.StopNode(n.Index); err != nil {
				return err
			}
		}
		if err := l.Bypass(n.Index); err != nil {
			return err
		}
	}
	r.alerted = nil
	if conf == ConfKernel {
		return nil
	}
	if conf == ConfFullBus {
		if err := l.ClusterRoutes(); err != nil {
			return err
		}
	}
	for _, n := range l.Nodes {
		f, err := l.DefaultNodeFile(n.Index)
		if err != nil {
			return err
		}
		f.Log.Level = "warn"
		if conf == ConfNoPatches {
			f.Patches = r.nopDir
		}
		if conf == ConfFullBus {
			if f.Bus, err = l.DefaultBusFile(n.Index); err != nil {
				return err
			}
		}
		if _, err := l.WriteNodeConfig(n.Index, f); err != nil {
			return err
		}
		// Alerts of earlier configurations stay out of this one's.
		_ = os.Remove(l.NodeEVEPath(n.Index))
	}
	for _, n := range l.Nodes {
		if err := l.StartNode(n.Index); err != nil {
			return err
		}
	}
	if conf == ConfFullBus && len(l.Nodes) > 1 {
		deadline := time.Now().Add(busFormTimeout)
		for {
			ok := true
			for _, n := range l.Nodes {
				_, body, err := l.NodeGet(n.Index, "/metrics")
				if err != nil {
					ok = false
					break
				}
				m, err := ParseMetrics(string(body))
				if err != nil || m.Sum("patchgate_bus_routes", nil) < float64(len(l.Nodes)-1) {
					ok = false
					break
				}
			}
			if ok {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("runner: the bus cluster did not form within %v", busFormTimeout)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	r.eve.skip(r.evePaths())
	return r.sampleIdle()
}

// busOverhead pairs the bus-on and bus-off steps of the same rates.
func busOverhead(off, on *ConfigRun) *BusOverhead {
	b := &BusOverhead{}
	for _, s := range on.Steps {
		for _, o := range off.Steps {
			if o.Rate != s.Rate {
				continue
			}
			row := BusRow{Rate: s.Rate, CPUOffPerNode: mean(o.CPUPct), CPUOnPerNode: mean(s.CPUPct),
				LossOffPct: o.LossPct, LossOnPct: s.LossPct}
			if s.Bus != nil {
				row.CheckpointsPerSec = s.Bus.CheckpointsPerSec
				row.BusBytesPerSec = s.Bus.BytesOutPerSec + s.Bus.BytesInPerSec
			}
			b.Rows = append(b.Rows, row)
		}
	}
	return b
}

func mean(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := 0.0
	for _, x := range xs {
		s += x
	}
	return s / float64(len(xs))
}
