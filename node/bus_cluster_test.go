package node

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/patchgate/patchgate/consensus"
	"github.com/patchgate/patchgate/consensus/patchset"
	"github.com/patchgate/patchgate/dataplane/inline"
)

// Nodes with a cluster section and the bus enabled but no static routes
// gossip their bus route addresses and route their embedded servers to each
// other from membership.
func TestBusRoutesFollowMembership(t *testing.T) {
	dir := t.TempDir()
	var seed string
	var nodes []*Node
	for i := 0; i < 2; i++ {
		cfg := DefaultConfig()
		cfg.Name = fmt.Sprintf("gw-m%d", i)
		cfg.Patches = catalog(t)
		cfg.EVE, cfg.HTTP.Listen = "", ""
		cfg.Bus.Enabled = true
		cfg.Bus.Listen, cfg.Bus.ClusterListen = "127.0.0.1:0", "127.0.0.1:0"
		cc := DefaultClusterConfig()
		tun := consensus.FastConfig()
		cc.Tuning = &tun
		cc.ClusterName = fmt.Sprintf("busmember-%d", os.Getpid())
		cc.DataDir = filepath.Join(dir, cfg.Name)
		cc.RaftAddr, cc.GossipAddr = "127.0.0.1:0", "127.0.0.1:0"
		cc.Voters = 1
		if seed == "" {
			cc.BootstrapExpect = 1
		} else {
			cc.Seeds = []string{seed}
		}
		cc.Keys = patchset.NewKeySet(clusterKey(t).Public())
		cc.API.Listen, cc.API.Token = "127.0.0.1:0", testToken
		cfg.Cluster = &cc
		n, err := New(cfg, Options{Logger: quietLogger(t),
			Backend: func(Config, func() inline.Inspector, *slog.Logger) (inline.Backend, error) { return idleBackend{}, nil }})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- n.Run(ctx) }()
		t.Cleanup(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("%s: %v", cfg.Name, err)
			}
		})
		pollFor(t, 15*time.Second, func() error {
			if n.Agent() == nil {
				return fmt.Errorf("%s: agent not started", cfg.Name)
			}
			return nil
		})
		if seed == "" {
			seed = n.Agent().Cluster().GossipAddr()
		}
		nodes = append(nodes, n)
	}
	pollFor(t, 20*time.Second, func() error {
		for _, n := range nodes {
			h := n.Bus().Health()
			if h.Routes != 1 || h.Degraded {
				return fmt.Errorf("%s: %d routes, degraded %v (%s)", n.cfg.Name, h.Routes, h.Degraded, h.Reason)
			}
			if m := n.Agent().Cluster().LocalMeta(); m.BusAddr != n.Bus().Server().ClusterAddr() || m.Health != "ok" {
				return fmt.Errorf("%s gossips bus address %q health %q", n.cfg.Name, m.BusAddr, m.Health)
			}
		}
		return nil
	})
}
