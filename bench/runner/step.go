package runner

import (
	"bytes"
	"context"
	"fmt"
	"time"

	"github.com/patchgate/patchgate/deploy/lab"
)

// orderReasons are the drop reasons a flow's two directions overtaking
// each other produce: at high rates the client and the server side of the
// capture cross the lab on different paths (tap → R1 → node and
// tap → R2 → node), so an answer can reach the node before its request.
var orderReasons = map[string]bool{
	"tcp_state": true, "tcp_window": true, "tcp_buffer": true, "tcp_overlap": true, "midstream": true,
}

// snapshot is every counter a step reads, before and after.
type snapshot struct {
	tap     map[string]lab.IfStats
	metrics []Metrics
	cpu     []ProcCPU
	pids    []int
	machine MachineCPU
}

// snap reads the counters; nodes are read only when patchgate runs.
func (r *labRunner) snap(withNodes bool) (snapshot, error) {
	var s snapshot
	var err error
	if s.tap, err = r.lab.Stats(r.lab.Tap.NS); err != nil {
		return s, err
	}
	if s.machine, err = readMachineCPU(); err != nil {
		return s, err
	}
	if !withNodes {
		return s, nil
	}
	for _, n := range r.lab.Nodes {
		code, body, err := r.lab.NodeGet(n.Index, "/metrics")
		if err != nil {
			return s, fmt.Errorf("runner: node %d metrics: %w", n.Index, err)
		}
		if code != 200 {
			return s, fmt.Errorf("runner: node %d metrics: HTTP %d", n.Index, code)
		}
		m, err := ParseMetrics(string(body))
		if err != nil {
			return s, fmt.Errorf("runner: node %d: %w", n.Index, err)
		}
		s.metrics = append(s.metrics, m)
		pid := r.lab.NodePID(n.Index)
		s.pids = append(s.pids, pid)
		c, err := readProcCPU(pid)
		if err != nil {
			return s, fmt.Errorf("runner: node %d cpu: %w", n.Index, err)
		}
		s.cpu = append(s.cpu, c)
	}
	return s, nil
}

// delivered is what the tap received on both ports since before.
func (r *labRunner) delivered(before map[string]lab.IfStats) (pkts, bytes uint64, err error) {
	st, err := r.lab.Stats(r.lab.Tap.NS)
	if err != nil {
		return 0, 0, err
	}
	for _, name := range []string{r.lab.Tap.C.Name, r.lab.Tap.S.Name} {
		d := st[name].Sub(before[name])
		pkts += d.RxPackets
		bytes += d.RxBytes
	}
	return pkts, bytes, nil
}

// runStep replays the capture at one rate and measures it.
func (r *labRunner) runStep(ctx context.Context, conf string, rate Rate) (Step, error) {
	nodes := conf != ConfKernel
	// Top speed is sized from the previous step's achieved rate (twice it),
	// so that a slow lab does not turn a step into minutes.
	top := float64(assumedTopMbps)
	if r.lastMbps > 0 {
		top = min(top, 2*r.lastMbps)
	}
	// Likewise a rate step is sized for at most twice the rate the previous
	// step achieved: when the lab (or tcpreplay, starved of CPU) cannot keep
	// up, the offered rate stays far below the asked one, and loops sized
	// for the asked rate would stretch the step many times over.
	sized := rate.Mbps
	if r.lastMbps > 0 && sized > 2*r.lastMbps {
		sized = 2 * r.lastMbps
	}
	st := Step{Rate: rate, Loops: Loops(r.capture.Info.Bytes, sized, top, r.cfg.StepSeconds, MaxLoops)}
	if nodes {
		r.eve.skip(r.evePaths())
	}
	before, err := r.snap(nodes)
	if err != nil {
		return st, err
	}
	// Bound the replay: the expected time at the rate, three times over,
	// plus slack; top speed gets the time of 10 Mbps.
	mbps := rate.Mbps
	if rate.TopSpeed {
		mbps = 10
	}
	expect := time.Duration(float64(r.capture.Info.Bytes*int64(st.Loops)) * 8 / (mbps * 1e6) * float64(time.Second))
	rctx, cancel := context.WithTimeout(ctx, 3*expect+30*time.Second)
	defer cancel()
	args := ReplayArgs(r.lab.Tap.C.Name, r.lab.Tap.S.Name, r.prep.Cache, r.prep.Pcap, rate.Mbps, st.Loops)
	if rate.TopSpeed {
		args = ReplayArgs(r.lab.Tap.C.Name, r.lab.Tap.S.Name, r.prep.Cache, r.prep.Pcap, 0, st.Loops)
	}
	cmd := lab.Command(r.lab.Tap.NS, args...)
	var stdout bytes.Buffer
	stderr := &tailBuffer{max: 2048}
	cmd.Stdout, cmd.Stderr = &stdout, stderr
	if err := cmd.Start(); err != nil {
		return st, fmt.Errorf("runner: tcpreplay: %w", err)
	}
	go func() {
		<-rctx.Done()
		if cmd.Process != nil {
			_ = cmd.Process.Kill()
		}
	}()
	runErr := cmd.Wait()
	replayEnd := time.Now()
	if runErr != nil {
		return st, fmt.Errorf("runner: tcpreplay %v: %w: %s", args, runErr, stderr.String())
	}
	if st.Offered, err = ParseReplayOutput(stdout.String()); err != nil {
		return st, fmt.Errorf("%w: %s", err, stderr.String())
	}
	r.lastMbps = st.Offered.Mbps
	// Let the last frames drain: wait until the tap's counters stop
	// moving for drainQuiet, bounded by DrainTimeout.
	const drainQuiet = 300 * time.Millisecond
	lastChange := replayEnd
	last, _, err := r.delivered(before.tap)
	if err != nil {
		return st, err
	}
	for deadline := replayEnd.Add(r.cfg.DrainTimeout); time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
		n, _, err := r.delivered(before.tap)
		if err != nil {
			return st, err
		}
		if n != last {
			last, lastChange = n, time.Now()
		} else if time.Since(lastChange) >= drainQuiet {
			break
		}
	}
	st.Seconds = st.Offered.Seconds + lastChange.Sub(replayEnd).Seconds()
	after, err := r.snap(nodes)
	if err != nil {
		return st, err
	}
	r.measure(&st, before, after)
	if nodes {
		alerts, err := r.eve.read(r.evePaths())
		if err != nil {
			return st, err
		}
		st.Alerts = len(alerts)
		r.alerted = append(r.alerted, alerts...)
		st.ExploitsDistinct = len(r.capture.Exploits)
		st.ExploitsSent = len(r.capture.Exploits) * st.Loops
		st.ExploitsBlocked = matchExploits(r.capture.Exploits, r.alerted)
	}
	return st, nil
}

// measure fills a step's figures from the counters before and after.
func (r *labRunner) measure(st *Step, before, after snapshot) {
	for _, name := range []string{r.lab.Tap.C.Name, r.lab.Tap.S.Name} {
		d := after.tap[name].Sub(before.tap[name])
		st.DeliveredPackets += d.RxPackets
		st.DeliveredBytes += d.RxBytes
	}
	if st.Seconds > 0 {
		st.DeliveredPPS = float64(st.DeliveredPackets) / st.Seconds
		st.DeliveredMbps = float64(st.DeliveredBytes) * 8 / st.Seconds / 1e6
	}
	if dt := after.machine.Total - before.machine.Total; dt > 0 {
		st.MachineBusyPct = 100 * float64(after.machine.Busy-before.machine.Busy) / float64(dt)
	}
	var dropped uint64
	var cpDelta, outDelta, inDelta, busDropped float64
	hasBus := false
	for i := range after.metrics {
		a, b := after.metrics[i], before.metrics[i]
		delta := func(name string, keep func(string) bool) float64 { return a.Sum(name, keep) - b.Sum(name, keep) }
		for reason, v := range a.ByLabel("patchgate_drops_total", "reason") {
			n := uint64(v - b.ByLabel("patchgate_drops_total", "reason")[reason])
			if n == 0 {
				continue
			}
			if st.Dropped == nil {
				st.Dropped = map[string]uint64{}
			}
			st.Dropped[reason] += n
			dropped += n
			if orderReasons[reason] {
				st.OrderDrops += n
			}
		}
		st.Injected += uint64(delta("patchgate_resets_sent_total", nil))
		st.KernelDrops += uint64(delta("patchgate_kernel_drops_total", nil))
		st.Uninspected += uint64(delta("patchgate_overload_bypassed_total", nil))
		st.PerNodePackets = append(st.PerNodePackets, uint64(delta("patchgate_backend_packets_total", nil)))
		cpu := 0.0
		if i < len(after.cpu) && before.pids[i] == after.pids[i] {
			cpu = after.cpu[i].Seconds() - before.cpu[i].Seconds()
		}
		st.CPU = append(st.CPU, cpu)
		if st.Seconds > 0 {
			st.CPUPct = append(st.CPUPct, 100*cpu/st.Seconds)
		}
		if _, ok := a["patchgate_bus_checkpoints_total"]; ok {
			hasBus = true
			cpDelta += delta("patchgate_bus_checkpoints_total", func(l string) bool { return Label(l, "outcome") == "published" })
			busDropped += delta("patchgate_bus_checkpoints_total", func(l string) bool { return Label(l, "outcome") == "dropped" })
			outDelta += delta("patchgate_bus_bytes_total", func(l string) bool { return Label(l, "dir") == "out" })
			inDelta += delta("patchgate_bus_bytes_total", func(l string) bool { return Label(l, "dir") == "in" })
		}
	}
	if hasBus && st.Seconds > 0 {
		st.Bus = &BusStep{CheckpointsPerSec: cpDelta / st.Seconds, BytesOutPerSec: outDelta / st.Seconds,
			BytesInPerSec: inDelta / st.Seconds, Dropped: uint64(busDropped)}
	}
	// The tap also receives the RSTs the nodes inject (a pair per dropped
	// packet of a blocked flow): they are not replayed frames, so they
	// leave the delivered count (otherwise delivered exceeds offered).
	st.TapPackets = st.DeliveredPackets
	st.DeliveredPackets -= min(st.Injected, st.DeliveredPackets)
	if st.Seconds > 0 {
		st.DeliveredPPS = float64(st.DeliveredPackets) / st.Seconds
	}
	lost := int64(st.Offered.Packets) - int64(st.DeliveredPackets) - int64(dropped)
	if lost < 0 {
		lost = 0
	}
	st.Lost = uint64(lost)
	if st.Offered.Packets > 0 {
		st.LossPct = 100 * float64(st.Lost) / float64(st.Offered.Packets)
	}
	st.Lossless = lossless(st, r.cfg.MaxLossPct)
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	max int
	b   []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = t.b[len(t.b)-t.max:]
	}
	return len(p), nil
}

func (t *tailBuffer) String() string { return string(t.b) }
