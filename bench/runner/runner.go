// Package runner is `pgbench run`: it replays a seeded capture with
// tcpreplay through the lab (deploy/lab) for each variant (L3 NFQUEUE, L2
// AF_PACKET) and node count, ramps the offered rate for patchgate with the
// full catalog, patchgate with no patches, plain kernel forwarding and
// (L3, N ≥ 2) patchgate with flow sharing, and writes results.json and
// report.md: delivered rates, loss, drops by reason, exploits blocked, CPU
// per node, flow-sharing overhead, instructions per packet and a labelled
// model for larger clusters. In the same run it measures the peers side by
// side: bench/coraza (Coraza vs patchgate, a separate module run as a
// command) and bench/waf (kernel vs patchgate vs nginx+ModSecurity+CRS,
// latency added per packet and per request). bench/plot (a separate
// module) draws the PNGs.
package runner

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// nopPatch is the placeholder patch set of ConfNoPatches: the node refuses
// an empty patch directory, so it gets one DNS patch that the HTTP capture
// never reaches.
const nopPatch = `id: PG-BENCH-NOP
sid: 9999001
title: benchmark placeholder that matches only a private-use DNS query type
severity: low
category: info-disclosure
protocol: dns
event: dns.query
when: qtype == 65280
action: alert
mode: detect
tests:
  - name: private-use qtype
    match: true
    transport: udp
    server_port: 53
    to_server_hex: |
      10010000000100000000000003666f6f076578616d706c650000ff000001
  - name: A query
    match: false
    transport: udp
    server_port: 53
    to_server_hex: |
      10010000000100000000000003666f6f076578616d706c650000010001
`

// Run performs a benchmark run and writes results.json and report.md
// into cfg.Out. Progress goes to progressOut. Plots are drawn by PlotCmd
// when it is set (bench/plot's command: it gets the results file and the
// output directory as arguments).
func Run(ctx context.Context, cfg Config, quick bool, commandLine string, plotCmd []string, progressOut io.Writer) (*Results, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if os.Geteuid() != 0 {
		return nil, fmt.Errorf("runner: needs root (network namespaces, tcpreplay)")
	}
	for _, bin := range []string{"tcpreplay", "tcpprep", "ip"} {
		if _, err := exec.LookPath(bin); err != nil {
			return nil, fmt.Errorf("runner: %s: %w (Debian packages tcpreplay, iproute2)", bin, err)
		}
	}
	var err error
	for _, p := range []*string{&cfg.Binary, &cfg.Patches, &cfg.Out} {
		if *p, err = filepath.Abs(*p); err != nil {
			return nil, fmt.Errorf("runner: %w", err)
		}
	}
	if err := os.MkdirAll(cfg.Out, 0o755); err != nil {
		return nil, fmt.Errorf("runner: out: %w", err)
	}
	work, err := os.MkdirTemp("", "pgbench-")
	if err != nil {
		return nil, fmt.Errorf("runner: %w", err)
	}
	defer os.RemoveAll(work)
	nopDir := filepath.Join(work, "nopatches")
	if err := os.MkdirAll(nopDir, 0o755); err != nil {
		return nil, fmt.Errorf("runner: %w", err)
	}
	if err := os.WriteFile(filepath.Join(nopDir, "nop.yaml"), []byte(nopPatch), 0o644); err != nil {
		return nil, fmt.Errorf("runner: %w", err)
	}
	res := &Results{Started: time.Now().UTC(), Quick: quick, Config: cfg, Machine: describeMachine()}
	res.Commands = append(res.Commands, commandLine)

	// The capture.
	fmt.Fprintf(progressOut, "pgbench: preparing the capture\n")
	var bc *benchCapture
	if cfg.Capture != "" {
		bc = &benchCapture{Info: CaptureInfo{Source: "given", Path: cfg.Capture, Seed: cfg.Seed}}
		if ex, err := manifestExploits(cfg.Capture + ".manifest.json"); err == nil {
			bc.Exploits = ex
		} else {
			res.Notes = append(res.Notes, "exploit manifest: "+err.Error())
		}
	} else if bc, err = generateTraffic(filepath.Join(work, "bench.pcap"), cfg.Patches, cfg.Sessions, cfg.Seed); err != nil {
		res.Notes = append(res.Notes, "bench/traffic capture failed, fell back to dataplane/gen.Mix: "+err.Error())
		if bc, err = generateMix(filepath.Join(work, "bench.pcap"), cfg.Patches, cfg.Sessions, cfg.Seed); err != nil {
			return nil, err
		}
	}
	prefix := filepath.Join(work, "prefix.pcap")
	var prefixFlows int
	if bc.Info.Frames, bc.Info.Bytes, bc.Info.Flows, prefixFlows, err = describeCapture(bc.Info.Path, prefix, cfg.EnginePackets); err != nil {
		return nil, err
	}
	bc.Info.Exploits = len(bc.Exploits)
	if bc.Info.Frames > 0 {
		bc.Info.AvgFrame = float64(bc.Info.Bytes) / float64(bc.Info.Frames)
	}
	res.Capture = bc.Info
	res.Commands = append(res.Commands,
		"tcpreplay -i <tap c> -I <tap s> --cachefile=<tcpprep --mac=<tap c MAC>> --preload-pcap --mbps=R|--topspeed --loop=L <capture rewritten to the lab's MACs>   # inside the lab's tap namespace")

	// Contention-independent cost first: it needs the CPU the least.
	if cfg.EnginePackets > 0 {
		fmt.Fprintf(progressOut, "pgbench: counting instructions per packet with callgrind (%d frames)\n", min(cfg.EnginePackets, bc.Info.Frames))
		ec, err := engineCost(ctx, cfg, prefix, min(cfg.EnginePackets, bc.Info.Frames), prefixFlows, nopDir, work)
		if err != nil {
			res.Notes = append(res.Notes, "instructions per packet: not measured: "+err.Error())
		} else {
			res.Engine = ec
			res.Commands = append(res.Commands, ec.Command)
		}
	}

	// The labs.
	total := 0
	for _, v := range cfg.Variants {
		for _, n := range cfg.Nodes {
			for _, c := range cfg.Configs {
				if c == ConfFullBus && (v != "l3" || n < 2) {
					continue
				}
				total += len(cfg.Rates())
			}
		}
	}
	prog := newProgress(progressOut, total)
	for _, v := range cfg.Variants {
		if ctx.Err() != nil {
			break
		}
		if containsConf(cfg.Configs, ConfFullBus) && v != "l3" {
			res.Notes = append(res.Notes, fmt.Sprintf("%s: flow sharing not measured: L2 nodes have no address for the bus routes (deploy/lab README)", v))
		}
		for _, n := range cfg.Nodes {
			if ctx.Err() != nil {
				break
			}
			fmt.Fprintf(progressOut, "pgbench: lab %s with %d node(s)\n", v, n)
			res.Labs = append(res.Labs, runLab(ctx, cfg, v, n, bc, nopDir, work, prog))
		}
	}
	if res.Engine != nil {
		res.Engine.Model = clusterModel(res)
	}
	// The peers, side by side, in the same run.
	if ctx.Err() == nil {
		runPeers(ctx, cfg, work, progressOut, res)
	}
	res.Finished = time.Now().UTC()
	Judge(res)
	return res, writeOutputs(res, cfg.Out, plotCmd, progressOut)
}

func containsConf(list []string, c string) bool {
	for _, x := range list {
		if x == c {
			return true
		}
	}
	return false
}

// writeOutputs writes results.json, the plots and report.md.
func writeOutputs(res *Results, out string, plotCmd []string, progressOut io.Writer) error {
	jsonPath := filepath.Join(out, "results.json")
	write := func() error {
		data, err := json.MarshalIndent(res, "", "  ")
		if err != nil {
			return fmt.Errorf("runner: results: %w", err)
		}
		return os.WriteFile(jsonPath, append(data, '\n'), 0o644)
	}
	if err := write(); err != nil {
		return err
	}
	if len(plotCmd) > 0 {
		cmd := exec.Command(plotCmd[0], append(plotCmd[1:], "-in", jsonPath, "-out", out)...)
		if o, err := cmd.CombinedOutput(); err != nil {
			res.Notes = append(res.Notes, fmt.Sprintf("plots not drawn: %s: %v: %s", strings.Join(plotCmd, " "), err, tail(string(o), 300)))
			if err := write(); err != nil {
				return err
			}
		}
	}
	plots := map[string]bool{}
	if ents, err := os.ReadDir(out); err == nil {
		for _, e := range ents {
			if strings.HasSuffix(e.Name(), ".png") {
				plots[e.Name()] = true
			}
		}
	}
	f, err := os.Create(filepath.Join(out, "report.md"))
	if err != nil {
		return fmt.Errorf("runner: report: %w", err)
	}
	if err := WriteReport(f, res, plots); err != nil {
		f.Close()
		return fmt.Errorf("runner: report: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("runner: report: %w", err)
	}
	fmt.Fprintf(progressOut, "pgbench: wrote %s and %s\n", jsonPath, filepath.Join(out, "report.md"))
	return nil
}
