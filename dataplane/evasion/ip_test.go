package evasion

import (
	"bytes"
	"encoding/binary"
	"testing"
	"time"

	"github.com/patchgate/patchgate/dataplane"
	"github.com/patchgate/patchgate/dataplane/defrag"
	"github.com/patchgate/patchgate/dataplane/gen"
)

// fragMaxSegs caps the data segments of the classes that fragment, copy or
// overlap every segment, so they stay affordable on the 64 KiB vectors.
const fragMaxSegs = 200

const (
	alertFragOverlap = "patchgate.frag_overlap"
	alertTCPOverlap  = "patchgate.tcp_overlap"
	alertLowTTL      = "patchgate.low_ttl"
	alertUrgent      = "patchgate.tcp_urgent"
)

// fragPolicy is the documented policy for overlapping fragments with
// different bytes: the datagram is poisoned (the overlapping fragment and
// the datagram's later fragments are dropped) and patchgate.frag_overlap is
// raised. A benign look-alike carried that way is therefore not forwarded
// whole; the rest of the connection is unaffected.
var fragPolicy = policyRefuses(alertFragOverlap, true, dataplane.ReasonFragOverlap)

// atLeast selects data segments with at least n payload bytes (an overlap
// decoy needs payload bytes in the fragment it covers).
func atLeast(n int) gen.Selector {
	return func(s gen.Segment, k int) bool { return k >= 0 && len(s.Payload) >= n }
}

// duplicateFragments sends every IP fragment twice in a row; the fragment
// that completes its datagram (the last one emitted) only when completing is
// set.
func duplicateFragments(completing bool) func([]gen.Frame, *frameCtx) []gen.Frame {
	return func(fs []gen.Frame, _ *frameCtx) []gen.Frame {
		last := lastFragments(fs)
		out := make([]gen.Frame, 0, 2*len(fs))
		for i, f := range fs {
			out = append(out, f)
			if f.Meta.Fragment >= 0 && (completing || !last[i]) {
				c := f
				c.Data = clone(f.Data)
				out = append(out, c)
			}
		}
		return out
	}
}

// headerOverlap inserts, next to every first fragment (offset 0) of a
// fragmented segment, a decoy fragment covering the same bytes with the
// transport header changed (the TCP sequence number, the UDP destination
// port): a host whose reassembly lets the later copy win would deliver a
// different segment than the one a first-wins inspector saw.
func headerOverlap(before bool) func([]gen.Frame, *frameCtx) []gen.Frame {
	return func(fs []gen.Frame, fc *frameCtx) []gen.Frame {
		out := make([]gen.Frame, 0, len(fs)+len(fs)/4)
		for _, f := range fs {
			frag, off := isFragment(f.Data, fc.l3())
			if !frag || off != 0 || f.Meta.Decoy {
				out = append(out, f)
				continue
			}
			d := f
			d.Data = clone(f.Data)
			d.Meta.Decoy = true
			hl := 20
			if fc.v6 {
				hl = 48
			}
			l4 := fc.l3() + hl
			if d.Data[fc.l3()+9] == protoUDP || (fc.v6 && d.Data[fc.l3()+40] == protoUDP) {
				d.Data[l4+2] ^= 0x11
			} else {
				binary.BigEndian.PutUint32(d.Data[l4+4:], binary.BigEndian.Uint32(d.Data[l4+4:])+0x1000)
			}
			if before {
				out = append(out, d, f)
			} else {
				out = append(out, f, d)
			}
		}
		return out
	}
}

// lastFragments returns, per frame, whether it is the last emitted fragment
// of its segment.
func lastFragments(fs []gen.Frame) []bool {
	last := make([]bool, len(fs))
	for i, f := range fs {
		if f.Meta.Fragment < 0 {
			continue
		}
		last[i] = i+1 == len(fs) || fs[i+1].Meta.Segment != f.Meta.Segment || fs[i+1].Meta.Fragment < 0
	}
	return last
}

// fragDelay holds back the last fragment of every fragmented segment so it
// arrives d after the segment's first fragment (the rest of the capture
// moves with it).
func fragDelay(d time.Duration) func([]gen.Frame, *frameCtx) []gen.Frame {
	return func(fs []gen.Frame, _ *frameCtx) []gen.Frame {
		last := lastFragments(fs)
		first := 0
		for i := range fs {
			if fs[i].Meta.Fragment < 0 {
				continue
			}
			if i == 0 || fs[i-1].Meta.Segment != fs[i].Meta.Segment || fs[i-1].Meta.Fragment < 0 {
				first = i
			}
			if last[i] && i > first {
				if gap := fs[first].CI.Timestamp.Add(d).Sub(fs[i].CI.Timestamp); gap > 0 {
					shiftFrom(fs, i, gap)
				}
			}
		}
		return fs
	}
}

// fragExpireAndResend sends every fragmented segment's fragments but the
// last, lets the reassembly timeout pass, then sends all of them again (the
// sender's retransmission reuses the IP identification: the hardest case
// for a reassembler that could mix the two trains).
func fragExpireAndResend(gap time.Duration) func([]gen.Frame, *frameCtx) []gen.Frame {
	return func(fs []gen.Frame, _ *frameCtx) []gen.Frame {
		var out []gen.Frame
		for i := 0; i < len(fs); {
			if fs[i].Meta.Fragment < 0 {
				out = append(out, fs[i])
				i++
				continue
			}
			j := i
			for j < len(fs) && fs[j].Meta.Segment == fs[i].Meta.Segment && fs[j].Meta.Fragment >= 0 {
				j++
			}
			train := fs[i:j]
			out = append(out, train[:len(train)-1]...)
			mark := len(out)
			for _, f := range train {
				c := f
				c.Data = clone(f.Data)
				out = append(out, c)
			}
			shiftFrom(out, mark, gap)
			for k := j; k < len(fs); k++ {
				fs[k].CI.Timestamp = fs[k].CI.Timestamp.Add(gap)
			}
			i = j
		}
		return out
	}
}

// routerAlert is an IPv4 Router Alert option followed by NOPs and an end of
// list: 8 bytes of valid options.
var routerAlert = []byte{0x94, 4, 0, 0, 1, 1, 1, 0}

// notFragment selects unfragmented frames.
func notFragment(f gen.Frame) bool { return f.Meta.Fragment < 0 }

// ipClasses are the IP-layer evasion classes.
func ipClasses() []class {
	frag := func(f gen.Fragmentation) []gen.Transform {
		return []gen.Transform{gen.Fragment(gen.DataSegments(), f)}
	}
	junk := bytes.Repeat([]byte("GET /x HTTP/1.1\r\n"), 4)
	return []class{
		{name: "low-ttl-decoys", segs: []gen.Transform{gen.Decoy(gen.DataSegments(), gen.WithTTL(1))}},
		// Just beyond the slack: TTL 55 is 9 below the SYN's 64.
		{name: "low-ttl-decoys-at-slack-edge", segs: []gen.Transform{gen.Decoy(gen.DataSegments(), gen.WithTTL(gen.DefaultTTL-9))}},
		// A route change: genuine segments arrive up to TTLSlack hops lower.
		{name: "ttl-lowered-within-slack", segs: []gen.Transform{gen.Modify(gen.DataSegments(), gen.WithTTL(gen.DefaultTTL-8))}},
		{name: "ipv6-low-hop-limit-decoys", ipv6: true, segs: []gen.Transform{gen.Decoy(gen.DataSegments(), gen.WithTTL(1))}},
		{name: "bad-ip-checksum-decoys", udp: true, segs: []gen.Transform{gen.Decoy(gen.DataSegments())},
			frames: mapFrames(decoys, func(b []byte, fc *frameCtx) []byte { return withBadIPv4Checksum(b, fc.l3()) })},
		{name: "ip-length-beyond-frame-decoys", udp: true, segs: []gen.Transform{gen.Decoy(gen.DataSegments())},
			frames: mapFrames(decoys, func(b []byte, fc *frameCtx) []byte {
				return withIPv4TotalLength(b, fc.l3(), len(b)-fc.l3()+64)
			})},
		{name: "ip-length-below-transport-header-decoys", udp: true, segs: []gen.Transform{gen.Decoy(gen.DataSegments())},
			frames: mapFrames(decoys, func(b []byte, fc *frameCtx) []byte { return withIPv4TotalLength(b, fc.l3(), 24) })},
		// Bytes after the IP total length are link padding: a receiver
		// ignores them, so must the inspector (they look like a request).
		{name: "trailing-bytes-after-ip-length", udp: true,
			frames: mapFrames(genuineData, func(b []byte, _ *frameCtx) []byte { return withTrailer(b, junk) })},
		{name: "ipv6-trailing-bytes-after-payload-length", ipv6: true, udp: true,
			frames: mapFrames(genuineData, func(b []byte, _ *frameCtx) []byte { return withTrailer(b, junk) })},
		{name: "ip-options", udp: true,
			frames: mapFrames(notFragment, func(b []byte, fc *frameCtx) []byte { return withIPv4Options(b, fc.l3(), routerAlert) })},
		{name: "frag-tiny-8-bytes", segSize: 64, maxSegs: fragMaxSegs, udp: true, segs: frag(gen.Fragmentation{Size: 8})},
		{name: "frag-reverse-order", segSize: 120, maxSegs: fragMaxSegs, udp: true,
			segs: frag(gen.Fragmentation{Size: 16, Order: gen.FragReverse})},
		{name: "frag-shuffled", segSize: 120, maxSegs: fragMaxSegs, udp: true,
			segs: frag(gen.Fragmentation{Size: 24, Order: gen.FragShuffled, Seed: 5})},
		{name: "frag-duplicated", segSize: 120, maxSegs: fragMaxSegs, udp: true,
			segs: frag(gen.Fragmentation{Size: 16}), frames: duplicateFragments(false)},
		{name: "frag-duplicated-shuffled", segSize: 120, maxSegs: fragMaxSegs, udp: true,
			segs: frag(gen.Fragmentation{Size: 16, Order: gen.FragShuffled, Seed: 9}), frames: duplicateFragments(false)},
		// The fragment completing the datagram sent twice: once the engine
		// has dropped it, the copy must not be forwarded either.
		{name: "frag-completing-fragment-duplicated", segSize: 120, maxSegs: fragMaxSegs, udp: true,
			segs: frag(gen.Fragmentation{Size: 16}), frames: duplicateFragments(true)},
		// Overlaps with different bytes, in the orders hosts disagree on:
		// the decoy after the genuine fragment (last-wins hosts take it),
		// before it (first-wins hosts), both in reverse order (BSD-style
		// "left-most wins" with the last fragment first) and shuffled.
		{name: "frag-overlap-different-after", segSize: 120, maxSegs: fragMaxSegs, udp: true,
			segs:       []gen.Transform{gen.Fragment(atLeast(64), gen.Fragmentation{Size: 16, Overlap: true, OverlapIndex: 3})},
			detectedBy: []string{alertFragOverlap}, benign: fragPolicy},
		{name: "frag-overlap-different-before", segSize: 120, maxSegs: fragMaxSegs, udp: true,
			segs:       []gen.Transform{gen.Fragment(atLeast(64), gen.Fragmentation{Size: 16, Overlap: true, OverlapIndex: 3, OverlapFirst: true})},
			detectedBy: []string{alertFragOverlap}, benign: fragPolicy},
		{name: "frag-overlap-different-reverse-order", segSize: 120, maxSegs: fragMaxSegs, udp: true,
			segs: []gen.Transform{gen.Fragment(atLeast(64), gen.Fragmentation{Size: 16, Order: gen.FragReverse,
				Overlap: true, OverlapIndex: 3, OverlapFirst: true})},
			detectedBy: []string{alertFragOverlap}, benign: fragPolicy},
		{name: "frag-overlap-different-shuffled", segSize: 120, maxSegs: fragMaxSegs, udp: true,
			segs: []gen.Transform{gen.Fragment(atLeast(64), gen.Fragmentation{Size: 16, Order: gen.FragShuffled, Seed: 3,
				Overlap: true, OverlapIndex: 4})},
			detectedBy: []string{alertFragOverlap}, benign: fragPolicy},
		{name: "frag-overlap-transport-header-after", segSize: 120, maxSegs: fragMaxSegs, udp: true,
			segs: frag(gen.Fragmentation{Size: 16}), frames: headerOverlap(false),
			detectedBy: []string{alertFragOverlap}, benign: fragPolicy},
		{name: "frag-overlap-transport-header-before", segSize: 120, maxSegs: fragMaxSegs, udp: true,
			segs: frag(gen.Fragmentation{Size: 16}), frames: headerOverlap(true),
			detectedBy: []string{alertFragOverlap}, benign: fragPolicy},
		// Reassembly timeout edges: the last fragment just inside the
		// timeout still completes (and is inspected); a train left to expire
		// and sent again is inspected when the second train completes.
		{name: "frag-last-just-before-timeout", segSize: 120, maxSegs: fragMaxSegs, udp: true,
			segs: frag(gen.Fragmentation{Size: 32}), frames: fragDelay(defrag.DefaultTimeout - time.Millisecond)},
		{name: "frag-expired-then-resent", segSize: 120, maxSegs: fragMaxSegs, udp: true,
			segs: frag(gen.Fragmentation{Size: 32}), frames: fragExpireAndResend(defrag.DefaultTimeout + time.Second)},
		{name: "ipv6-extension-header-chain", ipv6: true, udp: true,
			frames: mapFrames(func(gen.Frame) bool { return true }, func(b []byte, fc *frameCtx) []byte {
				return withIPv6ExtHeaders(b, fc.l3(), standardChain())
			})},
		{name: "ipv6-extension-header-chain-fragmented", ipv6: true, udp: true, segSize: 120, maxSegs: fragMaxSegs,
			segs: frag(gen.Fragmentation{Size: 16, Order: gen.FragReverse}),
			frames: mapFrames(func(gen.Frame) bool { return true }, func(b []byte, fc *frameCtx) []byte {
				return withIPv6ExtHeaders(b, fc.l3(), standardChain())
			})},
		{name: "ipv6-atomic-fragments", ipv6: true, udp: true,
			segs: []gen.Transform{gen.Fragment(gen.AllSegments(), gen.Fragmentation{Atomic: true})}},
		{name: "ipv6-atomic-fragments-with-chain", ipv6: true, udp: true,
			segs: []gen.Transform{gen.Fragment(gen.AllSegments(), gen.Fragmentation{Atomic: true})},
			frames: mapFrames(func(gen.Frame) bool { return true }, func(b []byte, fc *frameCtx) []byte {
				return withIPv6ExtHeaders(b, fc.l3(), standardChain()[:2])
			})},
		{name: "ipv6-frag-tiny-8-bytes", ipv6: true, udp: true, segSize: 64, maxSegs: fragMaxSegs,
			segs: frag(gen.Fragmentation{Size: 8})},
		{name: "ipv6-frag-overlap-different-before", ipv6: true, udp: true, segSize: 120, maxSegs: fragMaxSegs,
			segs:       []gen.Transform{gen.Fragment(atLeast(64), gen.Fragmentation{Size: 16, Overlap: true, OverlapIndex: 3, OverlapFirst: true})},
			detectedBy: []string{alertFragOverlap}, benign: fragPolicy},
	}
}

// TestIPEvasion carries every shipped patch test through every IP-layer
// evasion class.
func TestIPEvasion(t *testing.T) {
	t.Parallel()
	runClasses(t, ipClasses(), catalogTraffic(t))
}
