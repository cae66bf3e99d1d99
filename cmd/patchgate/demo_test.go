package main

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/patchgate/patchgate/dataplane"
	"github.com/patchgate/patchgate/dataplane/patch"
	"github.com/patchgate/patchgate/deploy/lab"
)

func TestDemoOptionsValidate(t *testing.T) {
	if err := defaultDemoOptions().validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	for _, c := range []struct {
		field string
		edit  func(*demoOptions)
	}{
		{"patches", func(o *demoOptions) { o.Patches = "" }},
		{"variant", func(o *demoOptions) { o.Variant = "l4" }},
		{"nodes", func(o *demoOptions) { o.Nodes = 1 }},
		{"sessions", func(o *demoOptions) { o.Sessions = 0 }},
		{"requests", func(o *demoOptions) { o.Requests = 0 }},
		{"parallel", func(o *demoOptions) { o.Parallel = 65 }},
		{"kill", func(o *demoOptions) { o.Kill = 4 }},
		{"kill-for", func(o *demoOptions) { o.KillFor = time.Millisecond }},
		{"timeout", func(o *demoOptions) { o.Timeout = time.Second }},
	} {
		o := defaultDemoOptions()
		c.edit(&o)
		err := o.validate()
		if err == nil || !strings.Contains(err.Error(), "demo: "+c.field+":") {
			t.Errorf("%s: got %v, want an error naming the field", c.field, err)
		}
	}
	o := defaultDemoOptions()
	o.Kill = 0
	o.KillFor = 0
	if err := o.validate(); err != nil {
		t.Errorf("no kill phase: %v", err)
	}
}

func TestDemoUsage(t *testing.T) {
	for _, args := range [][]string{{"demo", "extra"}, {"demo", "--bogus"}} {
		if code, _, stderr := runCmd(t, args...); code != 2 || stderr == "" {
			t.Errorf("%v: exit %d, stderr %q; want 2 and a usage message", args, code, stderr)
		}
	}
	if code, _, stderr := runCmd(t, "demo", "--nodes", "1"); code != 1 || !strings.Contains(stderr, "demo: nodes:") {
		t.Errorf("--nodes 1: exit %d, stderr %q", code, stderr)
	}
}

func TestMetricSamples(t *testing.T) {
	body := []byte(`# HELP patchgate_alerts_total Alerts.
# TYPE patchgate_alerts_total counter
patchgate_alerts_total{cve="CVE-2021-44228,CVE-2021-45046",node="pg1-n1",patch="CVE-2021-44228"} 3
patchgate_alerts_total{cve="",node="pg1-n1",patch="weird \"id\", with} brace"} 1
patchgate_alerts_total_other 9
patchgate_packets_total{node="pg1-n1"} 1.5e+03
patchgate_resets_sent_total 7
`)
	got := metricSamples(body, "patchgate_alerts_total")
	if len(got) != 2 {
		t.Fatalf("alerts: %d samples, want 2: %+v", len(got), got)
	}
	if got[0].Value != 3 || got[0].Labels["cve"] != "CVE-2021-44228,CVE-2021-45046" || got[0].Labels["patch"] != "CVE-2021-44228" {
		t.Errorf("first sample: %+v", got[0])
	}
	if got[1].Labels["patch"] != `weird "id", with} brace` || got[1].Value != 1 {
		t.Errorf("escaped label: %+v", got[1])
	}
	if v := sumSamples(metricSamples(body, "patchgate_packets_total")); v != 1500 {
		t.Errorf("packets: %v", v)
	}
	if v := sumSamples(metricSamples(body, "patchgate_resets_sent_total")); v != 7 {
		t.Errorf("resets without labels: %v", v)
	}
}

func TestCountEVE(t *testing.T) {
	eve := `{"event_type":"alert","alert":{"metadata":{"patch_id":["CVE-2014-0160"],"cve":["CVE-2014-0160"]}},"host":"n1"}
{"event_type":"alert","alert":{"metadata":{"patch_id":["CVE-2014-0160"]}}}
{"event_type":"alert","alert":{"metadata":{"patch_id":["CVE-2020-0796"]}}}
{"event_type":"stats"}
`
	by, total, err := countEVE(strings.NewReader(eve))
	if err != nil || total != 3 || by["CVE-2014-0160"] != 2 || by["CVE-2020-0796"] != 1 {
		t.Errorf("got %v %d %v", by, total, err)
	}
	if _, _, err := countEVE(strings.NewReader("{not json\n")); err == nil {
		t.Error("a broken line must be an error")
	}
}

// frame builds an Ethernet frame carrying a TCP or UDP header.
func frame(src netip.AddrPort, proto byte, fragOffset uint16) []byte {
	f := make([]byte, 14)
	if src.Addr().Is4() {
		binary.BigEndian.PutUint16(f[12:], 0x0800)
		ip := make([]byte, 20)
		ip[0], ip[9] = 0x45, proto
		binary.BigEndian.PutUint16(ip[6:], fragOffset)
		a := src.Addr().As4()
		copy(ip[12:], a[:])
		f = append(f, ip...)
	} else {
		binary.BigEndian.PutUint16(f[12:], 0x86dd)
		ip := make([]byte, 40)
		ip[0], ip[6] = 0x60, proto
		a := src.Addr().As16()
		copy(ip[8:], a[:])
		f = append(f, ip...)
	}
	l4 := make([]byte, 20)
	binary.BigEndian.PutUint16(l4, src.Port())
	return append(f, l4...)
}

func TestFlowSource(t *testing.T) {
	for _, s := range []string{"198.51.100.201:20001", "[2001:db8:1::201]:20002"} {
		ap := netip.MustParseAddrPort(s)
		for _, proto := range []byte{6, 17} {
			got, ok := flowSource(frame(ap, proto, 0))
			if !ok || got != ap || got.String() != s {
				t.Errorf("%s proto %d: got %v %v", s, proto, got, ok)
			}
		}
		if _, ok := flowSource(frame(ap, 1, 0)); ok {
			t.Errorf("%s: ICMP has no ports", s)
		}
	}
	if _, ok := flowSource(frame(netip.MustParseAddrPort("198.51.100.201:1"), 6, 100)); ok {
		t.Error("a non-first fragment has no ports")
	}
	if _, ok := flowSource([]byte{1, 2, 3}); ok {
		t.Error("a runt frame has no flow")
	}
}

func TestJumpPackets(t *testing.T) {
	listing := `Chain FORWARD (policy ACCEPT 0 packets, 0 bytes)
    pkts      bytes target     prot opt in     out     source               destination
    1234    98765 PATCHGATE-pg1-n2  all  --  *      *       0.0.0.0/0            0.0.0.0/0
      10      800 ACCEPT     all  --  *      *       0.0.0.0/0            0.0.0.0/0
`
	if n := jumpPackets(listing, "PATCHGATE"); n != 1234 {
		t.Errorf("got %d, want 1234", n)
	}
}

// demoTestCase is a case of a patch with an id, protocol and action.
func demoTestCase(id, proto string, action patch.Action, want dataplane.Verdict) *demoCase {
	p := &patch.Patch{ID: id, CVE: []string{id}, Protocol: proto, Action: action}
	return &demoCase{Patch: p, Test: &patch.Test{Name: "t", Match: want != dataplane.Pass}, Want: want}
}

func TestWriteCaseTable(t *testing.T) {
	nodes := []lab.Node{{Index: 1}, {Index: 2}}
	heart := demoTestCase("CVE-2014-0160", "tls", patch.ActionReset, dataplane.Reset)
	heartLookalike := demoTestCase("CVE-2014-0160", "tls", patch.ActionReset, dataplane.Pass)
	tkey := demoTestCase("CVE-2015-5477", "dns", patch.ActionDrop, dataplane.Drop)
	results := []caseResult{
		{Case: heart, Reset: true, Good: true},
		{Case: heart, Reset: true, Good: true},
		{Case: heartLookalike, Delivered: true, Good: true},
		{Case: tkey, Good: true},
		{Case: tkey, Delivered: true}, // an exploit that got through
	}
	stats := []demoNodeStats{
		{Index: 1, Alerts: map[string]int{"CVE-2014-0160": 2}},
		{Index: 2, Alerts: map[string]int{"CVE-2015-5477": 1, "engine.overlap": 4}},
	}
	var b bytes.Buffer
	writeCaseTable(&b, nodes, results, stats)
	lines := strings.Split(strings.TrimRight(b.String(), "\n"), "\n")
	want := [][]string{
		{"PATCH", "CVE", "PROTO", "ACTION", "EXPLOITS", "BLOCKED", "RESET", "DELIVERED", "LOOK-ALIKES", "OK", "ALERTS", "n1", "ALERTS", "n2"},
		{"CVE-2014-0160", "CVE-2014-0160", "tls", "reset", "2", "2", "2", "0", "1/1", "2", "0"},
		{"CVE-2015-5477", "CVE-2015-5477", "dns", "drop", "2", "1", "0", "1", "0/0", "0", "1"},
		{"(other", "detections)", "-", "-", "-", "0", "0", "0", "0", "0/0", "0", "4"},
		{"TOTAL", "4", "3", "2", "1", "1/1", "2", "5"},
	}
	if len(lines) != len(want) {
		t.Fatalf("%d lines, want %d:\n%s", len(lines), len(want), b.String())
	}
	for i, w := range want {
		if got := strings.Fields(lines[i]); strings.Join(got, " ") != strings.Join(w, " ") {
			t.Errorf("line %d:\n got %q\nwant %q", i, got, w)
		}
	}
	// Columns line up: every row starts its second column where the header does.
	col := strings.Index(lines[0], "CVE ")
	for _, l := range lines[1:3] {
		if l[col-2:col] != "  " || l[col] == ' ' {
			t.Errorf("column misaligned:\n%s\n%s", lines[0], l)
		}
	}
}

func TestWriteNodeTable(t *testing.T) {
	nodes := []lab.Node{{Index: 1}, {Index: 2}}
	ex := demoTestCase("CVE-2014-6271", "http", patch.ActionReset, dataplane.Reset)
	benign := []sessionResult{
		{Local: "198.51.100.201:20000", OK: 20},
		{Local: "198.51.100.201:20001", OK: 3, Err: errTest},
		{Local: "198.51.100.201:20002", OK: 20},
	}
	results := []caseResult{{Case: ex, Local: "198.51.100.201:40000", Good: true}, {Case: ex, Local: "198.51.100.201:40001"}}
	flows := map[string]int{"198.51.100.201:20000": 1, "198.51.100.201:20001": 2, "198.51.100.201:40000": 2}
	stats := []demoNodeStats{{Index: 1, EVETotal: 0, Packets: 120}, {Index: 2, EVETotal: 1, Packets: 80, Resets: 2}}
	var b bytes.Buffer
	writeNodeTable(&b, nodes, benign, results, flows, stats)
	got := b.String()
	want := []string{
		"NODE SESSIONS PASSED BLOCKED RESET FAILED REQUESTS OK ALERTS (EVE) PACKETS INSPECTED RESETS SENT",
		"n1 1 1 0 0 0 20 0 120 0",
		"n2 2 0 1 0 1 3 1 80 2",
		"(seen at no node) 2 1 0 0 1 20",
	}
	lines := strings.Split(strings.TrimRight(got, "\n"), "\n")
	if len(lines) != len(want) {
		t.Fatalf("%d lines, want %d:\n%s", len(lines), len(want), got)
	}
	for i, w := range want {
		if g := strings.Join(strings.Fields(lines[i]), " "); g != w {
			t.Errorf("line %d: got %q, want %q", i, g, w)
		}
	}
}

var errTest = errors.New("test failure")

func TestSummarizeKill(t *testing.T) {
	at := time.Date(2026, 11, 1, 12, 0, 10, 0, time.UTC)
	sec := func(s int) time.Time { return at.Add(time.Duration(s) * time.Second) }
	sessions := []sessionResult{
		{Local: "a", Start: sec(-3), End: sec(-1)},              // n2, before
		{Local: "b", Start: sec(-1), End: sec(1), Err: errTest}, // n2, in flight, failed
		{Local: "c", Start: sec(1), End: sec(2)},                // n1, after
		{Local: "d", Start: sec(1), End: sec(5), Err: errTest},  // nowhere, after
		{Local: "e", Start: sec(-1), End: sec(1), OK: 8},        // n3, in flight
	}
	flows := map[string]int{"a": 2, "b": 2, "c": 1, "e": 3}
	k := summarizeKill(sessions, flows, 2, at)
	if k.cells[0][0].ok != 1 || k.cells[0][1].failed != 1 || k.cells[1][2].ok != 1 || k.cells[2][2].failed != 1 ||
		k.cells[1][1].ok != 1 || k.cells[1][1].requests != 8 {
		t.Errorf("summary: %+v", k.cells)
	}
	var b bytes.Buffer
	writeKillTable(&b, []lab.Node{{Index: 1}, {Index: 2}, {Index: 3}}, 2, k)
	out := b.String()
	for _, w := range []string{"THROUGH n2 (KILLED)", "THROUGH n1, n3", "SEEN AT NO NODE", "0 ok, 1 failed", "started after the kill"} {
		if !strings.Contains(out, w) {
			t.Errorf("missing %q in\n%s", w, out)
		}
	}
}
