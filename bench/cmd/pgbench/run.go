package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/patchgate/patchgate/bench/runner"
	"github.com/patchgate/patchgate/deploy/lab"
)

// cmdRun is `pgbench run`.
func cmdRun(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("pgbench run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	quick := fs.Bool("quick", false, "short run: both variants, 3 nodes, 3 rates and top speed, small capture, short peer runs")
	out := fs.String("out", "", "results directory (default bench/results/<UTC date>)")
	binary := fs.String("binary", "bin/patchgate", "patchgate executable the nodes run")
	patches := fs.String("patches", "patches", "patch catalog")
	variants := fs.String("variants", "", "comma-separated variants (l3,l2); default both")
	nodes := fs.String("nodes", "", "comma-separated node counts; default 1,2,3 (quick: 3)")
	rates := fs.String("rates", "", "comma-separated --mbps steps, ascending")
	topspeed := fs.Bool("topspeed", true, "end every ramp with a --topspeed step")
	configs := fs.String("configs", "", "comma-separated configurations (kernel, patchgate-full, patchgate-nopatches, patchgate-full-bus)")
	step := fs.Float64("step-seconds", 0, "target replay time per step")
	sessions := fs.Int("sessions", 0, "sessions in the generated capture")
	capture := fs.String("capture", "", "replay this capture (with CAPTURE.manifest.json) instead of generating one")
	seed := fs.Uint64("seed", runner.DefaultSeed, "capture seed")
	enginePkts := fs.Int("engine-packets", -1, "frames callgrind counts (0 skips)")
	turnGap := fs.Int("turn-gap", runner.DefaultTurnGap, "frames between a flow's frame and its answer in the replayed capture (0 keeps the capture's order)")
	wafOn := fs.Bool("waf", true, "run bench/waf: kernel vs patchgate vs nginx+ModSecurity with wrk, latency per packet and per request")
	wafSecs := fs.Float64("waf-seconds", 0, "length of bench/waf's saturating wrk runs (default 10, quick 3)")
	coraza := fs.String("coraza", strings.Join(runner.DefaultCorazaCmd(), " "), "bench/coraza's report command (gets -patches DIR -o FILE); empty skips Coraza")
	plot := fs.String("plot", "go -C bench/plot run .", "command that draws the PNGs (gets -in results.json -out DIR); empty skips")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg := runner.DefaultConfig()
	if *quick {
		cfg = runner.QuickConfig()
	}
	cfg.Binary, cfg.Patches, cfg.Seed, cfg.TopSpeed, cfg.Capture = *binary, *patches, *seed, *topspeed, *capture
	if *out == "" {
		*out = filepath.Join("bench", "results", time.Now().UTC().Format("2006-01-02"))
	}
	cfg.Out = *out
	if *variants != "" {
		cfg.Variants = nil
		for _, v := range strings.Split(*variants, ",") {
			cfg.Variants = append(cfg.Variants, lab.Variant(strings.TrimSpace(v)))
		}
	}
	if *nodes != "" {
		ns, err := ints(*nodes)
		if err != nil {
			return fmt.Errorf("--nodes: %w", err)
		}
		cfg.Nodes = ns
	}
	if *rates != "" {
		cfg.RatesMbps = nil
		for _, s := range strings.Split(*rates, ",") {
			v, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
			if err != nil {
				return fmt.Errorf("--rates: %w", err)
			}
			cfg.RatesMbps = append(cfg.RatesMbps, v)
		}
	}
	if *configs != "" {
		cfg.Configs = strings.Split(*configs, ",")
	}
	if *step > 0 {
		cfg.StepSeconds = *step
	}
	if *sessions > 0 {
		cfg.Sessions = *sessions
	}
	cfg.TurnGap = *turnGap
	cfg.WAF = *wafOn
	if *wafSecs > 0 {
		cfg.WAFSeconds = *wafSecs
	}
	cfg.CorazaCmd = strings.Fields(*coraza)
	if *enginePkts >= 0 {
		cfg.EnginePackets = *enginePkts
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, err := runner.Run(ctx, cfg, *quick, "pgbench run "+strings.Join(args, " "), strings.Fields(*plot), stderr)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s\n", filepath.Join(cfg.Out, "report.md"))
	for _, l := range res.Labs {
		if l.Error != "" {
			return fmt.Errorf("lab %s N=%d: %s", l.Variant, l.Nodes, l.Error)
		}
	}
	return nil
}

func ints(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		v, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}
