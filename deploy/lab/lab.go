// Package lab builds patchgate's evaluation lab in network namespaces: client
// hosts behind router R1, whose multipath route (ECMP, L4 hashing of the
// 5-tuple) spreads flows over N gateway nodes, router R2 and server hosts
// behind it. The return path crosses the same node as the forward path,
// because both routers hash with the same (symmetric) flow hash and seed and
// list the nodes in the same order (see README.md for why the hash policy is
// the custom one). Two variants: L3, where each node is a routed hop (patchgate's
// NFQUEUE dataplane), and L2, where each node bridges one of N parallel links
// between the routers (patchgate's AF_PACKET bridge).
//
// Without patchgate running, the lab forwards with the kernel (routing in L3,
// a kernel bridge in L2), which is also the baseline for benchmarks. A replay
// tap namespace plays captures through the lab with tcpreplay.
//
// Every namespace carries the lab's prefix, so parallel labs never collide,
// and Down finds everything of a prefix again, also after a crash. All
// functions need root (CAP_NET_ADMIN and CAP_SYS_ADMIN) and iproute2.
package lab

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
)

// ErrExists is returned by Up when a lab with the prefix already exists.
var ErrExists = errors.New("lab exists")

// ErrNotFound is returned by Load when there is no lab with the prefix.
var ErrNotFound = errors.New("no such lab")

// stateFile is the lab's saved config inside its state directory.
const stateFile = "lab.json"

// Lab is a running lab. Its methods are safe for concurrent use, except
// Down, which must not run concurrently with others.
type Lab struct {
	// Prefix starts every namespace name of the lab.
	Prefix string
	// Variant is L3 or L2.
	Variant Variant
	// Dir is the lab's state directory: lab.json, node configs (n1.yaml),
	// node logs (n1.log), EVE files (n1.eve.json) and pid files (n1.pid).
	Dir string
	// Nodes, Clients and Servers are the lab's namespaces by role.
	Nodes   []Node
	Clients []Host
	Servers []Host
	// R1 and R2 are the routers, Tap the replay namespace.
	R1, R2 Router
	Tap    Tap

	cfg   Config
	mu    sync.Mutex
	procs map[int]*nodeProc // nodes started by this process, by index
}

// Config returns the lab's configuration (with its prefix).
func (l *Lab) Config() Config { return l.cfg }

// SetBinary sets the patchgate executable StartNode runs from now on.
func (l *Lab) SetBinary(path string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.cfg.Binary = path
}

// Up builds a lab. On failure everything it created is removed again.
func Up(cfg Config) (*Lab, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Prefix == "" {
		cfg.Prefix = NewPrefix()
	}
	if os.Geteuid() != 0 {
		return nil, fmt.Errorf("lab: up: needs root (network namespaces, veth, sysctls)")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return nil, fmt.Errorf("lab: up: iproute2's ip command: %w", err)
	}
	if cfg.Binary == "" {
		if exe, err := os.Executable(); err == nil {
			cfg.Binary = exe
		}
	}
	l := plan(cfg)
	l.Dir = filepath.Join(cfg.StateRoot, cfg.Prefix)
	for _, ns := range l.namespaces() {
		if _, err := os.Stat(nsPath(ns)); err == nil {
			return nil, fmt.Errorf("lab: up: namespace %s: %w", ns, ErrExists)
		}
	}
	if err := os.MkdirAll(l.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("lab: up: state directory: %w", err)
	}
	// Saved first, so that a crash while building still leaves the prefix
	// for Down to find.
	if err := l.save(); err != nil {
		_ = os.RemoveAll(l.Dir)
		return nil, err
	}
	if err := l.build(); err != nil {
		if derr := Down(cfg.StateRoot, cfg.Prefix); derr != nil {
			err = errors.Join(err, derr)
		}
		return nil, fmt.Errorf("lab: up %s: %w", cfg.Prefix, err)
	}
	return l, nil
}

// Load returns the running lab with the prefix, from its state directory
// (for a command-line tool that did not build it). Nodes started by another
// process are found through their pid files.
func Load(stateRoot, prefix string) (*Lab, error) {
	dir := filepath.Join(stateRoot, prefix)
	data, err := os.ReadFile(filepath.Join(dir, stateFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("lab: load %s: %w", prefix, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("lab: load %s: %w", prefix, err)
	}
	var cfg Config
	if err := json.Unmarshal(data, &cfg); err != nil {
		return nil, fmt.Errorf("lab: load %s: %s: %w", prefix, stateFile, err)
	}
	if cfg.StateRoot == "" {
		cfg.StateRoot = stateRoot
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("lab: load %s: %w", prefix, err)
	}
	if cfg.Prefix != prefix {
		return nil, fmt.Errorf("lab: load %s: %s names prefix %q", prefix, stateFile, cfg.Prefix)
	}
	l := plan(cfg)
	l.Dir = dir
	return l, nil
}

// save writes the lab's config to its state directory.
func (l *Lab) save() error {
	data, err := json.MarshalIndent(l.cfg, "", "  ")
	if err != nil {
		return fmt.Errorf("lab: save: %w", err)
	}
	if err := os.WriteFile(filepath.Join(l.Dir, stateFile), append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("lab: save: %w", err)
	}
	return nil
}

// Down stops the lab's nodes and removes all its namespaces (with their
// interfaces, routes and iptables rules) and its state directory.
func (l *Lab) Down() error {
	l.mu.Lock()
	procs := l.procs
	l.procs = nil
	l.mu.Unlock()
	var errs []error
	for _, p := range procs {
		// Our own children: kill and reap them, so none is left a zombie.
		if p.running() {
			_ = p.cmd.Process.Kill()
		}
		<-p.done
	}
	if err := Down(l.cfg.StateRoot, l.Prefix); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Exec runs argv inside the namespace of a role ("c1", "r1", "n2", "s1",
// "t") or full name and returns its standard output; an error carries its
// standard error.
func (l *Lab) Exec(ns string, argv ...string) (string, error) {
	if len(argv) == 0 {
		return "", fmt.Errorf("lab: exec %s: no command", ns)
	}
	out, err := run("ip", append([]string{"netns", "exec", l.NS(ns)}, argv...)...)
	if err != nil {
		return out, fmt.Errorf("lab: exec %s: %w", ns, err)
	}
	return out, nil
}

// InNS is the package's InNS with the lab's role names.
func (l *Lab) InNS(ns string, fn func() error) error { return InNS(l.NS(ns), fn) }

// Node returns node i (from 1).
func (l *Lab) Node(i int) (Node, error) {
	if i < 1 || i > len(l.Nodes) {
		return Node{}, fmt.Errorf("lab: node %d: the lab has nodes 1..%d", i, len(l.Nodes))
	}
	return l.Nodes[i-1], nil
}
