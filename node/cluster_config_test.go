package node

import (
	"strings"
	"testing"
	"time"
)

const clusterYAML = `name: gw1
cluster:
  node_id: gw1
  data_dir: /var/lib/patchgate/cluster
  raft_addr: 192.0.2.1:7300
  gossip_addr: 192.0.2.1:7301
  seeds: [192.0.2.2:7301, 192.0.2.3:7301]
  bootstrap_expect: 3
  trusted_keys: [/etc/patchgate/ops.key.pub]
  api:
    listen: 192.0.2.1:7400
    token: 0123456789abcdef0123456789abcdef
    forward_timeout: 5s
`

func TestClusterSectionParsesOverDefaults(t *testing.T) {
	cfg, err := Parse("test.yaml", []byte(clusterYAML))
	if err != nil {
		t.Fatal(err)
	}
	c := cfg.Cluster
	if c == nil || c.NodeID != "gw1" || len(c.Seeds) != 2 || c.BootstrapExpect != 3 {
		t.Fatalf("cluster section: %+v", c)
	}
	// Unset fields keep their defaults.
	if c.Voters != 3 || c.ClusterName != "patchgate" || !c.TestPatchSets || c.API.RatePerSecond == 0 {
		t.Fatalf("defaults lost: %+v", c)
	}
	if c.API.ForwardTimeout != 5*time.Second {
		t.Fatalf("api.forward_timeout = %v", c.API.ForwardTimeout)
	}
	if cfg, _ := Parse("x.yaml", []byte("name: gw1\n")); cfg.Cluster != nil {
		t.Fatal("no cluster section, yet Cluster is set")
	}
}

func TestClusterSectionValidate(t *testing.T) {
	for _, tc := range []struct{ drop, field string }{
		{"  trusted_keys: [/etc/patchgate/ops.key.pub]\n", "cluster.trusted_keys"},
		{"    token: 0123456789abcdef0123456789abcdef\n", "cluster.api"},
		{"  data_dir: /var/lib/patchgate/cluster\n", ""},
	} {
		y := strings.Replace(clusterYAML, tc.drop, "", 1)
		_, err := Parse("test.yaml", []byte(y))
		if tc.field == "" {
			if err != nil {
				t.Errorf("without %q: %v", tc.drop, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.field) {
			t.Errorf("without %q: got %v, want an error naming %s", strings.TrimSpace(tc.drop), err, tc.field)
		}
	}
}
