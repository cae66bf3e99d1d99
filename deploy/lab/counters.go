package lab

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// IfStats are an interface's kernel packet counters (/proc/net/dev).
type IfStats struct {
	RxPackets, RxBytes, RxDropped uint64
	TxPackets, TxBytes, TxDropped uint64
}

// Sub returns s - o, field by field.
func (s IfStats) Sub(o IfStats) IfStats {
	return IfStats{
		RxPackets: s.RxPackets - o.RxPackets, RxBytes: s.RxBytes - o.RxBytes, RxDropped: s.RxDropped - o.RxDropped,
		TxPackets: s.TxPackets - o.TxPackets, TxBytes: s.TxBytes - o.TxBytes, TxDropped: s.TxDropped - o.TxDropped,
	}
}

// Stats returns the packet counters of every interface of a namespace (role
// or full name), by interface name.
func (l *Lab) Stats(ns string) (map[string]IfStats, error) {
	var out map[string]IfStats
	err := l.InNS(ns, func() error {
		var err error
		out, err = readNetDev("/proc/thread-self/net/dev")
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("lab: stats %s: %w", ns, err)
	}
	return out, nil
}

// NodeStats returns the counters of every node's two interfaces:
// [i-1][0] is node i's In (eth0, from R1), [i-1][1] its Out (eth1, from R2).
// A packet of the forward direction is received on In, one of the return
// direction on Out.
func (l *Lab) NodeStats() ([][2]IfStats, error) {
	out := make([][2]IfStats, len(l.Nodes))
	for i, n := range l.Nodes {
		st, err := l.Stats(n.NS)
		if err != nil {
			return nil, err
		}
		out[i] = [2]IfStats{st[n.In.Name], st[n.Out.Name]}
	}
	return out, nil
}

// readNetDev parses /proc/net/dev.
func readNetDev(path string) (map[string]IfStats, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[string]IfStats{}
	sc := bufio.NewScanner(f)
	for line := 0; sc.Scan(); line++ {
		if line < 2 { // two header lines
			continue
		}
		name, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		fs := strings.Fields(rest)
		if len(fs) < 16 {
			return nil, fmt.Errorf("%s: short line for %s", path, name)
		}
		var v [16]uint64
		for i := range v {
			if v[i], err = strconv.ParseUint(fs[i], 10, 64); err != nil {
				return nil, fmt.Errorf("%s: %s: %w", path, name, err)
			}
		}
		out[strings.TrimSpace(name)] = IfStats{
			RxBytes: v[0], RxPackets: v[1], RxDropped: v[3],
			TxBytes: v[8], TxPackets: v[9], TxDropped: v[11],
		}
	}
	return out, sc.Err()
}
