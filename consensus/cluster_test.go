package consensus

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/patchgate/patchgate/consensus/patchset"
)

func TestConfigValidate(t *testing.T) {
	good := FastConfig()
	good.NodeName, good.DataDir = "n0", t.TempDir()
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	d := DefaultConfig()
	d.NodeName, d.DataDir = "n0", "/x"
	if err := d.Validate(); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		field string
		mod   func(*Config)
	}{
		{"NodeName", func(c *Config) { c.NodeName = "bad name" }},
		{"DataDir", func(c *Config) { c.DataDir = "" }},
		{"RaftBind", func(c *Config) { c.RaftBind = "nohost" }},
		{"GossipAdvertise", func(c *Config) { c.GossipAdvertise = "x" }},
		{"Seeds[1]", func(c *Config) { c.Seeds = []string{"127.0.0.1:1", "oops"} }},
		{"Voters", func(c *Config) { c.Voters = 4 }},
		{"BootstrapExpect", func(c *Config) { c.BootstrapExpect = 5 }},
		{"Raft.LeaderLeaseTimeout", func(c *Config) { c.Raft.LeaderLeaseTimeout = time.Hour }},
		{"Raft.ElectionTimeout", func(c *Config) { c.Raft.ElectionTimeout = time.Millisecond }},
		{"Gossip.ProbeTimeout", func(c *Config) { c.Gossip.ProbeTimeout = time.Hour }},
		{"ApplyTimeout", func(c *Config) { c.ApplyTimeout = 0 }},
	}
	for _, tc := range cases {
		c := good
		tc.mod(&c)
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), tc.field+":") {
			t.Errorf("%s: %v", tc.field, err)
		}
	}
	c := good
	c.RaftBind = "0.0.0.0:0"
	if _, err := Start(c); err == nil || !strings.Contains(err.Error(), "RaftAdvertise") {
		t.Fatalf("unspecified raft address accepted: %v", err)
	}
}

// TestThreeNodes: election, writes on the leader only (followers name the
// leader), replication, the applier reports, and bad patch sets are refused
// before they reach the log.
func TestThreeNodes(t *testing.T) {
	tc := makeCluster(t, 3, 3, nil)
	l := tc.leader()
	f := (l + 1) % 3
	_, err := tc.node(f).PushPatchSet(bundleBytes(t, testKey, 1, map[string]int{"X-1": 40}), Plan{}, "x")
	var nle *NotLeaderError
	if !errors.As(err, &nle) || !errors.Is(err, ErrNotLeader) || nle.LeaderID != tc.cfgs[l].NodeName ||
		nle.LeaderRaftAddr != tc.node(l).RaftAddr() || nle.LeaderAPIAddr != tc.cfgs[l].APIAddr {
		t.Fatalf("follower write: %v", err)
	}
	tc.push(1, Plan{}, map[string]int{"X-1": 40, "X-2": 50})
	tc.ensureSame()
	tc.waitReported(f, map[string]uint64{"n0": 1, "n1": 1, "n2": 1})
	tc.checkHashes()

	// Refused before the log: unsigned, unknown key, tampered, broken.
	other, _ := patchset.GenerateKey()
	idx := tc.node(l).FSM().AppliedIndex()
	broken := bundleBytes(t, nil, 2, map[string]int{"X-1": 40})
	b, _ := patchset.Unmarshal(bundleBytes(t, testKey, 2, map[string]int{"X-1": 40}))
	b.Files[0].Data = []byte(strings.Replace(string(b.Files[0].Data), "len(uri.raw)", "nosuch", 1))
	tampered, _ := b.Marshal()
	b.Sign(testKey) // signed, but the manifest still lists the old hash
	bad := []struct {
		name   string
		bundle []byte
		want   string
	}{
		{"unsigned", broken, "not signed"},
		{"unknown key", bundleBytes(t, other, 2, map[string]int{"X-1": 40}), "not trusted"},
		{"tampered", tampered, "modified after it was built"},
		{"garbage", []byte("{}"), "bundle"},
	}
	for _, c := range bad {
		if _, err := tc.node(l).PushPatchSet(c.bundle, Plan{}, "x"); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v", c.name, err)
		}
	}
	// Signed and intact, but a predicate does not compile / a test fails.
	for name, patches := range map[string][]byte{
		"compile": []byte(strings.Replace(string(patchYAML("X-1", 9100001, 40)), "len(uri.raw)", "nosuch", 1)),
		"tests":   []byte(strings.Replace(string(patchYAML("X-1", 9100001, 40)), "> 40", "> 4000", 1)),
	} {
		bb, _ := patchset.New([]patchset.File{{Name: "X-1.yaml", Data: patches}}, 2, testKey, patchset.Meta{Time: t0})
		data, _ := bb.Marshal()
		if _, err := tc.node(l).PushPatchSet(data, Plan{}, "x"); err == nil {
			t.Errorf("%s failure accepted", name)
		}
	}
	// Conflicts are refused before the log too.
	if _, err := tc.node(l).Promote(1, "x"); !errors.Is(err, ErrConflict) {
		t.Fatalf("promote without rollout: %v", err)
	}
	if got := tc.node(l).FSM().AppliedIndex(); got != idx {
		t.Fatalf("refused writes reached the log: index %d -> %d", idx, got)
	}
	tc.ensureSame()
}
