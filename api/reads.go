package api

import (
	"context"
	"sort"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/patchgate/patchgate/api/pb"
	"github.com/patchgate/patchgate/consensus"
	"github.com/patchgate/patchgate/consensus/patchset"
)

func unixMS(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

func infoOf(st *consensus.State, r *consensus.PatchSetRecord) *pb.PatchSetInfo {
	return &pb.PatchSetInfo{Version: r.Version, ContentHash: r.ContentHash, Signer: r.Signer, Author: r.Author,
		CreatedUnixMs: unixMS(r.Created), Message: r.Message, CommittedUnixMs: unixMS(r.Committed),
		CommittedBy: r.CommittedBy, PatchCount: int32(len(r.Patches)), Active: r.Version == st.Active,
		BundleKept: len(r.Bundle) > 0}
}

func rolloutOf(r *consensus.Rollout) *pb.Rollout {
	if r == nil {
		return nil
	}
	return &pb.Rollout{Id: r.ID, Version: r.Version, From: r.From, Strategy: string(r.Strategy), Stage: string(r.Stage),
		Rollback: r.Rollback, CanaryNodes: r.CanaryNodes, DetectOnly: r.DetectOnly,
		StartedUnixMs: unixMS(r.Started), UpdatedUnixMs: unixMS(r.Updated), StartedBy: r.StartedBy}
}

// localStatus is this node's own row.
func (s *Server) localStatus() *pb.NodeStatus {
	m := s.cl.LocalMeta()
	ns := &pb.NodeStatus{Name: s.cl.Name(), ApiAddr: s.adv, RaftAddr: s.cl.RaftAddr(), Gossip: string(consensus.MemberAlive),
		Health: m.Health, AppliedVersion: m.Version, AppliedHash: m.Hash, Drained: m.Drained,
		DrainPhase: m.DrainPhase, DrainFlowsRemaining: uint64(max(m.DrainFlows, 0))}
	if d, ok := s.local.(DrainReporter); ok {
		ns.DrainPhase, ns.DrainFlowsRemaining = d.Drain()
	}
	if s.local != nil {
		t := s.local.Traffic()
		ns.Packets, ns.Alerts, ns.PacketsPerSecond = t.Packets, t.Alerts, t.PacketsPerSecond
		ns.Health = s.local.Health()
	}
	return ns
}

// Status returns the node table: gossip members and raft servers, with each
// alive peer's traffic asked from the peer itself (PeerTimeout).
func (s *Server) Status(ctx context.Context, r *pb.StatusRequest) (*pb.StatusResponse, error) {
	st := s.cl.FSM().State()
	leader, _ := s.cl.Leader()
	resp := &pb.StatusResponse{ServedBy: s.cl.Name(), Leader: leader, ActiveVersion: st.Active, RaftIndex: st.Index}
	self := s.localStatus()
	roles := map[string]string{}
	if servers, err := s.cl.Servers(); err == nil {
		for _, sv := range servers {
			switch {
			case sv.Leader:
				roles[sv.ID] = "leader"
			case sv.Voter:
				roles[sv.ID] = "voter"
			default:
				roles[sv.ID] = "nonvoter"
			}
			if sv.ID == self.Name {
				self.RaftAddr = sv.Address
			}
		}
	}
	self.RaftRole = roleOr(roles, self.Name)
	if r.LocalOnly {
		resp.Nodes = []*pb.NodeStatus{self}
		return resp, nil
	}
	seen := map[string]bool{self.Name: true}
	resp.Nodes = append(resp.Nodes, self)
	var wg sync.WaitGroup
	for _, m := range s.cl.Members() {
		if seen[m.Name] {
			continue
		}
		seen[m.Name] = true
		ns := &pb.NodeStatus{Name: m.Name, ApiAddr: m.Meta.APIAddr, RaftAddr: m.Meta.RaftAddr, RaftRole: roleOr(roles, m.Name),
			Gossip: string(m.State), Health: m.Meta.Health, AppliedVersion: m.Meta.Version, AppliedHash: m.Meta.Hash, Drained: m.Meta.Drained,
			DrainPhase: m.Meta.DrainPhase, DrainFlowsRemaining: uint64(max(m.Meta.DrainFlows, 0))}
		resp.Nodes = append(resp.Nodes, ns)
		if m.State != consensus.MemberAlive && m.State != consensus.MemberSuspect {
			ns.StatsError = "not alive"
			continue
		}
		if ns.ApiAddr == "" {
			ns.StatsError = "no API address"
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.fillTraffic(ctx, ns)
		}()
	}
	for name, role := range roles {
		if !seen[name] {
			resp.Nodes = append(resp.Nodes, &pb.NodeStatus{Name: name, RaftRole: role, Gossip: "unknown", StatsError: "not in gossip"})
		}
	}
	wg.Wait()
	sort.Slice(resp.Nodes, func(i, j int) bool { return resp.Nodes[i].Name < resp.Nodes[j].Name })
	return resp, nil
}

func roleOr(roles map[string]string, name string) string {
	if r, ok := roles[name]; ok {
		return r
	}
	return "none"
}

// fillTraffic asks a peer for its own row.
func (s *Server) fillTraffic(ctx context.Context, ns *pb.NodeStatus) {
	c, err := s.peer(ns.ApiAddr)
	if err != nil {
		ns.StatsError = err.Error()
		return
	}
	pctx, cancel := context.WithTimeout(ctx, s.cfg.PeerTimeout)
	defer cancel()
	pr, err := c.Status(pctx, &pb.StatusRequest{LocalOnly: true})
	if err != nil {
		ns.StatsError = status.Convert(err).Message()
		return
	}
	if len(pr.Nodes) == 1 {
		p := pr.Nodes[0]
		ns.Packets, ns.Alerts, ns.PacketsPerSecond, ns.Health = p.Packets, p.Alerts, p.PacketsPerSecond, p.Health
		if p.DrainPhase != "" { // the peer's own view is fresher than its gossip
			ns.DrainPhase, ns.DrainFlowsRemaining = p.DrainPhase, p.DrainFlowsRemaining
		}
	}
}

// ListPatchSets lists every committed version, oldest first.
func (s *Server) ListPatchSets(context.Context, *pb.ListPatchSetsRequest) (*pb.ListPatchSetsResponse, error) {
	st := s.cl.FSM().State()
	resp := &pb.ListPatchSetsResponse{ActiveVersion: st.Active}
	for i := range st.History {
		resp.PatchSets = append(resp.PatchSets, infoOf(&st, &st.History[i]))
	}
	return resp, nil
}

// ShowPatchSet returns one version's record and patch list (and its bundle
// on request).
func (s *Server) ShowPatchSet(_ context.Context, r *pb.ShowPatchSetRequest) (*pb.ShowPatchSetResponse, error) {
	st := s.cl.FSM().State()
	rec := st.Record(r.Version)
	if rec == nil {
		return nil, status.Errorf(codes.NotFound, "api: version %d is not in the history", r.Version)
	}
	resp := &pb.ShowPatchSetResponse{Info: infoOf(&st, rec)}
	for _, p := range rec.Patches {
		resp.Patches = append(resp.Patches, &pb.PatchRef{Id: p.ID, File: p.File, Sha256: p.SHA256})
	}
	if r.IncludeBundle {
		resp.Bundle = rec.Bundle
	}
	return resp, nil
}

// DiffPatchSets compares two versions by patch id and content.
func (s *Server) DiffPatchSets(_ context.Context, r *pb.DiffPatchSetsRequest) (*pb.DiffPatchSetsResponse, error) {
	st := s.cl.FSM().State()
	var bs [2]*patchset.Bundle
	for i, v := range []uint64{r.From, r.To} {
		rec := st.Record(v)
		if rec == nil {
			return nil, status.Errorf(codes.NotFound, "api: version %d is not in the history", v)
		}
		if len(rec.Bundle) == 0 {
			return nil, status.Errorf(codes.FailedPrecondition, "api: the bundle of version %d was pruned", v)
		}
		b, err := patchset.Unmarshal(rec.Bundle)
		if err != nil {
			return nil, status.Errorf(codes.Internal, "api: version %d: %v", v, err)
		}
		bs[i] = b
	}
	d, err := patchset.Compare(bs[0], bs[1])
	if err != nil {
		return nil, status.Errorf(codes.Internal, "api: %v", err)
	}
	return &pb.DiffPatchSetsResponse{Added: d.Added, Removed: d.Removed, Changed: d.Changed}, nil
}

// History returns the committed versions, newest first, and the latest
// rollout.
func (s *Server) History(_ context.Context, r *pb.HistoryRequest) (*pb.HistoryResponse, error) {
	st := s.cl.FSM().State()
	resp := &pb.HistoryResponse{Rollout: rolloutOf(st.Rollout)}
	for i := len(st.History) - 1; i >= 0; i-- {
		if r.Limit > 0 && len(resp.Entries) >= int(r.Limit) {
			break
		}
		resp.Entries = append(resp.Entries, infoOf(&st, &st.History[i]))
	}
	return resp, nil
}

// RolloutStatus compares every node's target with what it reports applied.
func (s *Server) RolloutStatus(context.Context, *pb.RolloutStatusRequest) (*pb.RolloutStatusResponse, error) {
	st := s.cl.FSM().State()
	resp := &pb.RolloutStatusResponse{Rollout: rolloutOf(st.Rollout), ActiveVersion: st.Active, Converged: true}
	members := map[string]consensus.Member{}
	for _, m := range s.cl.Members() {
		members[m.Name] = m
	}
	names := map[string]bool{}
	for n := range st.Nodes {
		names[n] = true
	}
	for n, m := range members {
		if m.State == consensus.MemberAlive || m.State == consensus.MemberSuspect {
			names[n] = true
		}
	}
	for n := range names {
		t := st.Target(n)
		np := &pb.NodeProgress{Name: n, TargetVersion: t.Version, TargetHash: t.ContentHash, Gossip: "unknown"}
		if m, ok := members[n]; ok {
			np.Gossip, np.AppliedVersion, np.AppliedHash = string(m.State), m.Meta.Version, m.Meta.Hash
		}
		np.Done = np.AppliedVersion == t.Version && np.AppliedHash == t.ContentHash
		alive := np.Gossip == string(consensus.MemberAlive) || np.Gossip == string(consensus.MemberSuspect)
		if alive && !np.Done {
			resp.Converged = false
		}
		resp.Nodes = append(resp.Nodes, np)
	}
	sort.Slice(resp.Nodes, func(i, j int) bool { return resp.Nodes[i].Name < resp.Nodes[j].Name })
	return resp, nil
}

// TailAlerts streams this node's alerts until the client cancels or max
// alerts were sent.
func (s *Server) TailAlerts(r *pb.TailAlertsRequest, stream pb.PatchGate_TailAlertsServer) error {
	ch, cancel := s.alerts.Subscribe()
	defer cancel()
	var sent uint32
	for {
		select {
		case <-stream.Context().Done():
			return nil
		case a := <-ch:
			if err := stream.Send(a); err != nil {
				return err
			}
			sent++
			if r.Max > 0 && sent >= r.Max {
				return nil
			}
		}
	}
}

// TopFlows summarises this node's flow table.
func (s *Server) TopFlows(_ context.Context, r *pb.TopFlowsRequest) (*pb.TopFlowsResponse, error) {
	if s.local == nil {
		return &pb.TopFlowsResponse{Node: s.cl.Name()}, nil
	}
	limit := int(r.Limit)
	if limit == 0 {
		limit = 20
	}
	resp := s.local.TopFlows(limit)
	resp.Node = s.cl.Name()
	return resp, nil
}
