package node

import (
	"net/http"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/patchgate/patchgate/dataplane"
	"github.com/patchgate/patchgate/dataplane/flow"
)

// collector turns the engine's and the backend's counters into Prometheus
// metrics at scrape time: nothing is counted twice on the packet path. Every
// metric also carries the label node (added by the registry).
type collector struct {
	n *Node

	packets, bytes, verdicts, drops, alerts, violations   *prometheus.Desc
	flows, flowBytes, flowsCreated, evictions, expired    *prometheus.Desc
	refused, patchSet, patches, ready, panics             *prometheus.Desc
	bePackets, beBytes, beVerdicts, kernelDrops, bypassed *prometheus.Desc
	resets, beErrors, unitPackets                         *prometheus.Desc
	midstream, drainState, drainFlows                     *prometheus.Desc
}

func newCollector(n *Node) *collector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("patchgate_"+name, help, labels, nil)
	}
	return &collector{
		n:            n,
		packets:      d("packets_total", "Packets inspected by the engine."),
		bytes:        d("bytes_total", "Bytes inspected by the engine."),
		verdicts:     d("verdicts_total", "Engine verdicts by verdict (pass, drop, reset).", "verdict"),
		drops:        d("drops_total", "Packets not passed, by reason (dataplane.ReasonNames).", "reason"),
		alerts:       d("alerts_total", "Alerts by patch id and CVE (built-in detections have cve=\"\").", "patch", "cve"),
		violations:   d("protocol_violations_total", "Protocol violations reported by analyzers, by code.", "code"),
		flows:        d("flows", "Flows in the flow tables."),
		flowBytes:    d("flow_bytes", "Accounted memory of the flow tables."),
		flowsCreated: d("flows_created_total", "Flows created."),
		evictions:    d("flow_evictions_total", "Flows evicted under memory or count pressure, by class.", "class"),
		expired:      d("flow_expired_total", "Flows expired idle."),
		refused:      d("flow_refused_total", "Flows refused because the table was full of flows that may not be evicted."),
		patchSet:     d("patch_set_version", "Version of the patch set in force."),
		patches:      d("patches", "Patches in the patch set in force."),
		ready:        d("ready", "1 when patches are loaded and the backend is attached."),
		panics:       d("engine_panics_total", "Packets whose inspection hit a bug (dropped)."),
		bePackets:    d("backend_packets_total", "Packets received from the kernel queues or rings."),
		beBytes:      d("backend_bytes_total", "Bytes received from the kernel queues or rings."),
		beVerdicts:   d("backend_verdicts_total", "Verdicts applied on the wire.", "verdict"),
		unitPackets:  d("unit_packets_total", "Packets received per kernel queue or ring.", "unit"),
		kernelDrops: d("kernel_drops_total",
			"Packets the kernel dropped because a queue or ring overflowed (NFQUEUE fail-closed: queue or socket full; AF_PACKET: ring full).", "unit"),
		bypassed: d("overload_bypassed_total",
			"Packets let through uninspected because the node was overloaded (fail-open; estimated for NFQUEUE)."),
		resets:   d("resets_sent_total", "RST segments injected."),
		beErrors: d("backend_errors_total", "Failed verdicts, forwards and RST injections."),
		midstream: d("midstream_total", "TCP packets of flows this node did not know, by outcome: resumed "+
			"(flows continued exactly from a checkpoint, cache or bus), and the engine.midstream policy's fallback "+
			"when no checkpoint was found: resync (flows picked up, inspection resynchronises at the next message "+
			"boundary), reset or drop (packets refused).", "outcome"),
		drainState: d("drain_state", "1 for the node's current drain phase (announce, draining, drained), 0 for the others.", "phase"),
		drainFlows: d("drain_flows_remaining", "Flows that sent a packet through the node within the last quiet period while it drains."),
	}
}

// Describe implements prometheus.Collector.
func (c *collector) Describe(ch chan<- *prometheus.Desc) { prometheus.DescribeByCollect(c, ch) }

// Collect implements prometheus.Collector.
func (c *collector) Collect(ch chan<- prometheus.Metric) {
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	st := c.n.eng.Stats()
	counter(c.packets, st.Packets)
	counter(c.bytes, st.Bytes)
	for v, n := range st.Verdicts {
		counter(c.verdicts, n, dataplane.Verdict(v).String())
	}
	for r, n := range st.Reasons {
		if r != int(dataplane.ReasonNone) {
			counter(c.drops, n, dataplane.ReasonNames[r])
		}
	}
	prog := c.n.eng.Program()
	for _, p := range prog.Patches {
		counter(c.alerts, st.PatchAlerts[p.ID], p.ID, strings.Join(p.CVE, ","))
	}
	for id, n := range st.PatchAlerts {
		if prog.Lookup(id) == nil {
			counter(c.alerts, n, id, "")
		}
	}
	for code, n := range st.Violations {
		counter(c.violations, n, code)
	}
	gauge(c.flows, float64(st.Flows.Flows))
	gauge(c.flowBytes, float64(st.Flows.Bytes))
	counter(c.flowsCreated, st.FlowsCreated)
	for cl, n := range st.Flows.Evicted {
		counter(c.evictions, n, flow.Class(cl).String())
	}
	counter(c.expired, st.Flows.Expired)
	counter(c.refused, st.Flows.Refused)
	gauge(c.patchSet, float64(st.PatchSet))
	gauge(c.patches, float64(len(prog.Patches)))
	counter(c.panics, st.Panics)
	ready := 0.0
	if c.n.Ready() {
		ready = 1
	}
	gauge(c.ready, ready)
	counter(c.midstream, st.Resumed, "resumed")
	counter(c.midstream, st.Pickups, "resync")
	refused := st.Reasons[dataplane.ReasonMidstream]
	for _, p := range []string{"reset", "drop"} {
		v := uint64(0)
		if c.n.cfg.Engine.Midstream == p {
			v = refused
		}
		counter(c.midstream, v, p)
	}
	ds := c.n.DrainStatus()
	for _, p := range []DrainPhase{PhaseAnnounce, PhaseDraining, PhaseDrained} {
		v := 0.0
		if ds.Phase == p {
			v = 1
		}
		gauge(c.drainState, v, string(p))
	}
	gauge(c.drainFlows, float64(ds.FlowsRemaining))

	bs := c.n.backend.Stats()
	counter(c.bePackets, bs.Packets)
	counter(c.beBytes, bs.Bytes)
	for v, n := range bs.Verdicts {
		counter(c.beVerdicts, n, dataplane.Verdict(v).String())
	}
	for _, u := range bs.Units {
		counter(c.unitPackets, u.Packets, u.Name)
		counter(c.kernelDrops, u.KernelDropped, u.Name)
	}
	counter(c.bypassed, bs.Bypassed)
	counter(c.resets, bs.ResetsSent)
	counter(c.beErrors, bs.Errors)
}

func metricsHandler(reg *prometheus.Registry) http.Handler {
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
}
