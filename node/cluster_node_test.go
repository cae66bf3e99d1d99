package node

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/patchgate/patchgate/api"
	"github.com/patchgate/patchgate/api/pb"
	"github.com/patchgate/patchgate/consensus"
	"github.com/patchgate/patchgate/consensus/patchset"
	"github.com/patchgate/patchgate/dataplane/inline"
)

// A node whose configuration has a cluster section joins (here: founds) the
// cluster, serves the API, applies pushed versions to its engine, and on
// stop keeps the program in force.
func TestNodeRunsClusterAgent(t *testing.T) {
	mb := &memBackend{fed: make(chan struct{}), hold: make(chan struct{})}
	close(mb.hold)
	cfg := DefaultConfig()
	cfg.Name = "gw-cluster"
	cfg.Patches = catalog(t)
	cfg.HTTP.Listen = ""
	cc := DefaultClusterConfig()
	tun := consensus.FastConfig()
	cc.Tuning = &tun
	cc.ClusterName = fmt.Sprintf("noderun-%d", os.Getpid())
	cc.DataDir = t.TempDir()
	cc.RaftAddr, cc.GossipAddr = "127.0.0.1:0", "127.0.0.1:0"
	cc.BootstrapExpect, cc.Voters = 1, 1
	cc.Keys = patchset.NewKeySet(clusterKey(t).Public())
	cc.API.Listen, cc.API.Token = "127.0.0.1:0", testToken
	cfg.Cluster = &cc
	n, err := New(cfg, Options{Logger: quietLogger(t), EVE: &syncBuffer{},
		Backend: func(_ Config, ni func() inline.Inspector, _ *slog.Logger) (inline.Backend, error) {
			mb.ins = ni()
			return mb, nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	boot := n.Engine().Program()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	var ag *Agent
	pollFor(t, 15*time.Second, func() error {
		if ag = n.Agent(); ag == nil || !ag.Cluster().IsLeader() {
			return fmt.Errorf("agent not leading yet")
		}
		return nil
	})
	if n.Engine().Program() != boot {
		t.Fatal("the boot program was replaced before any version was committed")
	}
	conn, err := api.Dial(api.ClientConfig{Server: ag.APIAddr(), Token: testToken})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	c := pb.NewPatchGateClient(conn)
	if _, err := c.PushPatchSet(ctxT(t), &pb.PushPatchSetRequest{Bundle: testBundle(t, clusterKey(t), 7, 20)}); err != nil {
		t.Fatal(err)
	}
	pollFor(t, 10*time.Second, func() error {
		if v := n.Engine().Program().Version; v != 7 {
			return fmt.Errorf("engine runs %d", v)
		}
		return nil
	})
	st, err := c.Status(ctxT(t), &pb.StatusRequest{})
	if err != nil || len(st.Nodes) != 1 || st.Nodes[0].Health != "ok" {
		t.Fatalf("status: %v %v", st, err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if v := n.Engine().Program().Version; v != 7 {
		t.Fatalf("after leaving the cluster the engine runs %d, want 7 (static stability)", v)
	}
}

// The API's token bucket refuses calls beyond its burst with
// ResourceExhausted; unauthenticated calls do not consume it.
func TestAPIRateLimit(t *testing.T) {
	cc := DefaultClusterConfig()
	tun := consensus.FastConfig()
	cc.Tuning = &tun
	cc.NodeID, cc.ClusterName = "rl", fmt.Sprintf("ratelimit-%d", os.Getpid())
	cc.DataDir = t.TempDir()
	cc.RaftAddr, cc.GossipAddr = "127.0.0.1:0", "127.0.0.1:0"
	cc.BootstrapExpect, cc.Voters = 1, 1
	cc.Keys = patchset.NewKeySet(clusterKey(t).Public())
	cc.API.Listen, cc.API.Token = "127.0.0.1:0", testToken
	cc.API.RatePerSecond, cc.API.Burst = 0.001, 3
	ag, err := StartAgent(cc, "rl", nil, nil, nil, quietLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ag.Stop(false) })
	dial := func(tok string) pb.PatchGateClient {
		conn, err := api.Dial(api.ClientConfig{Server: ag.APIAddr(), Token: tok})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		return pb.NewPatchGateClient(conn)
	}
	bad, good := dial("wrong-token-0123456789"), dial(testToken)
	for i := 0; i < 5; i++ {
		_, err := bad.ListPatchSets(ctxT(t), &pb.ListPatchSetsRequest{})
		wantCode(t, "bad token", err, codes.Unauthenticated)
	}
	for i := 0; i < 3; i++ {
		if _, err := good.ListPatchSets(ctxT(t), &pb.ListPatchSetsRequest{}); err != nil {
			t.Fatalf("call %d within burst: %v", i, err)
		}
	}
	_, err = good.ListPatchSets(ctxT(t), &pb.ListPatchSetsRequest{})
	wantCode(t, "beyond burst", err, codes.ResourceExhausted)
}
