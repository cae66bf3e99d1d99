// Package dns is the DNS analyzer: it parses DNS messages (RFC 1035 and its
// extensions) carried over UDP (one message per datagram) and over TCP (each
// message behind a 2-byte length prefix, RFC 1035 §4.2.2, any number per
// stream, split across segments anywhere) and emits dns.query, dns.response
// and dns.rr events.
//
// Names are decompressed with loop and depth protection, records of every
// section are parsed (A, AAAA, CNAME, NS, PTR, DNAME, MX, TXT, SOA, SIG, RRSIG
// and OPT typed; other types as type and rdlength), and message-level
// statistics (largest SIG/RRSIG record and the allocation size a Windows DNS
// server computes for it, name lengths, compression depth) let virtual patches
// state vulnerable conditions such as SIGRed (CVE-2020-1350). It uses no DNS
// library. The TCP framing state can be exported and imported exactly.
package dns

import (
	"fmt"

	"github.com/patchgate/patchgate/dataplane"
	"github.com/patchgate/patchgate/dataplane/analyzer"
)

// RetainBuffer is the largest reassembly buffer a TCP direction keeps between
// messages. Larger buffers (up to MaxMessageSize) are released after their
// message, so idle flows hold little memory.
const RetainBuffer = 4096

// phase is where a TCP direction is in its framing.
type phase uint8

const (
	// phaseLen: reading the 2-byte length prefix (have bytes of it read).
	phaseLen phase = iota
	// phaseBody: buffering a message of need bytes.
	phaseBody
	// phaseSkip: discarding the skip remaining bytes of a message a Gap cut.
	phaseSkip
	// phaseDesync: framing lost after a Gap; waiting for a Feed whose first
	// bytes look like the start of a message.
	phaseDesync
	// phaseEnded: the direction has ended; later bytes are ignored.
	phaseEnded
	numPhases
)

// dirState is the framing state of one direction.
type dirState struct {
	phase  phase
	have   uint8 // prefix bytes read in phaseLen (0 or 1)
	prefix byte  // the first prefix byte when have == 1
	need   int   // message length in phaseBody
	skip   int   // bytes left to discard in phaseSkip
	buf    []byte
	// index counts the messages parsed in this direction.
	index int
}

// Analyzer parses the DNS messages of one flow. It is used by one goroutine at
// a time.
type Analyzer struct {
	tcp  bool
	dirs [2]dirState
	dec  decoder
	msg  Message
	rec  Record
	// vmsg is the scratch message of validate-only parses (resynchronisation).
	vmsg Message
}

var _ analyzer.Analyzer = (*Analyzer)(nil)

// NewUDP returns an analyzer for a DNS flow over UDP: each Feed is one message.
func NewUDP() *Analyzer { return &Analyzer{msg: Message{Transport: "udp"}} }

// NewTCP returns an analyzer for a DNS flow over TCP: Feed delivers the
// in-order bytes of length-prefixed messages.
func NewTCP() *Analyzer { return &Analyzer{tcp: true, msg: Message{Transport: "tcp"}} }

// Feed delivers one datagram (UDP) or the next in-order bytes (TCP) of dir.
// It never fails: malformed messages are reported as events with Malformed set
// and as violations.
func (a *Analyzer) Feed(dir dataplane.Direction, data []byte, sink analyzer.Sink) error {
	dir &= 1
	if !a.tcp {
		a.message(dir, data, sink)
		return nil
	}
	st := &a.dirs[dir]
	if st.phase == phaseDesync {
		if !a.looksLikeStart(data) {
			return nil
		}
		st.phase = phaseLen
	}
	for len(data) > 0 {
		switch st.phase {
		case phaseLen:
			if st.have == 0 && len(data) >= 2 {
				st.need = int(data[0])<<8 | int(data[1])
				data = data[2:]
			} else if st.have == 0 {
				st.prefix, st.have = data[0], 1
				return nil
			} else {
				st.need = int(st.prefix)<<8 | int(data[0])
				st.have, st.prefix = 0, 0
				data = data[1:]
			}
			if st.need == 0 {
				a.message(dir, nil, sink)
				continue
			}
			st.phase = phaseBody
		case phaseBody:
			if len(st.buf) == 0 && len(data) >= st.need {
				// The whole message is in this segment: parse it in place.
				n := st.need
				st.phase, st.need = phaseLen, 0
				a.message(dir, data[:n], sink)
				data = data[n:]
				continue
			}
			if st.buf == nil {
				st.buf = make([]byte, 0, max(st.need, 512))
			}
			take := min(st.need-len(st.buf), len(data))
			st.buf = append(st.buf, data[:take]...)
			data = data[take:]
			if len(st.buf) == st.need {
				st.phase, st.need = phaseLen, 0
				a.message(dir, st.buf, sink)
				st.buf = st.buf[:0]
				if cap(st.buf) > RetainBuffer {
					st.buf = nil
				}
			}
		case phaseSkip:
			take := min(st.skip, len(data))
			st.skip -= take
			data = data[take:]
			if st.skip == 0 {
				st.phase = phaseLen
			}
		default: // phaseEnded
			return nil
		}
	}
	return nil
}

// Gap tells that n bytes of dir are lost. Inside a message the analyzer skips
// the rest of that message and stays in step; when the gap covers a length
// prefix or spans past the message it resynchronises at the first later Feed
// that starts with a plausible message.
func (a *Analyzer) Gap(dir dataplane.Direction, n int, sink analyzer.Sink) {
	dir &= 1
	if !a.tcp || n <= 0 {
		return
	}
	st := &a.dirs[dir]
	left := 0
	switch st.phase {
	case phaseBody:
		left = st.need - len(st.buf)
		st.buf = st.buf[:0]
		if cap(st.buf) > RetainBuffer {
			st.buf = nil
		}
	case phaseSkip:
		left = st.skip
	case phaseLen:
		st.phase, st.have, st.prefix = phaseDesync, 0, 0
		return
	default:
		return
	}
	st.need, st.skip = 0, 0
	switch {
	case n < left:
		st.phase, st.skip = phaseSkip, left-n
	case n == left:
		st.phase = phaseLen
	default:
		st.phase = phaseDesync
	}
}

// End tells that dir has ended. A TCP message still incomplete is dropped
// without an event: the server never receives it whole either.
func (a *Analyzer) End(dir dataplane.Direction, sink analyzer.Sink) {
	if !a.tcp {
		return
	}
	a.dirs[dir&1] = dirState{phase: phaseEnded, index: a.dirs[dir&1].index}
}

// message parses one complete message and emits its events.
func (a *Analyzer) message(dir dataplane.Direction, msg []byte, sink analyzer.Sink) {
	st := &a.dirs[dir]
	m := &a.msg
	m.Index = st.index
	st.index++
	a.dec.m, a.dec.build = m, true
	a.dec.parse(msg)
	m.name = EventQuery
	if m.QR {
		m.name = EventResponse
	}
	rec := &a.rec
	for i := range m.RRs {
		*rec = Record{
			Transport:     m.Transport,
			MessageIndex:  m.Index,
			MessageLength: m.Length,
			ID:            m.ID,
			QR:            m.QR,
			Opcode:        m.Opcode,
			Index:         i,
			RR:            m.RRs[i],
		}
		sink.Event(rec)
	}
	sink.Event(m)
	if m.Malformed {
		sink.Violation(dir, violationCode(m.MalformedReason),
			fmt.Sprintf("%s message %d (%d bytes): %s at offset %d",
				m.Transport, m.Index, m.Length, m.MalformedReason, a.dec.failOff))
	}
	sink.Boundary(dir)
}

// violationCode maps a malformation reason to its violation code.
func violationCode(reason string) string {
	switch reason {
	case reasonShortHeader:
		return "dns.short_header"
	case reasonTruncated:
		return "dns.truncated"
	case reasonRdataOverrun:
		return "dns.rdata_overrun"
	case reasonBadRdata:
		return "dns.bad_rdata"
	case reasonPointerForward:
		return "dns.name_pointer_forward"
	case reasonTooManyJumps:
		return "dns.name_too_many_jumps"
	case reasonNameTooLong:
		return "dns.name_too_long"
	case reasonTooManyLabels:
		return "dns.name_too_many_labels"
	case reasonBadLabelType:
		return "dns.name_bad_label_type"
	}
	return "dns.malformed"
}

// looksLikeStart reports whether b starts with a plausible length-prefixed
// message: a sane header and, when the whole message is in b, a clean parse.
func (a *Analyzer) looksLikeStart(b []byte) bool {
	if len(b) < 2+HeaderSize {
		return false
	}
	n := int(b[0])<<8 | int(b[1])
	if !plausibleHeader(b[2:], n) {
		return false
	}
	if len(b) < 2+n {
		return true
	}
	return a.validates(b[2 : 2+n])
}

// validates parses msg without building events and reports whether it is a
// well-formed message with nothing after its records.
func (a *Analyzer) validates(msg []byte) bool {
	d := &a.dec
	d.m, d.build = &a.vmsg, false
	d.parse(msg)
	d.m = &a.msg
	return !a.vmsg.Malformed && !a.vmsg.Truncated && a.vmsg.TrailingBytes == 0
}

// plausibleHeader reports whether h (at least HeaderSize bytes) is a header
// a real message of length n could carry: known opcode, Z clear, at most a
// few questions, and counts whose minimal encodings fit in n bytes.
func plausibleHeader(h []byte, n int) bool {
	if n < HeaderSize || len(h) < HeaderSize {
		return false
	}
	f := int(h[2])<<8 | int(h[3])
	if f&0x0040 != 0 {
		return false
	}
	switch (f >> 11) & 0xF {
	case 0, 1, 2, 4, 5, 6: // QUERY, IQUERY, STATUS, NOTIFY, UPDATE, DSO
	default:
		return false
	}
	qd := int(h[4])<<8 | int(h[5])
	rrs := (int(h[6])<<8 | int(h[7])) + (int(h[8])<<8 | int(h[9])) + (int(h[10])<<8 | int(h[11]))
	if qd > MaxQuestions {
		return false
	}
	return HeaderSize+qd*5+rrs*11 <= n
}
