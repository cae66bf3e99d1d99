package smb

import (
	"fmt"

	"github.com/patchgate/patchgate/dataplane"
	"github.com/patchgate/patchgate/dataplane/analyzer"
)

// transKey identifies an SMB1 transaction as a server matches secondaries to
// primaries: by tree, process, user and multiplex ids (not by command).
type transKey struct {
	tid, uid, mid uint16
	pid           uint32
}

// transEntry aggregates one SMB1 transaction request over its messages.
type transEntry struct {
	key        transKey
	cmd        byte // primary command
	last       byte // command of the last message (primary or secondary)
	mismatch   bool
	setupCount int
	setup0     int // -1 when SetupCount is 0
	function   int // NT_TRANSACT Function

	totalParam, totalData       int64 // declared by the primary
	maxParam, maxData           int64
	secTotalParam, secTotalData int64 // declared by the last secondary, -1 if none
	secondaries                 int

	paramSent, dataSent int64
	paramNext, dataNext int64 // end of the bytes received contiguously from displacement 0
	params              [MaxTransParams]byte

	overflow, outOfOrder, malformed, gap bool

	// OS/2 FEA list walk over the contiguous data (MS-CIFS 2.2.1.2.2)
	feaSize    int64 // SizeOfListInBytes, -1 until known
	feaHdr     [4]byte
	feaHdrN    int
	feaPos     int64 // data position of the next entry (after walking its header: its end)
	feaPrev    int64 // end of the entry before the one at feaPos
	feaCount   int
	feaStop    bool
	feaOverrun bool
}

// fragment is the layout of one transaction message.
type fragment struct {
	tp, td, mp, md     int64
	pc, po, pd         int64
	dc, do, dd         int64
	setupCount, setup0 int
	function           int
}

// parseFragment reads the parameter words of a transaction message.
func parseFragment(cmd byte, w []byte) (f fragment, ok bool) {
	f.setup0 = -1
	switch cmd {
	case smb1Trans, smb1Trans2:
		if len(w) < 28 {
			return f, false
		}
		f.tp, f.td = int64(le16(w)), int64(le16(w[2:]))
		f.mp, f.md = int64(le16(w[4:])), int64(le16(w[6:]))
		f.pc, f.po = int64(le16(w[18:])), int64(le16(w[20:]))
		f.dc, f.do = int64(le16(w[22:])), int64(le16(w[24:]))
		f.setupCount = int(w[26])
		if f.setupCount > 0 && len(w) >= 30 {
			f.setup0 = int(le16(w[28:]))
		}
	case smb1NTTrans:
		if len(w) < 38 {
			return f, false
		}
		f.tp, f.td = int64(le32(w[3:])), int64(le32(w[7:]))
		f.mp, f.md = int64(le32(w[11:])), int64(le32(w[15:]))
		f.pc, f.po = int64(le32(w[19:])), int64(le32(w[23:]))
		f.dc, f.do = int64(le32(w[27:])), int64(le32(w[31:]))
		f.setupCount = int(w[35])
		f.function = int(le16(w[36:]))
		if f.setupCount > 0 && len(w) >= 40 {
			f.setup0 = int(le16(w[38:]))
		}
	case smb1TransSecondary, smb1Trans2Second:
		if len(w) < 16 {
			return f, false
		}
		f.tp, f.td = int64(le16(w)), int64(le16(w[2:]))
		f.pc, f.po, f.pd = int64(le16(w[4:])), int64(le16(w[6:])), int64(le16(w[8:]))
		f.dc, f.do, f.dd = int64(le16(w[10:])), int64(le16(w[12:])), int64(le16(w[14:]))
	case smb1NTTransSecond:
		if len(w) < 36 {
			return f, false
		}
		f.tp, f.td = int64(le32(w[3:])), int64(le32(w[7:]))
		f.pc, f.po, f.pd = int64(le32(w[11:])), int64(le32(w[15:])), int64(le32(w[19:]))
		f.dc, f.do, f.dd = int64(le32(w[23:])), int64(le32(w[27:])), int64(le32(w[31:]))
	default:
		return f, false
	}
	return f, true
}

// onTransMessage registers a transaction primary or secondary request whose
// buffered prefix (header, words, ByteCount) is h, and routes its parameter
// and data bytes to the transaction while the message streams by.
func (a *Analyzer) onTransMessage(dir dataplane.Direction, h, words []byte, sink analyzer.Sink) {
	d := &a.dir[dir]
	cmd := h[4]
	f, ok := parseFragment(cmd, words)
	if !ok {
		return
	}
	key := transKey{
		tid: le16(h[24:]),
		pid: uint32(le16(h[12:]))<<16 | uint32(le16(h[26:])),
		uid: le16(h[28:]),
		mid: le16(h[30:]),
	}
	idx := a.findTrans(key)
	if cmd == smb1Trans || cmd == smb1Trans2 || cmd == smb1NTTrans {
		if idx >= 0 {
			a.emitTrans(idx, "evicted", nil, sink)
			a.removeTrans(idx)
		}
		if len(a.trans) >= MaxPendingTrans {
			sink.Violation(dir, "smb1.trans_table_full",
				fmt.Sprintf("more than %d pending transactions", MaxPendingTrans))
			a.emitTrans(0, "evicted", nil, sink)
			a.removeTrans(0)
		}
		a.trans = append(a.trans, transEntry{
			key: key, cmd: cmd, setupCount: f.setupCount, setup0: f.setup0, function: f.function,
			totalParam: f.tp, totalData: f.td, maxParam: f.mp, maxData: f.md,
			secTotalParam: -1, secTotalData: -1, feaSize: -1,
		})
		idx = len(a.trans) - 1
	} else {
		if idx < 0 {
			return
		}
		e := &a.trans[idx]
		e.secondaries++
		e.secTotalParam, e.secTotalData = f.tp, f.td
		if primaryOf(cmd) != e.cmd {
			e.mismatch = true
		}
	}
	e := &a.trans[idx]
	e.last = cmd
	if f.pd+f.pc > e.totalParam || f.dd+f.dc > e.totalData {
		e.overflow = true
	}
	r := &d.rt
	*r = routeState{
		active: true, idx: idx, key: key, cmd: cmd,
		pDisp: f.pd, dDisp: f.dd,
		pCount: f.pc, pOff: f.po, dCount: f.dc, dOff: f.do,
	}
	var bad bool
	r.pStart, r.pEnd, bad = region(f.po, f.pc, d.msgLen)
	e.malformed = e.malformed || bad
	r.dStart, r.dEnd, bad = region(f.do, f.dc, d.msgLen)
	e.malformed = e.malformed || bad
	// Regions that start inside the buffered prefix (hostile offsets).
	a.route(dir, 0, h)
}

// region clips [off, off+count) to a message of msgLen bytes; bad reports
// that it did not fit.
func region(off, count int64, msgLen int) (start, end int, bad bool) {
	if count == 0 {
		return 0, 0, false
	}
	s, e := off, off+count
	if e > int64(msgLen) {
		bad = true
		e = int64(msgLen)
	}
	if s > e {
		s = e
	}
	return int(s), int(e), bad
}

// route delivers the message bytes b found at message position pos to the
// regions of the transaction being streamed.
func (a *Analyzer) route(dir dataplane.Direction, pos int, b []byte) {
	r := &a.dir[dir].rt
	i := a.transIndex(r)
	if i < 0 {
		r.active = false
		return
	}
	e := &a.trans[i]
	end := pos + len(b)
	if s, t := max(pos, r.pStart), min(end, r.pEnd); s < t {
		e.feedParam(r.pDisp+int64(s-r.pStart), b[s-pos:t-pos])
	}
	if s, t := max(pos, r.dStart), min(end, r.dEnd); s < t {
		e.feedData(r.dDisp+int64(s-r.dStart), b[s-pos:t-pos])
	}
}

// feedParam records parameter bytes at displacement at.
func (e *transEntry) feedParam(at int64, b []byte) {
	e.paramSent += int64(len(b))
	if at != e.paramNext {
		return
	}
	for i := 0; i < len(b) && at+int64(i) < MaxTransParams; i++ {
		e.params[at+int64(i)] = b[i]
	}
	e.paramNext += int64(len(b))
}

// feedData records data bytes at displacement at and walks the FEA list.
func (e *transEntry) feedData(at int64, b []byte) {
	e.dataSent += int64(len(b))
	if at != e.dataNext {
		e.outOfOrder = true
		e.feaStop = true
		return
	}
	e.walkFEA(b)
	e.dataNext += int64(len(b))
}

// walkFEA continues the FEA list walk with b, found at e.dataNext. Each FEA is
// a flag byte, a name length byte, a 16-bit value length, the name with its
// NUL terminator and the value.
func (e *transEntry) walkFEA(b []byte) {
	at := e.dataNext
	for len(b) > 0 && !e.feaStop {
		if at < 4 {
			e.feaHdr[at] = b[0]
			at++
			b = b[1:]
			if at == 4 {
				e.feaSize = int64(le32(e.feaHdr[:]))
				e.feaPos, e.feaPrev = 4, 4
				if e.feaSize <= 4 {
					e.feaStop = true
				}
			}
			continue
		}
		if at < e.feaPos {
			k := e.feaPos - at
			if k > int64(len(b)) {
				k = int64(len(b))
			}
			at += k
			b = b[k:]
			continue
		}
		if e.feaHdrN == 0 && e.feaPos >= e.feaSize {
			e.feaStop = true
			return
		}
		e.feaHdr[e.feaHdrN] = b[0]
		e.feaHdrN++
		at++
		b = b[1:]
		if e.feaHdrN < 4 {
			continue
		}
		e.feaHdrN = 0
		size := 4 + int64(e.feaHdr[1]) + 1 + int64(le16(e.feaHdr[2:]))
		if e.feaPos+size > e.feaSize {
			e.feaOverrun = true
			e.feaStop = true
			return
		}
		e.feaPrev = e.feaPos
		e.feaPos += size
		e.feaCount++
	}
}

// transGap marks the transaction being streamed in dir as having lost bytes.
func (a *Analyzer) transGap(dir dataplane.Direction) {
	r := &a.dir[dir].rt
	if i := a.transIndex(r); i >= 0 {
		a.trans[i].gap = true
		a.trans[i].feaStop = true
	}
}

// finishTransPart ends the transaction message that just completed in dir
// and fires smb1.trans.
func (a *Analyzer) finishTransPart(dir dataplane.Direction, sink analyzer.Sink) {
	r := &a.dir[dir].rt
	r.active = false
	i := a.transIndex(r)
	if i < 0 {
		return
	}
	e := &a.trans[i]
	if e.paramSent > e.totalParam || e.dataSent > e.totalData {
		e.overflow = true
	}
	state := "partial"
	switch {
	case e.overflow:
		state = "overflow"
	case e.paramSent >= e.totalParam && e.dataSent >= e.totalData:
		state = "complete"
	}
	a.emitTrans(i, state, r, sink)
	if state != "partial" {
		a.removeTrans(i)
	}
}

// findTrans returns the index of the transaction with key k, or -1.
func (a *Analyzer) findTrans(k transKey) int {
	for i := range a.trans {
		if a.trans[i].key == k {
			return i
		}
	}
	return -1
}

// transIndex returns the index of the transaction r routes to, or -1.
func (a *Analyzer) transIndex(r *routeState) int {
	if r.idx >= 0 && r.idx < len(a.trans) && a.trans[r.idx].key == r.key {
		return r.idx
	}
	return a.findTrans(r.key)
}

func (a *Analyzer) removeTrans(i int) {
	copy(a.trans[i:], a.trans[i+1:])
	a.trans = a.trans[:len(a.trans)-1]
}

// emitTrans fires smb1.trans for transaction i; r is the triggering message
// (nil when the transaction is evicted or the connection ends).
func (a *Analyzer) emitTrans(i int, state string, r *routeState, sink analyzer.Sink) {
	e := &a.trans[i]
	t := &a.tr
	*t = Trans{
		State:                        state,
		Final:                        state != "partial",
		Complete:                     state == "complete",
		Command:                      int(e.cmd),
		CommandName:                  smb1Name(e.cmd),
		SetupCount:                   e.setupCount,
		Setup0:                       e.setup0,
		LastCommand:                  int(e.last),
		SecondaryMismatch:            e.mismatch,
		SecondaryCount:               e.secondaries,
		TreeID:                       int(e.key.tid),
		ProcessID:                    int(e.key.pid),
		UserID:                       int(e.key.uid),
		MultiplexID:                  int(e.key.mid),
		TotalParameterCount:          int(e.totalParam),
		TotalDataCount:               int(e.totalData),
		SecondaryTotalParameterCount: int(e.secTotalParam),
		SecondaryTotalDataCount:      int(e.secTotalData),
		MaxParameterCount:            int(e.maxParam),
		MaxDataCount:                 int(e.maxData),
		ParameterBytesSent:           int(e.paramSent),
		DataBytesSent:                int(e.dataSent),
		Overflow:                     e.overflow,
		OutOfOrder:                   e.outOfOrder,
		Malformed:                    e.malformed,
		Gap:                          e.gap,
		InfoLevel:                    -1,
		FEAListSize:                  int(e.feaSize),
		FEABytesSent:                 int(e.dataNext),
		FEACount:                     e.feaCount,
		FEAEntryOverruns:             e.feaOverrun,
	}
	if e.cmd == smb1NTTrans {
		t.Subcommand = e.function
	} else {
		t.Subcommand = e.setup0
	}
	if r != nil {
		t.ParameterCount, t.ParameterOffset, t.ParameterDisplacement = int(r.pCount), int(r.pOff), int(r.pDisp)
		t.DataCount, t.DataOffset, t.DataDisplacement = int(r.dCount), int(r.dOff), int(r.dDisp)
	}
	eff := primaryOf(e.last)
	t.EffectiveCommand = int(eff)
	t.EffectiveName = smb1Name(eff)
	if eff == smb1NTTrans {
		t.EffectiveSubcommand = e.function
	} else {
		t.EffectiveSubcommand = e.setup0
	}
	if eff == smb1Trans2 {
		sub := t.EffectiveSubcommand
		switch {
		case (sub == trans2SetPathInfo || sub == trans2QueryPath) && e.paramNext >= 2:
			t.InfoLevel = int(le16(e.params[0:]))
		case (sub == trans2SetFileInfo || sub == trans2QueryFile) && e.paramNext >= 4:
			t.InfoLevel = int(le16(e.params[2:]))
		}
		t.FEAList = sub == trans2Open2 || sub == trans2Mkdir ||
			((sub == trans2SetPathInfo || sub == trans2SetFileInfo) && t.InfoLevel == infoSetEAs)
	}
	switch {
	case e.dataNext < 4:
		t.FEAValidSize = 0
	case e.dataNext >= e.feaPos:
		t.FEAValidSize = int(e.feaPos)
	default:
		t.FEAValidSize = int(e.feaPrev)
	}
	sink.Event(t)
}
