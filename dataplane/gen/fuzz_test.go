package gen

import (
	"bytes"
	"testing"

	"github.com/google/gopacket/layers"

	"github.com/patchgate/patchgate/dataplane"
)

// maxFuzzData bounds fuzz payloads: with 1-byte segments every byte becomes
// a frame, and larger inputs only slow the search down.
const maxFuzzData = 4096

// FuzzRoundTrip checks the generator's central promise for arbitrary
// payloads and knob combinations: every frame decodes, and the genuine
// frames reassemble to exactly the bytes sent.
func FuzzRoundTrip(f *testing.F) {
	f.Add([]byte("GET / HTTP/1.1\r\n\r\n"), uint16(5), uint8(0), uint64(1), uint8(0xff))
	f.Add([]byte{0}, uint16(1), uint8(3), uint64(0), uint8(0x10))
	f.Add(bytes.Repeat([]byte("z"), 3000), uint16(1460), uint8(7), uint64(9), uint8(0x2a))
	f.Fuzz(func(t *testing.T, data []byte, segSize uint16, fragUnits uint8, seed uint64, mode uint8) {
		if len(data) == 0 || len(data) > maxFuzzData {
			t.Skip()
		}
		o := DefaultSessionOptions()
		o.SegmentSize = 1 + int(segSize)%1500
		o.ClientISN, o.ServerISN = uint32(seed), uint32(seed>>32)
		o.LinkType = layers.LinkTypeEthernet
		client, server := cli4, srv4
		if mode&0x80 != 0 {
			client, server = cli6, srv6
			o.LinkType = layers.LinkTypeRaw
		}
		s := mustSession(t, client, server, o)
		s.Send(dataplane.ToServer, data)
		s.Send(dataplane.ToClient, data[:len(data)/2])
		var ts []Transform
		if mode&0x01 != 0 {
			ts = append(ts, Reorder(seed, 2+int(fragUnits)%6))
		}
		if mode&0x02 != 0 {
			ts = append(ts, Duplicate(Nth(int(fragUnits)%4)))
		}
		if mode&0x04 != 0 {
			ts = append(ts, Overlap(DataSegments(), OverlapOptions{Different: mode&0x40 != 0, CopyFirst: seed&1 != 0}))
		}
		if mode&0x08 != 0 {
			ts = append(ts, Decoy(Dir(dataplane.ToServer), WithTTL(1)))
		}
		if mode&0x10 != 0 {
			ts = append(ts, Fragment(DataSegments(), Fragmentation{Size: 8 * (1 + int(fragUnits)%16), Order: FragOrder(mode>>5) % 3, Seed: seed}))
		}
		frames := mustFrames(t, s, ts...)
		segs := decodeTCP(t, o.LinkType, frames, true)
		want := [2][]byte{data, data[:len(data)/2]}
		equalStreams(t, streams(t, segs, o.ClientISN, o.ServerISN), want)
	})
}
