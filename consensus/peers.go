package consensus

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
)

// peersFile keeps the gossip addresses of the members last seen alive, so a
// restarted node can rejoin without seeds (a node started without Seeds, or
// whose seeds are gone, would otherwise stay alone while the others consider
// it dead).
const peersFile = "peers.json"

// loadPeers returns the addresses saved in dir (none if the file is missing
// or unreadable: seeds still work).
func loadPeers(dir string) []string {
	data, err := os.ReadFile(filepath.Join(dir, peersFile))
	if err != nil {
		return nil
	}
	var peers []string
	if json.Unmarshal(data, &peers) != nil {
		return nil
	}
	return peers
}

// savePeers writes the alive members' gossip addresses (without self) when
// they changed since the last save. Called from the reconcile loop only.
func (c *Cluster) savePeers() error {
	var peers []string
	for _, m := range c.mem.list() {
		if m.State == MemberAlive && m.Name != c.cfg.NodeName && m.GossipAddr != "" {
			peers = append(peers, m.GossipAddr)
		}
	}
	sort.Strings(peers)
	if len(peers) == 0 || slices.Equal(peers, c.savedPeers) {
		return nil
	}
	data, _ := json.Marshal(peers)
	tmp := filepath.Join(c.cfg.DataDir, peersFile+".tmp")
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return fmt.Errorf("consensus: save peers: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(c.cfg.DataDir, peersFile)); err != nil {
		return fmt.Errorf("consensus: save peers: %w", err)
	}
	c.savedPeers = peers
	return nil
}
