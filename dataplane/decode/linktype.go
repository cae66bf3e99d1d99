package decode

import (
	"runtime"

	"github.com/google/gopacket/layers"
)

// gopacket v1.1.19 declares layers.LinkType as an 8-bit type, so link types above
// 255 cannot be written as themselves. The constants below give the ones this
// project supports a stable 8-bit stand-in; capture readers and writers in
// dataplane/source translate them to and from the 32-bit values on disk.

// LinkTypeLinuxSLL2 stands for LINKTYPE_LINUX_SLL2 (276), the 20-byte "cooked"
// header of `tcpdump -i any` since libpcap 1.10. Its value is 276 & 0xff (20),
// which no supported capture format uses for anything else.
const LinkTypeLinuxSLL2 layers.LinkType = 276 & 0xff

// LinkTypeFileSLL2 is the 32-bit on-disk value of LINKTYPE_LINUX_SLL2.
const LinkTypeFileSLL2 uint32 = 276

// LinkTypeRawAlt is link type 12, raw IP on every platform except OpenBSD
// (where 12 is DLT_LOOP). libpcap writes 101 (LinkTypeRaw) for it in files,
// but older tools wrote 12.
const LinkTypeRawAlt layers.LinkType = 12

// rawAltIsRaw is true where link type 12 means raw IP.
const rawAltIsRaw = runtime.GOOS != "openbsd"

// SupportedLinkType reports whether Decode understands frames of link type lt:
// Ethernet, raw IP (101, and 12 except on OpenBSD), IPv4 (228), IPv6 (229),
// Linux SLL (113) and Linux SLL2 (LinkTypeLinuxSLL2).
func SupportedLinkType(lt layers.LinkType) bool {
	switch lt {
	case layers.LinkTypeEthernet, layers.LinkTypeRaw, layers.LinkTypeIPv4,
		layers.LinkTypeIPv6, layers.LinkTypeLinuxSLL, LinkTypeLinuxSLL2:
		return true
	case LinkTypeRawAlt:
		return rawAltIsRaw
	}
	return false
}
