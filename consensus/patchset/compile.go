package patchset

import (
	"errors"
	"fmt"
	"strings"

	// Compiling needs every analyzer's event schema registered.
	_ "github.com/patchgate/patchgate/dataplane/analyzer/all"
	"github.com/patchgate/patchgate/dataplane/engine"
	"github.com/patchgate/patchgate/dataplane/patch"
)

// maxReportedFailures bounds the failed patch tests listed in an error.
const maxReportedFailures = 10

// Patches parses every file of the bundle. Errors name the file (its name in
// the bundle), the line and the field.
func (b *Bundle) Patches() ([]*patch.Patch, error) {
	var (
		out  []*patch.Patch
		errs []error
	)
	for _, f := range b.Files {
		p, err := patch.Parse(f.Name, f.Data)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, p)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("patchset: version %d: %w", b.Manifest.Version, err)
	}
	return out, nil
}

// Compile parses and type-checks every patch of the bundle into a program
// stamped with the bundle's version. It does not verify the signature.
func (b *Bundle) Compile() (*patch.Program, error) {
	ps, err := b.Patches()
	if err != nil {
		return nil, err
	}
	prog, err := patch.Compile(b.Manifest.Version, ps)
	if err != nil {
		return nil, fmt.Errorf("patchset: version %d: %w", b.Manifest.Version, err)
	}
	return prog, nil
}

// CompileAndTest compiles the bundle and runs every patch's embedded tests
// through a fresh engine holding the whole program, once per variant
// (engine.PlainVariant when none are given). Any failing test fails the whole
// patch set: this is what the leader runs before committing a version.
func (b *Bundle) CompileAndTest(variants ...engine.Variant) (*patch.Program, error) {
	prog, err := b.Compile()
	if err != nil {
		return nil, err
	}
	var failed []string
	n := 0
	for _, r := range engine.RunPatchTests(prog, variants...) {
		if r.Passed {
			continue
		}
		n++
		if len(failed) < maxReportedFailures {
			failed = append(failed, r.String())
		}
	}
	if n > 0 {
		more := ""
		if n > len(failed) {
			more = fmt.Sprintf("\n  ... and %d more", n-len(failed))
		}
		return nil, fmt.Errorf("patchset: version %d: %d embedded patch test(s) failed:\n  %s%s",
			b.Manifest.Version, n, strings.Join(failed, "\n  "), more)
	}
	return prog, nil
}
