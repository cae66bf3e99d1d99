package decode

import (
	"bytes"
	"testing"

	"github.com/google/gopacket/layers"
)

// BenchmarkDecode decodes an Ethernet/IPv4/TCP frame with a 1460-byte payload.
func BenchmarkDecode(b *testing.B) {
	for _, verify := range []bool{false, true} {
		name := "nochecksum"
		if verify {
			name = "checksum"
		}
		b.Run(name, func(b *testing.B) {
			frame := ether(b, layers.EthernetTypeIPv4, ipv4TCP(b, bytes.Repeat([]byte{'x'}, 1460)))
			d := NewDecoder()
			d.VerifyChecksums = verify
			var p Packet
			b.SetBytes(int64(len(frame)))
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if err := d.Decode(layers.LinkTypeEthernet, frame, testTime, &p); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/packet")
		})
	}
}

// BenchmarkDecodeIPv6Fragment decodes a first IPv6 fragment behind an
// extension header chain.
func BenchmarkDecodeIPv6Fragment(b *testing.B) {
	pkt := ipv6Frag(b, layers.IPProtocolTCP, 1, 0, true, ipv6TCP(b, make([]byte, 512))[40:], extHdr(0, 8), extHdr(60, 16))
	d := NewDecoder()
	var p Packet
	b.SetBytes(int64(len(pkt)))
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if err := d.DecodeIP(pkt, testTime, &p); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/packet")
}
