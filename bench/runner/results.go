package runner

import "time"

// Configuration names: what runs on the nodes during a ramp.
const (
	// ConfKernel is the same topology with kernel forwarding (L3) or a
	// kernel bridge (L2) on every node and no patchgate.
	ConfKernel = "kernel"
	// ConfNoPatches is patchgate with a placeholder patch set that no
	// traffic reaches (the node refuses an empty one): forwarding,
	// decoding, flow tracking and normalisation, no patch evaluation.
	ConfNoPatches = "patchgate-nopatches"
	// ConfFull is patchgate with the whole shipped catalog.
	ConfFull = "patchgate-full"
	// ConfFullBus is ConfFull with flow sharing on (embedded NATS bus,
	// checkpoints published), L3 only.
	ConfFullBus = "patchgate-full-bus"
)

// Results is everything a run measured: the content of results.json.
type Results struct {
	// Started and Finished bound the run (UTC).
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished"`
	Quick    bool      `json:"quick"`
	Machine  Machine   `json:"machine"`
	// Commands are the exact commands that produced the figures.
	Commands []string `json:"commands"`
	// Config is the run's configuration.
	Config Config `json:"config"`
	// Capture describes the replayed capture.
	Capture CaptureInfo `json:"capture"`
	// Labs are the lab bring-ups, one per variant and node count.
	Labs []LabRun `json:"labs"`
	// Engine are the contention-independent costs (callgrind).
	Engine *EngineCost `json:"engine,omitempty"`
	// Peers holds the side-by-side results of bench/waf and bench/coraza
	// (nil when the run did not get to them).
	Peers *Peers `json:"peers,omitempty"`
	// Notes are things the run could not do, with the reason.
	Notes []string `json:"notes,omitempty"`
}

// Machine describes where the run happened.
type Machine struct {
	CPUModel  string `json:"cpu_model"`
	Cores     int    `json:"cores"`
	Kernel    string `json:"kernel"`
	GoVersion string `json:"go_version"`
	Tcpreplay string `json:"tcpreplay"`
	Valgrind  string `json:"valgrind,omitempty"`
	Hostname  string `json:"hostname"`
	// LoadAvg is /proc/loadavg at the start: how busy the machine was.
	LoadAvg string `json:"loadavg"`
}

// CaptureInfo describes the replayed capture.
type CaptureInfo struct {
	// Source is "bench/traffic" or "dataplane/gen.Mix".
	Source   string `json:"source"`
	Path     string `json:"path"`
	Seed     uint64 `json:"seed"`
	Frames   int    `json:"frames"`
	Bytes    int64  `json:"bytes"`
	Flows    int    `json:"flows"`
	Exploits int    `json:"exploits"`
	// AvgFrame is the mean frame size in bytes.
	AvgFrame float64 `json:"avg_frame"`
}

// LabRun is one lab bring-up: a variant and node count, every
// configuration ramped back to back.
type LabRun struct {
	Variant string      `json:"variant"`
	Nodes   int         `json:"nodes"`
	Prefix  string      `json:"prefix"`
	Configs []ConfigRun `json:"configs"`
	// Spacing is what the turn spacing did to the replayed capture
	// (Config.TurnGap).
	Spacing *Spacing `json:"spacing,omitempty"`
	// Bus compares ConfFullBus with ConfFull (N ≥ 2, L3).
	Bus   *BusOverhead `json:"bus,omitempty"`
	Error string       `json:"error,omitempty"`
}

// Spacing describes the replay order: a frame whose direction differs
// from its flow's previous frame comes at least Gap frames after it (see
// DefaultTurnGap).
type Spacing struct {
	Gap int `json:"gap"`
	// Turns are the direction changes within flows; Short those closer
	// than Gap (at the capture's end, where few flows remain).
	Turns int `json:"turns"`
	Short int `json:"short"`
	// LoopShort are flows whose last frame in one --loop pass and first
	// frame in the next come closer than Gap.
	LoopShort int `json:"loop_short"`
}

// ConfigRun is one configuration's ramp.
type ConfigRun struct {
	Name  string `json:"name"`
	Steps []Step `json:"steps"`
	// MaxLossless is the step with the highest delivered rate under the
	// loss threshold (nil when even the first step lost).
	MaxLossless *Step `json:"max_lossless,omitempty"`
	// MaxNoCapacityLoss is the same with order drops allowed: the highest
	// delivered rate before loss or uninspected packets reach the threshold
	// (what the nodes carry when the replay's answers may overtake causes).
	MaxNoCapacityLoss *Step `json:"max_no_capacity_loss,omitempty"`
	// RatioVsKernel is MaxLossless delivered pps over the kernel
	// configuration's in the same lab bring-up.
	RatioVsKernel float64 `json:"ratio_vs_kernel,omitempty"`
	// IdleCPUPct is each node's CPU use with no traffic (measured for
	// idleSample after start): the baseline the model subtracts.
	IdleCPUPct []float64 `json:"idle_cpu_pct,omitempty"`
	Error      string    `json:"error,omitempty"`
}

// Step is one offered rate and everything measured during it.
type Step struct {
	Rate  Rate `json:"rate"`
	Loops int  `json:"loops"`
	// Offered is what tcpreplay sent.
	Offered ReplayStats `json:"offered"`
	// Seconds is the sending time plus the time the lab still delivered
	// afterwards (the denominator of the delivered rates).
	Seconds float64 `json:"seconds"`
	// Delivered counts the replayed frames that crossed the lab: the
	// tap's receive counters on both sides (to the servers and to the
	// clients) minus the RSTs the nodes injected. DeliveredBytes includes
	// the RSTs (54–74 bytes each). TapPackets is the raw receive count.
	DeliveredPackets uint64  `json:"delivered_packets"`
	TapPackets       uint64  `json:"tap_packets"`
	DeliveredBytes   uint64  `json:"delivered_bytes"`
	DeliveredPPS     float64 `json:"delivered_pps"`
	DeliveredMbps    float64 `json:"delivered_mbps"`
	// Injected are the RST segments the nodes sent (they cross the tap too).
	Injected uint64 `json:"injected"`
	// Dropped are packets the nodes decided not to pass, by reason
	// (drops_total): a policy outcome, not loss.
	Dropped map[string]uint64 `json:"dropped,omitempty"`
	// OrderDrops are the Dropped reasons that come from a flow's two
	// directions overtaking each other on their different paths
	// (tcp_state, tcp_window, tcp_buffer, tcp_overlap, midstream).
	OrderDrops uint64 `json:"order_drops"`
	// Lost = offered − delivered − dropped: frames that
	// vanished for lack of capacity (queues, rings, sockets).
	Lost    uint64  `json:"lost"`
	LossPct float64 `json:"loss_pct"`
	// KernelDrops are the nodes' kernel_drops_total (queue or ring full).
	KernelDrops uint64 `json:"kernel_drops"`
	// Uninspected are packets passed without inspection under overload
	// (fail-open bypass); over the threshold they fail a step like loss.
	Uninspected uint64 `json:"uninspected"`
	// ExploitsSent are the exploit requests replayed (manifest × loops);
	// ExploitsBlocked the distinct ones the nodes' EVE alerts name.
	ExploitsSent     int `json:"exploits_sent"`
	ExploitsDistinct int `json:"exploits_distinct"`
	ExploitsBlocked  int `json:"exploits_blocked"`
	// Alerts are the nodes' EVE alert lines during the step.
	Alerts int `json:"alerts"`
	// CPU are each node's patchgate utime+stime over the step, in seconds
	// (empty for the kernel configuration: softirq work is not
	// attributable to a namespace); CPUPct is CPU over Seconds × 100.
	CPU    []float64 `json:"cpu_seconds,omitempty"`
	CPUPct []float64 `json:"cpu_pct,omitempty"`
	// PerNodePackets are the packets each node's backend received.
	PerNodePackets []uint64 `json:"per_node_packets,omitempty"`
	// MachineBusyPct is the whole machine's CPU use over the step.
	MachineBusyPct float64 `json:"machine_busy_pct"`
	// Bus is the flow-sharing traffic during the step (bus on only).
	Bus *BusStep `json:"bus,omitempty"`
	// Lossless is the step's verdict: LossPct, the uninspected share and
	// the order-drop share under the threshold (see Judge).
	Lossless bool `json:"lossless"`
}

// BusStep is the flow-sharing traffic of a step, summed over the nodes.
type BusStep struct {
	CheckpointsPerSec float64 `json:"checkpoints_per_sec"`
	BytesOutPerSec    float64 `json:"bytes_out_per_sec"`
	BytesInPerSec     float64 `json:"bytes_in_per_sec"`
	Dropped           uint64  `json:"dropped"`
}

// BusOverhead compares flow sharing on and off at the same offered rates.
type BusOverhead struct {
	// Rates are the offered rates both ramps ran.
	Rows []BusRow `json:"rows"`
}

// BusRow is one offered rate with the bus off and on.
type BusRow struct {
	Rate              Rate    `json:"rate"`
	CPUOffPerNode     float64 `json:"cpu_off_per_node_pct"`
	CPUOnPerNode      float64 `json:"cpu_on_per_node_pct"`
	CheckpointsPerSec float64 `json:"checkpoints_per_sec"`
	BusBytesPerSec    float64 `json:"bus_bytes_per_sec"`
	LossOffPct        float64 `json:"loss_off_pct"`
	LossOnPct         float64 `json:"loss_on_pct"`
}

// EngineCost is the contention-independent cost of the engine on the bench
// capture, counted with callgrind (instructions, not time).
type EngineCost struct {
	Tool                      string  `json:"tool"`
	Packets                   int     `json:"packets"`
	Flows                     int     `json:"flows"`
	InstructionsPerPacket     float64 `json:"instructions_per_packet"`
	InstructionsPerFlow       float64 `json:"instructions_per_flow"`
	NoPatchesPerPacket        float64 `json:"nopatches_instructions_per_packet"`
	CPUSecondsPerMPacketsFull float64 `json:"lab_cpu_seconds_per_mpackets_full,omitempty"`
	Command                   string  `json:"command"`
	Model                     string  `json:"model"`
}
