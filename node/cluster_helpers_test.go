package node

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/patchgate/patchgate/api"
	"github.com/patchgate/patchgate/api/pb"
	"github.com/patchgate/patchgate/consensus"
	"github.com/patchgate/patchgate/consensus/patchset"
	"github.com/patchgate/patchgate/dataplane/engine"
)

const testToken = "test-token-0123456789abcdef"

var (
	testKeyOnce sync.Once
	testKey     *patchset.PrivateKey
)

func clusterKey(t testing.TB) *patchset.PrivateKey {
	testKeyOnce.Do(func() {
		k, err := patchset.GenerateKey()
		if err != nil {
			panic(err)
		}
		testKey = k
	})
	return testKey
}

// pollFor polls f every 10 ms until it returns nil or total has passed.
func pollFor(t testing.TB, total time.Duration, f func() error) {
	t.Helper()
	deadline := time.Now().Add(total)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("condition not met after %v: %v", total, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// uriPatch drops HTTP requests whose raw URI is longer than limit.
func uriPatch(id string, sid, limit int) []byte {
	return []byte(strings.NewReplacer("ID", id, "SID", strconv.Itoa(sid), "LIMIT", strconv.Itoa(limit)).Replace(`id: ID
sid: SID
title: test patch ID
severity: high
category: dos
protocol: http
event: http.request_headers
when: len(uri.raw) > LIMIT
action: drop
tests:
  - name: long uri
    match: true
    to_server: "GET /aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa HTTP/1.1\r\nHost: x\r\n\r\n"
  - name: short uri
    match: false
    to_server: "GET / HTTP/1.1\r\nHost: x\r\n\r\n"
`))
}

// testBundle builds a signed bundle of one patch X-1 with the given URI limit.
func testBundle(t testing.TB, key *patchset.PrivateKey, version uint64, limit int) []byte {
	t.Helper()
	files := []patchset.File{{Name: "X-1.yaml", Data: uriPatch("X-1", 9100001, limit)}}
	b, err := patchset.New(files, version, key, patchset.Meta{Author: "test", Time: time.Unix(1700000000, 0).UTC(), Message: fmt.Sprintf("v%d", version)})
	if err != nil {
		t.Fatal(err)
	}
	data, err := b.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// agentCluster is n agents, each with its own engine, on loopback.
type agentCluster struct {
	t      testing.TB
	agents []*Agent
	engs   []*engine.Engine
}

func quietLogger(t testing.TB) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	return slog.New(slog.DiscardHandler)
}

// startAgents starts an n-node cluster (all voters bootstrap) and waits until
// it has a leader and every node is in the roster.
func startAgents(t testing.TB, n int) *agentCluster {
	t.Helper()
	key := clusterKey(t)
	ac := &agentCluster{t: t}
	dir := t.TempDir()
	tuning := consensus.FastConfig()
	var seed string
	for i := 0; i < n; i++ {
		cfg := DefaultClusterConfig()
		tun := tuning
		cfg.Tuning = &tun
		cfg.NodeID = fmt.Sprintf("n%d", i)
		cfg.ClusterName = fmt.Sprintf("nodetest-%d-%s", os.Getpid(), strings.ReplaceAll(t.Name(), "/", "_"))
		cfg.DataDir = filepath.Join(dir, cfg.NodeID)
		cfg.RaftAddr, cfg.GossipAddr = "127.0.0.1:0", "127.0.0.1:0"
		cfg.BootstrapExpect, cfg.Voters = n, n
		if seed != "" {
			cfg.Seeds = []string{seed}
		}
		cfg.Keys = patchset.NewKeySet(key.Public())
		cfg.TestPatchSets = true
		cfg.API = api.DefaultConfig()
		cfg.API.Listen, cfg.API.Token = "127.0.0.1:0", testToken
		ec := engine.DefaultConfig()
		ec.Shards = 2
		eng, err := engine.New(ec, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		ag, err := StartAgent(cfg, cfg.NodeID, eng, &localView{eng: eng}, api.NewAlertHub(), quietLogger(t))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = ag.Stop(false) })
		if seed == "" {
			seed = ag.Cluster().GossipAddr()
		}
		ac.agents = append(ac.agents, ag)
		ac.engs = append(ac.engs, eng)
	}
	pollFor(t, 20*time.Second, func() error {
		l := ac.leader()
		if l < 0 {
			return fmt.Errorf("no leader")
		}
		if got := len(ac.agents[l].Cluster().FSM().State().Nodes); got != n {
			return fmt.Errorf("roster has %d nodes", got)
		}
		for i, a := range ac.agents {
			for _, m := range a.Cluster().Members() {
				if m.Meta.APIAddr == "" {
					return fmt.Errorf("n%d sees %s without API address", i, m.Name)
				}
			}
		}
		return nil
	})
	return ac
}

// leader returns the index of the leader (-1: none).
func (ac *agentCluster) leader() int {
	for i, a := range ac.agents {
		if a.Cluster().IsLeader() {
			return i
		}
	}
	return -1
}

// follower returns the index of a follower.
func (ac *agentCluster) follower() int {
	l := ac.leader()
	for i := range ac.agents {
		if i != l {
			return i
		}
	}
	return -1
}

// client returns an authenticated API client for node i.
func (ac *agentCluster) client(i int, token string) pb.PatchGateClient {
	ac.t.Helper()
	conn, err := api.Dial(api.ClientConfig{Server: ac.agents[i].APIAddr(), Token: token})
	if err != nil {
		ac.t.Fatal(err)
	}
	ac.t.Cleanup(func() { conn.Close() })
	return pb.NewPatchGateClient(conn)
}

// waitVersions waits until every engine runs the wanted program version.
func (ac *agentCluster) waitVersions(want ...uint64) {
	ac.t.Helper()
	pollFor(ac.t, 15*time.Second, func() error {
		for i, e := range ac.engs {
			if got := e.Program().Version; got != want[i] {
				return fmt.Errorf("n%d runs version %d, want %d", i, got, want[i])
			}
		}
		return nil
	})
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}
