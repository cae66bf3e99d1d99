// Package gen builds test and benchmark traffic: TCP sessions and UDP flows
// serialised to Ethernet or raw-IP frames with gopacket, evasion transforms
// applied segment by segment (reordering, duplicates, overlaps, decoys,
// bad checksums, IP fragmentation), deterministic timestamps, pcap/pcapng
// output and a seeded mix of concurrent HTTP/1.1 sessions.
//
// Everything is deterministic: the same inputs and seeds produce the same
// bytes, so captures can be compared, cut at message boundaries and checked in
// as test vectors.
//
// The flow of a typical test:
//
//	s, _ := gen.NewTCPSession(client, server, gen.DefaultSessionOptions())
//	s.Send(dataplane.ToServer, request)
//	s.Send(dataplane.ToClient, response)
//	s.Close(dataplane.ToServer)
//	frames, _ := s.Frames(gen.Reorder(1, 4), gen.Fragment(gen.Nth(0), gen.Fragmentation{Size: 8}))
//
// Evasion recipes, each a Transform choosing segments with a Selector:
//
//	Modify(Nth(2), WithBadChecksum())          // corrupt a segment's checksum
//	Modify(Nth(0), WithoutAck())               // data without the ACK flag
//	Decoy(DataSegments(), WithTTL(1))          // low-TTL insertion before every segment
//	Overlap(Nth(1), OverlapOptions{Different: true, CopyFirst: true})
//	Fragment(Nth(0), Fragmentation{Size: 8, Order: FragReverse, Overlap: true, OverlapIndex: 4})
//	Fragment(AllSegments(), Fragmentation{Atomic: true}) // IPv6 atomic fragments
//
// FrameMeta tells which frames are decoys and which frame ends each message.
package gen

import (
	"fmt"
	"net/netip"
)

// Limits. The generator builds packets from caller input; these bounds keep
// every frame a valid IP packet and every loop finite.
const (
	// MaxSegmentSize is the largest TCP payload per segment: an IPv4 total
	// length of 65535 minus a 20-byte IP header and a 60-byte TCP header.
	MaxSegmentSize = 65535 - 20 - 60
	// MaxDatagramSize is the largest UDP payload: an IPv4 total length of
	// 65535 minus the IPv4 and UDP headers, and an IPv6 fragment header so
	// the datagram can still be fragmented.
	MaxDatagramSize = 65535 - 20 - 8 - 8
	// MaxWindowScale is the largest window scale shift RFC 7323 allows.
	MaxWindowScale = 14
)

// Defaults for SessionOptions and the helpers that need no options.
const (
	DefaultMSS         = 1460
	DefaultWindow      = 65535
	DefaultWindowScale = 7
	DefaultTTL         = 64
	DefaultAckEvery    = 2
	DefaultClientISN   = 0x1a2b3c4d
	DefaultServerISN   = 0x5e6f7081
)

// Endpoint is one side of a flow: an IPv4 or IPv6 address and a port.
type Endpoint struct {
	Addr netip.Addr
	Port uint16
}

// EP parses "addr:port" or "[v6addr]:port" into an Endpoint; it panics on a
// malformed string and is meant for literals in tests.
func EP(s string) Endpoint {
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		panic(fmt.Sprintf("dataplane/gen: bad endpoint %q: %v", s, err))
	}
	return Endpoint{Addr: ap.Addr().Unmap(), Port: ap.Port()}
}

func (e Endpoint) String() string { return netip.AddrPortFrom(e.Addr, e.Port).String() }

// checkPair verifies that two endpoints can form a flow.
func checkPair(client, server Endpoint) error {
	if !client.Addr.IsValid() || !server.Addr.IsValid() {
		return fmt.Errorf("dataplane/gen: endpoint address missing (client %v, server %v)", client.Addr, server.Addr)
	}
	if client.Addr.Unmap().Is4() != server.Addr.Unmap().Is4() {
		return fmt.Errorf("dataplane/gen: client %v and server %v are of different address families", client.Addr, server.Addr)
	}
	return nil
}
