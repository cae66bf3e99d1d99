package consensus

import (
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/raft"

	"github.com/patchgate/patchgate/consensus/patchset"
	"github.com/patchgate/patchgate/dataplane/patch"
)

// Apply proposes a command on the leader and waits until it is committed and
// applied here. It stamps the command's version and time (the leader's clock)
// and checks it against the current state first, so a command the FSM would
// refuse never reaches the log. On a follower it returns a *NotLeaderError
// (errors.Is ErrNotLeader) naming the leader, for the API layer to forward to.
// It returns the log index of the command.
func (c *Cluster) Apply(cmd Command) (uint64, error) {
	return c.apply(cmd, time.Now())
}

func (c *Cluster) apply(cmd Command, now time.Time) (uint64, error) {
	select {
	case <-c.stop:
		return 0, fmt.Errorf("consensus: %w", ErrShutdown)
	default:
	}
	if !c.IsLeader() {
		return 0, c.notLeader()
	}
	cmd.V = CommandVersion
	if cmd.Time.IsZero() {
		cmd.Time = now.UTC().Round(0)
	}
	if err := cmd.check(); err != nil {
		return 0, err
	}
	st := c.fsm.State()
	if err := st.apply(&cmd, st.Index+1); err != nil {
		return 0, err
	}
	data, err := cmd.Encode()
	if err != nil {
		return 0, err
	}
	f := c.raft.Apply(data, c.cfg.ApplyTimeout)
	if err := f.Error(); err != nil {
		if errors.Is(err, raft.ErrNotLeader) {
			return 0, c.notLeader()
		}
		return 0, fmt.Errorf("consensus: %s: %w", cmd.Type, err)
	}
	if err, ok := f.Response().(error); ok && err != nil {
		return f.Index(), err
	}
	return f.Index(), nil
}

func (c *Cluster) notLeader() error {
	id, addr := c.Leader()
	e := &NotLeaderError{LeaderID: id, LeaderRaftAddr: addr}
	if id != "" {
		if m, ok := c.mem.get(id); ok {
			e.LeaderAPIAddr = m.Meta.APIAddr
		}
	}
	return e
}

// PushPatchSet verifies a bundle against the trusted keys, compiles it (and,
// with Config.TestPatchSets, runs its embedded tests), then commits it with
// the rollout plan. Nothing reaches the log unless all of that succeeds.
func (c *Cluster) PushPatchSet(bundle []byte, plan Plan, actor string) (uint64, error) {
	if !c.IsLeader() {
		return 0, c.notLeader()
	}
	b, err := patchset.Unmarshal(bundle)
	if err != nil {
		return 0, err
	}
	if err := b.Verify(c.cfg.TrustedKeys); err != nil {
		return 0, err
	}
	compile := b.Compile
	if c.cfg.TestPatchSets {
		compile = func() (*patch.Program, error) { return b.CompileAndTest() }
	}
	prog, err := compile()
	if err != nil {
		return 0, err
	}
	refs := make([]PatchRef, len(prog.Patches))
	for i, p := range prog.Patches {
		refs[i] = PatchRef{ID: p.ID, File: p.File}
	}
	return c.Apply(Command{Type: CmdPush, Actor: actor, Push: &PushCmd{Bundle: bundle, Plan: plan, Patches: refs}})
}

// Promote promotes the rollout of version.
func (c *Cluster) Promote(version uint64, actor string) (uint64, error) {
	return c.Apply(Command{Type: CmdPromote, Actor: actor, Promote: &PromoteCmd{Version: version}})
}

// Abort aborts the rollout of version.
func (c *Cluster) Abort(version uint64, actor string) (uint64, error) {
	return c.Apply(Command{Type: CmdAbort, Actor: actor, Abort: &AbortCmd{Version: version}})
}

// Rollback makes version, from the history, active on every node at once.
func (c *Cluster) Rollback(version uint64, actor string) (uint64, error) {
	return c.Apply(Command{Type: CmdRollback, Actor: actor, Rollback: &RollbackCmd{Version: version}})
}

// SetDrain sets or clears a node's drain flag.
func (c *Cluster) SetDrain(node string, drained bool, reason, actor string) (uint64, error) {
	return c.Apply(Command{Type: CmdDrain, Actor: actor, Drain: &DrainCmd{Node: node, Drained: drained, Reason: reason}})
}

// SetSettings replaces the cluster settings.
func (c *Cluster) SetSettings(s Settings, actor string) (uint64, error) {
	return c.Apply(Command{Type: CmdSettings, Actor: actor, Settings: &s})
}

// Snapshot makes this node take a raft snapshot now (and compact its log).
func (c *Cluster) Snapshot() error {
	if err := c.raft.Snapshot().Error(); err != nil {
		return fmt.Errorf("consensus: snapshot: %w", err)
	}
	return nil
}
