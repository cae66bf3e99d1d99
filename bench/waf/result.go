package waf

import (
	"math"
	"sort"
	"time"
)

// Path names.
const (
	PathBaseline  = "baseline"
	PathPatchgate = "patchgate"
	// PathNginx is nginx + ModSecurity with the OWASP CRS and the CVE rules.
	PathNginx = "nginx-modsecurity"
	// PathNginxCVE is nginx + ModSecurity with the CVE rules only.
	PathNginxCVE = "nginx-modsecurity-cverules"
	// PathNginxProxy is nginx as a plain reverse proxy (ModSecurity off).
	PathNginxProxy = "nginx-proxy"
)

// Ratio is a path's requests/s over the baseline's, measured in the same run.
type Ratio struct {
	Path           string  `json:"path"`
	RequestsPerSec float64 `json:"requests_per_sec"`
}

// Result is everything one Run measured.
type Result struct {
	Start    time.Time `json:"start"`
	Duration float64   `json:"duration_s"`
	Config   Config    `json:"config"`
	// Paths are the baseline, patchgate and the nginx paths of
	// Config.Nginx (PathNginxProxy, PathNginxCVE, PathNginx), in that order.
	Paths []PathResult `json:"paths"`
	// PacketRTT are the UDP round trips through the node with kernel
	// forwarding (baseline) and through patchgate.
	PacketRTT []PingResult `json:"packet_rtt"`
	// AddedPerPacket is half the difference of the round-trip percentiles,
	// patchgate minus baseline, in microseconds.
	AddedPerPacket Percentiles `json:"added_per_packet_us"`
	// AddedPerRequest is the difference of the one-connection wrk run's
	// latency percentiles against the baseline's, per path, in
	// microseconds: the latency a path adds to a request when nothing
	// queues (Config.UnloadedDuration; empty when it is 0).
	AddedPerRequest map[string]Percentiles `json:"added_per_request_us"`
	// AddedPerRequestLoaded is the same difference for the saturating wrk
	// run (Config.Connections): it includes queueing at each path's own
	// saturation rate.
	AddedPerRequestLoaded map[string]Percentiles `json:"added_per_request_loaded_us"`
	// RatioVsBaseline is each path's requests/s over the baseline's.
	RatioVsBaseline []Ratio `json:"ratio_vs_baseline"`
}

// Percentiles are latency percentiles in microseconds.
type Percentiles struct {
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	P999 float64 `json:"p999"`
}

// Sub returns p - q, percentile by percentile.
func (p Percentiles) Sub(q Percentiles) Percentiles {
	return Percentiles{P50: p.P50 - q.P50, P90: p.P90 - q.P90, P99: p.P99 - q.P99, P999: p.P999 - q.P999}
}

// Scale returns p with every percentile multiplied by f.
func (p Percentiles) Scale(f float64) Percentiles {
	return Percentiles{P50: p.P50 * f, P90: p.P90 * f, P99: p.P99 * f, P999: p.P999 * f}
}

// PathResult is what one path measured.
type PathResult struct {
	Name string `json:"name"`
	// Target is the URL wrk and the corpus requests were sent to.
	Target string `json:"target"`
	// Command is the wrk command line, as run in the client namespace.
	Command string    `json:"command"`
	Wrk     WrkResult `json:"wrk"`
	// Unloaded is wrk with one thread and one connection (one request at a
	// time: latency without queueing), UnloadedCommand its command line.
	Unloaded        WrkResult `json:"unloaded"`
	UnloadedCommand string    `json:"unloaded_command,omitempty"`
	// Exploits is the corpus outcome through this path.
	Exploits Blocking `json:"exploits"`
	// GatewayCPUSeconds is the CPU time (user + system) the gateway's
	// processes used during the wrk run: the patchgate node, or nginx's
	// master and workers (zero for the baseline: kernel forwarding is not
	// attributable to a process). GatewayCPUPerRequestUS divides it by
	// wrk's requests: a cost per request that depends much less on the
	// other work on the machine than requests/s does.
	GatewayCPUSeconds      float64 `json:"gateway_cpu_seconds"`
	GatewayCPUPerRequestUS float64 `json:"gateway_cpu_per_request_us"`
}

// WrkResult is wrk's summary of one run.
type WrkResult struct {
	Requests       int64   `json:"requests"`
	DurationUS     int64   `json:"duration_us"`
	RequestsPerSec float64 `json:"requests_per_sec"`
	// Errors are wrk's connect, read, write, timeout and non-2xx/3xx counts.
	ErrConnect int64 `json:"errors_connect"`
	ErrRead    int64 `json:"errors_read"`
	ErrWrite   int64 `json:"errors_write"`
	ErrStatus  int64 `json:"errors_status"`
	ErrTimeout int64 `json:"errors_timeout"`
	// Latency percentiles (microseconds) of all requests.
	Latency Percentiles `json:"latency_us"`
	MeanUS  float64     `json:"mean_us"`
	MaxUS   float64     `json:"max_us"`
	// Curve is the latency distribution as [percentile, microseconds]
	// pairs (1, 2, ..., 99, 99.5, 99.9, 99.99), for plots.
	Curve [][2]float64 `json:"curve"`
}

// Blocking counts what the corpus did through one path.
type Blocking struct {
	Exploits         int `json:"exploits"`
	ExploitsBlocked  int `json:"exploits_blocked"`
	Lookalikes       int `json:"lookalikes"`
	LookalikesPassed int `json:"lookalikes_passed"`
	// Requests are the outcomes one by one.
	Requests []Outcome `json:"requests"`
}

// Outcome is what happened to one corpus request.
type Outcome struct {
	Name    string `json:"name"`
	CVE     string `json:"cve"`
	Exploit bool   `json:"exploit"`
	// Reached is true when the backend received the whole request.
	Reached bool `json:"reached"`
	// Answer is what the client saw: "200", "403", "400", "reset", "eof",
	// "timeout".
	Answer string `json:"answer"`
}

// PingResult is one path's UDP round trips.
type PingResult struct {
	Path string `json:"path"`
	Sent int    `json:"sent"`
	Lost int    `json:"lost"`
	// RTT percentiles in microseconds.
	RTT Percentiles `json:"rtt_us"`
	// SamplesUS are the round trips in order, in microseconds.
	SamplesUS []float64 `json:"samples_us"`
}

// percentiles of samples (any order); zero for none.
func percentiles(samples []float64) Percentiles {
	if len(samples) == 0 {
		return Percentiles{}
	}
	s := append([]float64(nil), samples...)
	sort.Float64s(s)
	at := func(p float64) float64 {
		i := int(math.Ceil(p/100*float64(len(s))-1e-9)) - 1 // nearest rank
		return s[max(0, min(i, len(s)-1))]
	}
	return Percentiles{P50: at(50), P90: at(90), P99: at(99), P999: at(99.9)}
}
