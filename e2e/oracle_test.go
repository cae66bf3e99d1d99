package e2e

import (
	"fmt"

	"github.com/patchgate/patchgate/dataplane"
	"github.com/patchgate/patchgate/dataplane/analyzer"
	"github.com/patchgate/patchgate/dataplane/engine"
	"github.com/patchgate/patchgate/dataplane/patch"

	// The analyzers register themselves, as in the patchgate binary.
	_ "github.com/patchgate/patchgate/dataplane/analyzer/all"
)

// offlineVerdict runs a patch test as one clean session through the offline
// engine with the whole catalog (what `patchgate patches test` does) and
// returns the strongest verdict of its packets: what the inline nodes must
// decide for the same conversation.
func offlineVerdict(prog *patch.Program, p *patch.Patch, t *patch.Test) (dataplane.Verdict, error) {
	capture, err := engine.TestFrames(p, t, engine.PlainVariant)
	if err != nil {
		return 0, err
	}
	cfg := engine.DefaultConfig()
	cfg.Checksums = engine.ChecksumValidate
	e, err := engine.New(cfg, prog, &engine.AlertRecorder{})
	if err != nil {
		return 0, err
	}
	w := e.NewWorker()
	v := dataplane.Pass
	for _, fr := range capture.Frames {
		v = v.Stronger(w.Process(capture.LinkType, fr.Data, fr.CI.Timestamp).Verdict)
	}
	return v, nil
}

// serverPort is the port a patch test talks to (its server_port, or its
// protocol's first well-known port), as engine.TestFrames chooses it.
func serverPort(p *patch.Patch, t *patch.Test) (uint16, error) {
	if t.ServerPort != 0 {
		return t.ServerPort, nil
	}
	spec, ok := analyzer.Lookup(p.Protocol)
	if !ok || len(spec.Ports) == 0 {
		return 0, fmt.Errorf("protocol %q has no default port", p.Protocol)
	}
	return spec.Ports[0], nil
}

// caseName names a patch test in subtest names and messages.
func caseName(p *patch.Patch, t *patch.Test) string {
	return fmt.Sprintf("%s:%d", p.ID, t.Line)
}
