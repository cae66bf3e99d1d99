package consensus

import (
	"fmt"
	"slices"
	"sort"
	"time"
)

// State is the replicated state. Every node holds the same State after
// applying the same log prefix. Values returned by FSM.State are deep copies
// (bundle bytes are shared: they are never modified).
type State struct {
	// Index is the raft index of the last applied command.
	Index uint64 `json:"index"`
	// History holds every committed patch-set version, sorted by version.
	History []PatchSetRecord `json:"history,omitempty"`
	// Active is the version every node not taking part in a rollout runs (0:
	// none yet: nodes run no patches).
	Active uint64 `json:"active"`
	// Rollout is the latest rollout (nil before the first).
	Rollout *Rollout `json:"rollout,omitempty"`
	// Nodes is the roster, by node name; the leader maintains it from
	// membership.
	Nodes map[string]NodeRecord `json:"nodes"`
	// Drain holds the drain flags, by node name.
	Drain map[string]DrainFlag `json:"drain"`
	// Settings are the cluster-wide settings.
	Settings Settings `json:"settings"`
}

// PatchSetRecord is one committed patch-set version.
type PatchSetRecord struct {
	Version     uint64    `json:"version"`
	ContentHash string    `json:"content_hash"`
	Signer      string    `json:"signer"`
	Author      string    `json:"author"`
	Created     time.Time `json:"created"`
	Message     string    `json:"message"`
	// Patches are the version's patches, sorted by id.
	Patches []PatchRef `json:"patches,omitempty"`
	// Committed is when the leader accepted it; CommittedBy who asked.
	Committed   time.Time `json:"committed"`
	CommittedBy string    `json:"committed_by,omitempty"`
	// Bundle is the signed bundle (patchset.Unmarshal); nil once pruned
	// (Settings.KeepBundles).
	Bundle []byte `json:"bundle,omitempty"`
}

// PatchRef locates one patch in a bundle: its id, its file and the file's
// SHA-256 (from the manifest). Two versions hold the same patch when id, file
// and hash are equal.
type PatchRef struct {
	ID     string `json:"id"`
	File   string `json:"file"`
	SHA256 string `json:"sha256,omitempty"`
}

// Strategy is how a version reaches the nodes.
type Strategy string

// Rollout strategies.
const (
	// AllAtOnce makes the version active on every node at once.
	AllAtOnce Strategy = "all-at-once"
	// Canary runs the version on named nodes (or a percentage of the roster)
	// first; Promote makes it active everywhere.
	Canary Strategy = "canary"
	// DetectFirst runs the version on every node with its new and changed
	// patches in detect mode; Promote makes them enforce.
	DetectFirst Strategy = "detect-first"
)

// Plan is a requested rollout.
type Plan struct {
	// Strategy (empty means AllAtOnce).
	Strategy Strategy `json:"strategy,omitempty"`
	// CanaryNodes names the canary nodes (Canary); CanaryPercent picks that
	// share of the roster instead (1..100, at least one node). Exactly one is set
	// for Canary.
	CanaryNodes   []string `json:"canary_nodes,omitempty"`
	CanaryPercent int      `json:"canary_percent,omitempty"`
}

// Validate checks the plan's shape.
func (p Plan) Validate() error {
	switch p.strategy() {
	case AllAtOnce, DetectFirst:
		if len(p.CanaryNodes) > 0 || p.CanaryPercent != 0 {
			return fmt.Errorf("plan: canary_nodes and canary_percent apply only to the canary strategy")
		}
	case Canary:
		if (len(p.CanaryNodes) > 0) == (p.CanaryPercent != 0) {
			return fmt.Errorf("plan: canary needs either canary_nodes or canary_percent")
		}
		if p.CanaryPercent < 0 || p.CanaryPercent > 100 {
			return fmt.Errorf("plan: canary_percent %d outside 1..100", p.CanaryPercent)
		}
	default:
		return fmt.Errorf("plan: unknown strategy %q (all-at-once, canary, detect-first)", p.Strategy)
	}
	return nil
}

func (p Plan) strategy() Strategy {
	if p.Strategy == "" {
		return AllAtOnce
	}
	return p.Strategy
}

// Stage is where a rollout is.
type Stage string

// Rollout stages.
const (
	// StageCanary: the version runs on the canary nodes only.
	StageCanary Stage = "canary"
	// StageDetect: the version runs everywhere, its new patches in detect mode.
	StageDetect Stage = "detect"
	// StageComplete: the version is active everywhere.
	StageComplete Stage = "complete"
	// StageAborted: the rollout was abandoned; From is active again.
	StageAborted Stage = "aborted"
)

// Rollout is the progress of one version towards the nodes.
type Rollout struct {
	// ID is the raft index of the command that started it.
	ID       uint64   `json:"id"`
	Version  uint64   `json:"version"`
	From     uint64   `json:"from"`
	Strategy Strategy `json:"strategy"`
	Stage    Stage    `json:"stage"`
	// Rollback is true for a rollback.
	Rollback bool `json:"rollback,omitempty"`
	// CanaryNodes are the canary nodes (resolved from a percentage at start),
	// sorted; CanaryPercent the requested percentage, if any.
	CanaryNodes   []string `json:"canary_nodes,omitempty"`
	CanaryPercent int      `json:"canary_percent,omitempty"`
	// DetectOnly are the patch ids that run in detect mode until promotion
	// (detect-first: those added or changed since From), sorted.
	DetectOnly []string  `json:"detect_only,omitempty"`
	Started    time.Time `json:"started"`
	Updated    time.Time `json:"updated"`
	StartedBy  string    `json:"started_by,omitempty"`
}

// InProgress reports whether the rollout waits for a promote or abort.
func (r *Rollout) InProgress() bool {
	return r != nil && (r.Stage == StageCanary || r.Stage == StageDetect)
}

// NodeRecord is a node in the roster.
type NodeRecord struct {
	Name     string    `json:"name"`
	RaftAddr string    `json:"raft_addr"`
	APIAddr  string    `json:"api_addr,omitempty"`
	BusAddr  string    `json:"bus_addr,omitempty"`
	Joined   time.Time `json:"joined"`
}

// DrainFlag marks a node as drained: the router withdraws it and its flows move
// to the others.
type DrainFlag struct {
	Reason string    `json:"reason,omitempty"`
	Since  time.Time `json:"since"`
	By     string    `json:"by,omitempty"`
}

// Overload policies.
const (
	FailOpen   = "fail-open"
	FailClosed = "fail-closed"
)

// Settings are cluster-wide settings.
type Settings struct {
	// DeadServerGrace is how long a raft server may be unreachable (failed in
	// membership) before the leader removes it from the configuration.
	DeadServerGrace time.Duration `json:"dead_server_grace"`
	// Overload says what nodes do with packets they cannot inspect in time.
	Overload string `json:"overload"`
	// KeepBundles bounds how many versions keep their bundle bytes (0: all).
	// Older records keep their metadata; the active version and those of the
	// current rollout are never pruned. Rollback needs the bundle.
	KeepBundles int `json:"keep_bundles"`
}

// Defaults of the cluster settings.
const (
	DefaultDeadServerGrace = 5 * time.Minute
	DefaultOverload        = FailOpen
	DefaultKeepBundles     = 100
)

// DefaultSettings returns the settings of a new cluster.
func DefaultSettings() Settings {
	return Settings{DeadServerGrace: DefaultDeadServerGrace, Overload: DefaultOverload, KeepBundles: DefaultKeepBundles}
}

// Validate checks the settings.
func (s Settings) Validate() error {
	if s.DeadServerGrace < time.Second {
		return fmt.Errorf("settings: dead_server_grace %v is below 1s", s.DeadServerGrace)
	}
	if s.Overload != FailOpen && s.Overload != FailClosed {
		return fmt.Errorf("settings: overload %q is neither %q nor %q", s.Overload, FailOpen, FailClosed)
	}
	if s.KeepBundles < 0 {
		return fmt.Errorf("settings: keep_bundles %d is negative", s.KeepBundles)
	}
	return nil
}

// Assignment is what one node must run.
type Assignment struct {
	// Version to run (0: no patch set yet).
	Version     uint64 `json:"version"`
	ContentHash string `json:"content_hash,omitempty"`
	// DetectOnly lists patch ids to run in detect mode whatever their file says.
	DetectOnly []string `json:"detect_only,omitempty"`
	// Drained is the node's drain flag.
	Drained bool `json:"drained,omitempty"`
}

// Equal reports whether two assignments ask for the same thing.
func (a Assignment) Equal(b Assignment) bool {
	return a.Version == b.Version && a.ContentHash == b.ContentHash &&
		slices.Equal(a.DetectOnly, b.DetectOnly) && a.Drained == b.Drained
}

// Target returns what node must run in this state.
func (s *State) Target(node string) Assignment {
	v := s.Active
	var detect []string
	if r := s.Rollout; r != nil {
		switch r.Stage {
		case StageCanary:
			if slices.Contains(r.CanaryNodes, node) {
				v = r.Version
			}
		case StageDetect:
			v, detect = r.Version, r.DetectOnly
		}
	}
	a := Assignment{Version: v, DetectOnly: slices.Clone(detect)}
	if rec := s.Record(v); rec != nil {
		a.ContentHash = rec.ContentHash
	}
	_, a.Drained = s.Drain[node]
	return a
}

// Record returns the history record of a version (nil if unknown).
func (s *State) Record(version uint64) *PatchSetRecord {
	i := sort.Search(len(s.History), func(i int) bool { return s.History[i].Version >= version })
	if i < len(s.History) && s.History[i].Version == version {
		return &s.History[i]
	}
	return nil
}

// Latest returns the highest committed version (0: none).
func (s *State) Latest() uint64 {
	if len(s.History) == 0 {
		return 0
	}
	return s.History[len(s.History)-1].Version
}

// newState returns the state of a new cluster.
func newState() State {
	return State{Nodes: map[string]NodeRecord{}, Drain: map[string]DrainFlag{}, Settings: DefaultSettings()}
}

// clone returns a deep copy (bundle bytes shared).
func (s *State) clone() State {
	c := *s
	c.History = slices.Clone(s.History)
	for i := range c.History {
		c.History[i].Patches = slices.Clone(c.History[i].Patches)
	}
	if s.Rollout != nil {
		r := *s.Rollout
		r.CanaryNodes = slices.Clone(r.CanaryNodes)
		r.DetectOnly = slices.Clone(r.DetectOnly)
		c.Rollout = &r
	}
	c.Nodes = make(map[string]NodeRecord, len(s.Nodes))
	for k, v := range s.Nodes {
		c.Nodes[k] = v
	}
	c.Drain = make(map[string]DrainFlag, len(s.Drain))
	for k, v := range s.Drain {
		c.Drain[k] = v
	}
	return c
}

// normalize makes empty collections canonical (maps non-nil, slices nil), so
// a state restored from a snapshot is deep-equal to the one that wrote it.
func (s *State) normalize() {
	if s.Nodes == nil {
		s.Nodes = map[string]NodeRecord{}
	}
	if s.Drain == nil {
		s.Drain = map[string]DrainFlag{}
	}
	if len(s.History) == 0 {
		s.History = nil
	}
	for i := range s.History {
		if len(s.History[i].Patches) == 0 {
			s.History[i].Patches = nil
		}
	}
	if r := s.Rollout; r != nil {
		if len(r.CanaryNodes) == 0 {
			r.CanaryNodes = nil
		}
		if len(r.DetectOnly) == 0 {
			r.DetectOnly = nil
		}
	}
}
