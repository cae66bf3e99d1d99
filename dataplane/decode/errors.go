package decode

import (
	"errors"
	"fmt"
)

// ErrMalformed is wrapped by every error Decode returns for a frame whose IP or
// transport headers are truncated or invalid. The engine drops such packets
// with dataplane.ReasonMalformed.
var ErrMalformed = errors.New("malformed packet")

// ErrUnsupportedLinkType is wrapped by the error Decode returns for a link type
// it cannot parse (see SupportedLinkType).
var ErrUnsupportedLinkType = errors.New("unsupported link type")

// malformed builds a sentinel error wrapping ErrMalformed. The decoder returns
// these preallocated values so that a flood of bad packets costs no allocation.
func malformed(what string) error {
	return fmt.Errorf("dataplane/decode: %s: %w", what, ErrMalformed)
}

// Preallocated decode errors, one per distinct cause.
var (
	errEmptyFrame      = malformed("empty frame")
	errEthernetShort   = malformed("ethernet header truncated")
	errVLANShort       = malformed("802.1Q tag truncated")
	errVLANDepth       = malformed("too many stacked 802.1Q tags")
	errSLLShort        = malformed("linux SLL header truncated")
	errSLL2Short       = malformed("linux SLL2 header truncated")
	errIPMissing       = malformed("link layer announces IP but carries no bytes")
	errIPVersion       = malformed("IP version does not match the link layer")
	errIPv4Short       = malformed("IPv4 header truncated")
	errIPv4IHL         = malformed("IPv4 header length below 20 bytes")
	errIPv4TotalLen    = malformed("IPv4 total length smaller than its header")
	errIPv4Option      = malformed("IPv4 option length invalid")
	errIPv6Short       = malformed("IPv6 header truncated")
	errIPv6Jumbo       = malformed("IPv6 jumbograms are not supported")
	errIPv6ExtShort    = malformed("IPv6 extension header truncated")
	errIPv6ExtChain    = malformed("IPv6 extension header chain too long")
	errIPv6HopByHop    = malformed("IPv6 hop-by-hop header not first")
	errIPv6FragTwice   = malformed("IPv6 fragment header repeated")
	errTCPShort        = malformed("TCP header truncated")
	errTCPDataOffset   = malformed("TCP data offset below 5 words")
	errUDPShort        = malformed("UDP header truncated")
	errUDPLength       = malformed("UDP length field inconsistent with IP payload")
	errTransportAbsent = malformed("transport header missing")
)
