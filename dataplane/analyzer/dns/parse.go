package dns

import (
	"encoding/binary"
	"strconv"
)

// Limits of one message's parse. Records beyond them are still walked (so the
// message statistics, e.g. SigMaxAllocSize, cover every record) but are not
// kept or emitted. The walk itself is bounded by the message size: a question
// takes at least 5 bytes and a record at least 11.
const (
	// MaxMessageSize is the largest DNS message: the TCP length prefix has 16
	// bits, and a UDP payload cannot exceed 65535 bytes either.
	MaxMessageSize = 65535
	// HeaderSize is the fixed DNS header (RFC 1035 §4.1.1).
	HeaderSize = 12
	// MaxRRs bounds the records kept in Message.RRs and emitted as dns.rr
	// events per message (MaxStringBytes may stop keeping them earlier). A 64 KiB zone-transfer message can hold ~6000 tiny
	// records; patches rarely need more than the first thousand, and the
	// message-level statistics still cover all of them.
	MaxRRs = 1000
	// MaxQuestions bounds the questions kept per message (real messages carry
	// one; RFC 9619 forbids more than one for QUERY).
	MaxQuestions = 16
	// MaxTXTStrings bounds the TXT character-strings kept per message.
	MaxTXTStrings = 1024
	// MaxEDNSOptions bounds the EDNS options kept per message.
	MaxEDNSOptions = 64
	// MaxStringBytes bounds the presentation-form strings (names, addresses,
	// TXT data) built per message: records stop being kept once it is reached.
	// Compression lets a 64 KiB message name a 255-byte name thousands of
	// times, and escaping makes each up to ~1000 bytes; legitimate messages
	// stay far below (their strings are at most a few times the message size).
	MaxStringBytes = 256 << 10
)

// Message-level malformation codes besides the name codes in name.go.
const (
	reasonShortHeader  = "short_header"
	reasonRdataOverrun = "rdata_overrun"
	reasonBadRdata     = "bad_rdata"
)

// decoder parses one message into a Message. It is reused from message to
// message; its slices keep their backing arrays.
type decoder struct {
	msg []byte
	// build is false in validate-only mode (Detect): no strings and no records
	// are kept, only the structure is checked.
	build bool
	// buildMsg is build for the whole message (build is switched off for
	// records beyond MaxRRs).
	buildMsg bool
	m        *Message

	arena []byte
	rrs   []RR
	qs    []Question
	txtSp []span
	txt   []string
	opts  []EDNSOption
	// scratch receives records not kept in rrs.
	scratch RR

	rrCount    int
	maxNameLen int
	maxJumps   int
	failOff    int
	// stopped is set when a structural error ended the parse early, and
	// stopReason says which.
	stopped    bool
	stopReason string
}

// fail records the first malformation of the message.
func (d *decoder) fail(reason string, off int) {
	if d.m.MalformedReason == "" {
		d.m.MalformedReason = reason
		d.failOff = off
	}
}

// stop records a structural error that ends the parse at off.
func (d *decoder) stop(reason string, off int) (int, bool) {
	d.fail(reason, off)
	d.stopped, d.stopReason = true, reason
	return off, false
}

// parse decodes msg into d.m. It never panics: every read is bounds-checked
// against msg, and on a structural error the records parsed so far are kept.
func (d *decoder) parse(msg []byte) {
	m := d.m
	d.msg = msg
	d.buildMsg = d.build
	d.arena = d.arena[:0]
	d.rrs = d.rrs[:0]
	d.qs = d.qs[:0]
	d.txtSp = d.txtSp[:0]
	d.opts = d.opts[:0]
	d.rrCount, d.maxNameLen, d.maxJumps, d.failOff = 0, 0, 0, 0
	d.stopped, d.stopReason = false, ""
	resetMessage(m)
	m.Length = len(msg)

	if len(msg) >= 2 {
		m.ID = int(binary.BigEndian.Uint16(msg))
	}
	if len(msg) >= 4 {
		f := binary.BigEndian.Uint16(msg[2:])
		m.QR = f&0x8000 != 0
		m.Opcode = int(f>>11) & 0xF
		m.AA = f&0x0400 != 0
		m.TC = f&0x0200 != 0
		m.RD = f&0x0100 != 0
		m.RA = f&0x0080 != 0
		m.Z = f&0x0040 != 0
		m.AD = f&0x0020 != 0
		m.CD = f&0x0010 != 0
		m.Rcode = int(f & 0xF)
	}
	if len(msg) < HeaderSize {
		d.stop(reasonShortHeader, 0)
		d.finish(len(msg))
		return
	}
	m.QDCount = int(binary.BigEndian.Uint16(msg[4:]))
	m.ANCount = int(binary.BigEndian.Uint16(msg[6:]))
	m.NSCount = int(binary.BigEndian.Uint16(msg[8:]))
	m.ARCount = int(binary.BigEndian.Uint16(msg[10:]))

	pos, ok := d.questions(HeaderSize)
	var secEnd [3]int
	counts := [3]int{m.ANCount, m.NSCount, m.ARCount}
	for s := 0; s < 3; s++ {
		for i := 0; ok && i < counts[s]; i++ {
			pos, ok = d.record(pos, s)
		}
		secEnd[s] = len(d.rrs)
	}
	if d.build {
		m.Answers = d.rrs[:secEnd[0]:secEnd[0]]
		m.Authority = d.rrs[secEnd[0]:secEnd[1]:secEnd[1]]
		m.Additional = d.rrs[secEnd[1]:secEnd[2]:secEnd[2]]
	}
	d.finish(pos)
}

// questions parses the question section starting at pos.
func (d *decoder) questions(pos int) (int, bool) {
	m, msg := d.m, d.msg
	for i := 0; i < m.QDCount; i++ {
		next, sp, _, reason := d.readName(pos, len(msg))
		if reason != "" {
			return d.stop(reason, pos)
		}
		if next+4 > len(msg) {
			return d.stop(reasonTruncated, next)
		}
		t := binary.BigEndian.Uint16(msg[next:])
		m.types.add(t)
		if d.build && len(d.qs) < MaxQuestions {
			q := Question{Type: int(t), Class: int(binary.BigEndian.Uint16(msg[next+2:])), nameSp: sp}
			q.TypeName, q.typeSp = d.typeName(t)
			d.qs = append(d.qs, q)
		}
		pos = next + 4
	}
	return pos, true
}

// record parses one resource record of section sec (0 answer, 1 authority,
// 2 additional) starting at pos and returns the offset after it.
func (d *decoder) record(pos, sec int) (int, bool) {
	msg := d.msg
	next, sp, _, reason := d.readName(pos, len(msg))
	if reason != "" {
		return d.stop(reason, pos)
	}
	if next+10 > len(msg) {
		return d.stop(reasonTruncated, next)
	}
	t := binary.BigEndian.Uint16(msg[next:])
	rdlen := int(binary.BigEndian.Uint16(msg[next+8:]))
	rdStart := next + 10
	rdEnd := rdStart + rdlen
	if rdEnd > len(msg) {
		return d.stop(reasonRdataOverrun, next+8)
	}
	d.rrCount++
	d.m.types.add(t)
	if rdlen > d.m.MaxRDLength {
		d.m.MaxRDLength = rdlen
	}

	keep := d.build && len(d.rrs) < MaxRRs && len(d.arena) < MaxStringBytes
	var r *RR
	if keep {
		d.rrs = append(d.rrs, RR{})
		r = &d.rrs[len(d.rrs)-1]
	} else {
		d.scratch = RR{}
		r = &d.scratch
	}
	r.Section = sectionNames[sec]
	r.Type = int(t)
	r.Class = int(binary.BigEndian.Uint16(msg[next+2:]))
	r.TTL = int64(binary.BigEndian.Uint32(msg[next+4:]))
	r.RDLength = rdlen
	r.Offset = pos
	r.nameSp = sp
	build := d.build
	d.build = keep
	r.TypeName, r.typeSp = d.typeName(t)
	d.rdata(r, rdStart, rdEnd)
	d.build = build
	return rdEnd, true
}

var sectionNames = [3]string{SectionAnswer, SectionAuthority, SectionAdditional}

// typeName returns a known mnemonic, or writes "TYPE<n>" into the arena.
func (d *decoder) typeName(t uint16) (string, span) {
	if n := knownTypeName(t); n != "" {
		return n, span{}
	}
	if !d.build {
		return "", span{}
	}
	start := len(d.arena)
	d.arena = append(d.arena, "TYPE"...)
	d.arena = strconv.AppendUint(d.arena, uint64(t), 10)
	return "", span{int32(start), int32(len(d.arena))}
}

// finish fills the message-level results once parsing stopped at pos, and
// turns the arena into the one string all string fields share.
func (d *decoder) finish(pos int) {
	m := d.m
	if d.stopReason == reasonTruncated {
		m.Truncated = true
		if m.TC && m.MalformedReason == reasonTruncated {
			// A response cut short on purpose (TC set) is truncated, not malformed.
			m.MalformedReason = ""
		}
	}
	m.Malformed = m.MalformedReason != ""
	if !d.stopped {
		m.TrailingBytes = len(d.msg) - pos
	}
	m.RRCount = d.rrCount
	m.RRsTruncated = d.rrCount > len(d.rrs) && d.build
	m.MaxNameLength = d.maxNameLen
	m.MaxNameJumps = d.maxJumps
	if !d.build {
		return
	}
	s := string(d.arena)
	for i := range d.qs {
		q := &d.qs[i]
		q.Name = sub(s, q.nameSp)
		if q.TypeName == "" {
			q.TypeName = sub(s, q.typeSp)
		}
	}
	d.txt = d.txt[:0]
	for _, sp := range d.txtSp {
		d.txt = append(d.txt, sub(s, sp))
	}
	for i := range d.rrs {
		r := &d.rrs[i]
		r.Name = sub(s, r.nameSp)
		if r.TypeName == "" {
			r.TypeName = sub(s, r.typeSp)
		}
		r.Address = sub(s, r.addrSp)
		r.Target = sub(s, r.targetSp)
		r.SIG.Signer = sub(s, r.signerSp)
		r.SOA.MName = sub(s, r.mnameSp)
		r.SOA.RName = sub(s, r.rnameSp)
		if r.txtHi > r.txtLo {
			r.TXT = d.txt[r.txtLo:r.txtHi:r.txtHi]
		}
	}
	m.Questions = d.qs
	if len(d.qs) > 0 {
		q := &d.qs[0]
		m.QName, m.QType, m.QTypeName, m.QClass = q.Name, q.Type, q.TypeName, q.Class
	}
	m.RRs = d.rrs
	m.EDNS.Options = d.opts
}

func sub(s string, sp span) string { return s[sp.off:sp.end] }

// resetMessage clears the per-message fields of m, keeping its identity.
func resetMessage(m *Message) {
	*m = Message{name: m.name, Transport: m.Transport, Index: m.Index}
}
