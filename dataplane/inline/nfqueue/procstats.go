package nfqueue

import (
	"bufio"
	"bytes"
	"strconv"
	"strings"
)

// ProcPath is the kernel's per-queue status file (per network namespace).
const ProcPath = "/proc/thread-self/net/netfilter/nfnetlink_queue"

// KernelQueue is one line of the kernel's queue status file.
type KernelQueue struct {
	Num uint16
	// Total is the number of packets waiting in the queue now.
	Total uint64
	// Dropped counts packets dropped because the queue was full (without
	// fail-open); UserDropped those dropped because the netlink socket's
	// buffer was full.
	Dropped, UserDropped uint64
	// IDSequence is the id of the last packet queued.
	IDSequence uint64
}

// ParseProc parses the status file: one line per bound queue with
// queue_number peer_portid queue_total copy_mode copy_range queue_dropped
// user_dropped id_sequence 1.
func ParseProc(b []byte) map[uint16]KernelQueue {
	out := map[uint16]KernelQueue{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 8 {
			continue
		}
		var v [8]uint64
		ok := true
		for i := range v {
			n, err := strconv.ParseUint(f[i], 10, 64)
			if err != nil {
				ok = false
				break
			}
			v[i] = n
		}
		if !ok || v[0] > 0xffff {
			continue
		}
		out[uint16(v[0])] = KernelQueue{Num: uint16(v[0]), Total: v[2], Dropped: v[5], UserDropped: v[6], IDSequence: v[7]}
	}
	return out
}
