package node

import (
	"fmt"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/patchgate/patchgate/api/pb"
	"github.com/patchgate/patchgate/consensus/patchset"
)

func wantCode(t *testing.T, what string, err error, code codes.Code) {
	t.Helper()
	if status.Code(err) != code {
		t.Fatalf("%s: got %v, want code %s", what, err, code)
	}
}

// A 3-node cluster driven through the API: a push through a follower is
// forwarded, canary → promote → rollback, and every node's engine follows.
func TestAPIRolloutThroughNodes(t *testing.T) {
	ac := startAgents(t, 3)
	ctx := ctxT(t)
	f := ac.follower()
	c := ac.client(f, testToken)
	key := clusterKey(t)

	resp, err := c.PushPatchSet(ctx, &pb.PushPatchSetRequest{Bundle: testBundle(t, key, 1, 40)})
	if err != nil {
		t.Fatalf("push through follower: %v", err)
	}
	if resp.Leader == fmt.Sprintf("n%d", f) {
		t.Fatalf("follower n%d committed the write itself", f)
	}
	ac.waitVersions(1, 1, 1)

	canary := (f + 1) % 3
	_, err = c.PushPatchSet(ctx, &pb.PushPatchSetRequest{Bundle: testBundle(t, key, 2, 30),
		Plan: &pb.Plan{Strategy: "canary", CanaryNodes: []string{fmt.Sprintf("n%d", canary)}}})
	if err != nil {
		t.Fatal(err)
	}
	want := []uint64{1, 1, 1}
	want[canary] = 2
	ac.waitVersions(want...)
	pollFor(t, 10e9, func() error {
		rs, err := c.RolloutStatus(ctx, &pb.RolloutStatusRequest{})
		if err != nil {
			return err
		}
		if rs.Rollout.GetStage() != "canary" || !rs.Converged || len(rs.Nodes) != 3 {
			return fmt.Errorf("rollout status %v", rs)
		}
		return nil
	})
	// A push while the canary waits is refused.
	_, err = c.PushPatchSet(ctx, &pb.PushPatchSetRequest{Bundle: testBundle(t, key, 3, 30)})
	wantCode(t, "push during canary", err, codes.FailedPrecondition)

	if _, err := c.Promote(ctx, &pb.VersionRequest{Version: 2}); err != nil {
		t.Fatal(err)
	}
	ac.waitVersions(2, 2, 2)
	if _, err := c.Rollback(ctx, &pb.VersionRequest{Version: 1}); err != nil {
		t.Fatal(err)
	}
	ac.waitVersions(1, 1, 1)

	// Reads on every node agree.
	for i := range ac.agents {
		ls, err := ac.client(i, testToken).ListPatchSets(ctx, &pb.ListPatchSetsRequest{})
		if err != nil {
			t.Fatal(err)
		}
		if ls.ActiveVersion != 1 || len(ls.PatchSets) != 2 {
			t.Fatalf("n%d list: %v", i, ls)
		}
	}
	d, err := c.DiffPatchSets(ctx, &pb.DiffPatchSetsRequest{From: 1, To: 2})
	if err != nil || len(d.Changed) != 1 || d.Changed[0] != "X-1" {
		t.Fatalf("diff: %v %v", d, err)
	}
	h, err := c.History(ctx, &pb.HistoryRequest{Limit: 1})
	if err != nil || len(h.Entries) != 1 || h.Entries[0].Version != 2 || !h.Rollout.GetRollback() {
		t.Fatalf("history: %v %v", h, err)
	}
	// Applied versions travel by gossip: poll until every row shows them.
	pollFor(t, 10e9, func() error {
		st, err := c.Status(ctx, &pb.StatusRequest{})
		if err != nil {
			return err
		}
		leaders := 0
		for _, n := range st.Nodes {
			if n.RaftRole == "leader" {
				leaders++
			}
			if n.AppliedVersion != 1 || n.Gossip != "alive" || n.StatsError != "" {
				return fmt.Errorf("status row %v", n)
			}
		}
		if len(st.Nodes) != 3 || leaders != 1 {
			return fmt.Errorf("status: %v", st)
		}
		return nil
	})

	// Drain through a follower, visible in every node's applied state.
	if _, err := c.Drain(ctx, &pb.DrainRequest{Node: "n0", Reason: "maintenance"}); err != nil {
		t.Fatal(err)
	}
	pollFor(t, 10e9, func() error {
		if !ac.agents[0].Applied().Drained {
			return fmt.Errorf("n0 not drained")
		}
		return nil
	})
	if _, err := c.Undrain(ctx, &pb.DrainRequest{Node: "n0"}); err != nil {
		t.Fatal(err)
	}
}

// Unsigned, tampered and unknown-key bundles are refused through the API and
// change nothing; calls without or with wrong credentials are refused.
func TestAPIRefusesBadBundlesAndCallers(t *testing.T) {
	ac := startAgents(t, 3)
	ctx := ctxT(t)
	c := ac.client(ac.follower(), testToken)

	other, _ := patchset.GenerateKey()
	unknown := testBundle(t, other, 1, 40)

	b, err := patchset.Unmarshal(testBundle(t, clusterKey(t), 1, 40))
	if err != nil {
		t.Fatal(err)
	}
	b.Signature = nil
	unsigned, _ := b.Marshal()

	b, _ = patchset.Unmarshal(testBundle(t, clusterKey(t), 1, 40))
	b.Files[0].Data = uriPatch("X-1", 9100001, 4000)
	tampered, _ := b.Marshal()

	for name, data := range map[string][]byte{"unknown key": unknown, "unsigned": unsigned, "tampered": tampered} {
		_, err := c.PushPatchSet(ctx, &pb.PushPatchSetRequest{Bundle: data})
		wantCode(t, name, err, codes.PermissionDenied)
	}
	_, err = c.PushPatchSet(ctx, &pb.PushPatchSetRequest{Bundle: []byte("not a bundle")})
	if status.Code(err) != codes.InvalidArgument && status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("garbage bundle: %v", err)
	}
	_, err = c.PushPatchSet(ctx, &pb.PushPatchSetRequest{})
	wantCode(t, "empty request (validator)", err, codes.InvalidArgument)
	ls, err := c.ListPatchSets(ctx, &pb.ListPatchSetsRequest{})
	if err != nil || len(ls.PatchSets) != 0 {
		t.Fatalf("refused bundles reached the history: %v %v", ls, err)
	}
	for i, e := range ac.engs {
		if e.Program().Version != 0 || len(e.Program().Patches) != 0 {
			t.Fatalf("n%d engine changed: version %d", i, e.Program().Version)
		}
	}

	for _, tok := range []string{"", "wrong-token-0123456789"} {
		nc := ac.client(0, tok)
		_, err := nc.Status(ctx, &pb.StatusRequest{})
		wantCode(t, fmt.Sprintf("status with token %q", tok), err, codes.Unauthenticated)
		_, err = nc.PushPatchSet(ctx, &pb.PushPatchSetRequest{Bundle: testBundle(t, clusterKey(t), 1, 40)})
		wantCode(t, fmt.Sprintf("push with token %q", tok), err, codes.Unauthenticated)
		s, err := nc.TailAlerts(ctx, &pb.TailAlertsRequest{})
		if err == nil {
			_, err = s.Recv()
		}
		wantCode(t, fmt.Sprintf("tail with token %q", tok), err, codes.Unauthenticated)
	}
}
