package dns

import (
	"encoding/binary"
	"fmt"
	"strings"

	"github.com/patchgate/patchgate/dataplane"
	"github.com/patchgate/patchgate/dataplane/analyzer"
)

// Wire-format builders for tests.

func u16(v int) []byte    { return binary.BigEndian.AppendUint16(nil, uint16(v)) }
func u32(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }

func cat(parts ...[]byte) []byte {
	var out []byte
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// wname encodes a dotted name uncompressed ("" or "." is the root).
func wname(s string) []byte {
	var out []byte
	if s != "" && s != "." {
		for _, l := range strings.Split(s, ".") {
			out = append(out, byte(len(l)))
			out = append(out, l...)
		}
	}
	return append(out, 0)
}

// ptr is a compression pointer to off.
func ptr(off int) []byte { return []byte{0xC0 | byte(off>>8), byte(off)} }

// hdr builds a header. flags is the whole 16-bit flags word.
func hdr(id, flags, qd, an, ns, ar int) []byte {
	return cat(u16(id), u16(flags), u16(qd), u16(an), u16(ns), u16(ar))
}

// Common flag words.
const (
	flagsQuery    = 0x0100 // RD
	flagsResponse = 0x8180 // QR RD RA
)

func question(name []byte, t, c int) []byte { return cat(name, u16(t), u16(c)) }

func rr(name []byte, t, c int, ttl uint32, rdata []byte) []byte {
	return cat(name, u16(t), u16(c), u32(ttl), u16(len(rdata)), rdata)
}

// sigRdata builds SIG/RRSIG data with the given signer (wire form) and
// signature length.
func sigRdata(covered int, signer []byte, sigLen int) []byte {
	return cat(u16(covered), []byte{8, 2}, u32(3600), u32(1700000000), u32(1690000000), u16(12345),
		signer, make([]byte, sigLen))
}

// tcpFrame prefixes each message with its length.
func tcpFrame(msgs ...[]byte) []byte {
	var out []byte
	for _, m := range msgs {
		out = append(out, u16(len(m))...)
		out = append(out, m...)
	}
	return out
}

// recSink records what an analyzer produces as text, copying every event
// (events are reused after the call).
type recSink struct {
	log        []string
	msgs       []Message
	recs       []Record
	violations []string
	boundaries int
}

func (s *recSink) Event(ev analyzer.Event) {
	switch e := ev.(type) {
	case *Message:
		c := *e
		c.Questions = append([]Question(nil), e.Questions...)
		c.RRs = append([]RR(nil), e.RRs...)
		c.Answers = append([]RR(nil), e.Answers...)
		c.Authority = append([]RR(nil), e.Authority...)
		c.Additional = append([]RR(nil), e.Additional...)
		c.EDNS.Options = append([]EDNSOption(nil), e.EDNS.Options...)
		s.msgs = append(s.msgs, c)
		s.log = append(s.log, fmt.Sprintf("%s %+v", e.EventName(), c))
	case *Record:
		s.recs = append(s.recs, *e)
		s.log = append(s.log, fmt.Sprintf("%s %+v", e.EventName(), *e))
	default:
		s.log = append(s.log, fmt.Sprintf("unknown event %T", ev))
	}
}

func (s *recSink) Boundary(dir dataplane.Direction) {
	s.boundaries++
	s.log = append(s.log, "boundary "+dir.String())
}

func (s *recSink) Violation(dir dataplane.Direction, code, detail string) {
	s.violations = append(s.violations, code)
	s.log = append(s.log, "violation "+dir.String()+" "+code+" "+detail)
}

// parseUDP runs one datagram through a UDP analyzer.
func parseUDP(dir dataplane.Direction, msg []byte) *recSink {
	s := &recSink{}
	_ = NewUDP().Feed(dir, msg, s)
	return s
}

func probe(port uint16, data []byte) analyzer.Probe {
	return analyzer.Probe{ServerPort: port, Data: data}
}
