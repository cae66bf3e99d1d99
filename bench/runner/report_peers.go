package runner

import (
	"fmt"
	"strings"

	"github.com/patchgate/patchgate/bench/waf"
)

// Inspector names of bench/coraza's report.
const (
	inspPatchgateHTTP   = "patchgate-http"
	inspCoraza          = "coraza"
	inspPatchgateEngine = "patchgate-engine"
)

// writePeers writes the peers section: Coraza vs patchgate, then kernel vs
// patchgate vs nginx+ModSecurity.
func writePeers(b *strings.Builder, p *Peers) {
	if p == nil {
		b.WriteString("not run: the run ended before the peers (bench/coraza, bench/waf).\n")
		return
	}
	b.WriteString("### Coraza vs patchgate (bench/coraza, in process, one goroutine)\n\n")
	if p.Coraza == nil {
		fmt.Fprintf(b, "not run: %s\n\n", orUnknown(p.CorazaError))
	} else {
		writeCoraza(b, p.Coraza)
	}
	b.WriteString("### nginx + ModSecurity + OWASP CRS vs patchgate vs kernel forwarding (bench/waf, 1-node L3 lab)\n\n")
	if p.WAF == nil {
		fmt.Fprintf(b, "not run: %s\n\n", orUnknown(p.WAFError))
	} else {
		writeWAF(b, p.WAF)
	}
}

func orUnknown(s string) string {
	if s == "" {
		return "no result"
	}
	return s
}

func writeCoraza(b *strings.Builder, r *CorazaReport) {
	fmt.Fprintf(b, "Coraza %s, %s. %s\n\n", r.CorazaVersion, r.GoVersion, r.Fair)
	b.WriteString("| inspector | set | requests | requests/s | ns/request | allocs/request | bytes/request |\n|---|---|---|---|---|---|---|\n")
	for _, s := range r.Speeds {
		fmt.Fprintf(b, "| %s | %s | %d | %.0f | %.0f | %d | %d |\n", s.Inspector, s.Set, s.Requests, s.RequestsPerSec, s.NsPerRequest, s.AllocsPerRequest, s.BytesPerRequest)
	}
	b.WriteString("\n")
	if pg, cz := r.Speed(inspPatchgateHTTP, "mix"), r.Speed(inspCoraza, "mix"); pg != nil && cz != nil && cz.RequestsPerSec > 0 {
		fmt.Fprintf(b, "Like for like (`patchgate-http` vs `coraza`, mix): patchgate inspects **%.1f×** Coraza's requests/s with %d vs %d allocations per request.\n\n",
			pg.RequestsPerSec/cz.RequestsPerSec, pg.AllocsPerRequest, cz.AllocsPerRequest)
	}
	b.WriteString("| inspector | exploits blocked | look-alikes passed |\n|---|---|---|\n")
	for _, in := range []string{inspPatchgateHTTP, inspCoraza, inspPatchgateEngine} {
		ex, bl, la, pa := r.Blocking(in)
		if ex+la == 0 {
			continue
		}
		fmt.Fprintf(b, "| %s | %d/%d | %d/%d |\n", in, bl, ex, pa, la)
	}
	b.WriteString("\n")
	if len(r.Disagreements) == 0 {
		b.WriteString("Disagreements between patchgate and Coraza: none.\n\n")
		return
	}
	b.WriteString("Disagreements (patchgate-http vs coraza):\n\n| request | exploit | patchgate | Coraza | reason |\n|---|---|---|---|---|\n")
	for _, d := range r.Disagreements {
		fmt.Fprintf(b, "| %s | %v | %s | %s | %s |\n", cell(d.Name), d.Exploit, idsOrPass(d.Patchgate), idsOrPass(d.Coraza), cell(orDash(d.Reason)))
	}
	b.WriteString("\n")
}

func idsOrPass(ids []string) string {
	if len(ids) == 0 {
		return "passed"
	}
	return "blocked (" + strings.Join(ids, ", ") + ")"
}

func orDash(s string) string {
	if s == "" {
		return "– (not a known gap)"
	}
	return s
}

// cell makes a string safe in a Markdown table cell.
func cell(s string) string { return strings.ReplaceAll(s, "|", `\|`) }

func writeWAF(b *strings.Builder, r *waf.Result) {
	b.WriteString("The same backend behind each path, one after the other in one run; wrk from the client namespace (same request, same settings); the corpus is every exploit and look-alike request of the HTTP patches, each on its own connection. `nginx-modsecurity` is CRS 3.3 (paranoia level 1, anomaly scoring) plus the CVE rules (bench/waf/cverules.conf); `nginx-modsecurity-cverules` the CVE rules only (the like-for-like rule set); `nginx-proxy` nginx without ModSecurity (the proxy's own cost). **Gateway CPU per request** is the CPU time of the gateway's processes (patchgate node; nginx master and workers) during wrk over wrk's requests: far less sensitive to the machine's other work than requests/s.\n\n")
	base := 0.0
	if len(r.Paths) > 0 {
		base = r.Paths[0].Wrk.RequestsPerSec
	}
	b.WriteString("| path | requests/s | ratio vs kernel | p50 | p99 | p99.9 | gateway CPU per request | exploits blocked | look-alikes passed | wrk errors |\n|---|---|---|---|---|---|---|---|---|---|\n")
	for _, p := range r.Paths {
		ratio := "1"
		if p.Name != waf.PathBaseline {
			ratio = "–"
			if base > 0 {
				ratio = fmt.Sprintf("%.3f", p.Wrk.RequestsPerSec/base)
			}
		}
		cpu := "– (kernel)"
		if p.Name != waf.PathBaseline {
			cpu = fmt.Sprintf("%.0f µs", p.GatewayCPUPerRequestUS)
		}
		w := p.Wrk
		errs := w.ErrConnect + w.ErrRead + w.ErrWrite + w.ErrTimeout + w.ErrStatus
		e := p.Exploits
		fmt.Fprintf(b, "| %s | %.0f | %s | %s | %s | %s | %s | %d/%d | %d/%d | %d |\n", p.Name, w.RequestsPerSec, ratio,
			us(w.Latency.P50), us(w.Latency.P99), us(w.Latency.P999), cpu, e.ExploitsBlocked, e.Exploits, e.LookalikesPassed, e.Lookalikes, errs)
	}
	b.WriteString("\n")
	writeWAFDisagreements(b, r)
}

// writeWAFDisagreements lists the corpus requests on which the inspecting
// paths (patchgate and nginx with ModSecurity) disagree, with every path's
// outcome (nginx-proxy's too: nginx itself refuses some malformed
// requests).
func writeWAFDisagreements(b *strings.Builder, r *waf.Result) {
	var cols []waf.PathResult
	for _, p := range r.Paths {
		if p.Name != waf.PathBaseline {
			cols = append(cols, p)
		}
	}
	var rows []string
	for i, o := range r.Paths[0].Exploits.Requests {
		var parts []string
		seen := map[bool]bool{}
		for _, p := range cols {
			if i >= len(p.Exploits.Requests) {
				parts = append(parts, "–")
				continue
			}
			q := p.Exploits.Requests[i]
			if p.Name != waf.PathNginxProxy {
				seen[q.Reached] = true
			}
			verdict := "passed"
			if !q.Reached {
				verdict = "blocked (" + q.Answer + ")"
			}
			parts = append(parts, verdict)
		}
		if len(seen) > 1 {
			kind := "look-alike"
			if o.Exploit {
				kind = "exploit"
			}
			rows = append(rows, fmt.Sprintf("| %s | %s | %s |", cell(o.Name), kind, strings.Join(parts, " | ")))
		}
	}
	if len(rows) == 0 {
		b.WriteString("patchgate and nginx+ModSecurity agree on every corpus request.\n\n")
		return
	}
	b.WriteString("Corpus requests on which patchgate and nginx+ModSecurity disagree (CRS also judges look-alikes by its generic rules; the CVE rules cannot express every patch condition: see bench/waf/cverules.conf):\n\n| request | kind |")
	for _, p := range cols {
		b.WriteString(" " + p.Name + " |")
	}
	b.WriteString("\n|---|---|" + strings.Repeat("---|", len(cols)) + "\n")
	b.WriteString(strings.Join(rows, "\n") + "\n\n")
}

// us formats microseconds.
func us(v float64) string {
	if v >= 10000 {
		return fmt.Sprintf("%.1f ms", v/1000)
	}
	return fmt.Sprintf("%.0f µs", v)
}

// writeLatency writes the added latency per packet and per request, from
// bench/waf's measurements.
func writeLatency(b *strings.Builder, p *Peers, plot bool) {
	if p == nil || p.WAF == nil {
		reason := "the run ended before bench/waf"
		if p != nil && p.WAFError != "" {
			reason = p.WAFError
		}
		fmt.Fprintf(b, "not run: latency per packet and per request comes from bench/waf: %s\n", reason)
		return
	}
	r := p.WAF
	b.WriteString("**Per packet**: 64-byte UDP datagrams from the client to an echo server behind the node, one at a time; both directions cross the node, so the latency patchgate adds per packet is half the difference of the round-trip percentiles (patchgate − kernel forwarding). patchgate has no UDP analyzer on that port: this is the packet path (queue to user space, decode, flow table, verdict).\n\n")
	b.WriteString("| path | round trips | lost | p50 | p99 | p99.9 |\n|---|---|---|---|---|---|\n")
	for _, x := range r.PacketRTT {
		fmt.Fprintf(b, "| %s | %d | %d | %s | %s | %s |\n", x.Path, x.Sent-x.Lost, x.Lost, us(x.RTT.P50), us(x.RTT.P99), us(x.RTT.P999))
	}
	a := r.AddedPerPacket
	fmt.Fprintf(b, "| **added per packet by patchgate** | | | **%s** | **%s** | **%s** |\n\n", sus(a.P50), sus(a.P99), sus(a.P999))
	b.WriteString("**Per request**: wrk with one connection (one request at a time: processing and path latency without queueing), and the difference to the kernel path; the last columns are the same difference under the saturating wrk run above (they include queueing at each path's own saturation rate).\n\n")
	b.WriteString("| path | requests/s (1 conn) | p50 | p99 | p99.9 | added p50 | added p99 | added p99.9 | added p50 loaded | added p99 loaded |\n|---|---|---|---|---|---|---|---|---|---|\n")
	for _, x := range r.Paths {
		u := x.Unloaded
		if x.Name == waf.PathBaseline {
			fmt.Fprintf(b, "| %s | %.0f | %s | %s | %s | | | | | |\n", x.Name, u.RequestsPerSec, us(u.Latency.P50), us(u.Latency.P99), us(u.Latency.P999))
			continue
		}
		d, l := r.AddedPerRequest[x.Name], r.AddedPerRequestLoaded[x.Name]
		fmt.Fprintf(b, "| %s | %.0f | %s | %s | %s | %s | %s | %s | %s | %s |\n", x.Name, u.RequestsPerSec, us(u.Latency.P50), us(u.Latency.P99), us(u.Latency.P999),
			sus(d.P50), sus(d.P99), sus(d.P999), sus(l.P50), sus(l.P99))
	}
	b.WriteString("\n")
	if plot {
		fmt.Fprintf(b, "![latency distribution: per request (wrk) and per packet (UDP round trips)](%s)\n\n", LatencyPlot)
	}
}

// sus formats a signed difference in microseconds.
func sus(v float64) string {
	if v >= 0 {
		return "+" + us(v)
	}
	return "−" + us(-v)
}
