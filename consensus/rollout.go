package consensus

import (
	"crypto/sha256"
	"fmt"
	"slices"
	"sort"

	"github.com/patchgate/patchgate/consensus/patchset"
)

// applyPush records a new version and starts its rollout. The bundle was
// verified and compiled by the leader; here only deterministic checks run
// (structure, hashes, ordering), so every node decides the same.
func (s *State) applyPush(c *Command, index uint64) error {
	b, err := patchset.Unmarshal(c.Push.Bundle)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrBadCommand, err)
	}
	if err := b.CheckIntegrity(); err != nil {
		return fmt.Errorf("%w: %v", ErrBadCommand, err)
	}
	if err := c.Push.Plan.Validate(); err != nil {
		return fmt.Errorf("%w: %v", ErrBadCommand, err)
	}
	v := b.Version()
	if latest := s.Latest(); v <= latest {
		return fmt.Errorf("%w: version %d is not above the latest version %d", ErrConflict, v, latest)
	}
	if s.Rollout.InProgress() {
		return fmt.Errorf("%w: rollout of version %d is in stage %s: promote or abort it first", ErrConflict, s.Rollout.Version, s.Rollout.Stage)
	}
	refs, err := patchRefs(b, c.Push.Patches)
	if err != nil {
		return err
	}
	m := b.Manifest
	s.History = append(s.History, PatchSetRecord{
		Version: v, ContentHash: m.ContentHash, Signer: m.Signer, Author: m.Author,
		Created: m.Created, Message: m.Message, Patches: refs,
		Committed: c.Time, CommittedBy: c.Actor, Bundle: c.Push.Bundle,
	})
	if err := s.startRollout(c, index, v, c.Push.Plan, false); err != nil {
		return err
	}
	s.pruneBundles()
	return nil
}

// pruneBundles drops the bundle bytes of the oldest versions beyond
// Settings.KeepBundles, sparing the active version and the rollout's.
func (s *State) pruneBundles() {
	keep := s.Settings.KeepBundles
	if keep <= 0 {
		return
	}
	kept := 0
	for i := len(s.History) - 1; i >= 0; i-- {
		r := &s.History[i]
		if r.Bundle == nil {
			continue
		}
		spare := r.Version == s.Active || (s.Rollout != nil && (r.Version == s.Rollout.Version || r.Version == s.Rollout.From))
		if kept < keep || spare {
			kept++
			continue
		}
		r.Bundle = nil
	}
}

// patchRefs checks the leader's patch list against the manifest (every file
// exactly once, ids unique) and fills in the file hashes.
func patchRefs(b *patchset.Bundle, list []PatchRef) ([]PatchRef, error) {
	hashes := make(map[string]string, len(b.Manifest.Files))
	for _, f := range b.Manifest.Files {
		hashes[f.Name] = f.SHA256
	}
	if len(list) != len(hashes) {
		return nil, fmt.Errorf("%w: %d patches listed for %d files", ErrBadCommand, len(list), len(hashes))
	}
	ids := map[string]bool{}
	files := map[string]bool{}
	out := make([]PatchRef, len(list))
	for i, r := range list {
		h, ok := hashes[r.File]
		if !ok || files[r.File] || ids[r.ID] || r.ID == "" {
			return nil, fmt.Errorf("%w: patch list entry %q in %q does not match the bundle", ErrBadCommand, r.ID, r.File)
		}
		ids[r.ID], files[r.File] = true, true
		out[i] = PatchRef{ID: r.ID, File: r.File, SHA256: h}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// startRollout starts rolling out an existing version.
func (s *State) startRollout(c *Command, index, version uint64, plan Plan, rollback bool) error {
	if err := plan.Validate(); err != nil {
		return fmt.Errorf("%w: %v", ErrBadCommand, err)
	}
	rec := s.Record(version)
	if rec == nil {
		return fmt.Errorf("%w: version %d is not in the history", ErrConflict, version)
	}
	if rec.Bundle == nil {
		return fmt.Errorf("%w: the bundle of version %d was pruned (settings keep_bundles=%d): push it again as a new version", ErrConflict, version, s.Settings.KeepBundles)
	}
	inProgress := s.Rollout.InProgress()
	if inProgress && !rollback {
		return fmt.Errorf("%w: rollout of version %d is in stage %s: promote or abort it first", ErrConflict, s.Rollout.Version, s.Rollout.Stage)
	}
	if version == s.Active && !inProgress {
		return fmt.Errorf("%w: version %d is already active", ErrConflict, version)
	}
	r := &Rollout{
		ID: index, Version: version, From: s.Active, Strategy: plan.strategy(),
		Rollback: rollback, CanaryPercent: plan.CanaryPercent,
		Started: c.Time, Updated: c.Time, StartedBy: c.Actor,
	}
	switch r.Strategy {
	case AllAtOnce:
		r.Stage = StageComplete
		s.Active = version
	case Canary:
		nodes, err := s.canaryNodes(index, plan)
		if err != nil {
			return err
		}
		r.Stage, r.CanaryNodes = StageCanary, nodes
	case DetectFirst:
		r.Stage, r.DetectOnly = StageDetect, s.newPatches(s.Active, version)
	}
	s.Rollout = r
	return nil
}

// canaryNodes resolves a canary plan to node names: the named ones (which must
// be in the roster) or ceil(percent × roster / 100) nodes (at least one)
// chosen by a hash of the rollout id and the node name.
func (s *State) canaryNodes(id uint64, plan Plan) ([]string, error) {
	if len(plan.CanaryNodes) > 0 {
		var out []string
		for _, n := range plan.CanaryNodes {
			if _, ok := s.Nodes[n]; !ok {
				return nil, fmt.Errorf("%w: canary node %q is not in the roster", ErrBadCommand, n)
			}
			if !slices.Contains(out, n) {
				out = append(out, n)
			}
		}
		sort.Strings(out)
		return out, nil
	}
	if len(s.Nodes) == 0 {
		return nil, fmt.Errorf("%w: no nodes in the roster to pick canaries from", ErrConflict)
	}
	type ranked struct {
		name string
		key  [32]byte
	}
	all := make([]ranked, 0, len(s.Nodes))
	for n := range s.Nodes {
		all = append(all, ranked{n, sha256.Sum256(fmt.Appendf(nil, "%d\x00%s", id, n))})
	}
	sort.Slice(all, func(i, j int) bool {
		if c := slices.Compare(all[i].key[:], all[j].key[:]); c != 0 {
			return c < 0
		}
		return all[i].name < all[j].name
	})
	k := max(1, (plan.CanaryPercent*len(all)+99)/100)
	out := make([]string, k)
	for i := range out {
		out[i] = all[i].name
	}
	sort.Strings(out)
	return out, nil
}

// newPatches returns the ids of patches added or changed from version from to
// version to (all of to's patches when from is 0), sorted.
func (s *State) newPatches(from, to uint64) []string {
	old := map[string]PatchRef{}
	if r := s.Record(from); r != nil {
		for _, p := range r.Patches {
			old[p.ID] = p
		}
	}
	var out []string
	for _, p := range s.Record(to).Patches {
		if o, ok := old[p.ID]; !ok || o != p {
			out = append(out, p.ID)
		}
	}
	return out
}

func (s *State) applyPromote(c *Command) error {
	r := s.Rollout
	if !r.InProgress() {
		return fmt.Errorf("%w: no rollout waiting for promotion", ErrConflict)
	}
	if r.Version != c.Promote.Version {
		return fmt.Errorf("%w: the rollout in progress is version %d, not %d", ErrConflict, r.Version, c.Promote.Version)
	}
	r.Stage, r.Updated = StageComplete, c.Time
	s.Active = r.Version
	return nil
}

func (s *State) applyAbort(c *Command) error {
	r := s.Rollout
	if !r.InProgress() {
		return fmt.Errorf("%w: no rollout in progress", ErrConflict)
	}
	if r.Version != c.Abort.Version {
		return fmt.Errorf("%w: the rollout in progress is version %d, not %d", ErrConflict, r.Version, c.Abort.Version)
	}
	r.Stage, r.Updated = StageAborted, c.Time
	return nil
}
