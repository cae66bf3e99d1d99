package runner

import (
	"math"
	"strings"
	"testing"
)

func TestParseProcStat(t *testing.T) {
	// A command name with a space and a parenthesis, as the kernel writes it.
	line := "1234 (patch gate) x) S 1 1234 1234 0 -1 4194560 500 0 0 0 250 75 0 0 20 0 9 0 100 1000000 2000 18446744073709551615"
	c, err := ParseProcStat(line)
	if err != nil {
		t.Fatal(err)
	}
	if c.UserTicks != 250 || c.SysTicks != 75 {
		t.Fatalf("got %+v, want utime 250 stime 75", c)
	}
	if c.Seconds() != 3.25 {
		t.Fatalf("seconds %v, want 3.25", c.Seconds())
	}
	for _, bad := range []string{"", "1234 no-paren S 1", "1 (x) S 1 2 3"} {
		if _, err := ParseProcStat(bad); err == nil {
			t.Errorf("ParseProcStat(%q): no error", bad)
		}
	}
}

func TestParseMachineStat(t *testing.T) {
	m, err := ParseMachineStat("cpu  100 5 50 800 20 3 2 0 7 0\ncpu0 1 2 3 4 5 6 7 8 9 10\n")
	if err != nil {
		t.Fatal(err)
	}
	// busy = user+nice+system+irq+softirq+steal; guest fields are not added again.
	if m.Busy != 160 || m.Total != 980 {
		t.Fatalf("got %+v, want busy 160 total 980", m)
	}
}

// tcpreplay 4.4.3's report for two interfaces (recorded on this machine).
const replayOut = `Actual: 4950 packets (582128 bytes) sent in 0.046572 seconds
Rated: 12499527.6 Bps, 99.99 Mbps, 106287.03 pps
Flows: 297 flows, 6377.22 fps, 4155 unique flow packets, 0 unique non-flow packets
Statistics for network device: d0
	Successful packets:        3424
	Failed packets:            338
	Truncated packets:         0
	Retried packets (ENOBUFS): 0
	Retried packets (EAGAIN):  0
Statistics for network device: d1
	Successful packets:        1526
	Failed packets:            3022
	Truncated packets:         0
`

func TestParseReplayOutput(t *testing.T) {
	st, err := ParseReplayOutput(replayOut)
	if err != nil {
		t.Fatal(err)
	}
	if st.Packets != 4950 || st.Bytes != 582128 || math.Abs(st.Seconds-0.046572) > 1e-5 {
		t.Fatalf("actual: %+v", st)
	}
	// A rounded "sent in" time is refined from the rated pps.
	rounded, err := ParseReplayOutput("Actual: 17928 packets (2966475 bytes) sent in 1.37 seconds\nRated: 2165310.2 Bps, 17.32 Mbps, 13010.15 pps\n")
	if err != nil || math.Abs(rounded.Seconds-17928/13010.15) > 1e-6 {
		t.Fatalf("rounded: %+v, %v", rounded, err)
	}
	if st.Mbps != 99.99 || st.PPS != 106287.03 {
		t.Fatalf("rated: %v Mbps %v pps", st.Mbps, st.PPS)
	}
	if st.Failed != 3360 || st.PerIface["d0"] != 3424 || st.PerIface["d1"] != 1526 {
		t.Fatalf("per interface: failed %d, %v", st.Failed, st.PerIface)
	}
	if _, err := ParseReplayOutput("Fatal Error in tcpreplay.c"); err == nil {
		t.Fatal("no error for output without a report")
	}
}

func TestReplayArgs(t *testing.T) {
	got := strings.Join(ReplayArgs("c", "s", "x.cache", "x.pcap", 200, 3), " ")
	want := "tcpreplay -i c -I s --cachefile=x.cache --preload-pcap --mbps=200 --loop=3 x.pcap"
	if got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
	got = strings.Join(ReplayArgs("c", "s", "x.cache", "x.pcap", 0, 1), " ")
	if !strings.Contains(got, "--topspeed") || strings.Contains(got, "--loop") || strings.Contains(got, "--mbps") {
		t.Fatalf("top speed, one pass: %s", got)
	}
}

const metricsText = `# HELP patchgate_drops_total Packets not passed, by reason.
# TYPE patchgate_drops_total counter
patchgate_drops_total{reason="patch"} 38
patchgate_drops_total{reason="tcp_state"} 1.5e+03
patchgate_alerts_total{cve="CVE-2014-6271",patch="CVE-2014-6271"} 4
patchgate_alerts_total{cve="",patch="builtin \"x\", y"} 1
patchgate_packets_total 12345 1700000000000
patchgate_bus_hold_seconds_bucket{le="+Inf"} 7
`

func TestParseMetrics(t *testing.T) {
	m, err := ParseMetrics(metricsText)
	if err != nil {
		t.Fatal(err)
	}
	if v := m.Sum("patchgate_packets_total", nil); v != 12345 {
		t.Fatalf("packets %v (a timestamp must be ignored)", v)
	}
	by := m.ByLabel("patchgate_drops_total", "reason")
	if by["patch"] != 38 || by["tcp_state"] != 1500 {
		t.Fatalf("drops by reason %v", by)
	}
	withCVE := m.Sum("patchgate_alerts_total", func(l string) bool { return Label(l, "cve") != "" })
	if withCVE != 4 {
		t.Fatalf("alerts with a CVE %v", withCVE)
	}
	if got := Label(`cve="",patch="builtin \"x\", y"`, "patch"); got != `builtin "x", y` {
		t.Fatalf("escaped label %q", got)
	}
	if m.Sum("patchgate_bus_hold_seconds_bucket", nil) != 7 {
		t.Fatal("+Inf bucket")
	}
	if _, err := ParseMetrics("broken{reason=\"x\" 1\n"); err == nil {
		t.Fatal("no error for unbalanced braces")
	}
}

func TestParseEVE(t *testing.T) {
	in := `{"event_type":"alert","src_ip":"198.51.100.7","src_port":40000,"dest_ip":"203.0.113.10","dest_port":80,"alert":{"action":"blocked"}}
{"event_type":"flow","src_ip":"198.51.100.8"}
not json
{"event_type":"alert","src_ip":"203.0.113.11","src_port":443,"dest_ip":"198.51.100.9","dest_port":5000,"alert":{"action":"blocked"}}
{"event_type":"alert","src_ip":"198.51.1`
	as, n, err := parseEVE(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if len(as) != 2 {
		t.Fatalf("%d alerts, want 2", len(as))
	}
	if want := int64(strings.LastIndexByte(in, '\n') + 1); n != want {
		t.Fatalf("consumed %d bytes, want %d (the partial last line stays)", n, want)
	}
	ex := []Exploit{
		{Patch: "a", Client: mustAP("198.51.100.7:40000"), Server: mustAP("203.0.113.10:80")},
		{Patch: "b", Client: mustAP("198.51.100.9:5000"), Server: mustAP("203.0.113.11:443")}, // alert names it server → client
		{Patch: "c", Client: mustAP("198.51.100.1:1"), Server: mustAP("203.0.113.10:80")},
	}
	if got := matchExploits(ex, as); got != 2 {
		t.Fatalf("matched %d exploits, want 2", got)
	}
}
