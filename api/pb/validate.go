package pb

// Hand-written (not generated): request validation. The API's validator
// interceptor calls Validate on every request that has it and refuses an
// invalid one with codes.InvalidArgument before the handler runs.

import (
	"fmt"
	"regexp"
)

// MaxBundleBytes bounds a pushed bundle (the full catalog is ~1.3 MB).
const MaxBundleBytes = 16 << 20

var nodeNameRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$`)

// Validate checks the bundle size and the plan's shape.
func (r *PushPatchSetRequest) Validate() error {
	if len(r.GetBundle()) == 0 {
		return fmt.Errorf("bundle: empty")
	}
	if len(r.GetBundle()) > MaxBundleBytes {
		return fmt.Errorf("bundle: %d bytes exceeds %d", len(r.GetBundle()), MaxBundleBytes)
	}
	p := r.GetPlan()
	switch p.GetStrategy() {
	case "", "all-at-once", "canary", "detect-first":
	default:
		return fmt.Errorf("plan.strategy: %q is not all-at-once, canary or detect-first", p.GetStrategy())
	}
	if p.GetCanaryPercent() < 0 || p.GetCanaryPercent() > 100 {
		return fmt.Errorf("plan.canary_percent: %d outside 0..100", p.GetCanaryPercent())
	}
	for i, n := range p.GetCanaryNodes() {
		if !nodeNameRe.MatchString(n) {
			return fmt.Errorf("plan.canary_nodes[%d]: %q is not a node name", i, n)
		}
	}
	return nil
}

// Validate requires a version.
func (r *VersionRequest) Validate() error {
	if r.GetVersion() == 0 {
		return fmt.Errorf("version: must be at least 1")
	}
	return nil
}

// Validate requires a version.
func (r *ShowPatchSetRequest) Validate() error {
	if r.GetVersion() == 0 {
		return fmt.Errorf("version: must be at least 1")
	}
	return nil
}

// Validate requires both versions.
func (r *DiffPatchSetsRequest) Validate() error {
	if r.GetFrom() == 0 || r.GetTo() == 0 {
		return fmt.Errorf("from, to: both versions must be at least 1")
	}
	return nil
}

// Validate requires a node name and bounds the reason.
func (r *DrainRequest) Validate() error {
	if !nodeNameRe.MatchString(r.GetNode()) {
		return fmt.Errorf("node: %q is not a node name", r.GetNode())
	}
	if len(r.GetReason()) > 256 {
		return fmt.Errorf("reason: longer than 256 characters")
	}
	return nil
}

// Validate bounds the limit.
func (r *HistoryRequest) Validate() error {
	if r.GetLimit() < 0 {
		return fmt.Errorf("limit: %d is negative", r.GetLimit())
	}
	return nil
}

// Validate bounds the limit.
func (r *TopFlowsRequest) Validate() error {
	if r.GetLimit() > 10000 {
		return fmt.Errorf("limit: %d exceeds 10000", r.GetLimit())
	}
	return nil
}
