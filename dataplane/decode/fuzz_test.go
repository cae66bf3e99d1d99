package decode

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/gopacket/layers"
)

// FuzzDecode feeds arbitrary frames of every supported link type to the
// decoder: it must never panic, every error must wrap ErrMalformed, and the
// slices of a decoded packet must lie inside the frame and agree with each other.
func FuzzDecode(f *testing.F) {
	v4 := ipv4TCP(f, []byte("GET / HTTP/1.1\r\n\r\n"))
	v6 := ipv6TCP(f, []byte("hello"))
	seeds := [][]byte{
		ether(f, layers.EthernetTypeIPv4, v4),
		ether(f, layers.EthernetTypeIPv6, v6, layers.EthernetTypeQinQ, layers.EthernetTypeDot1Q),
		sll(layers.EthernetTypeIPv4, v4),
		sll2(layers.EthernetTypeIPv6, v6),
		v4, v6,
		ipv4Frag(f, layers.IPProtocolTCP, 1, 8, true, make([]byte, 16)),
		ipv6Frag(f, layers.IPProtocolUDP, 2, 0, true, make([]byte, 16), extHdr(0, 8), extHdr(43, 8)),
	}
	lts := []layers.LinkType{layers.LinkTypeEthernet, layers.LinkTypeEthernet, layers.LinkTypeLinuxSLL,
		LinkTypeLinuxSLL2, layers.LinkTypeRaw, layers.LinkTypeIPv6, layers.LinkTypeIPv4, layers.LinkTypeRaw}
	for i, s := range seeds {
		f.Add(uint8(lts[i]), true, s)
	}
	d := NewDecoder()
	f.Fuzz(func(t *testing.T, lt uint8, verify bool, frame []byte) {
		d.VerifyChecksums = verify
		var p Packet
		err := d.Decode(layers.LinkType(lt), frame, testTime, &p)
		if err != nil {
			if strings.Contains(err.Error(), "panic") {
				t.Fatalf("decoder panicked: %v", err)
			}
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrUnsupportedLinkType) {
				t.Fatalf("error %v wraps neither ErrMalformed nor ErrUnsupportedLinkType", err)
			}
			return
		}
		if p.IPVersion == 0 {
			return
		}
		if p.IPVersion != 4 && p.IPVersion != 6 {
			t.Fatalf("IPVersion %d", p.IPVersion)
		}
		if !within(frame, p.IP) || !within(p.IP, p.L3Payload) || !within(p.IP, p.Payload) {
			t.Fatal("packet slices escape the frame")
		}
		if p.IPHeaderLen+len(p.L3Payload) != len(p.IP) {
			t.Fatalf("header %d + payload %d != IP %d", p.IPHeaderLen, len(p.L3Payload), len(p.IP))
		}
		if !verify && !p.L4ChecksumOK {
			t.Fatal("L4ChecksumOK false without verification")
		}
	})
}

// within reports whether sub is nil or a sub-slice of b.
func within(b, sub []byte) bool {
	if len(sub) == 0 {
		return true
	}
	if len(b) == 0 {
		return false
	}
	for i := 0; i+len(sub) <= len(b); i++ {
		if &b[i] == &sub[0] {
			return true
		}
	}
	return false
}
