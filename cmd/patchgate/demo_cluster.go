package main

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/patchgate/patchgate/consensus/patchset"
	"github.com/patchgate/patchgate/deploy/lab"
)

// demoCluster is the demo's control plane (L3 variant): the nodes form a
// Raft cluster, share flow state over their embedded NATS servers, and the
// lab's route controller withdraws a node the routers must stop using. The
// operator's side is patchctl, run inside a node's namespace against the
// cluster API with a bearer token, and a signing key for patch sets.
type demoCluster struct {
	l        *lab.Lab
	w        io.Writer
	key      *patchset.PrivateKey
	keyPath  string
	token    string
	patchctl string
	names    map[int]string
	wd       *lab.Withdrawal
	wcfg     lab.WithdrawalConfig

	mu      sync.Mutex
	changes []routeChange // the route controller's decisions
}

// routeChange is one decision of the route controller.
type routeChange struct {
	node int
	up   bool
	at   time.Time
}

// withdrawnAfter returns when node i was last withdrawn after t (zero if not).
func (c *demoCluster) withdrawnAfter(i int, t time.Time) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, ch := range c.changes {
		if ch.node == i && !ch.up && !ch.at.Before(t) {
			return ch.at
		}
	}
	return time.Time{}
}

// demoSettle bounds how long the demo waits for the cluster to form, a
// version to be applied everywhere or a node to rejoin.
const demoSettle = 45 * time.Second

// findPatchctl returns the patchctl binary beside the running executable
// (make build puts both in bin/).
func findPatchctl() (string, error) {
	exe, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("demo: %w", err)
	}
	p := filepath.Join(filepath.Dir(exe), "patchctl")
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("demo: patchctl not found beside %s (run `make build`): %w", exe, err)
	}
	return p, nil
}

// newDemoCluster writes the nodes' configuration files: the patch directory
// v1Dir until the cluster assigns a version, flow sharing over an embedded
// NATS cluster, the cluster section (raft, gossip and API on each node's
// R1-side address, the token, the demo key as the only trusted key), and
// /healthz and /metrics on the address the route controller checks.
func newDemoCluster(l *lab.Lab, w io.Writer, v1Dir string) (*demoCluster, error) {
	ctl, err := findPatchctl()
	if err != nil {
		return nil, err
	}
	key, err := patchset.GenerateKey()
	if err != nil {
		return nil, fmt.Errorf("demo: %w", err)
	}
	c := &demoCluster{l: l, w: w, key: key, keyPath: filepath.Join(l.Dir, "demo-ops.key"), patchctl: ctl,
		names: map[int]string{}, wcfg: lab.DefaultWithdrawalConfig()}
	if err := patchset.WriteKeyPair(key, c.keyPath, "patchgate demo"); err != nil {
		return nil, fmt.Errorf("demo: %w", err)
	}
	tok := make([]byte, 16)
	if _, err := rand.Read(tok); err != nil {
		return nil, fmt.Errorf("demo: %w", err)
	}
	c.token = hex.EncodeToString(tok)
	if err := l.ClusterRoutes(); err != nil {
		return nil, fmt.Errorf("demo: %w", err)
	}
	for _, n := range l.Nodes {
		f, err := l.DefaultNodeFile(n.Index)
		if err != nil {
			return nil, fmt.Errorf("demo: %w", err)
		}
		f.Patches = v1Dir
		if f.HTTP.Listen, err = l.HealthListen(n.Index, c.wcfg.HealthPort); err != nil {
			return nil, fmt.Errorf("demo: %w", err)
		}
		f.Engine.Midstream = "pickup"
		if f.Bus, err = l.DefaultBusFile(n.Index); err != nil {
			return nil, fmt.Errorf("demo: %w", err)
		}
		if f.Cluster, err = l.DefaultClusterFile(n.Index, c.token, c.keyPath+".pub"); err != nil {
			return nil, fmt.Errorf("demo: %w", err)
		}
		c.names[n.Index] = f.Cluster.NodeID
		if _, err := l.WriteNodeConfig(n.Index, f); err != nil {
			return nil, fmt.Errorf("demo: %w", err)
		}
	}
	return c, nil
}

// run runs patchctl in node i's namespace against node i's API.
func (c *demoCluster) run(i int, args ...string) (string, error) {
	return c.l.Patchctl(i, c.patchctl, c.token, args...)
}

// demoStatus is the part of `patchctl status --json` the demo reads.
type demoStatus struct {
	Leader string `json:"leader"`
	Nodes  []struct {
		Name           string `json:"name"`
		Gossip         string `json:"gossip"`
		Health         string `json:"health"`
		AppliedVersion string `json:"appliedVersion"`
	} `json:"nodes"`
}

func (c *demoCluster) status(i int) (demoStatus, error) {
	var st demoStatus
	out, err := c.run(i, "status", "--json")
	if err != nil {
		return st, err
	}
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		return st, fmt.Errorf("demo: patchctl status --json: %w", err)
	}
	return st, nil
}

// waitCluster waits until asking node ask shows a leader and every node
// alive, with the applied version want[name] where want names one, or
// demoSettle.
func (c *demoCluster) waitCluster(ask int, want map[string]string) error {
	var last string
	ok := waitUntil(demoSettle, func() bool {
		st, err := c.status(ask)
		if err != nil {
			last = err.Error()
			return false
		}
		last = fmt.Sprintf("%+v", st)
		if st.Leader == "" || len(st.Nodes) != len(c.l.Nodes) {
			return false
		}
		for _, n := range st.Nodes {
			if v, ok := want[n.Name]; n.Gossip != "alive" || (ok && n.AppliedVersion != v) {
				return false
			}
		}
		return true
	})
	if !ok {
		return fmt.Errorf("demo: cluster did not reach %v within %v: %s", want, demoSettle, last)
	}
	return nil
}

// versions returns want for waitCluster: version v on every node.
func (c *demoCluster) versions(v string) map[string]string {
	m := map[string]string{}
	for _, name := range c.names {
		m[name] = v
	}
	return m
}

// printStatus prints `patchctl status` as node ask sees it, indented.
func (c *demoCluster) printStatus(ask int, title string) {
	out, err := c.run(ask, "status")
	if err != nil {
		fmt.Fprintf(c.w, "   patchctl status (%s): %v\n", title, err)
		return
	}
	fmt.Fprintf(c.w, "   $ patchctl status    # %s\n", title)
	for _, line := range strings.Split(strings.TrimRight(out, "\n"), "\n") {
		fmt.Fprintln(c.w, "   "+line)
	}
}

// push signs the patch directory dir as version v and pushes it with
// patchctl through node ask's API.
func (c *demoCluster) push(ask int, dir string, v uint64, message string, args ...string) (string, error) {
	b, err := patchset.Build(dir, v, c.key, patchset.Meta{Author: "demo", Message: message})
	if err != nil {
		return "", fmt.Errorf("demo: sign v%d: %w", v, err)
	}
	data, err := b.Marshal()
	if err != nil {
		return "", fmt.Errorf("demo: %w", err)
	}
	// The namespaces share the file system: patchctl reads the file.
	path := filepath.Join(c.l.Dir, fmt.Sprintf("demo-v%d.bundle", v))
	if err := os.WriteFile(path, data, 0o644); err != nil {
		return "", fmt.Errorf("demo: %w", err)
	}
	argv := append([]string{"patchset", "push", path}, args...)
	out, err := c.run(ask, argv...)
	if err != nil {
		return out, fmt.Errorf("demo: patchctl %s: %w", strings.Join(argv, " "), err)
	}
	return "$ patchctl " + strings.Join(append([]string{"patchset", "push", filepath.Base(path)}, args...), " "), nil
}

// startWithdrawal starts the route controller and waits until every node
// has been in both routers' groups for a second.
func (c *demoCluster) startWithdrawal() error {
	cfg := c.wcfg
	cfg.OnChange = func(node int, up bool, at time.Time) {
		c.mu.Lock()
		c.changes = append(c.changes, routeChange{node, up, at})
		c.mu.Unlock()
	}
	wd, err := c.l.StartWithdrawal(cfg)
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	c.wd = wd
	if !waitUntil(demoSettle, func() bool {
		for _, n := range c.l.Nodes {
			if up, since := wd.Up(n.Index); !up || (!since.IsZero() && time.Since(since) < time.Second) {
				return false
			}
		}
		return true
	}) {
		return errors.New("demo: not every node entered the routers' groups")
	}
	return nil
}

// waitBus waits until every node but skip has a route to every other
// node's embedded NATS server.
func (c *demoCluster) waitBus(e *demoEnv, skip int) error {
	want := float64(len(c.l.Nodes) - 1)
	var last string
	if !waitUntil(demoSettle, func() bool {
		for _, n := range c.l.Nodes {
			if n.Index == skip {
				continue
			}
			v, err := e.metric(n.Index, "patchgate_bus_routes")
			if err != nil || v < want {
				last = fmt.Sprintf("n%d: %v routes (%v)", n.Index, v, err)
				return false
			}
		}
		return true
	}) {
		return fmt.Errorf("demo: the flow-state bus did not form: %s", last)
	}
	return nil
}

// close stops the route controller.
func (c *demoCluster) close() {
	if c.wd != nil {
		c.wd.Stop()
	}
}

// splitCatalog copies the patch directory src into dst without the file of
// patch id (the "new" patch rolled out later) and returns that file's path
// ("" when the catalog has no such patch).
func splitCatalog(src, dst, id string) (string, error) {
	var held string
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || filepath.Ext(p) != ".yaml" {
			return err
		}
		if strings.TrimSuffix(filepath.Base(p), ".yaml") == id {
			held = p
			return nil
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if err := os.MkdirAll(filepath.Join(dst, filepath.Dir(rel)), 0o755); err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), data, 0o644)
	})
	if err != nil {
		return "", fmt.Errorf("demo: copying %s: %w", src, err)
	}
	return held, nil
}
