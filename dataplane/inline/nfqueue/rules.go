package nfqueue

import (
	"errors"
	"fmt"
	"hash/fnv"
	"net/netip"
	"os/exec"
	"strconv"
	"strings"

	"github.com/patchgate/patchgate/dataplane/inline"
)

// Tools are the iptables front ends the backend drives. Only the legacy
// (x_tables) variants can reach the NFQUEUE target on the kernels patchgate
// targets; nft's queue statement is not built in.
const (
	IPTables  = "iptables-legacy"
	IP6Tables = "ip6tables-legacy"
)

// BuiltinChains are the chains a node may hook.
var BuiltinChains = []string{"INPUT", "FORWARD", "OUTPUT"}

// chainPrefix starts the name of every chain a node creates.
const chainPrefix = "PATCHGATE-"

// maxChainName is the longest chain name iptables accepts.
const maxChainName = 28

// ChainName returns the chain node name installs its rules in:
// PATCHGATE-<name>, or PATCHGATE-<hash of name> when that would be too long.
func ChainName(name string) string {
	if len(chainPrefix)+len(name) <= maxChainName {
		return chainPrefix + name
	}
	h := fnv.New32a()
	h.Write([]byte(name))
	return fmt.Sprintf("%s%08x", chainPrefix, h.Sum32())
}

// ruleSet describes the rules of one node.
type ruleSet struct {
	chain  string
	tools  []string
	hooks  []string
	match  []string
	target []string
	mark   uint32
}

// families returns the iptables tools a match applies to: a match naming only
// IPv4 addresses (-s/-d) needs no ip6tables rule and the other way round.
func families(match []string) []string {
	v4, v6 := false, false
	for i := 0; i+1 < len(match); i++ {
		switch match[i] {
		case "-s", "-d", "--source", "--destination", "--src", "--dst":
		default:
			continue
		}
		for _, a := range strings.Split(match[i+1], ",") {
			a, _, _ = strings.Cut(a, "/")
			if ip, err := netip.ParseAddr(strings.TrimPrefix(a, "!")); err == nil {
				if ip.Is4() {
					v4 = true
				} else {
					v6 = true
				}
			}
		}
	}
	switch {
	case v4 && !v6:
		return []string{IPTables}
	case v6 && !v4:
		return []string{IP6Tables}
	}
	return []string{IPTables, IP6Tables}
}

// queueTarget returns the NFQUEUE target arguments.
func queueTarget(base uint16, n int, bypass bool) []string {
	t := []string{"-j", "NFQUEUE"}
	if n == 1 {
		t = append(t, "--queue-num", strconv.Itoa(int(base)))
	} else {
		t = append(t, "--queue-balance", fmt.Sprintf("%d:%d", base, int(base)+n-1))
	}
	if bypass {
		t = append(t, "--queue-bypass")
	}
	return t
}

func ipt(tool string, args ...string) (string, error) {
	return inline.Command(tool, append([]string{"-w"}, args...)...)
}

// install creates the node's chain (a RETURN for the node's own injected
// packets, then the target) and inserts a jump to it at the top of every
// hooked chain. It first removes whatever a previous run left.
func (r *ruleSet) install() error {
	for _, tool := range r.tools {
		if err := removeChain(tool, r.chain); err != nil {
			return err
		}
		if err := r.fill(tool, r.target, true); err != nil {
			return err
		}
		for _, h := range r.hooks {
			args := append([]string{"-I", h, "1"}, r.match...)
			if _, err := ipt(tool, append(args, "-j", r.chain)...); err != nil {
				return fmt.Errorf("nfqueue: %w", err)
			}
		}
	}
	return nil
}

// fill (re)creates the chain with the mark exception and target.
func (r *ruleSet) fill(tool string, target []string, create bool) error {
	steps := [][]string{
		{"-F", r.chain},
		{"-A", r.chain, "-m", "mark", "--mark", fmt.Sprintf("%#x", r.mark), "-j", "RETURN"},
		append([]string{"-A", r.chain}, target...),
	}
	if create {
		steps[0] = []string{"-N", r.chain}
	}
	for _, s := range steps {
		if _, err := ipt(tool, s...); err != nil {
			return fmt.Errorf("nfqueue: %w", err)
		}
	}
	return nil
}

// closeGate replaces the queue target by DROP: the jumps stay, so the
// matched traffic is dropped until the node starts again or is cleaned up.
func (r *ruleSet) closeGate() error {
	var errs []error
	for _, tool := range r.tools {
		errs = append(errs, r.fill(tool, []string{"-j", "DROP"}, false))
	}
	return errors.Join(errs...)
}

// remove deletes the jumps and the chain.
func (r *ruleSet) remove() error {
	var errs []error
	for _, tool := range r.tools {
		errs = append(errs, removeChain(tool, r.chain))
	}
	return errors.Join(errs...)
}

// packets returns the packet counters of the chain's NFQUEUE rules, summed
// over the families.
func (r *ruleSet) packets() (uint64, error) {
	var total uint64
	for _, tool := range r.tools {
		out, err := ipt(tool, "-L", r.chain, "-v", "-x", "-n")
		if err != nil {
			return 0, fmt.Errorf("nfqueue: %w", err)
		}
		for _, line := range strings.Split(out, "\n") {
			f := strings.Fields(line)
			if len(f) > 2 && f[2] == "NFQUEUE" {
				n, _ := strconv.ParseUint(f[0], 10, 64)
				total += n
			}
		}
	}
	return total, nil
}

// removeChain deletes every jump to chain from the built-in chains, then the
// chain itself. Missing pieces are not an error: it is the idempotent
// cleanup after a crash.
func removeChain(tool, chain string) error {
	for _, h := range BuiltinChains {
		out, err := ipt(tool, "-L", h, "-n", "--line-numbers")
		if err != nil {
			return fmt.Errorf("nfqueue: %w", err)
		}
		var nums []int
		for _, line := range strings.Split(out, "\n") {
			f := strings.Fields(line)
			if len(f) > 1 && f[1] == chain {
				if n, err := strconv.Atoi(f[0]); err == nil {
					nums = append(nums, n)
				}
			}
		}
		// Delete from the bottom so the numbers above stay valid.
		for i := len(nums) - 1; i >= 0; i-- {
			if _, err := ipt(tool, "-D", h, strconv.Itoa(nums[i])); err != nil {
				return fmt.Errorf("nfqueue: %w", err)
			}
		}
	}
	if _, err := ipt(tool, "-n", "-L", chain); err != nil {
		return nil // no such chain
	}
	if _, err := ipt(tool, "-F", chain); err != nil {
		return fmt.Errorf("nfqueue: %w", err)
	}
	if _, err := ipt(tool, "-X", chain); err != nil {
		return fmt.Errorf("nfqueue: %w", err)
	}
	return nil
}

// Cleanup removes every rule and chain node name may have installed, in both
// families, in the current network namespace. It is safe to run at any time
// (nothing installed is not an error); tools that are not installed are
// skipped.
func Cleanup(name string) error {
	var errs []error
	for _, tool := range []string{IPTables, IP6Tables} {
		if _, err := exec.LookPath(tool); err != nil {
			continue
		}
		errs = append(errs, removeChain(tool, ChainName(name)))
	}
	return errors.Join(errs...)
}

// CloseGate installs the rules a fail-closed stop of node name leaves: the
// jumps from chains (with match) to the node's chain, which drops. It
// replaces whatever the node had installed.
func CloseGate(name string, chains, match []string) error {
	r := &ruleSet{chain: ChainName(name), tools: families(match), hooks: chains, match: match,
		mark: DefaultMark, target: []string{"-j", "DROP"}}
	return r.install()
}
