package main

import (
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/patchgate/patchgate/bench/runner"
)

// cmdReport is `pgbench report DIR`: it re-judges the steps of DIR/results.json
// with the current rules and rewrites results.json, the plots and report.md.
func cmdReport(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("pgbench report", flag.ContinueOnError)
	fs.SetOutput(stderr)
	plot := fs.String("plot", "go -C bench/plot run .", "command that draws the PNGs (gets -in results.json -out DIR); empty skips")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return fmt.Errorf("usage: pgbench report [--plot CMD] DIR (a directory holding results.json)")
	}
	var plotCmd []string
	if *plot != "" {
		plotCmd = strings.Fields(*plot)
	}
	dir := fs.Arg(0)
	if err := runner.Rewrite(dir, plotCmd, stderr); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "rewrote %s/results.json and %s/report.md\n", dir, dir)
	return nil
}

func init() { commands["report"] = cmdReport }
