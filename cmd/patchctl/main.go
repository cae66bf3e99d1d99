// Command patchctl operates a patchgate cluster through its gRPC API: node
// status, signed patch sets (build offline, push, list, show, diff, history,
// rollback), rollouts (status with a progress display, promote, abort), node
// drain, alert tail and flow summary. See README.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/patchgate/patchgate/api"
	"github.com/patchgate/patchgate/api/pb"
)

// Defaults of the global flags.
const (
	defaultServer  = "127.0.0.1:7400"
	defaultTimeout = 30 * time.Second
)

// globals are the flags every command accepts.
type globals struct {
	server, token, tokenFile  string
	ca, cert, key, serverName string
	json                      bool
	timeout                   time.Duration
}

func (g *globals) register(fs *flag.FlagSet) {
	fs.StringVar(&g.server, "server", envOr("PATCHGATE_SERVER", defaultServer), "node API address (env PATCHGATE_SERVER)")
	fs.StringVar(&g.token, "token", os.Getenv("PATCHGATE_TOKEN"), "bearer token (env PATCHGATE_TOKEN)")
	fs.StringVar(&g.tokenFile, "token-file", "", "read the bearer token from this file")
	fs.StringVar(&g.ca, "tls-ca", "", "cluster CA (PEM): use TLS and verify the server")
	fs.StringVar(&g.cert, "tls-cert", "", "client certificate (PEM) for mutual TLS")
	fs.StringVar(&g.key, "tls-key", "", "client key (PEM) for mutual TLS")
	fs.StringVar(&g.serverName, "tls-server-name", "", "expected server name in its certificate")
	fs.BoolVar(&g.json, "json", false, "print JSON (read commands)")
	fs.DurationVar(&g.timeout, "timeout", defaultTimeout, "deadline of the command")
}

func envOr(k, d string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return d
}

// command is one leaf command.
type command struct {
	path  string // "patchset push"
	usage string // arguments
	help  string
	flags func(fs *flag.FlagSet) // extra flags
	run   func(e *env, args []string) error
	nargs int // required positional arguments (-1: any)
	// timeout replaces defaultTimeout as the deadline when --timeout is not
	// given (commands that wait).
	timeout time.Duration
}

// env is what a running command gets.
type env struct {
	g      globals
	fs     *flag.FlagSet
	out    io.Writer
	ctx    context.Context
	client pb.PatchGateClient
	close  func()
}

// connect dials the server (lazily: commands that work offline never call it).
func (e *env) connect() (pb.PatchGateClient, error) {
	if e.client != nil {
		return e.client, nil
	}
	tok := e.g.token
	if e.g.tokenFile != "" {
		b, err := os.ReadFile(e.g.tokenFile)
		if err != nil {
			return nil, fmt.Errorf("patchctl: token file: %w", err)
		}
		tok = strings.TrimSpace(string(b))
	}
	conn, err := api.Dial(api.ClientConfig{Server: e.g.server, Token: tok, CAFile: e.g.ca, CertFile: e.g.cert,
		KeyFile: e.g.key, ServerName: e.g.serverName})
	if err != nil {
		return nil, err
	}
	e.client, e.close = pb.NewPatchGateClient(conn), func() { conn.Close() }
	return e.client, nil
}

// parseInterspersed parses flags anywhere among the positional arguments.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		if args[0] == "--" {
			return append(pos, args[1:]...), nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run executes patchctl with args; it returns the exit status.
func run(args []string, stdout, stderr io.Writer) int {
	cmds := commands()
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		usage(stderr, cmds)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	var cmd *command
	var rest []string
	for i := range cmds {
		words := strings.Fields(cmds[i].path)
		if len(args) >= len(words) && strings.Join(args[:len(words)], " ") == cmds[i].path {
			if cmd == nil || len(words) > len(strings.Fields(cmd.path)) {
				cmd, rest = &cmds[i], args[len(words):]
			}
		}
	}
	if cmd == nil {
		fmt.Fprintf(stderr, "patchctl: unknown command %q\n\n", strings.Join(args, " "))
		usage(stderr, cmds)
		return 2
	}
	fs := flag.NewFlagSet("patchctl "+cmd.path, flag.ContinueOnError)
	fs.SetOutput(stderr)
	e := &env{fs: fs, out: stdout}
	e.g.register(fs)
	if cmd.flags != nil {
		cmd.flags(fs)
	}
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: patchctl %s %s\n\n%s\n\nflags:\n", cmd.path, cmd.usage, cmd.help)
		fs.PrintDefaults()
	}
	pos, err := parseInterspersed(fs, rest)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if cmd.nargs >= 0 && len(pos) != cmd.nargs {
		fmt.Fprintf(stderr, "patchctl %s: want %d argument(s): %s\n", cmd.path, cmd.nargs, cmd.usage)
		return 2
	}
	if cmd.timeout != 0 && !flagGiven(fs, "timeout") {
		e.g.timeout = cmd.timeout
	}
	ctx, cancel := context.WithTimeout(context.Background(), e.g.timeout)
	defer cancel()
	e.ctx = ctx
	err = cmd.run(e, pos)
	if e.close != nil {
		e.close()
	}
	if err != nil {
		fmt.Fprintf(stderr, "patchctl %s: %v\n", cmd.path, describe(err))
		return 1
	}
	return 0
}

// flagGiven reports whether flag name was set on the command line.
func flagGiven(fs *flag.FlagSet, name string) bool {
	given := false
	fs.Visit(func(f *flag.Flag) { given = given || f.Name == name })
	return given
}

func usage(w io.Writer, cmds []command) {
	fmt.Fprintln(w, "usage: patchctl COMMAND [flags] [args]\n\ncommands:")
	for _, c := range cmds {
		fmt.Fprintf(w, "  %-36s %s\n", c.path+" "+c.usage, c.help)
	}
	fmt.Fprintln(w, "\nglobal flags: --server --token --token-file --tls-ca --tls-cert --tls-key --json --timeout")
}
