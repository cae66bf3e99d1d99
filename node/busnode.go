package node

import (
	"context"
	"fmt"
	"log/slog"
	"slices"

	"github.com/patchgate/patchgate/bus"
	"github.com/patchgate/patchgate/consensus"
	"github.com/patchgate/patchgate/dataplane"
	"github.com/patchgate/patchgate/dataplane/engine"
	"github.com/patchgate/patchgate/dataplane/flow"
)

// openBus opens the flow-state bus the configuration enables (nil, nil when
// it is off).
func openBus(cfg Config, log *slog.Logger) (*bus.Bus, error) {
	if !cfg.Bus.Enabled {
		return nil, nil
	}
	bc, err := cfg.Bus.busConfig(cfg.Name)
	if err != nil {
		return nil, fmt.Errorf("node: bus: %w", err)
	}
	bc.Logf = func(format string, args ...any) {
		if log.Enabled(context.Background(), slog.LevelDebug) {
			log.Debug(fmt.Sprintf(format, args...))
		}
	}
	b, err := bus.Open(bc)
	if err != nil {
		return nil, fmt.Errorf("node: bus: %w", err)
	}
	if len(cfg.Bus.URLs) == 0 {
		b.SetPeers(len(cfg.Bus.Routes))
	}
	return b, nil
}

// busHooks returns the engine hooks that share flow state over b: a flow's
// checkpoint is queued on every message boundary and verdict change (never
// blocking: a full queue or a disconnected bus drops and counts it), and an
// unknown mid-stream flow is looked up in the cache, then on the bus within
// the bus's lookup timeout (the engine holds the shard meanwhile).
func busHooks(b *bus.Bus) engine.Hooks {
	return engine.Hooks{
		Boundary: func(k flow.Key, _ dataplane.Direction, export func() []byte) {
			b.PublishOwned(k, export())
		},
		Resume: b.Resume,
	}
}

// liveFunc answers peers' lookups from the engine's live flows.
func liveFunc(eng *engine.Engine) bus.LiveFunc {
	return func(k flow.Key) []byte {
		rec, err := eng.Export(k)
		if err != nil {
			return nil
		}
		return rec
	}
}

// busAdvertise returns the route address this node gossips to its peers
// ("" with an external cluster or clustering off).
func (n *Node) busAdvertise() string {
	if n.bus == nil || n.bus.Server() == nil {
		return ""
	}
	if a := n.cfg.Bus.ClusterAdvertise; a != "" {
		return a
	}
	return n.bus.Server().ClusterAddr()
}

// busRoutes returns the route addresses of the peers: the bus addresses the
// live (alive or suspect) members other than self gossip, plus the static
// routes, sorted and without duplicates.
func busRoutes(members []consensus.Member, self string, static []string) []string {
	out := slices.Clone(static)
	for _, m := range members {
		if m.Name == self || m.Meta.BusAddr == "" {
			continue
		}
		if m.State == consensus.MemberAlive || m.State == consensus.MemberSuspect {
			out = append(out, m.Meta.BusAddr)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// syncBusRoutes points the embedded server's routes at the peers membership
// reports. It is called by the housekeeping goroutine only.
func (n *Node) syncBusRoutes() {
	ag := n.Agent()
	if n.bus == nil || n.bus.Server() == nil || ag == nil || n.busAdvertise() == "" {
		return
	}
	cl := ag.Cluster()
	routes := busRoutes(cl.Members(), cl.Name(), n.cfg.Bus.Routes)
	if slices.Equal(routes, n.busRoutesSet) {
		return
	}
	if err := n.bus.SetRoutes(routes); err != nil {
		n.log.Warn("bus: setting routes from membership failed", "routes", routes, "err", err)
		return
	}
	n.bus.SetPeers(len(routes))
	n.busRoutesSet = routes
	n.log.Info("bus: routes set from membership", "routes", routes)
}

// gossipHealth publishes the node's health word in its membership metadata
// when it changes (so that peers' status shows degraded failover
// protection). It is called by the housekeeping goroutine only.
func (n *Node) gossipHealth() {
	ag := n.Agent()
	if n.bus == nil || ag == nil {
		return
	}
	h := n.view.Health()
	if h == n.healthSent {
		return
	}
	if deg, why := n.failover(); deg {
		n.log.Warn("bus: failover protection degraded", "reason", why)
	} else if n.healthSent != "" {
		n.log.Info("bus: failover protection restored")
	}
	ag.Cluster().UpdateMeta(func(m *consensus.NodeMeta) { m.Health = h })
	n.healthSent = h
}

// Bus returns the node's flow-state bus (nil when the bus section is off).
func (n *Node) Bus() *bus.Bus { return n.bus }

// failover reports whether the node's failover protection is degraded, and
// why ("" when the bus is off or healthy).
func (n *Node) failover() (degraded bool, reason string) {
	if n.bus == nil {
		return false, ""
	}
	h := n.bus.Health()
	return h.Degraded, h.Reason
}
