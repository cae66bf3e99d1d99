package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/patchgate/patchgate/consensus"
	"github.com/patchgate/patchgate/consensus/patchset"
	"github.com/patchgate/patchgate/dataplane/inline"
	"github.com/patchgate/patchgate/node"
)

// idleBackend feeds the node nothing.
type idleBackend struct{}

func (idleBackend) Run(ctx context.Context) error { <-ctx.Done(); return nil }
func (idleBackend) Ready() bool                   { return true }
func (idleBackend) Stats() inline.Stats           { return inline.Stats{} }

// startGateway runs a one-node cluster whose member is a gateway node (with
// a data plane that reports its drain phase) and returns its API address.
func startGateway(t *testing.T, quiet time.Duration) string {
	t.Helper()
	k, err := patchset.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	cfg := node.DefaultConfig()
	cfg.Name = "gw"
	cfg.Patches = filepath.Join("..", "..", "patches")
	cfg.EVE, cfg.HTTP.Listen = "", ""
	cfg.Drain = node.DrainConfig{Quiet: quiet, Timeout: 30 * time.Second}
	cc := node.DefaultClusterConfig()
	tun := consensus.FastConfig()
	cc.Tuning = &tun
	cc.ClusterName = fmt.Sprintf("patchctl-drain-%d", os.Getpid())
	cc.DataDir = t.TempDir()
	cc.RaftAddr, cc.GossipAddr = "127.0.0.1:0", "127.0.0.1:0"
	cc.BootstrapExpect, cc.Voters = 1, 1
	cc.Keys = patchset.NewKeySet(k.Public())
	cc.API.Listen, cc.API.Token = "127.0.0.1:0", token
	cfg.Cluster = &cc
	n, err := node.New(cfg, node.Options{Logger: slog.New(slog.DiscardHandler),
		Backend: func(node.Config, func() inline.Inspector, *slog.Logger) (inline.Backend, error) {
			return idleBackend{}, nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	deadline := time.Now().Add(15 * time.Second)
	for n.Agent() == nil || !n.Agent().Cluster().IsLeader() || len(n.Agent().Cluster().FSM().State().Nodes) != 1 {
		if time.Now().After(deadline) {
			t.Fatal("no leader")
		}
		time.Sleep(10 * time.Millisecond)
	}
	return n.Agent().APIAddr()
}

// ctlDrain runs patchctl with its own --timeout (ctl adds 20 s).
func ctlDrain(t *testing.T, server string, args ...string) (string, int) {
	t.Helper()
	return ctl(t, "", append(args, "--server", server, "--token", token)...)
}

// `node drain NAME` waits until the node reports drained (printing its
// phase), exits non-zero when its --timeout passes first; `node undrain`
// waits until it announces again.
func TestNodeDrainWait(t *testing.T) {
	srv := startGateway(t, 700*time.Millisecond)
	// Deadline shorter than the node's quiet period: times out, exit 1.
	out, code := ctlDrain(t, srv, "node", "drain", "gw", "--timeout", "300ms", "--interval", "20ms")
	if code != 1 || !strings.Contains(out, "timed out waiting for gw to be drained") {
		t.Fatalf("drain with a short deadline: exit %d: %s", code, out)
	}
	out, code = ctlDrain(t, srv, "node", "drain", "gw", "--interval", "20ms")
	if code != 0 || !strings.Contains(out, "gw: drained, 0 flows remaining (drain flag applied)") {
		t.Fatalf("drain --wait: exit %d: %s", code, out)
	}
	if out := mustCtl(t, srv, "status"); !strings.Contains(out, "drained") {
		t.Fatalf("status after the drain: %s", out)
	}
	out, code = ctlDrain(t, srv, "node", "undrain", "gw", "--interval", "20ms")
	if code != 0 || !strings.Contains(out, "gw: announce (no drain flag applied)") {
		t.Fatalf("undrain --wait: exit %d: %s", code, out)
	}
	// Unknown node: the write is refused.
	if out, code := ctlDrain(t, srv, "node", "drain", "nope", "--timeout", "5s"); code != 1 {
		t.Fatalf("drain of an unknown node: exit %d: %s", code, out)
	}
}
