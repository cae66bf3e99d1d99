package decode

import (
	"encoding/binary"
	"net/netip"
)

// sum32 adds b to acc as a sequence of big-endian 16-bit words (an odd final
// byte is padded with zero), without folding. Adding 32-bit words is
// equivalent because 2^16 ≡ 1 modulo 0xffff; a 64-bit accumulator cannot
// overflow for any packet that fits in memory.
func sum32(b []byte, acc uint64) uint64 {
	for len(b) >= 8 {
		acc += uint64(binary.BigEndian.Uint32(b[0:4])) + uint64(binary.BigEndian.Uint32(b[4:8]))
		b = b[8:]
	}
	if len(b) >= 4 {
		acc += uint64(binary.BigEndian.Uint32(b[0:4]))
		b = b[4:]
	}
	if len(b) >= 2 {
		acc += uint64(binary.BigEndian.Uint16(b[0:2]))
		b = b[2:]
	}
	if len(b) == 1 {
		acc += uint64(b[0]) << 8
	}
	return acc
}

// fold reduces a one's-complement accumulator to 16 bits.
func fold(acc uint64) uint16 {
	for acc > 0xffff {
		acc = (acc & 0xffff) + acc>>16
	}
	return uint16(acc)
}

// InternetChecksum returns the RFC 1071 checksum of b: the one's complement of
// the one's-complement sum of its 16-bit words. Over a header whose checksum
// field is filled in correctly it returns 0.
func InternetChecksum(b []byte) uint16 { return ^fold(sum32(b, 0)) }

// pseudoHeaderSum is the one's-complement sum of the TCP/UDP pseudo-header
// (RFC 793 for IPv4, RFC 8200 section 8.1 for IPv6).
func pseudoHeaderSum(src, dst netip.Addr, proto uint8, length int) uint64 {
	var acc uint64
	if src.Is4() {
		s, d := src.As4(), dst.As4()
		acc = sum32(s[:], acc)
		acc = sum32(d[:], acc)
	} else {
		s, d := src.As16(), dst.As16()
		acc = sum32(s[:], acc)
		acc = sum32(d[:], acc)
	}
	return acc + uint64(proto) + uint64(length)
}

// TransportChecksum returns the TCP or UDP checksum of segment (transport
// header and payload) between src and dst. With the segment's checksum field
// zeroed it is the value to store there; over a segment carrying a correct
// checksum it returns 0. For IPv6 with a routing header the caller passes the
// final destination as dst. A UDP sender stores a computed 0 as 0xffff
// (RFC 768), since 0 in that field means "no checksum".
func TransportChecksum(src, dst netip.Addr, proto uint8, segment []byte) uint16 {
	return ^fold(sum32(segment, pseudoHeaderSum(src, dst, proto, len(segment))))
}
