package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/patchgate/patchgate/deploy/lab"
)

// nodeRecording records the frames arriving at every node from R1, to tell
// which node ECMP chose for each session.
type nodeRecording struct {
	nodes []lab.Node
	recs  []*lab.Recorder
}

// record starts recording at every node's R1-side interface.
func (e *demoEnv) record() (*nodeRecording, error) {
	r := &nodeRecording{nodes: e.l.Nodes}
	for _, n := range e.l.Nodes {
		rec, err := e.l.RecordIncoming(n.NS, n.In.Name)
		if err != nil {
			_, _ = r.stop()
			return nil, fmt.Errorf("demo: %w", err)
		}
		r.recs = append(r.recs, rec)
	}
	return r, nil
}

// stop ends the recording and returns the node (from 1) each client
// address was seen at.
func (r *nodeRecording) stop() (map[string]int, error) {
	out := map[string]int{}
	var errs []error
	for i, rec := range r.recs {
		rec.Settle(200*time.Millisecond, 2*time.Second)
		frames, _, err := rec.Stop()
		if err != nil {
			errs = append(errs, err)
		}
		for _, f := range frames {
			if src, ok := flowSource(f.Data); ok {
				out[src.String()] = r.nodes[i].Index
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return out, fmt.Errorf("demo: recording: %w", err)
	}
	return out, nil
}

// flowSource returns the source address and port of an Ethernet frame
// carrying TCP or UDP over IPv4 or IPv6 (without extension headers).
func flowSource(f []byte) (netip.AddrPort, bool) {
	if len(f) < 14 {
		return netip.AddrPort{}, false
	}
	var src netip.Addr
	var proto byte
	off := 14
	switch binary.BigEndian.Uint16(f[12:14]) {
	case 0x0800:
		if len(f) < off+20 {
			return netip.AddrPort{}, false
		}
		if binary.BigEndian.Uint16(f[off+6:off+8])&0x1fff != 0 {
			return netip.AddrPort{}, false // a non-first fragment has no ports
		}
		src, proto = netip.AddrFrom4([4]byte(f[off+12:off+16])), f[off+9]
		off += int(f[off]&0x0f) * 4
	case 0x86dd:
		if len(f) < off+40 {
			return netip.AddrPort{}, false
		}
		src, proto = netip.AddrFrom16([16]byte(f[off+8:off+24])), f[off+6]
		off += 40
	default:
		return netip.AddrPort{}, false
	}
	if (proto != 6 && proto != 17) || len(f) < off+2 {
		return netip.AddrPort{}, false
	}
	return netip.AddrPortFrom(src, binary.BigEndian.Uint16(f[off:off+2])), true
}

// demoNodeStats is what one node reports: alerts per patch from its EVE
// file, and counters from its /metrics.
type demoNodeStats struct {
	Index        int
	Alerts       map[string]int // EVE alerts by patch id
	EVETotal     int
	MetricsTotal int
	Packets      float64
	Resets       float64
}

// nodeStats reads every node's metrics and EVE file, waiting (bounded) for
// the EVE files, flushed every second, to hold every alert the metrics count.
func (e *demoEnv) nodeStats(ctx context.Context) []demoNodeStats {
	var out []demoNodeStats
	deadline := time.Now().Add(5 * time.Second)
	for {
		out = out[:0]
		settled := true
		for _, n := range e.l.Nodes {
			st := demoNodeStats{Index: n.Index, Alerts: map[string]int{}}
			if code, body, err := e.l.NodeGet(n.Index, "/metrics"); err == nil && code == 200 {
				for _, s := range metricSamples(body, "patchgate_alerts_total") {
					st.MetricsTotal += int(s.Value)
				}
				st.Packets = sumSamples(metricSamples(body, "patchgate_packets_total"))
				st.Resets = sumSamples(metricSamples(body, "patchgate_resets_sent_total"))
			}
			if f, err := os.Open(e.l.NodeEVEPath(n.Index)); err == nil {
				st.Alerts, st.EVETotal, _ = countEVE(f)
				f.Close()
			}
			settled = settled && st.EVETotal == st.MetricsTotal
			out = append(out, st)
		}
		if settled || time.Now().After(deadline) || ctx.Err() != nil {
			return out
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// metricSample is one line of the Prometheus text format.
type metricSample struct {
	Labels map[string]string
	Value  float64
}

// metricSamples returns the samples of one metric in a Prometheus text
// exposition.
func metricSamples(body []byte, name string) []metricSample {
	var out []metricSample
	for _, line := range strings.Split(string(body), "\n") {
		rest, ok := strings.CutPrefix(line, name)
		if !ok || rest == "" || (rest[0] != '{' && rest[0] != ' ') {
			continue
		}
		s := metricSample{Labels: map[string]string{}}
		if rest[0] == '{' {
			end := -1
			for i, inQuote := 1, false; i < len(rest); i++ {
				switch {
				case rest[i] == '\\' && inQuote:
					i++
				case rest[i] == '"':
					inQuote = !inQuote
				case rest[i] == '}' && !inQuote:
					end = i
				}
				if end >= 0 {
					break
				}
			}
			if end < 0 {
				continue
			}
			for _, kv := range splitLabels(rest[1:end]) {
				k, v, ok := strings.Cut(kv, "=")
				if uq, err := strconv.Unquote(v); ok && err == nil {
					s.Labels[k] = uq
				}
			}
			rest = rest[end+1:]
		}
		fs := strings.Fields(rest)
		if len(fs) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(fs[0], 64)
		if err != nil {
			continue
		}
		s.Value = v
		out = append(out, s)
	}
	return out
}

// splitLabels splits `a="x",b="y,z"` at the commas outside quotes.
func splitLabels(s string) []string {
	var out []string
	start, inQuote := 0, false
	for i := 0; i < len(s); i++ {
		switch {
		case s[i] == '\\' && inQuote:
			i++
		case s[i] == '"':
			inQuote = !inQuote
		case s[i] == ',' && !inQuote:
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	if start < len(s) {
		out = append(out, s[start:])
	}
	return out
}

func sumSamples(ss []metricSample) float64 {
	t := 0.0
	for _, s := range ss {
		t += s.Value
	}
	return t
}

// countEVE counts the alerts of an EVE JSON file by patch id.
func countEVE(r io.Reader) (map[string]int, int, error) {
	out := map[string]int{}
	total := 0
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		var rec struct {
			EventType string `json:"event_type"`
			Alert     struct {
				Metadata struct {
					PatchID []string `json:"patch_id"`
				} `json:"metadata"`
			} `json:"alert"`
		}
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			return out, total, fmt.Errorf("demo: eve: %w", err)
		}
		if rec.EventType != "alert" {
			continue
		}
		id := "(no patch id)"
		if len(rec.Alert.Metadata.PatchID) > 0 {
			id = rec.Alert.Metadata.PatchID[0]
		}
		out[id]++
		total++
	}
	return out, total, sc.Err()
}

// patchRow is one line of the per-patch table.
type patchRow struct {
	id, cve, proto, action              string
	exploits, blocked, reset, delivered int
	lookalikes, lookalikesOK            int
}

// writeCaseTable prints, per patch: exploits sent, blocked, reset by the
// node, delivered in full (must be 0), look-alikes that passed, and each
// node's alerts.
func writeCaseTable(w io.Writer, nodes []lab.Node, results []caseResult, stats []demoNodeStats) {
	var rows []*patchRow
	byID := map[string]*patchRow{}
	for _, r := range results {
		p := r.Case.Patch
		row := byID[p.ID]
		if row == nil {
			row = &patchRow{id: p.ID, cve: strings.Join(p.CVE, ","), proto: p.Protocol, action: p.Action.String()}
			byID[p.ID] = row
			rows = append(rows, row)
		}
		if r.Case.exploit() {
			row.exploits++
			if r.Good {
				row.blocked++
			}
			if r.Delivered {
				row.delivered++
			}
			if r.Reset {
				row.reset++
			}
		} else {
			row.lookalikes++
			if r.Good {
				row.lookalikesOK++
			}
		}
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	head := "PATCH\tCVE\tPROTO\tACTION\tEXPLOITS\tBLOCKED\tRESET\tDELIVERED\tLOOK-ALIKES OK\t"
	for _, n := range nodes {
		head += fmt.Sprintf("ALERTS n%d\t", n.Index)
	}
	fmt.Fprintln(tw, head)
	var t patchRow
	alertTotals := make([]int, len(stats))
	line := func(r *patchRow, alerts []int) {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\t%d\t%d\t%d/%d\t", r.id, r.cve, r.proto, r.action,
			r.exploits, r.blocked, r.reset, r.delivered, r.lookalikesOK, r.lookalikes)
		for _, a := range alerts {
			fmt.Fprintf(tw, "%d\t", a)
		}
		fmt.Fprintln(tw)
	}
	for _, r := range rows {
		alerts := make([]int, len(stats))
		for i, st := range stats {
			alerts[i] = st.Alerts[r.id]
			alertTotals[i] += alerts[i]
		}
		line(r, alerts)
		t.exploits, t.blocked, t.reset, t.delivered = t.exploits+r.exploits, t.blocked+r.blocked, t.reset+r.reset, t.delivered+r.delivered
		t.lookalikes, t.lookalikesOK = t.lookalikes+r.lookalikes, t.lookalikesOK+r.lookalikesOK
	}
	other := make([]int, len(stats))
	hasOther := false
	for i, st := range stats {
		for id, n := range st.Alerts {
			if byID[id] == nil {
				other[i] += n
				alertTotals[i] += n
				hasOther = true
			}
		}
	}
	if hasOther {
		line(&patchRow{id: "(other detections)", cve: "-", proto: "-", action: "-"}, other)
	}
	t.id, t.cve, t.proto, t.action = "TOTAL", "", "", ""
	line(&t, alertTotals)
	tw.Flush()
}

// writeNodeTable prints, per node, the sessions ECMP sent it (benign
// keep-alive sessions and patch-test conversations) and what became of
// them: passed (benign sessions and look-alikes delivered), blocked
// (exploits stopped), reset (the client saw a RST), failed (anything not as
// required), with the node's own counters.
func writeNodeTable(w io.Writer, nodes []lab.Node, benign []sessionResult, results []caseResult, flows map[string]int, stats []demoNodeStats) {
	type nodeRow struct{ sessions, passed, blocked, reset, failed, requests int }
	rows := map[int]*nodeRow{}
	row := func(local string) *nodeRow {
		i := flows[local]
		if rows[i] == nil {
			rows[i] = &nodeRow{}
		}
		return rows[i]
	}
	for _, s := range benign {
		r := row(s.Local)
		r.sessions++
		r.requests += s.OK
		if s.Err == nil {
			r.passed++
		} else {
			r.failed++
		}
	}
	for _, c := range results {
		r := row(c.Local)
		r.sessions++
		switch {
		case !c.Good:
			r.failed++
		case c.Case.exploit():
			r.blocked++
		default:
			r.passed++
		}
		if c.Reset {
			r.reset++
		}
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tSESSIONS\tPASSED\tBLOCKED\tRESET\tFAILED\tREQUESTS OK\tALERTS (EVE)\tPACKETS INSPECTED\tRESETS SENT\t")
	line := func(name string, r *nodeRow, tail string) {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%d\t%s\n", name, r.sessions, r.passed, r.blocked, r.reset, r.failed, r.requests, tail)
	}
	for i, n := range nodes {
		r := rows[n.Index]
		if r == nil {
			r = &nodeRow{}
		}
		st := demoNodeStats{}
		if i < len(stats) {
			st = stats[i]
		}
		line(fmt.Sprintf("n%d", n.Index), r, fmt.Sprintf("%d\t%.0f\t%.0f\t", st.EVETotal, st.Packets, st.Resets))
	}
	if r := rows[0]; r != nil {
		line("(seen at no node)", r, "\t\t\t")
	}
	tw.Flush()
}

// countDelivered counts exploits that crossed the lab in full.
func countDelivered(results []caseResult) int {
	n := 0
	for _, r := range results {
		if r.Case.exploit() && r.Delivered {
			n++
		}
	}
	return n
}

// killCell counts the sessions of one node group in one period.
type killCell struct{ ok, failed, requests int }

// killSummary sorts the kill phase's sessions: cells[0] through the killed
// node, cells[1] through the others, cells[2] seen at no node; by period:
// [0] ended before the kill, [1] in flight at the kill, [2] started after.
type killSummary struct {
	cells [3][3]killCell
}

func summarizeKill(sessions []sessionResult, flows map[string]int, killed int, at time.Time) killSummary {
	var k killSummary
	for _, s := range sessions {
		g := 1
		switch flows[s.Local] {
		case killed:
			g = 0
		case 0:
			g = 2
		}
		p := 1
		switch {
		case !s.End.After(at):
			p = 0
		case !s.Start.Before(at):
			p = 2
		}
		c := &k.cells[g][p]
		c.requests += s.OK
		if s.Err == nil {
			c.ok++
		} else {
			c.failed++
		}
	}
	return k
}

func (c killCell) String() string {
	s := fmt.Sprintf("%d ok", c.ok)
	if c.failed > 0 {
		s += fmt.Sprintf(", %d failed", c.failed)
	}
	return s
}

// writeKillTable prints the kill phase's sessions by node group and period.
func writeKillTable(w io.Writer, nodes []lab.Node, killed int, k killSummary) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	head := fmt.Sprintf("   SESSIONS\tTHROUGH n%d (KILLED)\tTHROUGH %s\t", killed, nodeList(nodes, killed))
	unseen := k.cells[2][0].ok+k.cells[2][0].failed+k.cells[2][1].ok+k.cells[2][1].failed+k.cells[2][2].ok+k.cells[2][2].failed > 0
	if unseen {
		head += "SEEN AT NO NODE\t"
	}
	fmt.Fprintln(tw, head)
	for p, name := range []string{"finished before the kill", "in flight at the kill", "started after the kill"} {
		line := fmt.Sprintf("   %s\t%v\t%v\t", name, k.cells[0][p], k.cells[1][p])
		if unseen {
			line += fmt.Sprintf("%v\t", k.cells[2][p])
		}
		fmt.Fprintln(tw, line)
	}
	tw.Flush()
}
