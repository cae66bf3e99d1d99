package consensus

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/raft"
)

// snapshotFormat identifies the FSM snapshot encoding.
const snapshotFormat = "patchgate-fsm-v1"

// FSM is the replicated state machine: a raft.FSM over State.
//
// Concurrency: raft calls Apply, Snapshot and Restore from one goroutine and
// never concurrently with each other; the FSMSnapshot's Persist runs
// concurrently with later Applies (it owns its bytes). State, Target,
// AppliedIndex and Changed are safe to call from any goroutine at any time.
type FSM struct {
	mu      sync.RWMutex
	st      State
	changed chan struct{} // closed and replaced on every change

	log      *slog.Logger
	restores atomic.Int64
	refused  atomic.Int64
}

var _ raft.FSM = (*FSM)(nil)

// NewFSM returns the state machine of a new cluster. logger receives refused
// commands at INFO (nil: discard).
func NewFSM(logger *slog.Logger) *FSM {
	if logger == nil {
		logger = discardLogger
	}
	return &FSM{st: newState(), changed: make(chan struct{}), log: logger}
}

// Apply applies one committed log entry. It returns nil or the error that
// made it refuse the command (the state is then unchanged, apart from Index).
// Apply is deterministic: it reads no clock, no randomness and no local
// configuration.
func (f *FSM) Apply(l *raft.Log) any {
	var err error
	cmd, derr := DecodeCommand(l.Data)
	f.mu.Lock()
	if derr != nil {
		err = derr
	} else {
		next := f.st.clone()
		if err = next.apply(cmd, l.Index); err == nil {
			next.normalize()
			f.st = next
		}
	}
	f.st.Index = l.Index
	f.notifyLocked()
	f.mu.Unlock()
	if err != nil {
		f.refused.Add(1)
		f.log.Info("consensus: command refused", "index", l.Index, "err", err)
		return err
	}
	return nil
}

// State returns a deep copy of the current state.
func (f *FSM) State() State {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.st.clone()
}

// Target returns what node must run in the current state.
func (f *FSM) Target(node string) Assignment {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.st.Target(node)
}

// AppliedIndex returns the raft index of the last applied entry.
func (f *FSM) AppliedIndex() uint64 {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.st.Index
}

// Changed returns a channel closed at the next change of the state. Take the
// channel, read the state, then wait on the channel: no change is missed.
func (f *FSM) Changed() <-chan struct{} {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.changed
}

func (f *FSM) notifyLocked() {
	close(f.changed)
	f.changed = make(chan struct{})
}

// Snapshot captures the state. The encoding is done here, so Persist does not
// race with later Applies.
func (f *FSM) Snapshot() (raft.FSMSnapshot, error) {
	f.mu.RLock()
	data, err := json.Marshal(snapshotFile{Format: snapshotFormat, State: &f.st})
	f.mu.RUnlock()
	if err != nil {
		return nil, fmt.Errorf("consensus: snapshot: %w", err)
	}
	return &fsmSnapshot{data: data}, nil
}

// Restore replaces the state with a snapshot.
func (f *FSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	var sf snapshotFile
	dec := json.NewDecoder(rc)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&sf); err != nil {
		return fmt.Errorf("consensus: restore: %w", err)
	}
	if sf.Format != snapshotFormat || sf.State == nil {
		return fmt.Errorf("consensus: restore: unsupported snapshot format %q", sf.Format)
	}
	sf.State.normalize()
	f.mu.Lock()
	f.st = *sf.State
	f.notifyLocked()
	f.mu.Unlock()
	f.restores.Add(1)
	return nil
}

type snapshotFile struct {
	Format string `json:"format"`
	State  *State `json:"state"`
}

type fsmSnapshot struct{ data []byte }

func (s *fsmSnapshot) Persist(sink raft.SnapshotSink) error {
	if _, err := sink.Write(s.data); err != nil {
		sink.Cancel()
		return fmt.Errorf("consensus: persist snapshot: %w", err)
	}
	return sink.Close()
}

func (s *fsmSnapshot) Release() {}

// apply dispatches a decoded command on a private copy of the state.
func (s *State) apply(c *Command, index uint64) error {
	var err error
	switch c.Type {
	case CmdPush:
		err = s.applyPush(c, index)
	case CmdRollout:
		err = s.startRollout(c, index, c.Rollout.Version, c.Rollout.Plan, false)
	case CmdRollback:
		err = s.startRollout(c, index, c.Rollback.Version, Plan{Strategy: AllAtOnce}, true)
	case CmdPromote:
		err = s.applyPromote(c)
	case CmdAbort:
		err = s.applyAbort(c)
	case CmdDrain:
		err = s.applyDrain(c)
	case CmdSettings:
		if err = c.Settings.Validate(); err == nil {
			s.Settings = *c.Settings
		} else {
			err = fmt.Errorf("%w: %v", ErrBadCommand, err)
		}
	case CmdNodeUpsert:
		err = s.applyNodeUpsert(c)
	case CmdNodeRemove:
		err = s.applyNodeRemove(c)
	default:
		err = fmt.Errorf("%w: unknown type %q", ErrBadCommand, c.Type)
	}
	if err != nil {
		return fmt.Errorf("consensus: %s: %w", c.Type, err)
	}
	return nil
}

func (s *State) applyDrain(c *Command) error {
	d := c.Drain
	if _, ok := s.Nodes[d.Node]; !ok {
		return fmt.Errorf("%w: unknown node %q", ErrBadCommand, d.Node)
	}
	if !d.Drained {
		delete(s.Drain, d.Node)
		return nil
	}
	if old, ok := s.Drain[d.Node]; ok && old.Reason == d.Reason {
		return nil // already drained: keep the original time
	}
	s.Drain[d.Node] = DrainFlag{Reason: d.Reason, Since: c.Time, By: c.Actor}
	return nil
}

func (s *State) applyNodeUpsert(c *Command) error {
	n := *c.Node
	if n.Name == "" || n.RaftAddr == "" {
		return fmt.Errorf("%w: node needs a name and a raft address", ErrBadCommand)
	}
	if old, ok := s.Nodes[n.Name]; ok {
		n.Joined = old.Joined
	} else {
		n.Joined = c.Time
	}
	s.Nodes[n.Name] = n
	return nil
}

func (s *State) applyNodeRemove(c *Command) error {
	if _, ok := s.Nodes[c.Remove.Node]; !ok {
		return fmt.Errorf("%w: unknown node %q", ErrBadCommand, c.Remove.Node)
	}
	delete(s.Nodes, c.Remove.Node)
	delete(s.Drain, c.Remove.Node)
	return nil
}
