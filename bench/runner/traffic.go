package runner

import (
	"fmt"

	"github.com/patchgate/patchgate/bench/traffic"
	"github.com/patchgate/patchgate/dataplane/patch"
)

// generateTraffic writes a bench/traffic capture (HTTP keep-alive, TLS,
// DNS over UDP and TCP, IMIX-like sizes, every catalog exploit and
// look-alike at known positions) and reads its manifest's exploits.
func generateTraffic(path, patches string, flows int, seed uint64) (*benchCapture, error) {
	ps, err := patch.LoadDir(patches)
	if err != nil {
		return nil, fmt.Errorf("runner: catalog: %w", err)
	}
	o := traffic.DefaultOptions()
	o.Seed, o.Flows, o.Patches, o.Out = seed, flows, ps, path
	res, err := traffic.Generate(o)
	if err != nil {
		return nil, fmt.Errorf("runner: bench/traffic: %w", err)
	}
	bc := &benchCapture{Info: CaptureInfo{Source: "bench/traffic", Path: path, Seed: seed}}
	if bc.Exploits, err = manifestExploits(res.ManifestPath); err != nil {
		return nil, err
	}
	return bc, nil
}
