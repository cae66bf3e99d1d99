package runner

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
)

var collectedRE = regexp.MustCompile(`Collected : (\d+)`)

// callgrindCount returns the instructions callgrind counts for replaying a
// capture offline through `patchgate replay` with a patch directory. One
// thread, no preemption signals, no GC: the count depends on the work, not
// on what else the machine does.
func callgrindCount(ctx context.Context, binary, patches, pcap, tmp string) (uint64, error) {
	cmd := exec.CommandContext(ctx, "valgrind", "--tool=callgrind", "--callgrind-out-file="+filepath.Join(tmp, "cg.out"),
		binary, "replay", "-q", "--patches", patches, "--eve", "/dev/null", pcap)
	cmd.Env = append(os.Environ(), "GODEBUG=asyncpreemptoff=1", "GOMAXPROCS=1", "GOGC=off")
	out, err := cmd.CombinedOutput()
	m := collectedRE.FindSubmatch(out)
	if m == nil {
		return 0, fmt.Errorf("runner: callgrind %s: %v: %s", filepath.Base(pcap), err, tail(string(out), 400))
	}
	return strconv.ParseUint(string(m[1]), 10, 64)
}

// engineCost counts instructions per packet and per flow on the first
// packets of the bench capture, with the full catalog and with the
// placeholder patch set, minus the cost of replaying an empty capture.
func engineCost(ctx context.Context, cfg Config, prefix string, packets, flows int, nopDir, tmp string) (*EngineCost, error) {
	if _, err := exec.LookPath("valgrind"); err != nil {
		return nil, fmt.Errorf("runner: engine cost: valgrind not installed (Debian package valgrind)")
	}
	empty := filepath.Join(tmp, "empty.pcap")
	hdr := make([]byte, 24)
	f, err := os.Open(prefix)
	if err != nil {
		return nil, fmt.Errorf("runner: engine cost: %w", err)
	}
	_, err = f.Read(hdr)
	f.Close()
	if err != nil {
		return nil, fmt.Errorf("runner: engine cost: %w", err)
	}
	if err := os.WriteFile(empty, hdr, 0o644); err != nil {
		return nil, fmt.Errorf("runner: engine cost: %w", err)
	}
	base, err := callgrindCount(ctx, cfg.Binary, cfg.Patches, empty, tmp)
	if err != nil {
		return nil, err
	}
	full, err := callgrindCount(ctx, cfg.Binary, cfg.Patches, prefix, tmp)
	if err != nil {
		return nil, err
	}
	nopBase, err := callgrindCount(ctx, cfg.Binary, nopDir, empty, tmp)
	if err != nil {
		return nil, err
	}
	nop, err := callgrindCount(ctx, cfg.Binary, nopDir, prefix, tmp)
	if err != nil {
		return nil, err
	}
	ec := &EngineCost{Tool: "valgrind --tool=callgrind", Packets: packets, Flows: flows,
		Command: fmt.Sprintf("GODEBUG=asyncpreemptoff=1 GOMAXPROCS=1 GOGC=off valgrind --tool=callgrind %s replay -q --patches %s --eve /dev/null PREFIX.pcap (minus the same on an empty capture); PREFIX = first %d frames of the bench capture",
			cfg.Binary, cfg.Patches, packets)}
	if packets > 0 {
		ec.InstructionsPerPacket = float64(full-base) / float64(packets)
		ec.NoPatchesPerPacket = float64(nop-nopBase) / float64(packets)
	}
	if flows > 0 {
		ec.InstructionsPerFlow = float64(full-base) / float64(flows)
	}
	return ec, nil
}

// clockGHz reads the clock from a CPU model string ("... @ 2.50GHz");
// 0 when it does not say.
func clockGHz(model string) float64 {
	i := strings.LastIndex(model, "@")
	if i < 0 {
		return 0
	}
	s := strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(model[i+1:]), "GHz"))
	v, _ := strconv.ParseFloat(s, 64)
	return v
}

// Model assumptions, stated in the report.
const (
	// modelIPC is the instructions per cycle assumed for the engine (Go,
	// branchy parsing code: typically 1–2 on current x86 cores).
	modelIPC = 1.5
	// modelClockGHz is used when the CPU model names no clock.
	modelClockGHz = 2.5
)

// clusterModel writes the labelled model for larger clusters from the
// instruction counts and the lab's CPU time per packet.
func clusterModel(res *Results) string {
	ec := res.Engine
	var b strings.Builder
	ghz := clockGHz(res.Machine.CPUModel)
	if ghz == 0 {
		ghz = modelClockGHz
	}
	// Lab CPU seconds per packet: patchgate full catalog, lossless steps,
	// summed over all labs (includes the kernel↔user I/O path).
	var cpu float64
	var pkts uint64
	var busCPU, busCP float64
	for _, l := range res.Labs {
		for _, c := range l.Configs {
			for _, s := range c.Steps {
				if !s.Lossless {
					continue
				}
				var sum float64
				var p uint64
				for i := range s.CPU {
					sum += s.CPU[i]
					if i < len(s.PerNodePackets) {
						p += s.PerNodePackets[i]
					}
				}
				// Marginal CPU: minus the nodes' idle use over the step.
				sum -= mean(c.IdleCPUPct) / 100 * float64(len(s.CPU)) * s.Seconds
				if c.Name == ConfFull && sum > 0 {
					cpu += sum
					pkts += p
				}
			}
		}
		if l.Bus != nil {
			for _, r := range l.Bus.Rows {
				if r.CheckpointsPerSec > 0 {
					busCPU += (r.CPUOnPerNode - r.CPUOffPerNode) / 100 * float64(l.Nodes)
					busCP += r.CheckpointsPerSec
				}
			}
		}
	}
	fmt.Fprintf(&b, "**MODEL (not a measurement).** Assumptions: %.2f GHz cores (from the CPU model or assumed), IPC %.1f for the engine, one NFQUEUE queue / AF_PACKET fanout member per core, flows spread evenly by ECMP, no other work on the nodes.\n\n", ghz, modelIPC)
	if ec != nil && ec.InstructionsPerPacket > 0 {
		cyc := ec.InstructionsPerPacket / modelIPC
		perCore := ghz * 1e9 / cyc
		fmt.Fprintf(&b, "- Engine only: %.0f instructions/packet (%.0f with no patches), %.0f instructions/flow → ≈ %.0f cycles/packet → ≈ %.0f k packets/s per core for inspection alone.\n",
			ec.InstructionsPerPacket, ec.NoPatchesPerPacket, ec.InstructionsPerFlow, cyc, perCore/1e3)
		fmt.Fprintf(&b, "- Cluster inspection capacity ≈ N × cores per node × %.0f k packets/s (e.g. N=8, 16 cores: %.1f M packets/s ≈ %.1f Gbit/s at this capture's %.0f-byte mean frame); in flows: N × cores × clock × IPC / instructions per flow ≈ N × cores × %.0f k flows/s.\n",
			perCore/1e3, 8*16*perCore/1e6, 8*16*perCore*res.Capture.AvgFrame*8/1e9, res.Capture.AvgFrame, ghz*1e9*modelIPC/ec.InstructionsPerFlow/1e3)
	} else {
		b.WriteString("- Engine instruction counts: not measured (see notes).\n")
	}
	if pkts > 0 {
		us := cpu / float64(pkts) * 1e6
		fmt.Fprintf(&b, "- Measured in the lab (CPU time above the nodes' idle use, not wall time, but inflated by the shared 2 cores): %.2f µs of node CPU per packet with the full catalog, I/O included → ≈ %.0f k packets/s per node core. The gap to the engine-only figure is the packet I/O path (NFQUEUE: a netlink message and a verdict per packet, batched; AF_PACKET: one write() per forwarded frame).\n",
			us, 1/us*1e3)
	}
	if busCP > 0 {
		fmt.Fprintf(&b, "- Flow sharing: ≈ %.1f µs of extra node CPU per published checkpoint (bus on − off, summed over nodes). Every checkpoint goes to all N−1 peers (full mesh of embedded NATS routes), so a node's receive cost grows with N at a constant per-node flow rate: bus cost per node ∝ (N−1) × checkpoints/s per node — the limit of flat sharing in large clusters (shard the subjects or share with a few neighbours only).\n",
			busCPU/busCP*1e6)
	}
	b.WriteString("- Limits the model ignores: NFQUEUE's per-queue netlink socket and kernel↔user copies (the L3 path is the bottleneck in the lab), AF_PACKET's one write() per frame (no TX ring), ECMP imbalance with few large flows, memory bandwidth for multi-MB bodies.\n")
	return b.String()
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}
