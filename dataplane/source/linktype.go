package source

import (
	"fmt"

	"github.com/google/gopacket/layers"

	"github.com/patchgate/patchgate/dataplane/decode"
)

// linkTypeFromFile maps the link type stored in a capture file (32 bits in
// pcap, 16 in pcapng) to the layers.LinkType the decoder understands. Values
// above 255 cannot be represented by gopacket's 8-bit LinkType: the supported
// one (SLL2, 276) gets decode's stand-in, every other is refused.
func linkTypeFromFile(v uint32) (layers.LinkType, error) {
	switch {
	case v == decode.LinkTypeFileSLL2:
		return decode.LinkTypeLinuxSLL2, nil
	case v <= 0xff && v != uint32(decode.LinkTypeLinuxSLL2) && decode.SupportedLinkType(layers.LinkType(v)):
		return layers.LinkType(v), nil
	}
	return 0, fmt.Errorf("link type %d: %w", v, decode.ErrUnsupportedLinkType)
}

// linkTypeToFile is the inverse of linkTypeFromFile, for writers.
func linkTypeToFile(lt layers.LinkType) (uint32, error) {
	if lt == decode.LinkTypeLinuxSLL2 {
		return decode.LinkTypeFileSLL2, nil
	}
	if !decode.SupportedLinkType(lt) {
		return 0, fmt.Errorf("link type %d: %w", lt, decode.ErrUnsupportedLinkType)
	}
	return uint32(lt), nil
}
