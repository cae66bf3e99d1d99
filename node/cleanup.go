package node

import (
	"errors"
	"fmt"

	"github.com/patchgate/patchgate/dataplane/inline"
	"github.com/patchgate/patchgate/dataplane/inline/afpacket"
	"github.com/patchgate/patchgate/dataplane/inline/nfqueue"
)

// Cleanup removes everything a node called name may ever have installed in
// the network namespace at netns ("" = the current one): its iptables and
// ip6tables chains and the jumps to them, and its fail-open bridge. Nothing
// installed is not an error, so it is safe in teardown scripts.
func Cleanup(name, netns string) error {
	if !nameRe.MatchString(name) {
		return fmt.Errorf("node: cleanup: invalid node name %q", name)
	}
	return inline.InNetns(netns, func() error {
		return errors.Join(nfqueue.Cleanup(name), afpacket.Cleanup(name))
	})
}

// Fallback installs in the kernel what a clean stop of the configured node
// leaves, for a node that did not stop cleanly (crash, SIGKILL): with
// AF_PACKET and fail-open the kernel bridge, with NFQUEUE and fail-closed the
// DROP rules (NFQUEUE fail-open needs nothing: --queue-bypass already lets
// traffic through when no one listens). Run it from the service manager's
// post-stop hook.
func Fallback(cfg Config, netns string) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	return inline.InNetns(netns, func() error {
		dp := cfg.Dataplane
		if dp.Mode == ModeAFPacket {
			return afpacket.Fallback(cfg.Name, [2]string(dp.AFPacket.Interfaces), cfg.fail())
		}
		if cfg.fail() == inline.FailOpen {
			return nfqueue.Cleanup(cfg.Name)
		}
		return nfqueue.CloseGate(cfg.Name, dp.NFQueue.Chains, dp.NFQueue.Match)
	})
}
