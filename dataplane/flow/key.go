// Package flow provides the bidirectional flow key and a bounded flow table with
// per-state idle timeouts, eviction under pressure and memory accounting.
//
// A Table is not safe for concurrent use: the engine runs one Table per shard
// and picks the shard with Key.Hash, which is the same for both directions of a
// flow, so both directions always land on the same shard.
package flow

import (
	"encoding/binary"
	"fmt"
	"net/netip"
)

// Key identifies a flow in both directions: the endpoint that compares lower
// (address, then port) is always stored as A, so a packet and its reply map to
// the same Key.
type Key struct {
	A, B         netip.Addr
	APort, BPort uint16
	Proto        uint8
}

// NewKey builds the canonical key of a packet from src to dst. swapped is true
// when src was stored as B (the packet travels B → A).
func NewKey(src, dst netip.Addr, sport, dport uint16, proto uint8) (k Key, swapped bool) {
	c := src.Compare(dst)
	if c < 0 || (c == 0 && sport <= dport) {
		return Key{A: src, B: dst, APort: sport, BPort: dport, Proto: proto}, false
	}
	return Key{A: dst, B: src, APort: dport, BPort: sport, Proto: proto}, true
}

// Hash returns a 64-bit hash of the key (FNV-1a over a fixed layout). It is the
// same for both directions because the key is canonical.
func (k Key) Hash() uint64 {
	var buf [37]byte
	a := k.A.As16()
	b := k.B.As16()
	copy(buf[0:16], a[:])
	copy(buf[16:32], b[:])
	binary.BigEndian.PutUint16(buf[32:], k.APort)
	binary.BigEndian.PutUint16(buf[34:], k.BPort)
	buf[36] = k.Proto
	h := uint64(14695981039346656037)
	for _, c := range buf {
		h ^= uint64(c)
		h *= 1099511628211
	}
	// Final avalanche so that low bits are usable for shard selection.
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	return h
}

func (k Key) String() string {
	return fmt.Sprintf("%s %s <-> %s", protoName(k.Proto),
		netip.AddrPortFrom(k.A, k.APort), netip.AddrPortFrom(k.B, k.BPort))
}

func protoName(p uint8) string {
	switch p {
	case 6:
		return "tcp"
	case 17:
		return "udp"
	case 1:
		return "icmp"
	case 58:
		return "ipv6-icmp"
	}
	return fmt.Sprintf("proto-%d", p)
}

// ProtoName returns the EVE name of an IP protocol ("TCP", "UDP", ...).
func ProtoName(p uint8) string {
	switch p {
	case 6:
		return "TCP"
	case 17:
		return "UDP"
	case 1:
		return "ICMP"
	case 58:
		return "IPv6-ICMP"
	}
	return fmt.Sprintf("%d", p)
}
