package main

import (
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/patchgate/patchgate/api/pb"
	"github.com/patchgate/patchgate/consensus/patchset"
)

func parseVersion(s string) (uint64, error) {
	v, err := strconv.ParseUint(strings.TrimPrefix(s, "v"), 10, 64)
	if err != nil || v == 0 {
		return 0, fmt.Errorf("%q is not a version (1, 2, ...)", s)
	}
	return v, nil
}

// commands lists every leaf command.
func commands() []command {
	var (
		buildKey, buildMsg, buildAuthor, buildOut string
		buildVersion                              uint64
		strategy, canaryNodes                     string
		canaryPercent                             int
		bundleOut                                 string
		limit                                     int
		watch, wait                               bool
		interval                                  time.Duration
		reason, keyOut, comment                   string
		max                                       uint
	)
	return []command{
		{path: "status", help: "table of nodes: address, raft role, health, applied version, drain, packets/s, alerts", run: cmdStatus},
		{path: "patchset build", usage: "DIR", nargs: 1, help: "sign the patches in DIR into a bundle file (offline)",
			flags: func(fs *flag.FlagSet) {
				fs.StringVar(&buildKey, "key", "", "secret key file (patchctl keygen)")
				fs.Uint64Var(&buildVersion, "version", 0, "version number (above every committed version)")
				fs.StringVar(&buildMsg, "message", "", "why this version")
				fs.StringVar(&buildAuthor, "author", os.Getenv("USER"), "author")
				fs.StringVar(&buildOut, "o", "", "output file (default patchset-vN.bundle)")
			},
			run: func(e *env, a []string) error {
				if buildKey == "" || buildVersion == 0 {
					return fmt.Errorf("--key and --version are required")
				}
				k, err := patchset.LoadPrivateKey(buildKey)
				if err != nil {
					return err
				}
				b, err := patchset.Build(a[0], buildVersion, k, patchset.Meta{Author: buildAuthor, Message: buildMsg})
				if err != nil {
					return err
				}
				if _, err := b.Compile(); err != nil {
					return err
				}
				data, err := b.Marshal()
				if err != nil {
					return err
				}
				out := buildOut
				if out == "" {
					out = fmt.Sprintf("patchset-v%d.bundle", buildVersion)
				}
				if err := os.WriteFile(out, data, 0o644); err != nil {
					return err
				}
				fmt.Fprintf(e.out, "wrote %s: version %d, %d files, content %s, signed by %s\n", out, b.Version(), len(b.Files), b.ContentHash(), b.Signer())
				return nil
			}},
		{path: "patchset push", usage: "FILE", nargs: 1, help: "push a bundle; the leader verifies, compiles, tests and commits it",
			flags: func(fs *flag.FlagSet) {
				fs.StringVar(&strategy, "strategy", "all-at-once", "all-at-once, canary or detect-first")
				fs.StringVar(&canaryNodes, "canary-nodes", "", "comma-separated canary node names (canary)")
				fs.IntVar(&canaryPercent, "canary-percent", 0, "share of nodes to canary, 1..100 (canary)")
			},
			run: func(e *env, a []string) error {
				data, err := os.ReadFile(a[0])
				if err != nil {
					return err
				}
				plan := &pb.Plan{Strategy: strategy, CanaryPercent: int32(canaryPercent)}
				if canaryNodes != "" {
					plan.CanaryNodes = strings.Split(canaryNodes, ",")
				}
				c, err := e.connect()
				if err != nil {
					return err
				}
				r, err := c.PushPatchSet(e.ctx, &pb.PushPatchSetRequest{Bundle: data, Plan: plan})
				if err != nil {
					return err
				}
				fmt.Fprintf(e.out, "committed at index %d by %s (rollout: %s); follow with: patchctl rollout status --watch\n", r.Index, r.Leader, strategy)
				return nil
			}},
		{path: "patchset list", help: "committed versions", run: cmdList},
		{path: "patchset show", usage: "VERSION", nargs: 1, help: "one version's record and patches",
			flags: func(fs *flag.FlagSet) {
				fs.StringVar(&bundleOut, "bundle-out", "", "also save the bundle to this file")
			},
			run: func(e *env, a []string) error { return cmdShow(e, a[0], bundleOut) }},
		{path: "patchset diff", usage: "A B", nargs: 2, help: "patches added, removed and changed from A to B", run: cmdDiff},
		{path: "patchset history", help: "versions newest first, with the latest rollout",
			flags: func(fs *flag.FlagSet) { fs.IntVar(&limit, "limit", 20, "entries (0: all)") },
			run:   func(e *env, _ []string) error { return cmdHistory(e, limit) }},
		{path: "patchset rollback", usage: "VERSION", nargs: 1, help: "make an earlier version active on every node at once",
			run: func(e *env, a []string) error {
				return writeVersion(e, a[0], func(c pb.PatchGateClient, r *pb.VersionRequest) (*pb.WriteResponse, error) {
					return c.Rollback(e.ctx, r)
				})
			}},
		{path: "rollout status", help: "each node's target and applied version; --watch until converged",
			flags: func(fs *flag.FlagSet) {
				fs.BoolVar(&watch, "watch", false, "refresh until every node applied its target")
				fs.DurationVar(&interval, "interval", 500*time.Millisecond, "refresh interval with --watch")
			},
			run: func(e *env, _ []string) error { return cmdRolloutStatus(e, watch, interval) }},
		{path: "rollout promote", usage: "[VERSION]", nargs: -1, help: "promote the waiting rollout (canary or detect-first)",
			run: func(e *env, a []string) error {
				return writeRollout(e, a, func(c pb.PatchGateClient, r *pb.VersionRequest) (*pb.WriteResponse, error) {
					return c.Promote(e.ctx, r)
				})
			}},
		{path: "rollout abort", usage: "[VERSION]", nargs: -1, help: "abort the waiting rollout: the previous version again everywhere",
			run: func(e *env, a []string) error {
				return writeRollout(e, a, func(c pb.PatchGateClient, r *pb.VersionRequest) (*pb.WriteResponse, error) {
					return c.Abort(e.ctx, r)
				})
			}},
		{path: "node drain", usage: "NAME", nargs: 1, timeout: drainWaitTimeout,
			help: "drain a node: the routers withdraw it, its flows move to the others; waits until it reports drained",
			flags: func(fs *flag.FlagSet) {
				fs.StringVar(&reason, "reason", "", "why")
				fs.BoolVar(&wait, "wait", true, "wait until the node reports drained (deadline: --timeout, default 2m)")
				fs.DurationVar(&interval, "interval", 500*time.Millisecond, "status poll interval with --wait")
			},
			run: func(e *env, a []string) error {
				err := writeDrain(e, func(c pb.PatchGateClient) (*pb.WriteResponse, error) {
					return c.Drain(e.ctx, &pb.DrainRequest{Node: a[0], Reason: reason})
				})
				if err != nil || !wait {
					return err
				}
				return waitDrainPhase(e, a[0], phaseDrained, interval)
			}},
		{path: "node undrain", usage: "NAME", nargs: 1, timeout: drainWaitTimeout,
			help: "clear a node's drain flag; waits until it announces again",
			flags: func(fs *flag.FlagSet) {
				fs.BoolVar(&wait, "wait", true, "wait until the node announces again (deadline: --timeout, default 2m)")
				fs.DurationVar(&interval, "interval", 500*time.Millisecond, "status poll interval with --wait")
			},
			run: func(e *env, a []string) error {
				err := writeDrain(e, func(c pb.PatchGateClient) (*pb.WriteResponse, error) {
					return c.Undrain(e.ctx, &pb.DrainRequest{Node: a[0]})
				})
				if err != nil || !wait {
					return err
				}
				return waitDrainPhase(e, a[0], phaseAnnounce, interval)
			}},
		{path: "alerts tail", help: "stream the server node's alerts (no --timeout by default)",
			flags: func(fs *flag.FlagSet) {
				fs.UintVar(&max, "max", 0, "stop after this many alerts (0: until interrupted)")
			},
			run: func(e *env, _ []string) error { return cmdAlertsTail(e, uint32(max)) }},
		{path: "flows top", help: "the server node's flows grouped by service, and alerts per patch",
			flags: func(fs *flag.FlagSet) { fs.IntVar(&limit, "limit", 20, "groups shown") },
			run:   func(e *env, _ []string) error { return cmdFlowsTop(e, limit) }},
		{path: "keygen", help: "create an ed25519 signing key (FILE) and its public half (FILE.pub)",
			flags: func(fs *flag.FlagSet) {
				fs.StringVar(&keyOut, "out", "patchgate.key", "secret key file (never overwritten)")
				fs.StringVar(&comment, "comment", "", "comment stored in the public key file")
			},
			run: func(e *env, _ []string) error {
				k, err := patchset.GenerateKey()
				if err != nil {
					return err
				}
				if err := patchset.WriteKeyPair(k, keyOut, comment); err != nil {
					return err
				}
				fmt.Fprintf(e.out, "wrote %s (secret, mode 0600) and %s.pub; key id %s\n", keyOut, keyOut, k.ID())
				return nil
			}},
		{path: "completion", usage: "bash", nargs: 1, help: "print a shell completion script",
			run: func(e *env, a []string) error {
				if a[0] != "bash" {
					return fmt.Errorf("only bash is supported")
				}
				return bashCompletion(e.out)
			}},
	}
}

func writeVersion(e *env, arg string, call func(pb.PatchGateClient, *pb.VersionRequest) (*pb.WriteResponse, error)) error {
	v, err := parseVersion(arg)
	if err != nil {
		return err
	}
	c, err := e.connect()
	if err != nil {
		return err
	}
	r, err := call(c, &pb.VersionRequest{Version: v})
	if err != nil {
		return err
	}
	fmt.Fprintf(e.out, "committed at index %d by %s\n", r.Index, r.Leader)
	return nil
}

// writeRollout promotes or aborts the given version, or the rollout's.
func writeRollout(e *env, a []string, call func(pb.PatchGateClient, *pb.VersionRequest) (*pb.WriteResponse, error)) error {
	if len(a) > 1 {
		return fmt.Errorf("at most one version")
	}
	if len(a) == 1 {
		return writeVersion(e, a[0], call)
	}
	c, err := e.connect()
	if err != nil {
		return err
	}
	rs, err := c.RolloutStatus(e.ctx, &pb.RolloutStatusRequest{})
	if err != nil {
		return err
	}
	if rs.Rollout == nil {
		return fmt.Errorf("no rollout")
	}
	return writeVersion(e, strconv.FormatUint(rs.Rollout.Version, 10), call)
}

func writeDrain(e *env, call func(pb.PatchGateClient) (*pb.WriteResponse, error)) error {
	c, err := e.connect()
	if err != nil {
		return err
	}
	r, err := call(c)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.out, "committed at index %d by %s\n", r.Index, r.Leader)
	return nil
}
