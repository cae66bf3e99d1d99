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

// startBusCluster runs n nodes named prefix0..prefix<n-1> with a cluster
// section (one voter, the others joining through the first's gossip
// address), the bus enabled with routes from membership and an idle
// backend; configure adjusts each configuration first. It waits until every
// bus has its routes to the others.
func startBusCluster(t *testing.T, prefix string, n int, configure func(*Config)) []*Node {
	t.Helper()
	dir := t.TempDir()
	var seed string
	var nodes []*Node
	for i := 0; i < n; i++ {
		cfg := DefaultConfig()
		cfg.Name = fmt.Sprintf("%s%d", prefix, i)
		cfg.Patches = catalog(t)
		cfg.EVE, cfg.HTTP.Listen = "", ""
		cfg.Bus.Enabled = true
		cfg.Bus.Listen, cfg.Bus.ClusterListen = "127.0.0.1:0", "127.0.0.1:0"
		if configure != nil {
			configure(&cfg)
		}
		cc := DefaultClusterConfig()
		tun := consensus.FastConfig()
		cc.Tuning = &tun
		cc.ClusterName = fmt.Sprintf("%s-%d", prefix, os.Getpid())
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
		nd, err := New(cfg, Options{Logger: quietLogger(t),
			Backend: func(Config, func() inline.Inspector, *slog.Logger) (inline.Backend, error) { return idleBackend{}, nil }})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- nd.Run(ctx) }()
		t.Cleanup(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("%s: %v", cfg.Name, err)
			}
		})
		pollFor(t, 15*time.Second, func() error {
			if nd.Agent() == nil || (cfg.HTTP.Listen != "" && nd.HTTPAddr() == "") {
				return fmt.Errorf("%s: not started", cfg.Name)
			}
			return nil
		})
		if seed == "" {
			seed = nd.Agent().Cluster().GossipAddr()
		}
		nodes = append(nodes, nd)
	}
	pollFor(t, 20*time.Second, func() error {
		for _, nd := range nodes {
			if h := nd.Bus().Health(); h.Routes != n-1 || h.Degraded {
				return fmt.Errorf("%s: %d routes, degraded %v (%s)", nd.cfg.Name, h.Routes, h.Degraded, h.Reason)
			}
		}
		return nil
	})
	return nodes
}

// Nodes with a cluster section and the bus enabled but no static routes
// gossip their bus route addresses and route their embedded servers to each
// other from membership, and gossip their failover health.
func TestBusRoutesFollowMembership(t *testing.T) {
	for _, n := range startBusCluster(t, "gw-m", 2, nil) {
		if m := n.Agent().Cluster().LocalMeta(); m.BusAddr != n.Bus().Server().ClusterAddr() {
			t.Errorf("%s gossips bus address %q, its server routes on %q", n.cfg.Name, m.BusAddr, n.Bus().Server().ClusterAddr())
		}
		pollFor(t, 10*time.Second, func() error {
			if m := n.Agent().Cluster().LocalMeta(); m.Health != "ok" {
				return fmt.Errorf("%s gossips health %q", n.cfg.Name, m.Health)
			}
			return nil
		})
	}
}
