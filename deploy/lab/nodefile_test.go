package lab

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/patchgate/patchgate/node"
)

// TestNodeFileWithClusterIsANodeConfig checks the contract: a node file with
// the default cluster section parses and validates as the daemon's
// configuration, with the lab's addresses, seeds, token and keys.
func TestNodeFileWithClusterIsANodeConfig(t *testing.T) {
	requireRoot(t)
	l := up(t, testConfig(t, L3, 3))
	key := filepath.Join(t.TempDir(), "ops.key.pub")
	f, err := l.DefaultNodeFile(2)
	if err != nil {
		t.Fatal(err)
	}
	if f.Cluster, err = l.DefaultClusterFile(2, "lab-token-0123456789", key); err != nil {
		t.Fatal(err)
	}
	path, err := l.WriteNodeConfig(2, f)
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := node.Parse(path, data)
	if err != nil {
		t.Fatalf("node config with a cluster section: %v\n%s", err, data)
	}
	c := cfg.Cluster
	if c == nil {
		t.Fatalf("no cluster section parsed:\n%s", data)
	}
	if c.RaftAddr != "198.18.2.2:7300" || c.GossipAddr != "198.18.2.2:7301" || c.API.Listen != "198.18.2.2:7400" {
		t.Errorf("addresses: raft %s gossip %s api %s", c.RaftAddr, c.GossipAddr, c.API.Listen)
	}
	if strings.Join(c.Seeds, ",") != "198.18.1.2:7301,198.18.3.2:7301" || c.BootstrapExpect != 3 || c.Voters != 3 {
		t.Errorf("seeds %v, bootstrap_expect %d, voters %d", c.Seeds, c.BootstrapExpect, c.Voters)
	}
	if c.API.Token != "lab-token-0123456789" || len(c.TrustedKeys) != 1 || c.TrustedKeys[0] != key || !c.TestPatchSets {
		t.Errorf("token %q, keys %v, test_patch_sets %v", c.API.Token, c.TrustedKeys, c.TestPatchSets)
	}
	// Defaults the file leaves out stay in force.
	if c.API.RatePerSecond == 0 || c.ClusterName == "" {
		t.Errorf("defaults lost: %+v", c.API)
	}
	// Without a cluster, the section is not written at all.
	f.Cluster = nil
	if path, err = l.WriteNodeConfig(2, f); err != nil {
		t.Fatal(err)
	}
	if data, _ := os.ReadFile(path); strings.Contains(string(data), "cluster") {
		t.Errorf("empty cluster section written:\n%s", data)
	}
}

// TestClusterRoutes checks that after ClusterRoutes node 1 reaches node 3's
// cluster address (through R1), and that the L2 variant has none.
func TestClusterRoutes(t *testing.T) {
	requireRoot(t)
	l := up(t, testConfig(t, L3, 3))
	if err := l.ClusterRoutes(); err != nil {
		t.Fatal(err)
	}
	ln, err := Listen(l.Nodes[2].NS, "tcp", "198.18.3.2:7400")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		if c, err := ln.Accept(); err == nil {
			c.Close()
		}
	}()
	err = l.InNS(l.Nodes[0].NS, func() error {
		c, err := net.DialTimeout("tcp", "198.18.3.2:7400", 5*time.Second)
		if err == nil {
			c.Close()
		}
		return err
	})
	if err != nil {
		t.Errorf("node 1 → node 3 cluster address: %v", err)
	}
	l2 := up(t, testConfig(t, L2, 1))
	if _, err := l2.DefaultClusterFile(1, "lab-token-0123456789"); err == nil {
		t.Errorf("L2 lab: cluster file without node addresses")
	}
}
