// Command patchgate is the patchgate node daemon and its offline tools:
// replaying captures through the inspection engine and validating and testing
// virtual patches.
//
//	patchgate replay --patches DIR [--eve FILE] CAPTURE...
//	patchgate patches validate DIR
//	patchgate patches test [--evasion] DIR
//	patchgate patches list DIR
//	patchgate gen demo --patches DIR --out FILE
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	// Protocol analyzers register themselves.
	_ "github.com/patchgate/patchgate/dataplane/analyzer/all"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

const usage = `usage: patchgate <command> [flags]

commands:
  replay    inspect capture files (pcap, pcapng) with a patch set; alerts as EVE JSON
  patches   validate, test or list a directory of virtual patches
  gen       write generated captures (demo traffic)
  lab       build and drive the evaluation lab in network namespaces (root)
  node      run the inline gateway node (NFQUEUE or AF_PACKET); node cleanup --name NAME
  demo      3-node lab: benign traffic and every patch's exploits, blocked per node and CVE (root)
  version   print the version

Run 'patchgate <command> -h' for a command's flags.
`

// errUsage marks command-line mistakes (exit status 2).
var errUsage = errors.New("usage")

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch args[0] {
	case "replay":
		err = cmdReplay(args[1:], stdout, stderr)
	case "patches":
		err = cmdPatches(args[1:], stdout, stderr)
	case "gen":
		err = cmdGen(args[1:], stdout, stderr)
	case "lab":
		err = cmdLab(args[1:], stdout, stderr)
	case "node":
		err = cmdNode(args[1:], stdout, stderr)
	case "demo":
		err = cmdDemo(args[1:], stdout, stderr)
	case "version", "--version", "-version":
		fmt.Fprintln(stdout, "patchgate", version)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
	default:
		fmt.Fprintf(stderr, "patchgate: unknown command %q\n%s", args[0], usage)
		return 2
	}
	switch {
	case err == nil:
		return 0
	case errors.Is(err, errUsage), errors.Is(err, flag.ErrHelp):
		return 2
	}
	fmt.Fprintf(stderr, "patchgate: %v\n", err)
	return 1
}

// newFlags returns a FlagSet that reports errors on stderr and does not exit.
func newFlags(name, synopsis string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: patchgate %s\n", synopsis)
		fs.PrintDefaults()
	}
	return fs
}

// parse parses flags, mapping parse errors to errUsage (already reported).
func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	return nil
}
