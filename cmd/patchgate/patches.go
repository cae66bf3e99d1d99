package main

import (
	"errors"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/patchgate/patchgate/dataplane/engine"
	"github.com/patchgate/patchgate/dataplane/patch"
)

func cmdPatches(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprintln(stderr, "usage: patchgate patches validate|test|list [flags] DIR")
		return errUsage
	}
	switch args[0] {
	case "validate":
		fs := newFlags("patches validate", "patches validate DIR", stderr)
		if err := parse(fs, args[1:]); err != nil {
			return err
		}
		if fs.NArg() != 1 {
			fs.Usage()
			return errUsage
		}
		prog, err := loadProgram(fs.Arg(0))
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%d patches valid in %s\n", len(prog.Patches), fs.Arg(0))
		return nil
	case "test":
		fs := newFlags("patches test", "patches test [--evasion] [-v] DIR", stderr)
		evasion := fs.Bool("evasion", false, "also run every test through segmentation, reordering, duplication and IPv6 variants")
		verbose := fs.Bool("v", false, "print every test, not only failures")
		if err := parse(fs, args[1:]); err != nil {
			return err
		}
		if fs.NArg() != 1 {
			fs.Usage()
			return errUsage
		}
		prog, err := loadProgram(fs.Arg(0))
		if err != nil {
			return err
		}
		variants := []engine.Variant{engine.PlainVariant}
		if *evasion {
			variants = append(variants, engine.EvasionVariants()...)
		}
		results := engine.RunPatchTests(prog, variants...)
		failed := 0
		for _, r := range results {
			if !r.Passed {
				failed++
			}
			if !r.Passed || *verbose {
				fmt.Fprintln(stdout, r.String())
			}
		}
		fmt.Fprintf(stdout, "%d passed, %d failed\n", len(results)-failed, failed)
		if failed > 0 {
			return fmt.Errorf("%d of %d patch tests failed", failed, len(results))
		}
		return nil
	case "list":
		fs := newFlags("patches list", "patches list DIR", stderr)
		if err := parse(fs, args[1:]); err != nil {
			return err
		}
		if fs.NArg() != 1 {
			fs.Usage()
			return errUsage
		}
		prog, err := loadProgram(fs.Arg(0))
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tSID\tSEVERITY\tEVENT\tACTION\tMODE\tTESTS\tTITLE")
		for _, c := range prog.Patches {
			fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t%d\t%s\n", c.ID, c.SID, c.Severity, c.Event, c.Action, c.Mode, len(c.Tests), c.Title)
		}
		return tw.Flush()
	}
	fmt.Fprintf(stderr, "patchgate patches: unknown subcommand %q (validate, test, list)\n", args[0])
	return errUsage
}

// loadProgram loads and compiles the patches under dir.
func loadProgram(dir string) (*patch.Program, error) {
	ps, err := patch.LoadDir(dir)
	if err != nil {
		return nil, oneLine(err)
	}
	prog, err := patch.Compile(1, ps)
	if err != nil {
		return nil, oneLine(err)
	}
	return prog, nil
}

// oneLine turns joined errors into a single error whose message lists each on
// its own line (the first on the "patchgate:" line).
func oneLine(err error) error {
	var j interface{ Unwrap() []error }
	if errors.As(err, &j) {
		errs := j.Unwrap()
		if len(errs) > 1 {
			msg := fmt.Sprintf("%d problems:", len(errs))
			for _, e := range errs {
				msg += "\n  " + e.Error()
			}
			return errors.New(msg)
		}
	}
	return err
}
