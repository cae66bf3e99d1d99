package main

import (
	"context"
	"fmt"
	"io"
	"os/signal"
	"syscall"

	"github.com/patchgate/patchgate/node"
)

// cmdNode runs the inline node daemon, or one of its maintenance commands.
//
//	patchgate node --config FILE [--check]
//	patchgate node cleanup --name NAME [--netns PATH]
//	patchgate node fallback --config FILE [--netns PATH]
func cmdNode(args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 {
		switch args[0] {
		case "cleanup":
			fs := newFlags("node cleanup", "node cleanup --name NAME [--netns PATH]", stderr)
			name := fs.String("name", "", "node name whose rules and bridge are removed (required)")
			netns := fs.String("netns", "", "network namespace path (default: the current one)")
			if err := parse(fs, args[1:]); err != nil {
				return err
			}
			if *name == "" || fs.NArg() != 0 {
				fs.Usage()
				return errUsage
			}
			return node.Cleanup(*name, *netns)
		case "fallback":
			fs := newFlags("node fallback", "node fallback --config FILE [--netns PATH]", stderr)
			path := fs.String("config", "", "node configuration file (required)")
			netns := fs.String("netns", "", "network namespace path (default: the current one)")
			if err := parse(fs, args[1:]); err != nil {
				return err
			}
			if *path == "" || fs.NArg() != 0 {
				fs.Usage()
				return errUsage
			}
			cfg, err := node.Load(*path)
			if err != nil {
				return oneLine(err)
			}
			return node.Fallback(cfg, *netns)
		}
	}
	fs := newFlags("node", "node --config FILE [--check] | node cleanup --name NAME | node fallback --config FILE", stderr)
	path := fs.String("config", "", "node configuration file, YAML (required)")
	check := fs.Bool("check", false, "validate the configuration and the patches, then exit")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *path == "" || fs.NArg() != 0 {
		fs.Usage()
		return errUsage
	}
	cfg, err := node.Load(*path)
	if err != nil {
		return oneLine(err)
	}
	if *check {
		if _, err := loadProgram(cfg.Patches); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s: configuration valid (node %s, %s, fail-%s)\n", *path, cfg.Name, cfg.Dataplane.Mode, cfg.Dataplane.Fail)
		return nil
	}
	n, err := node.New(cfg, node.Options{})
	if err != nil {
		return oneLine(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	return n.Run(ctx)
}
