// Command pgbench runs patchgate's benchmarks:
//
//	pgbench run [--quick] [--out bench/results/<date>]   tcpreplay ramps through the lab, report, JSON, plots
//	pgbench traffic ...                                  a seeded capture and its exploit manifest (bench/traffic)
//	pgbench report DIR                                   re-judge DIR/results.json and rewrite its report and plots
//
// See bench/README.md.
package main

import (
	"fmt"
	"io"
	"os"
)

// commands are the subcommands by name; files add theirs in init.
var commands = map[string]func(args []string, stdout, stderr io.Writer) error{
	"run":     cmdRun,
	"traffic": cmdTraffic,
}

func main() {
	if len(os.Args) < 2 || commands[os.Args[1]] == nil {
		fmt.Fprintln(os.Stderr, "usage: pgbench <command> [flags]; commands:")
		for name := range commands {
			fmt.Fprintln(os.Stderr, "  "+name)
		}
		os.Exit(2)
	}
	if err := commands[os.Args[1]](os.Args[2:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "pgbench:", err)
		os.Exit(1)
	}
}
