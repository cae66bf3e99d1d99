package smb

import (
	"unicode/utf16"
	"unicode/utf8"

	"github.com/patchgate/patchgate/dataplane"
	"github.com/patchgate/patchgate/dataplane/analyzer"
)

// smb2BodyNeed returns the bytes of the body (after the 64-byte header) the
// analyzer parses for a command: -1 means the whole message up to MaxBuffered.
func smb2BodyNeed(cmd uint16, resp bool) int {
	switch cmd {
	case smb2Negotiate, smb2TreeConnect:
		return -1
	case smb2SessionSetup:
		if resp {
			return 8
		}
		return 24
	case smb2Read, smb2Write:
		if resp {
			return 16
		}
		return 48
	case smb2IOCTL:
		if resp {
			return 48
		}
		return 56
	}
	return 2 // StructureSize
}

// smb2StructureSize is the StructureSize a command's body must carry for the
// analyzer to read its fields (0: no fields read).
func smb2StructureSize(cmd uint16, resp bool) uint16 {
	switch cmd {
	case smb2Negotiate:
		if resp {
			return 65
		}
		return 36
	case smb2SessionSetup:
		if resp {
			return 9
		}
		return 25
	case smb2TreeConnect:
		if resp {
			return 16
		}
		return 9
	case smb2Read, smb2Write:
		if resp {
			return 17
		}
		return 49
	case smb2IOCTL:
		if resp {
			return 49
		}
		return 57
	}
	return 0
}

// onSMB2Hdr handles the 64-byte header of an SMB2 message at d.base.
func (a *Analyzer) onSMB2Hdr(dir dataplane.Direction, sink analyzer.Sink) {
	d := &a.dir[dir]
	h := d.buf
	if len(h) < smb2HeaderSize || !isProto(h, 0xFE) {
		switch {
		case d.compressed:
			// the uncompressed prefix need not start with a header
		case len(h) < smb2HeaderSize:
			sink.Violation(dir, "smb2.truncated_header", "SMB2 message shorter than its header")
		default:
			sink.Violation(dir, "smb2.bad_compound", "compound member without an SMB2 header")
		}
		d.idle()
		return
	}
	cmd := le16(h[12:])
	flags := le32(h[16:])
	next := le32(h[20:])
	d.next = 0
	if !d.compressed && next != 0 {
		switch {
		case next < smb2HeaderSize || next%8 != 0 || int64(d.base)+int64(next)+smb2HeaderSize > int64(d.msgLen):
			sink.Violation(dir, "smb2.bad_next_command", "NextCommand unaligned or outside the message")
		case d.index+1 >= MaxCompound:
			sink.Violation(dir, "smb2.compound_limit", "too many compounded messages")
		default:
			d.next = int(next)
			d.end = d.base + d.next
		}
	}
	need := smb2BodyNeed(cmd, flags&smb2FlagResponse != 0)
	total := smb2HeaderSize + need
	if need < 0 {
		total = d.end - d.base
	}
	if total > smb2HeaderSize && d.base+smb2HeaderSize < d.end {
		d.stage = stSMB2Body
		d.extend(total, d.end)
		return
	}
	a.emitSMB2(dir, sink)
	a.nextSMB2(dir)
}

// onSMB2Body handles the collected header and body of an SMB2 message.
func (a *Analyzer) onSMB2Body(dir dataplane.Direction, sink analyzer.Sink) {
	if len(a.dir[dir].buf) < smb2HeaderSize {
		a.dir[dir].idle()
		return
	}
	a.emitSMB2(dir, sink)
	a.nextSMB2(dir)
}

// nextSMB2 moves to the next compound member or stops parsing the message.
func (a *Analyzer) nextSMB2(dir dataplane.Direction) {
	d := &a.dir[dir]
	if d.next == 0 || d.compressed {
		d.idle()
		return
	}
	base := d.base + d.next
	d.base, d.end, d.next = base, d.msgLen, 0
	d.index++
	d.stage = stSMB2Hdr
	if !d.collect(base, smb2HeaderSize) {
		d.idle()
	}
}

// emitSMB2 fires smb.message (and smb2.negotiate) for the SMB2 message in buf.
func (a *Analyzer) emitSMB2(dir dataplane.Direction, sink analyzer.Sink) {
	d := &a.dir[dir]
	h := d.buf
	m := &a.msg
	*m = Message{
		Direction:     directionName(uint8(dir)),
		Version:       2,
		Dialect:       int(a.conn.dialect),
		WordCount:     -1,
		ByteCount:     -1,
		StructureSize: -1,
		NetBIOSLength: d.msgLen,
		CompoundIndex: d.index,
		Compressed:    d.compressed,
		Length:        d.end - d.base,
	}
	cmd := le16(h[12:])
	flags := le32(h[16:])
	resp := flags&smb2FlagResponse != 0
	m.Command = int(cmd)
	m.CommandName = smb2Name(cmd)
	m.IsResponse = resp
	m.CreditCharge = int(le16(h[6:]))
	m.Status = int(le32(h[8:]))
	m.Credits = int(le16(h[14:]))
	m.Flags = int(flags)
	m.NextCommand = int(le32(h[20:]))
	m.MessageID = int(int64(le64(h[24:])))
	if flags&smb2FlagAsync != 0 {
		m.Async = true
		m.AsyncID = int(int64(le64(h[32:])))
	} else {
		m.ProcessID = int(le32(h[32:]))
		m.TreeID = int(le32(h[36:]))
	}
	m.SessionID = int(int64(le64(h[40:])))
	m.Signed = flags&smb2FlagSigned != 0
	m.Related = flags&smb2FlagRelated != 0

	body := h[smb2HeaderSize:]
	if len(body) >= 2 {
		m.StructureSize = int(le16(body))
	}
	ok := len(body) >= 2 && le16(body) == smb2StructureSize(cmd, resp)
	if ok {
		a.parseSMB2Body(m, cmd, resp, h)
	}
	sink.Event(m)
	if ok && cmd == smb2Negotiate {
		a.parseNegotiate(dir, h, resp, sink)
	}
}

// parseSMB2Body fills the command-specific part of m from the buffered message
// h (header and body; StructureSize already checked).
func (a *Analyzer) parseSMB2Body(m *Message, cmd uint16, resp bool, h []byte) {
	body := h[smb2HeaderSize:]
	d := len(body)
	switch cmd {
	case smb2SessionSetup:
		s := &m.SessionSetup
		if resp && d >= 8 {
			s.SessionFlags = int(le16(body[2:]))
			s.SecurityBufferOffset = int(le16(body[4:]))
			s.SecurityBufferLength = int(le16(body[6:]))
		} else if !resp && d >= 24 {
			s.Flags = int(body[2])
			s.SecurityMode = int(body[3])
			s.Capabilities = int(le32(body[4:]))
			s.SecurityBufferOffset = int(le16(body[12:]))
			s.SecurityBufferLength = int(le16(body[14:]))
			s.PreviousSessionID = int(int64(le64(body[16:])))
		}
	case smb2TreeConnect:
		t := &m.TreeConnect
		if resp && d >= 16 {
			t.ShareType = int(body[2])
			t.ShareFlags = int(le32(body[4:]))
			t.Capabilities = int(le32(body[8:]))
			t.MaximalAccess = int(le32(body[12:]))
		} else if !resp && d >= 8 {
			t.Flags = int(le16(body[2:]))
			off := int(le16(body[4:]))
			n := int(le16(body[6:]))
			t.PathLength = n
			end := off + n
			if end > m.Length {
				t.PathTruncated = true
				end = m.Length
			}
			if end > len(h) {
				t.PathTruncated = true
				end = len(h)
			}
			if off < end {
				t.Path = a.utf16String(h[off:end])
			}
		}
	case smb2Read:
		r := &m.Read
		if resp && d >= 16 {
			r.DataOffset = int(body[2])
			r.DataLength = int(le32(body[4:]))
			r.RemainingBytes = int(le32(body[8:]))
		} else if !resp && d >= 48 {
			r.Flags = int(body[3])
			r.Length = int(le32(body[4:]))
			r.Offset = int(int64(le64(body[8:])))
			r.MinimumCount = int(le32(body[32:]))
			r.RemainingBytes = int(le32(body[40:]))
		}
	case smb2Write:
		w := &m.Write
		if resp && d >= 16 {
			w.Count = int(le32(body[4:]))
			w.RemainingBytes = int(le32(body[8:]))
		} else if !resp && d >= 48 {
			w.DataOffset = int(le16(body[2:]))
			w.Length = int(le32(body[4:]))
			w.Offset = int(int64(le64(body[8:])))
			w.RemainingBytes = int(le32(body[36:]))
			w.Flags = int(le32(body[44:]))
		}
	case smb2IOCTL:
		c := &m.IOCTL
		if resp && d >= 48 {
			c.CtlCode = int(le32(body[4:]))
			c.InputOffset = int(le32(body[24:]))
			c.InputCount = int(le32(body[28:]))
			c.OutputOffset = int(le32(body[32:]))
			c.OutputCount = int(le32(body[36:]))
			c.Flags = int(le32(body[40:]))
		} else if !resp && d >= 56 {
			c.CtlCode = int(le32(body[4:]))
			c.InputOffset = int(le32(body[24:]))
			c.InputCount = int(le32(body[28:]))
			c.MaxInputResponse = int(le32(body[32:]))
			c.OutputOffset = int(le32(body[36:]))
			c.OutputCount = int(le32(body[40:]))
			c.MaxOutputResponse = int(le32(body[44:]))
			c.Flags = int(le32(body[48:]))
			c.IsFSCTL = c.Flags&1 != 0
		}
	}
}

// utf16String decodes UTF-16LE bytes (an odd trailing byte is dropped).
func (a *Analyzer) utf16String(b []byte) string {
	out := a.scratch[:0]
	for i := 0; i+1 < len(b); i += 2 {
		u := rune(le16(b[i:]))
		if utf16.IsSurrogate(u) && i+3 < len(b) {
			if r := utf16.DecodeRune(u, rune(le16(b[i+2:]))); r != utf8.RuneError {
				out = utf8.AppendRune(out, r)
				i += 2
				continue
			}
		}
		if utf16.IsSurrogate(u) {
			u = utf8.RuneError
		}
		out = utf8.AppendRune(out, u)
	}
	a.scratch = out
	return string(out)
}

// onTransform handles an SMB2 TRANSFORM_HEADER (encrypted message).
func (a *Analyzer) onTransform(dir dataplane.Direction, sink analyzer.Sink) {
	d := &a.dir[dir]
	h := d.buf
	if len(h) < transformSize {
		sink.Violation(dir, "smb2.truncated_header", "transform header truncated")
		d.idle()
		return
	}
	m := &a.msg
	*m = Message{
		Direction:     directionName(uint8(dir)),
		Version:       2,
		Dialect:       int(a.conn.dialect),
		Command:       -1,
		CommandName:   "ENCRYPTED",
		Encrypted:     true,
		WordCount:     -1,
		ByteCount:     -1,
		StructureSize: -1,
		NetBIOSLength: d.msgLen,
		Length:        int(le32(h[36:])),
		Flags:         int(le16(h[42:])),
		SessionID:     int(int64(le64(h[44:]))),
	}
	sink.Event(m)
	d.idle()
}
