package consensus

import (
	"encoding/json"
	"sort"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"
)

// NodeMeta is what a node gossips about itself (at most 512 bytes encoded).
type NodeMeta struct {
	// RaftAddr is the raft transport address; APIAddr and BusAddr the node's
	// gRPC API and message-bus addresses.
	RaftAddr string `json:"r"`
	APIAddr  string `json:"a,omitempty"`
	BusAddr  string `json:"b,omitempty"`
	// Version and Hash are the patch-set version the node has applied to its
	// data plane and its content hash (0, "": none).
	Version uint64 `json:"v,omitempty"`
	Hash    string `json:"h,omitempty"`
	// Drained reports the node's drain state as applied.
	Drained bool `json:"d,omitempty"`
	// DrainPhase is the node's drain phase (announce, draining, drained;
	// "" from a node that does not report it) and DrainFlows the flows
	// still sending through it while it drains.
	DrainPhase string `json:"dp,omitempty"`
	DrainFlows int    `json:"df,omitempty"`
	// Health is the node's own health word ("ok", "degraded", ...).
	Health string `json:"hl,omitempty"`
	// Expect and HasState drive bootstrapping of a brand-new cluster.
	Expect   int  `json:"e,omitempty"`
	HasState bool `json:"s,omitempty"`
}

// MemberState is a member's gossip state.
type MemberState string

// Member states.
const (
	MemberAlive   MemberState = "alive"
	MemberSuspect MemberState = "suspect"
	MemberDead    MemberState = "dead"
	MemberLeft    MemberState = "left"
)

// Member is a node as seen through gossip.
type Member struct {
	Name       string
	GossipAddr string
	State      MemberState
	// Since is when this node saw the state begin.
	Since time.Time
	Meta  NodeMeta
}

// members tracks every member seen, including dead and departed ones, from
// memberlist's events. Its methods are safe for concurrent use; the event
// callbacks never block (memberlist calls them from its own goroutines).
type members struct {
	mu     sync.Mutex
	byName map[string]*Member
	poke   func()
	now    func() time.Time
}

var _ memberlist.EventDelegate = (*members)(nil)

func newMembers(poke func()) *members {
	return &members{byName: map[string]*Member{}, poke: poke, now: time.Now}
}

func (m *members) set(n *memberlist.Node, st MemberState) {
	var meta NodeMeta
	_ = json.Unmarshal(n.Meta, &meta) // a foreign or empty meta leaves the zero value
	m.mu.Lock()
	old, ok := m.byName[n.Name]
	since := m.now()
	if ok && old.State == st {
		since = old.Since
	}
	m.byName[n.Name] = &Member{Name: n.Name, GossipAddr: n.Address(), State: st, Since: since, Meta: meta}
	m.mu.Unlock()
	m.poke()
}

func (m *members) NotifyJoin(n *memberlist.Node)   { m.set(n, MemberAlive) }
func (m *members) NotifyUpdate(n *memberlist.Node) { m.set(n, MemberAlive) }
func (m *members) NotifyLeave(n *memberlist.Node) {
	if n.State == memberlist.StateLeft {
		m.set(n, MemberLeft)
	} else {
		m.set(n, MemberDead)
	}
}

// list returns every tracked member, sorted by name.
func (m *members) list() []Member {
	m.mu.Lock()
	out := make([]Member, 0, len(m.byName))
	for _, x := range m.byName {
		out = append(out, *x)
	}
	m.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func (m *members) get(name string) (Member, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	x, ok := m.byName[name]
	if !ok {
		return Member{}, false
	}
	return *x, true
}

// metaDelegate serves the local node's metadata to memberlist.
//
// Concurrency: NodeMeta is called from memberlist goroutines; update from any.
type metaDelegate struct {
	mu   sync.Mutex
	meta NodeMeta
}

var _ memberlist.Delegate = (*metaDelegate)(nil)

func (d *metaDelegate) NodeMeta(limit int) []byte {
	d.mu.Lock()
	b, _ := json.Marshal(d.meta)
	d.mu.Unlock()
	if len(b) > limit {
		// Drop the optional fields rather than the whole record.
		d.mu.Lock()
		short := NodeMeta{RaftAddr: d.meta.RaftAddr, Version: d.meta.Version, Expect: d.meta.Expect, HasState: d.meta.HasState}
		d.mu.Unlock()
		b, _ = json.Marshal(short)
	}
	return b
}

func (d *metaDelegate) get() NodeMeta {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.meta
}

func (d *metaDelegate) update(f func(*NodeMeta)) {
	d.mu.Lock()
	f(&d.meta)
	d.mu.Unlock()
}

func (d *metaDelegate) NotifyMsg([]byte)                           {}
func (d *metaDelegate) GetBroadcasts(overhead, limit int) [][]byte { return nil }
func (d *metaDelegate) LocalState(join bool) []byte                { return nil }
func (d *metaDelegate) MergeRemoteState(buf []byte, join bool)     {}
