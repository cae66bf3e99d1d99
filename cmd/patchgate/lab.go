package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/patchgate/patchgate/deploy/lab"
)

const labUsage = `usage: patchgate lab <command> [flags]

The evaluation lab in network namespaces (needs root): clients → R1 (ECMP over
the nodes) → N gateway nodes → R2 → servers. See deploy/lab/README.md.

commands:
  up      [--nodes N] [--variant l3|l2] [--prefix P] [--clients N] [--servers N]
          [--patches DIR] [--fail open|closed] [--mtu N] [--start]
  down    [--prefix P | --all]
  exec    [--prefix P] NS -- CMD [ARG...]      NS: c1, r1, n2, s1, t or a full name
  node    start|stop|kill|bypass N [--prefix P]
  status  [--prefix P]

--prefix may be left out while exactly one lab runs.
`

func cmdLab(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, labUsage)
		return errUsage
	}
	switch args[0] {
	case "up":
		return labUp(args[1:], stdout, stderr)
	case "down":
		return labDown(args[1:], stdout, stderr)
	case "exec":
		return labExec(args[1:], stdout, stderr)
	case "node":
		return labNode(args[1:], stdout, stderr)
	case "status":
		return labStatus(args[1:], stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, labUsage)
		return nil
	}
	fmt.Fprintf(stderr, "patchgate lab: unknown command %q\n%s", args[0], labUsage)
	return errUsage
}

// stateFlag adds the --state flag every lab command has.
func stateFlag(fs *flag.FlagSet) *string {
	return fs.String("state", lab.DefaultStateRoot, "directory holding the labs' state")
}

// defaultPatchDir is ./patches when it exists (a source checkout), else the
// installed location.
func defaultPatchDir() string {
	if st, err := os.Stat("patches"); err == nil && st.IsDir() {
		if abs, err := filepath.Abs("patches"); err == nil {
			return abs
		}
	}
	return lab.DefaultPatches
}

func labUp(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("lab up", "lab up [flags]", stderr)
	cfg := lab.DefaultConfig()
	fs.IntVar(&cfg.Nodes, "nodes", cfg.Nodes, "gateway nodes (ECMP next hops or parallel links)")
	variant := fs.String("variant", string(cfg.Variant), "l3 (routed nodes, NFQUEUE) or l2 (bridging nodes, AF_PACKET)")
	fs.StringVar(&cfg.Prefix, "prefix", "", "namespace prefix (default: random pgXXXX)")
	fs.IntVar(&cfg.Clients, "clients", cfg.Clients, "client namespaces")
	fs.IntVar(&cfg.Servers, "servers", cfg.Servers, "server namespaces")
	fs.StringVar(&cfg.Patches, "patches", defaultPatchDir(), "patch directory written into the node configs")
	fs.StringVar(&cfg.Fail, "fail", cfg.Fail, "nodes' overload and shutdown policy: open or closed")
	fs.IntVar(&cfg.MTU, "mtu", cfg.MTU, "MTU of every lab interface")
	fs.IntVar(&cfg.Queues, "queues", cfg.Queues, "NFQUEUE queues / AF_PACKET fanout workers per node")
	start := fs.Bool("start", false, "start patchgate on every node once the lab is up")
	state := stateFlag(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		fs.Usage()
		return errUsage
	}
	cfg.Variant = lab.Variant(strings.ToLower(*variant))
	cfg.StateRoot = *state
	if abs, err := filepath.Abs(cfg.Patches); err == nil {
		cfg.Patches = abs
	}
	l, err := lab.Up(cfg)
	if err != nil {
		return err
	}
	describe(stdout, l)
	if *start {
		for _, n := range l.Nodes {
			if err := l.StartNode(n.Index); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "node %d started (pid %d)\n", n.Index, l.NodePID(n.Index))
		}
	}
	fmt.Fprintf(stdout, "\nnext: patchgate lab node start 1 --prefix %s\n", l.Prefix)
	fmt.Fprintf(stdout, "      patchgate lab exec --prefix %s c1 -- curl -s http://%s/\n", l.Prefix, l.Servers[0].Addr4)
	fmt.Fprintf(stdout, "      patchgate lab down --prefix %s\n", l.Prefix)
	return nil
}

// describe prints a lab's namespaces and addresses.
func describe(w io.Writer, l *lab.Lab) {
	fmt.Fprintf(w, "lab %s (%s, %d nodes), state in %s\n", l.Prefix, l.Variant, len(l.Nodes), l.Dir)
	for _, h := range l.Clients {
		fmt.Fprintf(w, "  client  %-12s eth0 %s %s  gw %s\n", h.NS, h.Addr4, h.Addr6, lab.R1LAN4)
	}
	fmt.Fprintf(w, "  router  %-12s lan %s %s, ECMP to %s %s over %d next hops\n", l.R1.NS, lab.R1LAN4, lab.R1LAN6, lab.ServerLAN4, lab.ServerLAN6, len(l.Nodes))
	for i, n := range l.Nodes {
		if l.Variant == lab.L3 {
			fmt.Fprintf(w, "  node    %-12s eth0 %s %s | eth1 %s %s\n", n.NS, n.In.Addr4, n.In.Addr6, n.Out.Addr4, n.Out.Addr6)
		} else {
			fmt.Fprintf(w, "  node    %-12s bridges eth0 | eth1 on link %s ↔ %s\n", n.NS, l.R1.Links[i].Addr4, l.R2.Links[i].Addr4)
		}
	}
	fmt.Fprintf(w, "  router  %-12s lan %s %s, ECMP back to %s %s\n", l.R2.NS, lab.R2LAN4, lab.R2LAN6, lab.ClientLAN4, lab.ClientLAN6)
	for _, h := range l.Servers {
		fmt.Fprintf(w, "  server  %-12s eth0 %s %s  gw %s\n", h.NS, h.Addr4, h.Addr6, lab.R2LAN4)
	}
	fmt.Fprintf(w, "  replay  %-12s c on R1's LAN, s on R2's LAN\n", l.Tap.NS)
}

// resolvePrefix returns the given prefix, or the only lab's.
func resolvePrefix(stateRoot, prefix string) (string, error) {
	if prefix != "" {
		return prefix, nil
	}
	ps, err := lab.Prefixes(stateRoot)
	if err != nil {
		return "", err
	}
	switch len(ps) {
	case 0:
		return "", fmt.Errorf("lab: no lab running (start one with: patchgate lab up)")
	case 1:
		return ps[0], nil
	}
	return "", fmt.Errorf("lab: %d labs running (%s): choose one with --prefix", len(ps), strings.Join(ps, ", "))
}

func labDown(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("lab down", "lab down [--prefix P | --all]", stderr)
	prefix := fs.String("prefix", "", "lab to remove")
	all := fs.Bool("all", false, "remove every lab found")
	state := stateFlag(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 0 || (*all && *prefix != "") {
		fs.Usage()
		return errUsage
	}
	if *all {
		ps, err := lab.Prefixes(*state)
		if err != nil {
			return err
		}
		if err := lab.DownAll(*state); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "removed %d lab(s)\n", len(ps))
		return nil
	}
	p, err := resolvePrefix(*state, *prefix)
	if err != nil {
		return err
	}
	if err := lab.Down(*state, p); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "removed lab %s\n", p)
	return nil
}

func labExec(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("lab exec", "lab exec [--prefix P] NS -- CMD [ARG...]", stderr)
	prefix := fs.String("prefix", "", "lab")
	state := stateFlag(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	rest := fs.Args()
	if len(rest) >= 2 && rest[1] == "--" {
		rest = append(rest[:1:1], rest[2:]...)
	}
	if len(rest) < 2 {
		fs.Usage()
		return errUsage
	}
	p, err := resolvePrefix(*state, *prefix)
	if err != nil {
		return err
	}
	l, err := lab.Load(*state, p)
	if err != nil {
		return err
	}
	cmd := lab.Command(l.NS(rest[0]), rest[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, stdout, stderr
	if err := cmd.Run(); err != nil {
		var ee interface{ ExitCode() int }
		if errors.As(err, &ee) {
			return fmt.Errorf("lab exec %s: exit status %d", rest[0], ee.ExitCode())
		}
		return fmt.Errorf("lab exec %s: %w", rest[0], err)
	}
	return nil
}

func labNode(args []string, stdout, stderr io.Writer) error {
	const synopsis = "lab node start|stop|kill|bypass N [--prefix P]"
	if len(args) < 2 {
		fmt.Fprintln(stderr, "usage: patchgate "+synopsis)
		return errUsage
	}
	action := args[0]
	i, err := strconv.Atoi(args[1])
	if err != nil {
		fmt.Fprintf(stderr, "patchgate lab node: node number %q is not a number\n", args[1])
		return errUsage
	}
	fs := newFlags("lab node", synopsis, stderr)
	prefix := fs.String("prefix", "", "lab")
	state := stateFlag(fs)
	if err := parse(fs, args[2:]); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		fs.Usage()
		return errUsage
	}
	p, err := resolvePrefix(*state, *prefix)
	if err != nil {
		return err
	}
	l, err := lab.Load(*state, p)
	if err != nil {
		return err
	}
	switch action {
	case "start":
		if exe, err := os.Executable(); err == nil {
			l.SetBinary(exe)
		}
		if err := l.StartNode(i); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "node %d ready (pid %d), config %s, log %s\n", i, l.NodePID(i), l.NodeConfigPath(i), l.NodeLogPath(i))
	case "stop":
		if err := l.StopNode(i); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "node %d stopped (SIGTERM)\n", i)
	case "kill":
		if err := l.KillNode(i); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "node %d killed (SIGKILL)\n", i)
	case "bypass":
		if err := l.Bypass(i); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "node %d forwards with the kernel\n", i)
	default:
		fmt.Fprintf(stderr, "patchgate lab node: unknown action %q\nusage: patchgate %s\n", action, synopsis)
		return errUsage
	}
	return nil
}

func labStatus(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("lab status", "lab status [--prefix P]", stderr)
	prefix := fs.String("prefix", "", "lab (default: every lab)")
	state := stateFlag(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		fs.Usage()
		return errUsage
	}
	ps := []string{*prefix}
	if *prefix == "" {
		var err error
		if ps, err = lab.Prefixes(*state); err != nil {
			return err
		}
		if len(ps) == 0 {
			fmt.Fprintln(stdout, "no lab running")
			return nil
		}
	}
	for _, p := range ps {
		nss, err := lab.Namespaces(p)
		if err != nil {
			return err
		}
		l, err := lab.Load(*state, p)
		if err != nil {
			fmt.Fprintf(stdout, "lab %s: %d namespaces, no state (%v); remove with: patchgate lab down --prefix %s\n", p, len(nss), err, p)
			continue
		}
		describe(stdout, l)
		fmt.Fprintf(stdout, "  %d namespaces present\n", len(nss))
		for _, n := range l.Nodes {
			state := "patchgate not running"
			if pid := l.NodePID(n.Index); pid != 0 {
				state = fmt.Sprintf("patchgate pid %d", pid)
				if code, _, err := l.NodeGet(n.Index, "/readyz"); err == nil && code == 200 {
					state += ", ready"
				} else {
					state += ", not ready"
				}
			}
			fmt.Fprintf(stdout, "  node %d: %s\n", n.Index, state)
		}
	}
	return nil
}
