//go:build !race

package decode

import (
	"testing"

	"github.com/google/gopacket/layers"
)

// TestDecodeDoesNotAllocate holds the decoder to its promise of no per-packet
// allocation, for good and for malformed packets alike (a flood of bad
// packets must not create garbage either).
func TestDecodeDoesNotAllocate(t *testing.T) {
	good := ether(t, layers.EthernetTypeIPv4, ipv4TCP(t, make([]byte, 1460)), layers.EthernetTypeDot1Q)
	bad := append([]byte(nil), good...)
	bad[18+32] = 0x40 // TCP data offset 4
	frag := ipv6Frag(t, layers.IPProtocolTCP, 1, 0, true, make([]byte, 64), extHdr(0, 8))
	d := NewDecoder()
	d.VerifyChecksums = true
	var p Packet
	for name, run := range map[string]func(){
		"good":     func() { _ = d.Decode(layers.LinkTypeEthernet, good, testTime, &p) },
		"bad":      func() { _ = d.Decode(layers.LinkTypeEthernet, bad, testTime, &p) },
		"fragment": func() { _ = d.DecodeIP(frag, testTime, &p) },
	} {
		if n := testing.AllocsPerRun(100, run); n != 0 {
			t.Errorf("%s: %v allocations per packet, want 0", name, n)
		}
	}
}
