package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/patchgate/patchgate/dataplane/engine"
	"github.com/patchgate/patchgate/dataplane/gen"
)

func cmdGen(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "demo" {
		fmt.Fprintln(stderr, "usage: patchgate gen demo --patches DIR --out FILE [--seed N] [--sessions N]")
		return errUsage
	}
	fs := newFlags("gen demo", "gen demo --patches DIR --out FILE [--seed N] [--sessions N]", stderr)
	patchDir := fs.String("patches", "", "directory of virtual patches whose test traffic is included (required)")
	out := fs.String("out", "", "capture file to write (.pcap or .pcapng) (required)")
	seed := fs.Uint64("seed", 1, "seed of the benign traffic mix")
	sessions := fs.Int("sessions", 40, "benign HTTP keep-alive sessions in the mix")
	if err := parse(fs, args[1:]); err != nil {
		return err
	}
	if *patchDir == "" || *out == "" || fs.NArg() != 0 {
		fs.Usage()
		return errUsage
	}
	prog, err := loadProgram(*patchDir)
	if err != nil {
		return err
	}
	start := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	capture, _, err := gen.Mix(gen.MixOptions{Seed: *seed, Sessions: *sessions, Clock: gen.Clock{Start: start, Step: 50 * time.Microsecond}})
	if err != nil {
		return err
	}
	// Then every patch test, each in its own session: exploits (must match)
	// and benign look-alikes (must not).
	next := start.Add(time.Duration(len(capture.Frames)+1) * 50 * time.Microsecond)
	port := uint16(20000)
	exploits, benign := 0, 0
	for _, c := range prog.Patches {
		for i := range c.Tests {
			t := &c.Tests[i]
			v := engine.Variant{Name: "demo", ClientPort: port, Clock: gen.Clock{Start: next, Step: 100 * time.Microsecond}}
			port++
			tc, err := engine.TestFrames(c.Patch, t, v)
			if err != nil {
				return fmt.Errorf("%s: test %q: %w", c.File, t.Name, err)
			}
			if tc.LinkType != capture.LinkType {
				return fmt.Errorf("%s: test %q: link type %v differs from the mix's %v", c.File, t.Name, tc.LinkType, capture.LinkType)
			}
			capture.Frames = append(capture.Frames, tc.Frames...)
			next = next.Add(time.Duration(len(tc.Frames)+1) * 100 * time.Microsecond)
			if t.Match {
				exploits++
			} else {
				benign++
			}
		}
	}
	f, err := os.Create(*out)
	if err != nil {
		return err
	}
	if strings.EqualFold(filepath.Ext(*out), ".pcapng") {
		err = capture.WritePcapNG(f)
	} else {
		err = capture.WritePcap(f)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("%s: %w", *out, err)
	}
	fmt.Fprintf(stdout, "wrote %s: %d frames; %d benign sessions, %d exploit sessions (one per must-match test), %d benign look-alike sessions\n",
		*out, len(capture.Frames), *sessions, exploits, benign)
	return nil
}
