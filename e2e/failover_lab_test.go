package e2e

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/patchgate/patchgate/consensus/patchset"
	"github.com/patchgate/patchgate/deploy/lab"
)

// Failover lab shape: several client namespaces (so sessions come from
// several addresses), server 1 for keep-alive HTTP and TLS, server 2 for the
// bulk transfers.
const (
	foClients = 4
	foServers = 2
	// foFail is the nodes' fail policy: closed, so that a killed node is a
	// dead box until the routers withdraw it (with fail-open its NFQUEUE
	// rules stay with --queue-bypass and it forwards uninspected for those
	// ~300 ms — a blocked flow could leak through it).
	foFail = "closed"
)

// foOptions says what a failover lab runs.
type foOptions struct {
	// sharing turns the bus (flow checkpoints) on.
	sharing bool
	// cluster makes the nodes a Raft cluster (drain needs it).
	cluster bool
}

// foLab is a 3-node L3 lab with the route controller running, every node
// in the routers' groups.
type foLab struct {
	l     *lab.Lab
	w     *lab.Withdrawal
	wcfg  lab.WithdrawalConfig
	c     *ctl           // patchctl against the nodes (cluster only)
	names map[int]string // cluster node ids by index (cluster only)
}

// startFailoverLab builds and starts the lab: node files with the health
// endpoint on the R1-side address, mid-stream pickup, the bus (sharing) and
// the cluster section (cluster); it waits for the bus cluster and the Raft
// cluster to form, starts the route controller and waits until every node
// has stayed in the routers' groups for a second.
func startFailoverLab(t *testing.T, o foOptions) *foLab {
	t.Helper()
	l := upLabWith(t, lab.L3, foFail, func(c *lab.Config) { c.Clients, c.Servers = foClients, foServers })
	if err := l.ClusterRoutes(); err != nil {
		t.Fatal(err)
	}
	fl := &foLab{l: l, wcfg: lab.DefaultWithdrawalConfig(), names: map[int]string{}}
	var keyPub string
	if o.cluster {
		dir := t.TempDir()
		key, err := patchset.GenerateKey()
		if err != nil {
			t.Fatal(err)
		}
		keyPath := filepath.Join(dir, "ops.key")
		if err := patchset.WriteKeyPair(key, keyPath, "e2e"); err != nil {
			t.Fatal(err)
		}
		keyPub = keyPath + ".pub"
		tok := make([]byte, 16)
		_, _ = rand.Read(tok)
		fl.c = &ctl{l: l, bin: buildPatchctl(t), token: hex.EncodeToString(tok)}
	}
	for _, n := range l.Nodes {
		f, err := l.DefaultNodeFile(n.Index)
		if err != nil {
			t.Fatal(err)
		}
		if f.HTTP.Listen, err = l.HealthListen(n.Index, fl.wcfg.HealthPort); err != nil {
			t.Fatal(err)
		}
		f.Engine.Midstream = "pickup"
		if o.sharing {
			if f.Bus, err = l.DefaultBusFile(n.Index); err != nil {
				t.Fatal(err)
			}
		}
		if o.cluster {
			if f.Cluster, err = l.DefaultClusterFile(n.Index, fl.c.token, keyPub); err != nil {
				t.Fatal(err)
			}
			fl.names[n.Index] = f.Cluster.NodeID
		}
		if _, err := l.WriteNodeConfig(n.Index, f); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range l.Nodes {
		if err := l.StartNode(n.Index); err != nil {
			t.Fatal(err)
		}
	}
	if o.sharing {
		fl.waitBusRoutes(t, 20*time.Second)
	}
	if o.cluster {
		fl.waitCluster(t, 30*time.Second)
	}
	w, err := l.StartWithdrawal(fl.wcfg)
	if err != nil {
		t.Fatal(err)
	}
	fl.w = w
	t.Cleanup(w.Stop)
	fl.waitAllUp(t, 20*time.Second)
	return fl
}

// waitBusRoutes waits until every running node's embedded NATS server has
// routes to all the others.
func (fl *foLab) waitBusRoutes(t *testing.T, bound time.Duration) {
	t.Helper()
	var last string
	if !waitFor(bound, func() bool {
		for _, n := range fl.l.Nodes {
			v, err := metric(fl.l, n.Index, "patchgate_bus_routes")
			if err != nil || v < float64(len(fl.l.Nodes)-1) {
				last = fmt.Sprintf("node %d: bus routes %v, %v", n.Index, v, err)
				return false
			}
		}
		return true
	}) {
		t.Fatalf("the bus cluster did not form: %s", last)
	}
}

// waitCluster waits until every node reports a leader and all nodes alive
// in gossip.
func (fl *foLab) waitCluster(t *testing.T, bound time.Duration) {
	t.Helper()
	var st clusterStatus
	var err error
	if !waitFor(bound, func() bool {
		for _, n := range fl.l.Nodes {
			st, err = fl.c.status(n.Index)
			if err != nil || st.Leader == "" || len(st.Nodes) != len(fl.l.Nodes) {
				return false
			}
			for _, m := range st.Nodes {
				if m.Gossip != "alive" {
					return false
				}
			}
		}
		return true
	}) {
		t.Fatalf("the cluster did not form: %+v, %v", st, err)
	}
}

// waitAllUp waits until every node is in the routers' groups and has been
// for a second (so that new flows spread over all of them).
func (fl *foLab) waitAllUp(t *testing.T, bound time.Duration) {
	t.Helper()
	if !waitFor(bound, func() bool {
		for _, n := range fl.l.Nodes {
			if up, since := fl.w.Up(n.Index); !up || (!since.IsZero() && time.Since(since) < time.Second) {
				return false
			}
		}
		return true
	}) {
		t.Fatalf("not every node is in the routers' groups")
	}
	if err := fl.w.Err(); err != nil {
		t.Fatal(err)
	}
}

// waitWithdrawn waits until the route controller withdrew node i and
// returns when it did.
func (fl *foLab) waitWithdrawn(t *testing.T, i int, bound time.Duration) time.Time {
	t.Helper()
	if !waitFor(bound, func() bool { up, _ := fl.w.Up(i); return !up }) {
		t.Fatalf("the route controller did not withdraw node %d within %v", i, bound)
	}
	if err := fl.w.Err(); err != nil {
		t.Fatal(err)
	}
	_, at := fl.w.Up(i)
	return at
}

// pickups sums the running nodes' checkpoint pickups (cache and bus hits).
func (fl *foLab) pickups() int {
	total := 0
	for _, n := range fl.l.Nodes {
		if fl.l.NodePID(n.Index) == 0 {
			continue
		}
		for _, o := range []string{"cache_hit", "bus_hit"} {
			if v, err := metric(fl.l, n.Index, `patchgate_bus_pickups_total{node="`+n.Name+`",outcome="`+o+`"}`); err == nil {
				total += int(v)
			}
		}
	}
	return total
}

// logBusMetrics logs the running nodes' pickup and lookup counters.
func (fl *foLab) logBusMetrics(t *testing.T) {
	t.Helper()
	for _, n := range fl.l.Nodes {
		if fl.l.NodePID(n.Index) == 0 {
			continue
		}
		if _, body, err := fl.l.NodeGet(n.Index, "/metrics"); err == nil {
			var keep []string
			for _, line := range strings.Split(string(body), "\n") {
				if strings.HasPrefix(line, "patchgate_bus_pickups_total") || strings.HasPrefix(line, "patchgate_bus_checkpoints_total{outcome=\"dropped\"") {
					keep = append(keep, line)
				}
			}
			t.Logf("node %d: %s", n.Index, strings.Join(keep, "; "))
		}
	}
}

// flowKey is one TCP flow from a client address to a server address.
type flowKey struct {
	src, dst netip.AddrPort
}

// flowDevs asks R1's kernel which link ("n1", the node) each flow takes now,
// in one `ip -batch` run; "" for a flow it could not tell.
func flowDevs(l *lab.Lab, flows []flowKey) ([]string, error) {
	var in strings.Builder
	for _, f := range flows {
		fmt.Fprintf(&in, "route get %s from %s iif lan ipproto tcp sport %d dport %d\n",
			f.dst.Addr().Unmap(), f.src.Addr().Unmap(), f.src.Port(), f.dst.Port())
	}
	cmd := lab.Command(l.R1.NS, "ip", "-force", "-batch", "-")
	cmd.Stdin = strings.NewReader(in.String())
	out, err := cmd.Output()
	if err != nil && len(out) == 0 {
		return nil, fmt.Errorf("R1 route get: %w", err)
	}
	var devs []string
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || strings.HasPrefix(line, " ") || strings.HasPrefix(line, "\t") {
			continue
		}
		dev := ""
		for j := 0; j+1 < len(f); j++ {
			if f[j] == "dev" {
				dev = f[j+1]
				break
			}
		}
		devs = append(devs, dev)
	}
	if len(devs) != len(flows) {
		return nil, fmt.Errorf("R1 route get: %d answers for %d flows", len(devs), len(flows))
	}
	return devs, nil
}

// portsVia returns n client ports, searched upward from *next (which it
// advances, so no port is handed out twice), whose flow from src to dst the
// routers send through node.
func portsVia(l *lab.Lab, src netip.Addr, dst netip.AddrPort, node, n int, next *int) ([]int, error) {
	var out []int
	want := fmt.Sprintf("n%d", node)
	for tries := 0; tries < 8 && len(out) < n; tries++ {
		const batch = 64
		flows := make([]flowKey, batch)
		for i := range flows {
			flows[i] = flowKey{netip.AddrPortFrom(src, uint16(*next+i)), dst}
		}
		devs, err := flowDevs(l, flows)
		if err != nil {
			return nil, err
		}
		for i, d := range devs {
			if d == want && len(out) < n {
				out = append(out, *next+i)
			}
		}
		*next += batch
	}
	if len(out) < n {
		return out, fmt.Errorf("found %d of %d ports through node %d", len(out), n, node)
	}
	return out, nil
}
