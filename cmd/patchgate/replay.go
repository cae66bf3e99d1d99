package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"text/tabwriter"
	"time"

	"github.com/patchgate/patchgate/dataplane"
	"github.com/patchgate/patchgate/dataplane/engine"
	"github.com/patchgate/patchgate/dataplane/eve"
	"github.com/patchgate/patchgate/dataplane/patch"
	"github.com/patchgate/patchgate/dataplane/source"
)

// expireEvery is how often (in capture time) idle flows are expired during a replay.
const expireEvery = time.Second

func cmdReplay(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("replay", "replay --patches DIR [--eve FILE] [flags] CAPTURE...", stderr)
	patchDir := fs.String("patches", "", "directory of virtual patches (required)")
	evePath := fs.String("eve", "-", "write EVE JSON alerts to this file (- for standard output)")
	midstream := fs.String("midstream", "pickup", "TCP flows first seen mid-stream: pickup, drop or reset")
	checksums := fs.String("checksums", "auto", "checksum validation: auto, validate or ignore")
	violations := fs.String("violations", "count", "protocol violations (smuggling signs, limits): count, alert or block")
	failure := fs.String("analyzer-failure", "block", "flows whose analyzer gives up on ambiguous framing: block (reset) or pass")
	quiet := fs.Bool("q", false, "do not print the summary table")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *patchDir == "" || fs.NArg() == 0 {
		fs.Usage()
		return errUsage
	}
	prog, err := loadProgram(*patchDir)
	if err != nil {
		return err
	}
	cfg := engine.DefaultConfig()
	if cfg.Midstream, err = engine.ParseMidstream(*midstream); err != nil {
		return err
	}
	if cfg.Checksums, err = engine.ParseChecksum(*checksums); err != nil {
		return err
	}
	if cfg.Violations, err = engine.ParseViolations(*violations); err != nil {
		return err
	}
	if cfg.AnalyzerFailure, err = engine.ParseFailure(*failure); err != nil {
		return err
	}
	// Open every capture first: a missing file is reported before any output.
	var srcs []*source.FileSource
	defer func() {
		for _, s := range srcs {
			s.Close()
		}
	}()
	for _, path := range fs.Args() {
		s, err := source.OpenFile(path)
		if err != nil {
			return err
		}
		srcs = append(srcs, s)
	}
	out := stdout
	if *evePath != "-" {
		f, err := os.Create(*evePath)
		if err != nil {
			return fmt.Errorf("eve: %w", err)
		}
		defer f.Close()
		out = f
	}
	ew := eve.NewWriter(out, "")
	eng, err := engine.New(cfg, prog, ew)
	if err != nil {
		return err
	}
	w := eng.NewWorker()
	var lastExpire time.Time
	var readErr error
	for i, s := range srcs {
		for {
			data, ci, err := s.ReadPacketData()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				readErr = fmt.Errorf("%s: %w", fs.Arg(i), err)
				break
			}
			w.Process(s.LinkType(), data, ci.Timestamp)
			if ci.Timestamp.Sub(lastExpire) >= expireEvery {
				eng.Expire(ci.Timestamp)
				lastExpire = ci.Timestamp
			}
		}
		if readErr != nil {
			break
		}
	}
	if err := ew.Flush(); err != nil {
		return err
	}
	if !*quiet {
		printSummary(stderr, prog, eng.Stats())
	}
	// A truncated capture is reported after what could be read was inspected.
	return readErr
}

// printSummary writes the per-patch table and the packet totals.
func printSummary(w io.Writer, prog *patch.Program, st engine.Stats) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PATCH\tCVE\tMATCHES\tACTION\tMODE\tTITLE")
	ids := make([]string, 0, len(prog.Patches))
	byID := map[string]*patch.Compiled{}
	for _, c := range prog.Patches {
		ids = append(ids, c.ID)
		byID[c.ID] = c
	}
	sort.Strings(ids)
	for _, id := range ids {
		c := byID[id]
		cve := "-"
		if len(c.CVE) > 0 {
			cve = c.CVE[0]
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\n", id, cve, st.PatchAlerts[id], c.Action, c.Mode, c.Title)
	}
	var builtins []string
	for id := range st.PatchAlerts {
		if byID[id] == nil {
			builtins = append(builtins, id)
		}
	}
	sort.Strings(builtins)
	for _, id := range builtins {
		fmt.Fprintf(tw, "%s\t-\t%d\t%s\t%s\t%s\n", id, st.PatchAlerts[id], "-", "-", "engine detection")
	}
	tw.Flush()
	fmt.Fprintf(w, "\npackets %d  bytes %d  flows %d  alerts %d  passed %d  dropped %d  reset %d\n",
		st.Packets, st.Bytes, st.FlowsCreated, st.Alerts,
		st.Verdicts[dataplane.Pass], st.Verdicts[dataplane.Drop], st.Verdicts[dataplane.Reset])
	first := true
	for r, n := range st.Reasons {
		if n == 0 || r == int(dataplane.ReasonNone) {
			continue
		}
		if first {
			fmt.Fprint(w, "non-pass verdicts by reason:")
			first = false
		}
		fmt.Fprintf(w, " %s=%d", dataplane.Reason(r), n)
	}
	if !first {
		fmt.Fprintln(w)
	}
	if len(st.Violations) > 0 {
		codes := make([]string, 0, len(st.Violations))
		for c := range st.Violations {
			codes = append(codes, c)
		}
		sort.Strings(codes)
		fmt.Fprint(w, "protocol violations (counted; --violations alert to raise alerts):")
		for _, c := range codes {
			fmt.Fprintf(w, " %s=%d", c, st.Violations[c])
		}
		fmt.Fprintln(w)
	}
}
