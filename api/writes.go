package api

import (
	"context"
	"errors"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/patchgate/patchgate/api/pb"
	"github.com/patchgate/patchgate/consensus"
	"github.com/patchgate/patchgate/consensus/patchset"
)

// Metadata keys of forwarded writes.
const (
	// MDForwardedBy names the node that forwarded a write; a forwarded write
	// is not forwarded again.
	MDForwardedBy = "x-patchgate-forwarded-by"
	// MDActor carries the original caller's identity (audit only).
	MDActor = "x-patchgate-actor"
	// MDLeaderAPI is set in the trailer of a write refused for lack of a
	// reachable leader: the leader's API address, when known.
	MDLeaderAPI = "x-patchgate-leader-api"
)

// actor is the audit name of a write: the caller's identity, and the node
// that forwarded it.
func actor(ctx context.Context) string {
	a := Actor(ctx)
	if md, ok := metadata.FromIncomingContext(ctx); ok {
		if v := md.Get(MDActor); len(v) == 1 && len(v[0]) <= 128 {
			by := md.Get(MDForwardedBy)
			if len(by) == 1 && len(by[0]) <= 64 {
				return v[0] + " via " + by[0]
			}
		}
	}
	return a
}

func forwarded(ctx context.Context) bool {
	md, ok := metadata.FromIncomingContext(ctx)
	return ok && len(md.Get(MDForwardedBy)) > 0
}

// write runs a write locally; on a follower it forwards it to the leader.
func (s *Server) write(ctx context.Context, local func(actor string) (uint64, error),
	remote func(context.Context, pb.PatchGateClient) (*pb.WriteResponse, error)) (*pb.WriteResponse, error) {
	idx, err := local(actor(ctx))
	if err == nil {
		return &pb.WriteResponse{Index: idx, Leader: s.cl.Name()}, nil
	}
	var nle *consensus.NotLeaderError
	if !errors.As(err, &nle) {
		return nil, statusOf(err)
	}
	if nle.LeaderAPIAddr != "" {
		_ = grpc.SetTrailer(ctx, metadata.Pairs(MDLeaderAPI, nle.LeaderAPIAddr))
	}
	if forwarded(ctx) || nle.LeaderAPIAddr == "" || nle.LeaderAPIAddr == s.adv {
		return nil, status.Errorf(codes.Unavailable, "api: %v", err)
	}
	c, err := s.peer(nle.LeaderAPIAddr)
	if err != nil {
		return nil, status.Errorf(codes.Unavailable, "api: forward to leader %s: %v", nle.LeaderID, err)
	}
	fctx, cancel := context.WithTimeout(ctx, s.cfg.ForwardTimeout)
	defer cancel()
	fctx = metadata.AppendToOutgoingContext(fctx, MDForwardedBy, s.cl.Name(), MDActor, Actor(ctx))
	resp, err := remote(fctx, c)
	if err != nil {
		return nil, err // the leader's status, as it is
	}
	return resp, nil
}

// statusOf maps control-plane errors to gRPC codes.
func statusOf(err error) error {
	if _, ok := status.FromError(err); ok {
		return err
	}
	code := codes.FailedPrecondition
	switch {
	case errors.Is(err, patchset.ErrUnsigned), errors.Is(err, patchset.ErrUnknownKey),
		errors.Is(err, patchset.ErrTampered), errors.Is(err, patchset.ErrBadSignature):
		code = codes.PermissionDenied
	case errors.Is(err, patchset.ErrNotCanonical), errors.Is(err, consensus.ErrBadCommand):
		code = codes.InvalidArgument
	case errors.Is(err, consensus.ErrConflict):
		code = codes.FailedPrecondition
	case errors.Is(err, consensus.ErrShutdown):
		code = codes.Unavailable
	case errors.Is(err, context.DeadlineExceeded):
		code = codes.DeadlineExceeded
	case errors.Is(err, context.Canceled):
		code = codes.Canceled
	}
	return status.Error(code, err.Error())
}

func planOf(p *pb.Plan) consensus.Plan {
	return consensus.Plan{Strategy: consensus.Strategy(p.GetStrategy()), CanaryNodes: p.GetCanaryNodes(), CanaryPercent: int(p.GetCanaryPercent())}
}

// PushPatchSet verifies, compiles and commits a bundle (on the leader).
func (s *Server) PushPatchSet(ctx context.Context, r *pb.PushPatchSetRequest) (*pb.WriteResponse, error) {
	return s.write(ctx, func(a string) (uint64, error) { return s.cl.PushPatchSet(r.Bundle, planOf(r.Plan), a) },
		func(c context.Context, p pb.PatchGateClient) (*pb.WriteResponse, error) { return p.PushPatchSet(c, r) })
}

// Rollback makes an earlier version active everywhere.
func (s *Server) Rollback(ctx context.Context, r *pb.VersionRequest) (*pb.WriteResponse, error) {
	return s.write(ctx, func(a string) (uint64, error) { return s.cl.Rollback(r.Version, a) },
		func(c context.Context, p pb.PatchGateClient) (*pb.WriteResponse, error) { return p.Rollback(c, r) })
}

// Promote promotes the rollout of a version.
func (s *Server) Promote(ctx context.Context, r *pb.VersionRequest) (*pb.WriteResponse, error) {
	return s.write(ctx, func(a string) (uint64, error) { return s.cl.Promote(r.Version, a) },
		func(c context.Context, p pb.PatchGateClient) (*pb.WriteResponse, error) { return p.Promote(c, r) })
}

// Abort aborts the rollout of a version.
func (s *Server) Abort(ctx context.Context, r *pb.VersionRequest) (*pb.WriteResponse, error) {
	return s.write(ctx, func(a string) (uint64, error) { return s.cl.Abort(r.Version, a) },
		func(c context.Context, p pb.PatchGateClient) (*pb.WriteResponse, error) { return p.Abort(c, r) })
}

// Drain sets a node's drain flag.
func (s *Server) Drain(ctx context.Context, r *pb.DrainRequest) (*pb.WriteResponse, error) {
	return s.write(ctx, func(a string) (uint64, error) { return s.cl.SetDrain(r.Node, true, r.Reason, a) },
		func(c context.Context, p pb.PatchGateClient) (*pb.WriteResponse, error) { return p.Drain(c, r) })
}

// Undrain clears a node's drain flag.
func (s *Server) Undrain(ctx context.Context, r *pb.DrainRequest) (*pb.WriteResponse, error) {
	return s.write(ctx, func(a string) (uint64, error) { return s.cl.SetDrain(r.Node, false, r.Reason, a) },
		func(c context.Context, p pb.PatchGateClient) (*pb.WriteResponse, error) { return p.Undrain(c, r) })
}
