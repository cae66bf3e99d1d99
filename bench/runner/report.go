package runner

import (
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
)

// PlotName is the file name bench/plot gives a lab bring-up's offered vs
// delivered plot.
func PlotName(variant string, nodes int) string {
	return fmt.Sprintf("rate-%s-n%d.png", variant, nodes)
}

// LatencyPlot is the file name of the latency distribution plot.
const LatencyPlot = "latency.png"

func trimFloat(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }

func kpps(v float64) string { return fmt.Sprintf("%.1f k", v/1e3) }

// WriteReport writes report.md from the results; plots lists the PNG
// files that exist in the results directory.
func WriteReport(w io.Writer, res *Results, plots map[string]bool) error {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	mode := "full"
	if res.Quick {
		mode = "quick"
	}
	p("# patchgate replay benchmark (%s run), %s\n\n", mode, res.Started.UTC().Format("2006-01-02 15:04Z"))
	m := res.Machine
	p("Machine: %s, %d cores, kernel %s, %s, %s. Load average at start: %s.\n\n", m.CPUModel, m.Cores, m.Kernel, m.GoVersion, m.Tcpreplay, m.LoadAvg)
	p("Run time: %s. Numbers from a 2-core machine shared with other work are indicative: read the ratios measured in the same lab bring-up, not the absolute rates.\n\n",
		res.Finished.Sub(res.Started).Round(1e9))
	c := res.Capture
	p("Capture: %s (seed %d): %d frames, %.1f MB, %d flows, %d exploits, mean frame %.0f bytes.\n\n", c.Source, c.Seed, c.Frames, float64(c.Bytes)/1e6, c.Flows, c.Exploits, c.AvgFrame)
	b.WriteString("## How to read it\n\n")
	p("- Each step replays the capture from the lab's tap with `tcpreplay --preload-pcap --mbps=R --loop=L` (or `--topspeed`): client-side frames toward R1, server-side frames toward R2, so both directions of every flow cross the nodes; ECMP spreads the flows (%d+ client addresses × ports) over the nodes.\n", 200)
	b.WriteString("- **Delivered** = replayed frames the tap received back on both ports (kernel counters) minus the RSTs the nodes injected (a pair per dropped packet of a blocked flow: they reach the tap too, and counted as delivered they made delivered exceed offered), over the sending time plus the time the lab kept delivering.\n")
	b.WriteString("- **Loss** = offered − delivered − packets the nodes decided to drop (drops_total by reason): what vanished for lack of capacity. Policy drops (`patch`, `blocked_flow`) are not loss. **Order drops** (`tcp_state`, `tcp_window`, `tcp_buffer`, `tcp_overlap`, `midstream`) are reported separately and are not loss either (see the next point), but more than the loss threshold of them makes a step lossy (below).\n")
	p("- **Replay order (turn spacing).** A replay is open-loop: tcpreplay sends a flow's answer (SYN-ACK, response, ACK) microseconds after what it answers, whether or not the node has forwarded it yet — on a real network the answer cannot exist before. The L2 node reads each interface through its own AF_PACKET rings and workers, so an answer arriving on one interface was often inspected before its cause, still waiting in the other interface's ring (up to the ring's 1 ms block timeout): the normaliser dropped it (`tcp_state`), flows were picked up midstream, and exploits in them went unseen (61/70 blocked in an earlier quick run, with thousands of `tcp_state` drops at 50 Mbps). The runner therefore reorders the capture before replaying it: every change of direction within a flow comes at least %d frames after the flow's previous frame (several ms at the rates the nodes saturate), other flows' frames filling the gap; no frame changes, each flow keeps its order. It cannot space the turns at the capture's end, where only a few long downloads remain, nor where `--loop` starts the capture again and a flow meets its own earlier copy: the remaining order drops come from there (more at higher rates and with more loops). The per-lab line \"replay order\" counts them.\n", res.Config.TurnGap)
	p("- A step is **lossless** when loss < %.2g %%, packets passed uninspected under overload (fail-open bypass) < %.2g %% and order drops < %.2g %% (order drops appear when a node's queueing delay grows past the turn spacing: overload, even though nothing was lost). Each ramp stops at the first lossy step; **max lossless** is the highest delivered rate among the lossless steps before it.\n", res.Config.MaxLossPct, res.Config.MaxLossPct, res.Config.MaxLossPct)
	b.WriteString("- **Exploits blocked** = distinct exploit flows of the manifest that a node's EVE alert named, since the configuration started (repeats of a blocked flow are dropped as `blocked_flow` without a new alert).\n\n")

	b.WriteString("## Max lossless rates\n\n")
	b.WriteString("| variant | N | configuration | delivered pps | delivered Mbps | per node pps | ratio vs kernel | CPU per node | exploits blocked | with order drops allowed: pps (order drops) |\n|---|---|---|---|---|---|---|---|---|---|\n")
	for _, l := range res.Labs {
		for _, cr := range l.Configs {
			loose := ""
			if s := cr.MaxNoCapacityLoss; s != nil && s.Offered.Packets > 0 {
				loose = fmt.Sprintf("%s (%.2f %%)", kpps(s.DeliveredPPS), 100*float64(s.OrderDrops)/float64(s.Offered.Packets))
			}
			if cr.MaxLossless == nil {
				p("| %s | %d | %s | none lossless | | | | | | %s |\n", l.Variant, l.Nodes, cr.Name, loose)
				continue
			}
			s := cr.MaxLossless
			ratio := ""
			if cr.RatioVsKernel > 0 {
				ratio = fmt.Sprintf("%.2f", cr.RatioVsKernel)
			}
			p("| %s | %d | %s | %s | %.0f | %s | %s | %s | %s | %s |\n", l.Variant, l.Nodes, cr.Name, kpps(s.DeliveredPPS), s.DeliveredMbps,
				kpps(s.DeliveredPPS/float64(l.Nodes)), ratio, cpuList(s.CPUPct), exploits(s, cr.Name), loose)
		}
	}
	b.WriteString("\n")
	for _, l := range res.Labs {
		p("## %s, N=%d (lab %s)\n\n", strings.ToUpper(l.Variant), l.Nodes, l.Prefix)
		if l.Error != "" {
			p("Error: `%s`\n\n", l.Error)
		}
		if sp := l.Spacing; sp != nil {
			p("Replay order: %d turns (direction changes within a flow) spaced by at least %d frames; %d closer (the capture's tail); %d flows meet their own copy across the `--loop` boundary within %d frames.\n\n",
				sp.Turns, sp.Gap, sp.Short, sp.LoopShort, sp.Gap)
		}
		if name := PlotName(l.Variant, l.Nodes); plots[name] {
			p("![offered vs delivered](%s)\n\n", name)
		}
		for _, cr := range l.Configs {
			p("### %s\n\n", cr.Name)
			if cr.Error != "" {
				p("Error: `%s`\n\n", cr.Error)
			}
			if len(cr.IdleCPUPct) > 0 {
				p("Idle CPU per node (no traffic, %v): %s\n\n", idleSample, cpuList(cr.IdleCPUPct))
			}
			if len(cr.Steps) == 0 {
				continue
			}
			b.WriteString("| offered | loops | offered pps | offered Mbps | delivered pps | delivered Mbps | loss % | dropped by reason | order drops | kernel drops | uninspected | exploits | CPU per node | machine busy |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
			for _, s := range cr.Steps {
				p("| %s | %d | %s | %.1f | %s | %.1f | %.3f | %s | %d | %d | %d | %s | %s | %.0f %% |\n", s.Rate, s.Loops, kpps(s.Offered.PPS), s.Offered.Mbps,
					kpps(s.DeliveredPPS), s.DeliveredMbps, s.LossPct, reasons(s.Dropped), s.OrderDrops, s.KernelDrops, s.Uninspected,
					exploits(&s, cr.Name), cpuList(s.CPUPct), s.MachineBusyPct)
			}
			b.WriteString("\n")
		}
		if l.Bus != nil && len(l.Bus.Rows) > 0 {
			b.WriteString("### Flow-sharing overhead (full catalog, bus on vs off, same rates)\n\n")
			b.WriteString("| offered | CPU/node off | CPU/node on | checkpoints/s | bus bytes/s (out+in) | loss off | loss on |\n|---|---|---|---|---|---|---|\n")
			for _, r := range l.Bus.Rows {
				p("| %s | %.0f %% | %.0f %% | %.0f | %.0f k | %.3f %% | %.3f %% |\n", r.Rate, r.CPUOffPerNode, r.CPUOnPerNode, r.CheckpointsPerSec, r.BusBytesPerSec/1e3, r.LossOffPct, r.LossOnPct)
			}
			b.WriteString("\n")
		}
	}
	b.WriteString("## Contention-independent cost and the model for larger clusters\n\n")
	if e := res.Engine; e != nil {
		p("Counted with %s on the first %d frames (%d flows) of the bench capture: **%.0f instructions per packet** with the full catalog (%.0f with the placeholder patch set), **%.0f instructions per flow**.\n\nCommand: `%s`\n\n",
			e.Tool, e.Packets, e.Flows, e.InstructionsPerPacket, e.NoPatchesPerPacket, e.InstructionsPerFlow, e.Command)
	}
	b.WriteString(clusterModel(res))
	b.WriteString("\n## Peers, side by side\n\n")
	writePeers(&b, res.Peers)
	b.WriteString("\n## Latency\n\n")
	writeLatency(&b, res.Peers, plots[LatencyPlot])
	b.WriteString("\n## Exact commands\n\n```sh\n")
	for _, c := range res.Commands {
		b.WriteString(c + "\n")
	}
	b.WriteString("```\n")
	if len(res.Notes) > 0 {
		b.WriteString("\n## Notes\n\n")
		for _, n := range res.Notes {
			p("- %s\n", n)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func cpuList(pcts []float64) string {
	if len(pcts) == 0 {
		return "–"
	}
	var parts []string
	for _, v := range pcts {
		parts = append(parts, fmt.Sprintf("%.0f%%", v))
	}
	return strings.Join(parts, " ")
}

func reasons(m map[string]uint64) string {
	if len(m) == 0 {
		return "–"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}

func exploits(s *Step, conf string) string {
	if conf == ConfKernel || s.ExploitsDistinct == 0 {
		return "–"
	}
	return fmt.Sprintf("%d/%d", s.ExploitsBlocked, s.ExploitsDistinct)
}
