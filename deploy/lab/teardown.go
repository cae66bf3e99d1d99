package lab

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// killWait bounds how long Down waits for the processes it killed to go.
const killWait = 5 * time.Second

// generatedRE matches namespaces of labs with a generated prefix, which
// DownAll removes even when their state directory is gone.
var generatedRE = regexp.MustCompile(`^` + DefaultPrefixStem + `[0-9a-f]{4}-(r1|r2|t|[csn][0-9]+)$`)

// Namespaces returns the namespaces whose names carry the prefix and a lab
// role, sorted.
func Namespaces(prefix string) ([]string, error) {
	entries, err := os.ReadDir(netnsDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("lab: %w", err)
	}
	var out []string
	for _, e := range entries {
		name := e.Name()
		if role, ok := strings.CutPrefix(name, prefix+"-"); ok && isRole(role) {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out, nil
}

// Prefixes returns the prefixes of every lab found: state directories under
// stateRoot and namespaces of generated prefixes.
func Prefixes(stateRoot string) ([]string, error) {
	seen := map[string]bool{}
	entries, err := os.ReadDir(stateRoot)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("lab: %w", err)
	}
	for _, e := range entries {
		if e.IsDir() && prefixRE.MatchString(e.Name()) {
			seen[e.Name()] = true
		}
	}
	nss, err := os.ReadDir(netnsDir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("lab: %w", err)
	}
	for _, e := range nss {
		if generatedRE.MatchString(e.Name()) {
			p, _, _ := strings.Cut(e.Name(), "-")
			seen[p] = true
		}
	}
	out := make([]string, 0, len(seen))
	for p := range seen {
		out = append(out, p)
	}
	sort.Strings(out)
	return out, nil
}

// Down removes everything of the lab with the prefix: it kills the
// processes inside its namespaces (nodes, servers started with Command),
// deletes the namespaces (their interfaces, routes and iptables rules go
// with them) and the state directory. It works from names alone, so it also
// cleans up after a crashed run; a prefix with nothing left is not an error.
func Down(stateRoot, prefix string) error {
	if !prefixRE.MatchString(prefix) {
		return fmt.Errorf("lab: down: prefix: must match %s, got %q", prefixRE, prefix)
	}
	nss, err := Namespaces(prefix)
	if err != nil {
		return err
	}
	var errs []error
	var pids []int
	for _, ns := range nss {
		p, err := nsPids(ns)
		if err != nil {
			errs = append(errs, err)
		}
		pids = append(pids, p...)
	}
	for _, pid := range pids {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	if err := waitGone(pids, killWait); err != nil {
		errs = append(errs, err)
	}
	for _, ns := range nss {
		if _, err := run("ip", "netns", "del", ns); err != nil {
			errs = append(errs, err)
		}
	}
	if err := os.RemoveAll(filepath.Join(stateRoot, prefix)); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("lab: down %s: %w", prefix, err)
	}
	return nil
}

// DownAll removes every lab Prefixes finds.
func DownAll(stateRoot string) error {
	ps, err := Prefixes(stateRoot)
	if err != nil {
		return err
	}
	var errs []error
	for _, p := range ps {
		errs = append(errs, Down(stateRoot, p))
	}
	return errors.Join(errs...)
}

// nsPids returns the processes whose network namespace is ns, never this
// process or its parent (a thread of ours may be inside for a moment).
func nsPids(ns string) ([]int, error) {
	out, err := run("ip", "netns", "pids", ns)
	if err != nil {
		return nil, err
	}
	self, parent := os.Getpid(), os.Getppid()
	var pids []int
	for _, f := range strings.Fields(out) {
		pid, err := strconv.Atoi(f)
		if err != nil || pid <= 1 || pid == self || pid == parent {
			continue
		}
		pids = append(pids, pid)
	}
	return pids, nil
}

// waitGone polls until none of pids runs any more (zombies count as gone).
func waitGone(pids []int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		var left []int
		for _, pid := range pids {
			if alive(pid) {
				left = append(left, pid)
			}
		}
		if len(left) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("processes %v still running after %v", left, timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// alive reports whether pid exists and is not a zombie.
func alive(pid int) bool {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	// The state follows the command name in parentheses.
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	if i < 0 || i+2 >= len(s) {
		return false
	}
	return s[i+2] != 'Z' && s[i+2] != 'X'
}
