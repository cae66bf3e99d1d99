package node

import (
	"fmt"
	"net/netip"
	"sort"
	"sync"
	"time"

	"github.com/patchgate/patchgate/api"
	"github.com/patchgate/patchgate/api/pb"
	"github.com/patchgate/patchgate/dataplane/engine"
)

// localView is what the API reports about this node: traffic counters and a
// packet rate sampled by housekeeping, health, and a flow-table summary. It
// is safe for concurrent use.
type localView struct {
	eng   *engine.Engine
	ready func() bool
	// failover reports degraded failover protection (nil: never).
	failover func() (bool, string)
	// drain reports the drain state (nil: always announcing).
	drain func() DrainStatus

	mu       sync.Mutex
	lastAt   time.Time
	lastPkts uint64
	pps      float64
}

var (
	_ api.Local         = (*localView)(nil)
	_ api.DrainReporter = (*localView)(nil)
)

// Drain implements api.DrainReporter.
func (l *localView) Drain() (string, uint64) {
	if l.drain == nil {
		return string(PhaseAnnounce), 0
	}
	st := l.drain()
	return string(st.Phase), uint64(st.FlowsRemaining)
}

// sample updates the packet rate (called every housekeeping tick).
func (l *localView) sample(now time.Time) {
	p := l.eng.Stats().Packets
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.lastAt.IsZero() {
		if d := now.Sub(l.lastAt).Seconds(); d > 0 {
			l.pps = float64(p-l.lastPkts) / d
		}
	}
	l.lastAt, l.lastPkts = now, p
}

// Traffic implements api.Local.
func (l *localView) Traffic() api.Traffic {
	st := l.eng.Stats()
	l.mu.Lock()
	defer l.mu.Unlock()
	return api.Traffic{Packets: st.Packets, Alerts: st.Alerts, PacketsPerSecond: l.pps}
}

// Health implements api.Local.
func (l *localView) Health() string {
	if l.ready != nil && !l.ready() {
		return "starting"
	}
	if l.failover != nil {
		if deg, _ := l.failover(); deg {
			return "degraded"
		}
	}
	return "ok"
}

// TopFlows implements api.Local: flows grouped by service endpoint (the
// endpoint with the lower port, usually the server), largest groups first.
func (l *localView) TopFlows(limit int) *pb.TopFlowsResponse {
	keys := l.eng.FlowKeys()
	groups := map[string]uint64{}
	for _, k := range keys {
		addr, port := k.A, k.APort
		if k.BPort < k.APort {
			addr, port = k.B, k.BPort
		}
		groups[fmt.Sprintf("%s/%d", netip.AddrPortFrom(addr, port), k.Proto)]++
	}
	resp := &pb.TopFlowsResponse{TotalFlows: uint64(len(keys)), PatchAlerts: l.eng.Stats().PatchAlerts}
	for g, n := range groups {
		resp.Groups = append(resp.Groups, &pb.FlowGroup{Key: g, Flows: n})
	}
	sort.Slice(resp.Groups, func(i, j int) bool {
		if resp.Groups[i].Flows != resp.Groups[j].Flows {
			return resp.Groups[i].Flows > resp.Groups[j].Flows
		}
		return resp.Groups[i].Key < resp.Groups[j].Key
	})
	if len(resp.Groups) > limit {
		resp.Groups = resp.Groups[:limit]
	}
	return resp
}

// alertTee passes alerts to the EVE writer (if any) and, while someone tails
// them, to the API's alert hub.
type alertTee struct {
	next engine.AlertSink
	hub  *api.AlertHub
	node string
}

// Alert implements engine.AlertSink.
func (t *alertTee) Alert(a *engine.Alert) {
	if t.next != nil {
		t.next.Alert(a)
	}
	if t.hub.Subscribers() == 0 {
		return
	}
	t.hub.Publish(&pb.Alert{TimeUnixMs: a.Time.UnixMilli(), Node: t.node, FlowId: a.FlowID, Src: a.Src.String(),
		Dst: a.Dst.String(), AppProto: a.AppProto, Blocked: a.Blocked, PatchId: a.PatchID, Signature: a.Signature,
		Cve: append([]string(nil), a.CVE...), Event: a.Event, PatchSet: a.PatchSet, Severity: a.Severity})
}
