package runner

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// ReplayStats is what tcpreplay reports at the end of a run.
type ReplayStats struct {
	// Packets and Bytes were sent successfully ("Actual:"), in Seconds.
	Packets uint64  `json:"packets"`
	Bytes   uint64  `json:"bytes"`
	Seconds float64 `json:"seconds"`
	// Mbps and PPS are tcpreplay's achieved rates ("Rated:").
	Mbps float64 `json:"mbps"`
	PPS  float64 `json:"pps"`
	// Failed sums "Failed packets" over the interfaces: frames the sender
	// could not hand to the kernel (not offered to the lab).
	Failed uint64 `json:"failed"`
	// PerIface are the successful packets per interface.
	PerIface map[string]uint64 `json:"per_iface,omitempty"`
}

var (
	actualRE = regexp.MustCompile(`Actual: (\d+) packets \((\d+) bytes\) sent in ([0-9.]+) seconds`)
	ratedRE  = regexp.MustCompile(`Rated: ([0-9.]+) Bps, ([0-9.]+) Mbps, ([0-9.]+) pps`)
	deviceRE = regexp.MustCompile(`Statistics for network device: (\S+)`)
	succRE   = regexp.MustCompile(`Successful packets:\s+(\d+)`)
	failRE   = regexp.MustCompile(`Failed packets:\s+(\d+)`)
)

// ParseReplayOutput parses tcpreplay's (4.x) final report from its
// standard output.
func ParseReplayOutput(out string) (ReplayStats, error) {
	var st ReplayStats
	m := actualRE.FindStringSubmatch(out)
	if m == nil {
		return st, fmt.Errorf("runner: tcpreplay output: no \"Actual:\" line")
	}
	st.Packets, _ = strconv.ParseUint(m[1], 10, 64)
	st.Bytes, _ = strconv.ParseUint(m[2], 10, 64)
	st.Seconds, _ = strconv.ParseFloat(m[3], 64)
	if r := ratedRE.FindStringSubmatch(out); r != nil {
		st.Mbps, _ = strconv.ParseFloat(r[2], 64)
		st.PPS, _ = strconv.ParseFloat(r[3], 64)
		// "sent in 1.37 seconds" can be rounded to hundredths while the
		// rates are exact; the rates' time keeps delivered and offered
		// rates on one time base (otherwise delivered pps exceeded offered
		// by the rounding, 0.7 % at 1.4 s).
		if t := float64(st.Packets) / st.PPS; st.PPS > 0 && t > st.Seconds && t < st.Seconds*1.05+0.01 {
			st.Seconds = t
		}
	} else if st.Seconds > 0 {
		st.Mbps = float64(st.Bytes) * 8 / st.Seconds / 1e6
		st.PPS = float64(st.Packets) / st.Seconds
	}
	dev := ""
	for _, line := range strings.Split(out, "\n") {
		if d := deviceRE.FindStringSubmatch(line); d != nil {
			dev = d[1]
			continue
		}
		if s := succRE.FindStringSubmatch(line); s != nil && dev != "" {
			if st.PerIface == nil {
				st.PerIface = map[string]uint64{}
			}
			v, _ := strconv.ParseUint(s[1], 10, 64)
			st.PerIface[dev] = v
		}
		if f := failRE.FindStringSubmatch(line); f != nil {
			v, _ := strconv.ParseUint(f[1], 10, 64)
			st.Failed += v
		}
	}
	return st, nil
}

// ReplayArgs are tcpreplay's arguments for one step: both tap interfaces
// with the tcpprep cache, the capture preloaded into memory, looped loops
// times, at mbps or (mbps ≤ 0) at top speed.
func ReplayArgs(cIface, sIface, cache, pcap string, mbps float64, loops int) []string {
	args := []string{"tcpreplay", "-i", cIface, "-I", sIface, "--cachefile=" + cache, "--preload-pcap"}
	if mbps > 0 {
		args = append(args, "--mbps="+strconv.FormatFloat(mbps, 'f', -1, 64))
	} else {
		args = append(args, "--topspeed")
	}
	if loops > 1 {
		args = append(args, "--loop="+strconv.Itoa(loops))
	}
	return append(args, pcap)
}
