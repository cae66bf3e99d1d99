package evasion

import (
	"testing"

	"github.com/patchgate/patchgate/dataplane"
	"github.com/patchgate/patchgate/dataplane/gen"
)

// Segment surgery for the TCP classes gen has no transform for. Every
// helper is a gen.Transform over a session's segments (SYN, SYN-ACK, ACK,
// then the data and ACKs, then the close).

// garble returns a copy of p with every byte changed ('X', or 'Y' where the
// byte is 'X'): the decoy content of insertion attempts.
func garble(p []byte) []byte {
	q := make([]byte, len(p))
	for i, b := range p {
		if b == 'X' {
			q[i] = 'Y'
		} else {
			q[i] = 'X'
		}
	}
	return q
}

// firstData returns the index of the first data segment, or -1.
func firstData(segs []gen.Segment) int {
	for i, s := range segs {
		if len(s.Payload) > 0 && !s.Decoy {
			return i
		}
	}
	return -1
}

// synData carries the client's first data segment in the SYN. With tfo the
// server accepts it (TCP Fast Open: the SYN-ACK acknowledges the data and
// the client goes on after it); without, the server ignores it (its SYN-ACK
// acknowledges the SYN only) and the client sends the data again after the
// handshake. With different, the SYN carries other bytes than the data sent
// after the handshake (an evasion aimed at servers without TFO).
func synData(tfo, different bool) gen.Transform {
	return func(segs []gen.Segment) []gen.Segment {
		i := firstData(segs)
		if i < 0 || segs[i].Dir != dataplane.ToServer {
			return segs // the server speaks first: nothing to move
		}
		d := segs[i]
		syn := &segs[0]
		syn.Payload = d.Payload
		if different {
			syn.Payload = garble(d.Payload)
		}
		if !tfo {
			segs[1].Ack, segs[1].KeepAck = syn.Seq+1, true
			return segs
		}
		// The handshake's ACK follows the SYN's data.
		segs[2].Seq = d.Seq + uint32(len(d.Payload))
		return append(segs[:i:i], segs[i+1:]...)
	}
}

// insertAt inserts seg before index i.
func insertAt(segs []gen.Segment, i int, seg gen.Segment) []gen.Segment {
	out := make([]gen.Segment, 0, len(segs)+1)
	out = append(out, segs[:i]...)
	out = append(out, seg)
	return append(out, segs[i:]...)
}

// dataBeforeSynAck sends a decoy copy of the client's first data right
// after its SYN: the server has no connection to put it in.
func dataBeforeSynAck() gen.Transform {
	return func(segs []gen.Segment) []gen.Segment {
		i := firstData(segs)
		if i < 0 || segs[i].Dir != dataplane.ToServer {
			return segs
		}
		d := segs[i]
		d.Payload, d.Decoy = garble(d.Payload), true
		return insertAt(segs, 1, d)
	}
}

// dataOnThirdAck drops the handshake's pure ACK: the client's first data
// segment completes the handshake.
func dataOnThirdAck() gen.Transform {
	return func(segs []gen.Segment) []gen.Segment {
		i := firstData(segs)
		if i < 0 || segs[i].Dir != dataplane.ToServer {
			return segs
		}
		return append(segs[:2:2], segs[3:]...)
	}
}

// beforeEachMessage inserts mk(first) before the first segment of every
// message (both directions).
func beforeEachMessage(mk func(first gen.Segment) gen.Segment) gen.Transform {
	return func(segs []gen.Segment) []gen.Segment {
		seen := map[[2]int]bool{}
		var out []gen.Segment
		for _, s := range segs {
			k := [2]int{int(s.Dir), s.Msg}
			if len(s.Payload) > 0 && !s.Decoy && !seen[k] {
				seen[k] = true
				out = append(out, mk(s))
			}
			out = append(out, s)
		}
		return out
	}
}

// control returns a decoy control segment (RST or FIN) from the sender of
// s at s.Seq+delta.
func control(flags gen.Flags, delta uint32, ttl uint8, badSum bool) func(gen.Segment) gen.Segment {
	return func(s gen.Segment) gen.Segment {
		return gen.Segment{Dir: s.Dir, Seq: s.Seq + delta, Flags: flags | gen.ACK, Window: s.Window,
			TSVal: s.TSVal, TSEcr: s.TSEcr, Msg: -1, Decoy: true, TTL: ttl, BadChecksum: badSum}
	}
}

// decoySYN sends a second SYN with an ISN 2^24 away, marked decoy, before
// (after=false) or after the genuine SYN.
func decoySYN(after bool) gen.Transform {
	return func(segs []gen.Segment) []gen.Segment {
		d := segs[0]
		d.Seq += 1 << 24
		d.Decoy = true
		if after {
			return insertAt(segs, 1, d)
		}
		return insertAt(segs, 0, d)
	}
}

// synOnEstablished sends, after the handshake, a SYN with another ISN and a
// decoy copy of the first client data in that sequence space.
func synOnEstablished() gen.Transform {
	return func(segs []gen.Segment) []gen.Segment {
		i := firstData(segs)
		if i < 0 {
			return segs
		}
		syn := segs[0]
		syn.Seq += 1 << 24
		syn.Decoy = true
		syn.TSVal = segs[i].TSVal
		var d gen.Segment
		for _, s := range segs[i:] {
			if s.Dir == dataplane.ToServer && len(s.Payload) > 0 {
				d = s
				break
			}
		}
		if d.Payload == nil {
			return segs
		}
		d.Seq = syn.Seq + 1
		d.Payload, d.Decoy = garble(d.Payload), true
		out := insertAt(segs, 3, syn)
		return insertAt(out, 4, d)
	}
}

// staleTimestamp makes a segment fail PAWS.
func staleTimestamp() gen.Mod { return func(s *gen.Segment) { s.TSVal -= 1000 } }

// seqShift moves a segment in sequence space.
func seqShift(d uint32) gen.Mod { return func(s *gen.Segment) { s.Seq += d } }

// urgentPolicy: TCP data with URG and an urgent pointer inside the segment
// is dropped (tcp_urgent, alert patchgate.tcp_urgent): a receiver without
// SO_OOBINLINE removes the urgent byte, so the application would read
// other bytes than those inspected. Benign traffic sent that way is not
// forwarded (NORMALISATION.md, "TTL insertion and urgent data").
var urgentPolicy = policyRefuses(alertUrgent, false, dataplane.ReasonTCPUrgent)

// overlapPolicy: an out-of-order copy with different bytes arriving before
// the original makes the original differ from buffered data: the original
// is dropped (tcp_overlap, alert patchgate.tcp_overlap), first copy wins.
// Everything the sender sends after the refused original waits behind the
// gap, so a long message also hits the out-of-order limits (tcp_buffer).
var overlapPolicy = policyRefuses(alertTCPOverlap, true, dataplane.ReasonTCPOverlap, dataplane.ReasonTCPBuffer)

// rstLowTTLPolicy: a RST whose sequence number is exactly the next expected
// closes the connection, whatever its TTL (the TTL check covers data only):
// later segments are dropped (tcp_state) without an alert. Fail-closed: the
// connection stalls, nothing uninspected passes.
var rstLowTTLPolicy = policyRefuses("", false, dataplane.ReasonTCPState)

// finDesyncPolicy: the first FIN seen fixes where the sender's stream ends;
// data beyond it and a FIN elsewhere are dropped (tcp_state), so a bogus
// FIN (wrong sequence number, or one that expires before the server) makes
// the gateway drop the rest of the stream. Fail-closed, without an alert.
var finDesyncPolicy = policyRefuses("", false, dataplane.ReasonTCPState)

// synDataPolicy: data in a SYN is inspected at once (a TFO server delivers
// it); the later retransmission must carry the same bytes, and a different
// one is dropped as an overlap (tcp_overlap).
var synDataPolicy = policyRefuses(alertTCPOverlap, false, dataplane.ReasonTCPOverlap)

// tcpClasses are the TCP-layer evasion classes.
func tcpClasses() []class {
	seq := func(ts ...gen.Transform) []gen.Transform { return ts }
	return []class{
		{name: "bad-checksum-decoys", udp: true, segs: seq(gen.Decoy(gen.DataSegments(), gen.WithBadChecksum()))},
		{name: "no-ack-decoys", segs: seq(gen.Decoy(gen.DataSegments(), gen.WithoutAck()))},
		{name: "data-in-syn-fast-open", segs: seq(synData(true, false))},
		{name: "data-in-syn-then-retransmitted", segs: seq(synData(false, false))},
		{name: "data-in-syn-differs-from-retransmission", segs: seq(synData(false, true)), clientOnly: true,
			detectedBy: []string{alertTCPOverlap}, benign: synDataPolicy},
		{name: "decoy-data-before-synack", segs: seq(dataBeforeSynAck())},
		{name: "data-completes-handshake", segs: seq(dataOnThirdAck())},
		// RST/FIN desynchronisation: a naive inspector that believes them
		// stops following the connection while the server does not.
		{name: "rst-wrong-seq-before-each-message", segs: seq(beforeEachMessage(control(gen.RST, 1000, 0, false)))},
		{name: "rst-bad-checksum-before-each-message", segs: seq(beforeEachMessage(control(gen.RST, 0, 0, true)))},
		{name: "rst-low-ttl-before-each-message", segs: seq(beforeEachMessage(control(gen.RST, 0, 1, false))),
			blockedOnly: true, benign: rstLowTTLPolicy},
		{name: "fin-wrong-seq-before-each-message", segs: seq(beforeEachMessage(control(gen.FIN, 1000, 0, false))),
			blockedOnly: true, benign: finDesyncPolicy},
		{name: "fin-bad-checksum-before-each-message", segs: seq(beforeEachMessage(control(gen.FIN, 0, 0, true)))},
		{name: "fin-low-ttl-before-each-message", segs: seq(beforeEachMessage(control(gen.FIN, 0, 1, false))),
			blockedOnly: true, benign: finDesyncPolicy},
		{name: "paws-stale-timestamp-decoys", segs: seq(gen.Decoy(gen.DataSegments(), staleTimestamp()))},
		{name: "out-of-window-decoys-ahead", segs: seq(gen.Decoy(gen.DataSegments(), seqShift(1<<25)))},
		{name: "out-of-window-decoys-behind", segs: seq(gen.Decoy(gen.DataSegments(), seqShift(1<<32-1<<25)))},
		{name: "overlap-same-bytes-after", segSize: 24, maxSegs: fragMaxSegs, segs: seq(gen.Overlap(gen.DataSegments(), gen.OverlapOptions{}))},
		{name: "overlap-same-bytes-before", segSize: 24, maxSegs: fragMaxSegs, segs: seq(gen.Overlap(gen.DataSegments(), gen.OverlapOptions{CopyFirst: true}))},
		{name: "overlap-different-bytes-after", segSize: 24, maxSegs: fragMaxSegs,
			segs: seq(gen.Overlap(gen.DataSegments(), gen.OverlapOptions{Different: true}))},
		{name: "overlap-different-bytes-before", segSize: 24, maxSegs: fragMaxSegs,
			segs:       seq(gen.Overlap(gen.DataSegments(), gen.OverlapOptions{Different: true, CopyFirst: true})),
			detectedBy: []string{alertTCPOverlap}, benign: overlapPolicy},
		{name: "1-byte-segments", segSize: 1},
		{name: "1-byte-segments-reordered", segSize: 1, segs: seq(gen.Reorder(3, 6))},
		{name: "7-byte-segments-reordered", segSize: 7, maxSegs: fragMaxSegs, segs: seq(gen.Reorder(7, 5))},
		{name: "duplicated-segments", segSize: 16, maxSegs: fragMaxSegs, segs: seq(gen.Duplicate(gen.DataSegments()))},
		{name: "urgent-pointer-in-segment",
			frames:     mapFrames(genuineData, func(b []byte, fc *frameCtx) []byte { return withUrgent(b, fc.l3(), 1) }),
			detectedBy: []string{alertUrgent}, benign: urgentPolicy},
		{name: "second-syn-other-isn-before", segs: seq(decoySYN(false))},
		{name: "second-syn-other-isn-after", segs: seq(decoySYN(true))},
		{name: "syn-on-established-with-decoy-data", segs: seq(synOnEstablished())},
	}
}

// TestTCPEvasion carries every shipped patch test through every TCP-layer
// evasion class.
func TestTCPEvasion(t *testing.T) {
	t.Parallel()
	runClasses(t, tcpClasses(), catalogTraffic(t))
}
