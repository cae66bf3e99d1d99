package smb

import (
	"github.com/patchgate/patchgate/dataplane"
	"github.com/patchgate/patchgate/dataplane/analyzer"
)

// onSMB1Hdr handles the 32-byte SMB1 header and its WordCount byte.
func (a *Analyzer) onSMB1Hdr(dir dataplane.Direction, sink analyzer.Sink) {
	d := &a.dir[dir]
	if len(d.buf) < smb1HeaderSize+1 {
		sink.Violation(dir, "smb1.truncated_header", "SMB1 message shorter than its header")
		d.idle()
		return
	}
	wc := int(d.buf[smb1HeaderSize])
	d.stage = stSMB1Words
	d.extend(smb1HeaderSize+1+2*wc+2, d.msgLen)
}

// onSMB1Words handles the parameter words and ByteCount of an SMB1 message.
func (a *Analyzer) onSMB1Words(dir dataplane.Direction, sink analyzer.Sink) {
	d := &a.dir[dir]
	h := d.buf
	if len(h) < smb1HeaderSize+1 {
		d.idle()
		return
	}
	wc := int(h[smb1HeaderSize])
	wordsEnd := smb1HeaderSize + 1 + 2*wc
	words := h[smb1HeaderSize+1 : min(wordsEnd, len(h))]
	m := &a.msg
	*m = Message{
		Direction:     directionName(uint8(dir)),
		Version:       1,
		Dialect:       int(a.conn.dialect),
		WordCount:     wc,
		ByteCount:     -1,
		StructureSize: -1,
		NetBIOSLength: d.msgLen,
		Length:        d.msgLen,
	}
	cmd := h[4]
	m.Command = int(cmd)
	m.CommandName = smb1Name(cmd)
	m.Status = int(le32(h[5:]))
	m.Flags = int(h[9])
	m.Flags2 = int(le16(h[10:]))
	m.IsResponse = h[9]&smb1FlagReply != 0
	m.Signed = m.Flags2&smb1Flags2Signed != 0
	m.TreeID = int(le16(h[24:]))
	m.ProcessID = int(le16(h[12:]))<<16 | int(le16(h[26:]))
	m.SessionID = int(le16(h[28:]))
	m.MessageID = int(le16(h[30:]))
	if len(h) >= wordsEnd+2 {
		m.ByteCount = int(le16(h[wordsEnd:]))
	}
	sink.Event(m)
	d.idle()
	if dir == dataplane.ToServer && !m.IsResponse {
		switch cmd {
		case smb1Trans, smb1Trans2, smb1NTTrans, smb1TransSecondary, smb1Trans2Second, smb1NTTransSecond:
			a.onTransMessage(dir, h, words, sink)
		}
	}
}
