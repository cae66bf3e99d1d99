package afpacket

import (
	"errors"
	"fmt"
	"hash/fnv"
	"net"

	"github.com/patchgate/patchgate/dataplane/inline"
)

// BridgeName returns the name of node name's fail-open fallback bridge:
// pg-<name>, or pg-<hash of name> when that exceeds the 15 characters an
// interface name may have.
func BridgeName(name string) string {
	if n := "pg-" + name; len(n) <= 15 {
		return n
	}
	h := fnv.New32a()
	h.Write([]byte(name))
	return fmt.Sprintf("pg-%08x", h.Sum32())
}

// addBridge creates the fallback bridge with both interfaces as ports.
func addBridge(name string, ports [2]string) error {
	if err := removeBridge(name); err != nil {
		return err
	}
	steps := [][]string{{"link", "add", "name", name, "type", "bridge", "forward_delay", "0", "stp_state", "0"}}
	for _, p := range ports {
		steps = append(steps, []string{"link", "set", p, "master", name})
	}
	steps = append(steps, []string{"link", "set", name, "up"})
	for _, s := range steps {
		if _, err := inline.Command("ip", s...); err != nil {
			return fmt.Errorf("afpacket: fallback bridge: %w", err)
		}
	}
	return nil
}

// removeBridge deletes the bridge if it exists (its ports are released).
func removeBridge(name string) error {
	if _, err := net.InterfaceByName(name); err != nil {
		return nil
	}
	if _, err := inline.Command("ip", "link", "del", name); err != nil {
		return fmt.Errorf("afpacket: %w", err)
	}
	return nil
}

// Cleanup removes everything node name may have installed in the current
// network namespace (the fallback bridge). Nothing installed is not an error.
func Cleanup(name string) error { return removeBridge(BridgeName(name)) }

// Fallback installs what a stop with policy fail leaves, for a node that
// crashed: the bridge for fail-open, nothing for fail-closed.
func Fallback(name string, interfaces [2]string, fail inline.FailPolicy) error {
	if fail == inline.FailClosed {
		return errors.Join(removeBridge(BridgeName(name)))
	}
	return addBridge(BridgeName(name), interfaces)
}
