package consensus

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/patchgate/patchgate/consensus/patchset"
)

// CommandVersion is the version of the command encoding this build writes and
// the highest it applies.
const CommandVersion = 1

// CommandType names a state-machine command.
type CommandType string

// The commands the FSM applies.
const (
	// CmdPush adds a patch-set version to the history and starts its rollout.
	CmdPush CommandType = "push"
	// CmdRollout starts a rollout of a version already in the history.
	CmdRollout CommandType = "rollout"
	// CmdPromote moves the current rollout to every node (canary) or to
	// enforcement (detect-first).
	CmdPromote CommandType = "promote"
	// CmdAbort abandons the current rollout: every node returns to the
	// version active before it.
	CmdAbort CommandType = "abort"
	// CmdRollback makes an earlier version active on every node at once.
	CmdRollback CommandType = "rollback"
	// CmdDrain sets or clears a node's drain flag.
	CmdDrain CommandType = "drain"
	// CmdSettings replaces the cluster settings.
	CmdSettings CommandType = "settings"
	// CmdNodeUpsert adds a node to the roster or updates its addresses.
	CmdNodeUpsert CommandType = "node-upsert"
	// CmdNodeRemove removes a node from the roster (and its drain flag).
	CmdNodeRemove CommandType = "node-remove"
)

// Command is one entry of the replicated log. Exactly one payload field
// matching Type is set. Time is set by the leader before the command is
// replicated (Apply never reads the clock), so every node applies the same
// time.
type Command struct {
	V     int         `json:"v"`
	Type  CommandType `json:"type"`
	Time  time.Time   `json:"time"`
	Actor string      `json:"actor,omitempty"`

	Push     *PushCmd     `json:"push,omitempty"`
	Rollout  *RolloutCmd  `json:"rollout,omitempty"`
	Promote  *PromoteCmd  `json:"promote,omitempty"`
	Abort    *AbortCmd    `json:"abort,omitempty"`
	Rollback *RollbackCmd `json:"rollback,omitempty"`
	Drain    *DrainCmd    `json:"drain,omitempty"`
	Settings *Settings    `json:"settings,omitempty"`
	Node     *NodeRecord  `json:"node,omitempty"`
	Remove   *RemoveCmd   `json:"remove,omitempty"`
}

// PushCmd carries a signed bundle (patchset.Bundle.Marshal) and the plan to
// roll it out with. The leader verifies and compiles the bundle before it
// proposes the command, and lists its patches (id and file; one patch per
// file) so that followers need not parse YAML inside Apply.
type PushCmd struct {
	Bundle  []byte     `json:"bundle"`
	Plan    Plan       `json:"plan"`
	Patches []PatchRef `json:"patches"`
}

// NewPushCommand builds the push command of a bundle, parsing its patches for
// the patch list. Cluster.PushPatchSet builds it from the compiled program
// instead.
func NewPushCommand(bundle []byte, plan Plan, actor string) (Command, error) {
	b, err := patchset.Unmarshal(bundle)
	if err != nil {
		return Command{}, err
	}
	ps, err := b.Patches()
	if err != nil {
		return Command{}, err
	}
	refs := make([]PatchRef, len(ps))
	for i, p := range ps {
		refs[i] = PatchRef{ID: p.ID, File: p.File}
	}
	return Command{Type: CmdPush, Actor: actor, Push: &PushCmd{Bundle: bundle, Plan: plan, Patches: refs}}, nil
}

// RolloutCmd rolls out an existing version with a plan.
type RolloutCmd struct {
	Version uint64 `json:"version"`
	Plan    Plan   `json:"plan"`
}

// PromoteCmd promotes the rollout of Version (it must be the current one).
type PromoteCmd struct {
	Version uint64 `json:"version"`
}

// AbortCmd aborts the rollout of Version (it must be the current one).
type AbortCmd struct {
	Version uint64 `json:"version"`
}

// RollbackCmd makes Version (any version in the history) active everywhere.
type RollbackCmd struct {
	Version uint64 `json:"version"`
}

// DrainCmd sets (Drained) or clears a node's drain flag.
type DrainCmd struct {
	Node    string `json:"node"`
	Drained bool   `json:"drained"`
	Reason  string `json:"reason,omitempty"`
}

// RemoveCmd removes a node from the roster.
type RemoveCmd struct {
	Node string `json:"node"`
}

// Errors of command validation. Apply returns them wrapped with the details;
// a refused command changes nothing.
var (
	ErrBadCommand         = errors.New("invalid command")
	ErrUnsupportedCommand = errors.New("command version not supported by this node")
	ErrConflict           = errors.New("command conflicts with the cluster state")
)

// Encode returns the log bytes of the command.
func (c *Command) Encode() ([]byte, error) {
	data, err := json.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("consensus: encode command: %w", err)
	}
	return data, nil
}

// DecodeCommand parses and checks the shape of a log entry.
func DecodeCommand(data []byte) (*Command, error) {
	var c Command
	if err := json.Unmarshal(data, &c); err != nil {
		return nil, fmt.Errorf("consensus: %w: %v", ErrBadCommand, err)
	}
	if err := c.check(); err != nil {
		return nil, err
	}
	c.Time = c.Time.UTC()
	return &c, nil
}

// check validates the envelope: version, time, exactly the payload of Type.
func (c *Command) check() error {
	if c.V < 1 || c.V > CommandVersion {
		return fmt.Errorf("consensus: %w: version %d (this node applies 1..%d)", ErrUnsupportedCommand, c.V, CommandVersion)
	}
	if c.Time.IsZero() {
		return fmt.Errorf("consensus: %w: %s: time not set (the leader stamps every command)", ErrBadCommand, c.Type)
	}
	set := map[CommandType]bool{
		CmdPush: c.Push != nil, CmdRollout: c.Rollout != nil, CmdPromote: c.Promote != nil,
		CmdAbort: c.Abort != nil, CmdRollback: c.Rollback != nil, CmdDrain: c.Drain != nil,
		CmdSettings: c.Settings != nil, CmdNodeUpsert: c.Node != nil, CmdNodeRemove: c.Remove != nil,
	}
	if _, known := set[c.Type]; !known {
		return fmt.Errorf("consensus: %w: unknown type %q", ErrBadCommand, c.Type)
	}
	for t, ok := range set {
		if ok != (t == c.Type) {
			return fmt.Errorf("consensus: %w: %s command must carry exactly its own payload", ErrBadCommand, c.Type)
		}
	}
	return nil
}
