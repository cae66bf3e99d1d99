package consensus

import (
	"fmt"
	"sort"
	"time"

	"github.com/hashicorp/raft"
)

// reconcileLoop runs reconcile on every membership event, leadership change
// and ReconcileInterval tick. Only the leader acts.
func (c *Cluster) reconcileLoop() {
	defer c.wg.Done()
	tick := time.NewTicker(c.cfg.ReconcileInterval)
	defer tick.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-c.pokeCh:
		case <-tick.C:
		}
		if err := c.savePeers(); err != nil {
			c.log.Info("consensus: peers", "err", err)
		}
		if c.IsLeader() {
			if err := c.reconcile(time.Now()); err != nil {
				c.log.Info("consensus: reconcile", "err", err)
			}
		}
	}
}

// reconcile brings the raft configuration and the roster in line with gossip
// membership, the way Consul's leader does:
//   - an alive member missing from raft (or at a new address) is added: as a
//     voter while there are fewer than Config.Voters, else as a non-voter;
//   - a server whose member left gracefully is removed at once; one that is
//     dead or unknown to gossip is removed after the cluster's
//     DeadServerGrace;
//   - while voters are missing, alive non-voters are promoted;
//   - the FSM roster follows (node-upsert / node-remove commands).
func (c *Cluster) reconcile(now time.Time) error {
	c.reconcileMu.Lock()
	defer c.reconcileMu.Unlock()
	f := c.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return fmt.Errorf("configuration: %w", err)
	}
	servers := map[string]raft.Server{}
	voters := 0
	for _, s := range f.Configuration().Servers {
		servers[string(s.ID)] = s
		if s.Suffrage == raft.Voter {
			voters++
		}
	}
	st := c.fsm.State()
	grace := st.Settings.DeadServerGrace
	members := map[string]Member{}
	for _, m := range c.Members() {
		members[m.Name] = m
	}
	self := c.cfg.NodeName

	// Add alive members; keep the roster up to date.
	names := sortedKeys(members)
	for _, name := range names {
		m := members[name]
		if m.State != MemberAlive && m.State != MemberSuspect || m.Meta.RaftAddr == "" {
			continue
		}
		srv, in := servers[name]
		if !in || string(srv.Address) != m.Meta.RaftAddr {
			var err error
			id, addr := raft.ServerID(name), raft.ServerAddress(m.Meta.RaftAddr)
			if (in && srv.Suffrage == raft.Voter) || (!in && voters < c.cfg.Voters) {
				err = c.raft.AddVoter(id, addr, 0, c.cfg.ApplyTimeout).Error()
				if err == nil && !in {
					voters++
				}
			} else {
				err = c.raft.AddNonvoter(id, addr, 0, c.cfg.ApplyTimeout).Error()
			}
			if err != nil {
				return fmt.Errorf("add %s: %w", name, err)
			}
			c.log.Info("consensus: server added or moved", "server", name, "addr", addr)
			servers[name] = raft.Server{ID: id, Address: addr}
		}
		rec, known := st.Nodes[name]
		if !known || rec.RaftAddr != m.Meta.RaftAddr || rec.APIAddr != m.Meta.APIAddr || rec.BusAddr != m.Meta.BusAddr {
			node := NodeRecord{Name: name, RaftAddr: m.Meta.RaftAddr, APIAddr: m.Meta.APIAddr, BusAddr: m.Meta.BusAddr}
			if _, err := c.apply(Command{Type: CmdNodeUpsert, Node: &node, Actor: "reconciler"}, now); err != nil {
				return fmt.Errorf("roster %s: %w", name, err)
			}
		}
	}

	// Remove failed servers after the grace period; departed ones at once.
	for _, id := range sortedKeys(servers) {
		if id == self {
			continue
		}
		m, known := members[id]
		if known && (m.State == MemberAlive || m.State == MemberSuspect) {
			delete(c.failedSince, id)
			continue
		}
		if !(known && m.State == MemberLeft) {
			since, ok := c.failedSince[id]
			if !ok {
				c.failedSince[id] = now
				continue
			}
			if now.Sub(since) < grace {
				continue
			}
		}
		if err := c.raft.RemoveServer(raft.ServerID(id), 0, c.cfg.ApplyTimeout).Error(); err != nil {
			return fmt.Errorf("remove %s: %w", id, err)
		}
		if servers[id].Suffrage == raft.Voter {
			voters--
		}
		delete(servers, id)
		delete(c.failedSince, id)
		c.log.Info("consensus: server removed", "server", id, "state", m.State)
		if _, ok := st.Nodes[id]; ok {
			if _, err := c.apply(Command{Type: CmdNodeRemove, Remove: &RemoveCmd{Node: id}, Actor: "reconciler"}, now); err != nil {
				return fmt.Errorf("roster remove %s: %w", id, err)
			}
		}
	}

	// Promote alive non-voters while voters are missing.
	for _, id := range sortedKeys(servers) {
		if voters >= c.cfg.Voters {
			break
		}
		s := servers[id]
		if s.Suffrage == raft.Voter {
			continue
		}
		if m, ok := members[id]; !ok || m.State != MemberAlive {
			continue
		}
		if err := c.raft.AddVoter(s.ID, s.Address, 0, c.cfg.ApplyTimeout).Error(); err != nil {
			return fmt.Errorf("promote %s: %w", id, err)
		}
		voters++
		c.log.Info("consensus: non-voter promoted", "server", id)
	}
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
