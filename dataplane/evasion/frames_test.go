package evasion

import (
	"encoding/binary"
	"time"

	"github.com/patchgate/patchgate/dataplane/gen"
)

// Header surgery on generated frames, for the evasions gen does not build
// itself: IPv4 options and bogus lengths, IPv6 extension headers, urgent
// pointers. Every helper returns a new byte slice and recomputes the
// checksums the change affects, unless the point is to break them.

// protoUDP is the IP protocol number of UDP.
const protoUDP = 17

// csum folds a ones' complement sum over b into sum.
func csum(b []byte, sum uint32) uint32 {
	for len(b) >= 2 {
		sum += uint32(binary.BigEndian.Uint16(b))
		b = b[2:]
	}
	if len(b) == 1 {
		sum += uint32(b[0]) << 8
	}
	return sum
}

func fold(sum uint32) uint16 {
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}

// fixIPv4Checksum recomputes the header checksum of the IPv4 header at ip.
func fixIPv4Checksum(ip []byte) {
	ihl := int(ip[0]&0x0f) * 4
	ip[10], ip[11] = 0, 0
	binary.BigEndian.PutUint16(ip[10:], fold(csum(ip[:ihl], 0)))
}

// ipInfo locates the transport header of an unfragmented IPv4 packet or an
// IPv6 packet without extension headers.
func ipInfo(ip []byte) (v6 bool, l4 int, proto byte, l4len int) {
	if ip[0]>>4 == 6 {
		return true, 40, ip[6], int(binary.BigEndian.Uint16(ip[4:6]))
	}
	ihl := int(ip[0]&0x0f) * 4
	return false, ihl, ip[9], int(binary.BigEndian.Uint16(ip[2:4])) - ihl
}

// fixL4Checksum recomputes the TCP or UDP checksum of an unfragmented packet
// (IPv4, or IPv6 without extension headers).
func fixL4Checksum(ip []byte) {
	v6, off, proto, n := ipInfo(ip)
	seg := ip[off : off+n]
	var sum uint32
	if v6 {
		sum = csum(ip[8:40], 0)
		sum += uint32(n>>16) + uint32(n&0xffff) + uint32(proto)
	} else {
		sum = csum(ip[12:20], 0)
		sum += uint32(n) + uint32(proto)
	}
	co := 16
	if proto == protoUDP {
		co = 6
	}
	seg[co], seg[co+1] = 0, 0
	c := fold(csum(seg, sum))
	if c == 0 && proto == protoUDP {
		c = 0xffff
	}
	binary.BigEndian.PutUint16(seg[co:], c)
}

func clone(b []byte) []byte { return append([]byte(nil), b...) }

// withIPv4Options inserts options (a multiple of 4 bytes) into the IPv4
// header of frame.
func withIPv4Options(frame []byte, l3 int, opts []byte) []byte {
	ip := frame[l3:]
	ihl := int(ip[0]&0x0f) * 4
	out := make([]byte, 0, len(frame)+len(opts))
	out = append(out, frame[:l3+ihl]...)
	out = append(out, opts...)
	out = append(out, frame[l3+ihl:]...)
	nip := out[l3:]
	nip[0] = 0x40 | byte((ihl+len(opts))/4)
	binary.BigEndian.PutUint16(nip[2:], binary.BigEndian.Uint16(ip[2:])+uint16(len(opts)))
	fixIPv4Checksum(nip)
	return out
}

// withIPv4TotalLength sets the IPv4 total length field (checksum fixed).
func withIPv4TotalLength(frame []byte, l3, total int) []byte {
	out := clone(frame)
	binary.BigEndian.PutUint16(out[l3+2:], uint16(total))
	fixIPv4Checksum(out[l3:])
	return out
}

// withBadIPv4Checksum corrupts the IPv4 header checksum.
func withBadIPv4Checksum(frame []byte, l3 int) []byte {
	out := clone(frame)
	out[l3+10] ^= 0x5a
	return out
}

// withTrailer appends bytes after the IP packet (link-layer padding a
// receiver ignores: the IP length says where the packet ends).
func withTrailer(frame []byte, trailer []byte) []byte {
	return append(clone(frame), trailer...)
}

// extHeader is one IPv6 extension header to insert: its type and its body
// after the next-header and length bytes (len(body)+2 a multiple of 8).
type extHeader struct {
	typ  byte
	body []byte
}

// padN returns an options body of n bytes holding one PadN option (n >= 2).
func padN(n int) []byte {
	b := make([]byte, n)
	b[0], b[1] = 1, byte(n-2)
	return b
}

// withIPv6ExtHeaders inserts extension headers right after the fixed IPv6
// header (before any fragment header: the unfragmentable part). Checksums
// do not change: the upper-layer length and addresses are the same.
func withIPv6ExtHeaders(frame []byte, l3 int, hs []extHeader) []byte {
	ip := frame[l3:]
	next := ip[6]
	var chain []byte
	for i, h := range hs {
		nh := next
		if i+1 < len(hs) {
			nh = hs[i+1].typ
		}
		hdr := append([]byte{nh, byte((len(h.body)+2)/8 - 1)}, h.body...)
		chain = append(chain, hdr...)
	}
	out := make([]byte, 0, len(frame)+len(chain))
	out = append(out, frame[:l3+40]...)
	out = append(out, chain...)
	out = append(out, frame[l3+40:]...)
	nip := out[l3:]
	nip[6] = hs[0].typ
	binary.BigEndian.PutUint16(nip[4:], binary.BigEndian.Uint16(ip[4:])+uint16(len(chain)))
	return out
}

// standardChain is a hop-by-hop, destination options and routing header
// (type 253, experimental, segments left 0: every node ignores it) chain.
func standardChain() []extHeader {
	return []extHeader{
		{typ: 0, body: padN(6)},
		{typ: 60, body: padN(14)},
		{typ: 43, body: []byte{253, 0, 0, 0, 0, 0}},
	}
}

// tcpHeader returns the offset of the TCP header in an unfragmented frame.
func tcpHeader(frame []byte, l3 int) int {
	_, off, _, _ := ipInfo(frame[l3:])
	return l3 + off
}

// withUrgent sets URG and the urgent pointer of an unfragmented TCP frame.
func withUrgent(frame []byte, l3 int, ptr uint16) []byte {
	out := clone(frame)
	th := tcpHeader(out, l3)
	out[th+13] |= 0x20
	binary.BigEndian.PutUint16(out[th+18:], ptr)
	fixL4Checksum(out[l3:])
	return out
}

// isFragment reports whether frame is an IP fragment and its offset.
func isFragment(frame []byte, l3 int) (bool, int) {
	ip := frame[l3:]
	if ip[0]>>4 == 6 {
		if ip[6] != 44 {
			return false, 0
		}
		fo := binary.BigEndian.Uint16(ip[42:44])
		return true, int(fo &^ 7)
	}
	ff := binary.BigEndian.Uint16(ip[6:8])
	if ff&0x2000 == 0 && ff&0x1fff == 0 {
		return false, 0
	}
	return true, int(ff&0x1fff) * 8
}

// hasPayload reports whether a frame's segment carries data.
func hasPayload(f gen.Frame) bool { return f.Meta.Msg >= 0 }

// mapFrames applies fn to the frames sel chooses.
func mapFrames(sel func(gen.Frame) bool, fn func(fr []byte, fc *frameCtx) []byte) func([]gen.Frame, *frameCtx) []gen.Frame {
	return func(fs []gen.Frame, fc *frameCtx) []gen.Frame {
		for i := range fs {
			if sel(fs[i]) {
				fs[i].Data = fn(fs[i].Data, fc)
				fs[i].CI.CaptureLength = len(fs[i].Data)
				fs[i].CI.Length = len(fs[i].Data)
			}
		}
		return fs
	}
}

// decoys selects decoy frames; genuineData selects non-decoy frames with data.
func decoys(f gen.Frame) bool      { return f.Meta.Decoy }
func genuineData(f gen.Frame) bool { return !f.Meta.Decoy && hasPayload(f) }

// shiftFrom adds d to the timestamps of frames i and later.
func shiftFrom(fs []gen.Frame, i int, d time.Duration) {
	for ; i < len(fs); i++ {
		fs[i].CI.Timestamp = fs[i].CI.Timestamp.Add(d)
	}
}
