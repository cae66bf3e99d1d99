// Package decode turns raw frames into Packet values with gopacket's
// DecodingLayerParser: link layer (Ethernet with 802.1Q, Linux SLL/SLL2, raw IP),
// IPv4, IPv6 with extension headers, TCP and UDP. It allocates nothing per packet
// on the hot path; a Packet's byte slices point into the frame it was decoded from.
package decode

import (
	"net/netip"
	"time"
)

// TCP flag bits as they appear in the TCP header's flag byte.
const (
	FlagFIN uint8 = 0x01
	FlagSYN uint8 = 0x02
	FlagRST uint8 = 0x04
	FlagPSH uint8 = 0x08
	FlagACK uint8 = 0x10
	FlagURG uint8 = 0x20
	FlagECE uint8 = 0x40
	FlagCWR uint8 = 0x80
)

// IP protocol numbers used by the engine.
const (
	ProtoTCP  uint8 = 6
	ProtoUDP  uint8 = 17
	ProtoICMP uint8 = 1
)

// Fragment describes the IP fragmentation fields of a packet that is a fragment.
type Fragment struct {
	ID     uint32 // IPv4 identification (16 bits) or IPv6 fragment header identification
	Offset uint32 // byte offset of this fragment's payload in the original datagram
	More   bool   // more fragments follow
	// Proto is the upper-layer protocol of the fragmented datagram
	// (IPv4 protocol field, IPv6 fragment header's next header).
	Proto uint8
}

// TCPOptions holds the TCP options the normaliser needs.
type TCPOptions struct {
	MSS          uint16
	WScale       uint8 // window scale shift; valid when HasWScale
	HasWScale    bool
	SACKPermit   bool
	HasTimestamp bool
	TSVal        uint32
	TSEcr        uint32
}

// Packet is one decoded IP packet. Slices alias the frame passed to the decoder;
// copy what must outlive the next Decode call.
type Packet struct {
	Timestamp time.Time

	// Network layer.
	IPVersion uint8 // 4 or 6; 0 when the frame carries no IP packet (passes untouched)
	Src, Dst  netip.Addr
	TTL       uint8 // IPv4 TTL or IPv6 hop limit
	// Proto is the transport protocol (after IPv6 extension headers).
	Proto uint8
	// IPHeaderLen is the length of the IP header including IPv6 extension headers.
	IPHeaderLen int
	// IPChecksumOK is false when an IPv4 header checksum was checked and is wrong.
	IPChecksumOK bool
	// IsFragment is true for a fragment (including IPv6 atomic fragments:
	// offset 0, More false, which carry a whole datagram).
	IsFragment bool
	Frag       Fragment
	// IP is the IP packet (header + payload) within the frame, trimmed to the
	// length the IP header declares.
	IP []byte
	// L3Payload is the bytes after the IP header(s); for a fragment, the fragment data.
	L3Payload []byte

	// Transport layer (valid when Proto is TCP or UDP and the packet is not a
	// non-first fragment).
	SrcPort, DstPort uint16
	// L4ChecksumOK is false when the TCP/UDP checksum was verified and is wrong.
	// Verification is done by the decoder only when asked (Decoder.VerifyChecksums).
	L4ChecksumOK bool

	// TCP fields.
	Seq, Ack uint32
	Flags    uint8
	Window   uint16
	Urgent   uint16
	Opts     TCPOptions

	// Payload is the transport payload (TCP or UDP data).
	Payload []byte

	// Truncated is set when the frame is shorter than its headers declare;
	// the engine treats such packets as malformed.
	Truncated bool
}

// HasFlag reports whether all bits of f are set in the TCP flags.
func (p *Packet) HasFlag(f uint8) bool { return p.Flags&f == f }
