package tls_test

import (
	"os"
	"testing"

	_ "github.com/patchgate/patchgate/dataplane/analyzer/tls"
	"github.com/patchgate/patchgate/dataplane/engine"
	"github.com/patchgate/patchgate/dataplane/patch"
)

// The shipped TLS patches prove themselves against this analyzer: every
// test vector in patches/tls gives its expected verdict through the whole
// engine, also when the traffic is cut into tiny, reordered or duplicated
// segments.
func TestShippedPatches(t *testing.T) {
	const dir = "../../../patches/tls"
	if _, err := os.Stat(dir); err != nil {
		t.Skipf("no %s: %v", dir, err)
	}
	ps, err := patch.LoadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	prog, err := patch.Compile(1, ps)
	if err != nil {
		t.Fatal(err)
	}
	variants := append([]engine.Variant{engine.PlainVariant}, engine.EvasionVariants()...)
	results := engine.RunPatchTests(prog, variants...)
	if len(results) == 0 {
		t.Fatal("no patch tests ran")
	}
	for _, r := range results {
		if !r.Passed {
			t.Error(r.String())
		}
	}
}
