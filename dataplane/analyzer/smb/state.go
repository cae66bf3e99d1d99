package smb

import (
	"errors"
	"fmt"
	"math"

	"github.com/patchgate/patchgate/dataplane/wire"
)

// stateVersion is the first byte of an exported state record.
const stateVersion = 1

// errBadState reports a state record that is internally inconsistent.
var errBadState = errors.New("inconsistent state")

// MarshalState implements analyzer.Analyzer.
func (a *Analyzer) MarshalState(dst []byte) []byte {
	dst = append(dst, stateVersion)
	c := &a.conn
	dst = wire.AppendBool(dst, c.negotiated)
	dst = wire.AppendVarint(dst, int64(c.dialect))
	dst = wire.AppendVarint(dst, int64(c.maxTransact))
	dst = wire.AppendVarint(dst, int64(c.maxRead))
	dst = wire.AppendVarint(dst, int64(c.maxWrite))
	dst = wire.AppendBool(dst, c.compChained)
	dst = wire.AppendVarint(dst, int64(len(c.compAlgs)))
	for _, v := range c.compAlgs {
		dst = wire.AppendVarint(dst, int64(v))
	}
	for i := range a.dir {
		dst = a.dir[i].marshal(dst)
	}
	dst = wire.AppendVarint(dst, int64(len(a.trans)))
	for i := range a.trans {
		dst = a.trans[i].marshal(dst)
	}
	return dst
}

func appendInts(dst []byte, vs ...int64) []byte {
	for _, v := range vs {
		dst = wire.AppendVarint(dst, v)
	}
	return dst
}

func (d *dirState) marshal(dst []byte) []byte {
	dst = wire.AppendBool(dst, d.failed)
	dst = wire.AppendBool(dst, d.resync)
	dst = wire.AppendBytes(dst, d.win[:d.winN])
	dst = wire.AppendBytes(dst, d.nbHdr[:d.nbN])
	dst = wire.AppendBool(dst, d.inMsg)
	dst = append(dst, d.nbType, byte(d.stage))
	dst = wire.AppendBool(dst, d.lost)
	dst = appendInts(dst, int64(d.msgLen), int64(d.pos), int64(d.bufBase), int64(d.want), int64(d.skipTo))
	if d.want > 0 {
		dst = wire.AppendBytes(dst, d.buf)
	} else {
		dst = wire.AppendBytes(dst, nil)
	}
	dst = appendInts(dst, int64(d.base), int64(d.end), int64(d.next), int64(d.index))
	dst = wire.AppendBool(dst, d.compressed)
	ct := &d.ct
	dst = wire.AppendBool(dst, ct.active)
	if ct.active {
		dst = appendInts(dst, int64(ct.orig), int64(ct.count), ct.total, int64(ct.curEnd))
		dst = wire.AppendBool(dst, ct.malformed)
		dst = ct.first.marshal(dst)
		dst = ct.cur.marshal(dst)
		dst = wire.AppendVarint(dst, int64(ct.nKept))
		for i := 0; i < ct.nKept; i++ {
			dst = ct.kept[i].marshal(dst)
		}
	}
	r := &d.rt
	dst = wire.AppendBool(dst, r.active)
	if r.active {
		dst = appendInts(dst, int64(r.idx), int64(r.cmd))
		dst = r.key.marshal(dst)
		dst = appendInts(dst, int64(r.pStart), int64(r.pEnd), int64(r.dStart), int64(r.dEnd),
			r.pDisp, r.dDisp, r.pCount, r.pOff, r.dCount, r.dOff)
	}
	return dst
}

func (p payloadRec) marshal(dst []byte) []byte {
	return appendInts(dst, int64(p.alg), int64(p.flags), int64(p.length), p.orig)
}

func (k transKey) marshal(dst []byte) []byte {
	return appendInts(dst, int64(k.tid), int64(k.uid), int64(k.mid), int64(k.pid))
}

func (e *transEntry) marshal(dst []byte) []byte {
	dst = e.key.marshal(dst)
	dst = append(dst, e.cmd, e.last)
	dst = appendInts(dst, int64(e.setupCount), int64(e.setup0), int64(e.function),
		e.totalParam, e.totalData, e.maxParam, e.maxData, e.secTotalParam, e.secTotalData,
		int64(e.secondaries), e.paramSent, e.dataSent, e.paramNext, e.dataNext,
		e.feaSize, int64(e.feaHdrN), e.feaPos, e.feaPrev, int64(e.feaCount))
	dst = wire.AppendBytes(dst, e.params[:])
	dst = wire.AppendBytes(dst, e.feaHdr[:])
	for _, b := range [...]bool{e.mismatch, e.overflow, e.outOfOrder, e.malformed, e.gap, e.feaStop, e.feaOverrun} {
		dst = wire.AppendBool(dst, b)
	}
	return dst
}

// UnmarshalState implements analyzer.Analyzer. It restores a state produced
// by MarshalState and rejects records that are truncated, carry trailing
// bytes, or hold values outside the analyzer's limits.
func (a *Analyzer) UnmarshalState(src []byte) error {
	if len(src) == 0 || src[0] != stateVersion {
		return fmt.Errorf("dataplane/smb: state: unknown version: %w", errBadState)
	}
	r := wire.NewReader(src[1:])
	var n Analyzer
	c := &n.conn
	c.negotiated = r.Bool()
	c.dialect = uint16(r.Int(0, math.MaxUint16))
	c.maxTransact = uint32(r.Int(0, math.MaxUint32))
	c.maxRead = uint32(r.Int(0, math.MaxUint32))
	c.maxWrite = uint32(r.Int(0, math.MaxUint32))
	c.compChained = r.Bool()
	na := int(r.Int(0, MaxAlgorithms))
	for i := 0; i < na && r.Err() == nil; i++ {
		c.compAlgs = append(c.compAlgs, uint16(r.Int(0, math.MaxUint16)))
	}
	for i := range n.dir {
		n.dir[i].unmarshal(r)
	}
	nt := int(r.Int(0, MaxPendingTrans))
	for i := 0; i < nt && r.Err() == nil; i++ {
		var e transEntry
		e.unmarshal(r)
		n.trans = append(n.trans, e)
	}
	if err := r.Done(); err != nil {
		return fmt.Errorf("dataplane/smb: state: %w", err)
	}
	for i := range n.dir {
		if err := n.dir[i].validate(len(n.trans)); err != nil {
			return fmt.Errorf("dataplane/smb: state: direction %d: %w", i, err)
		}
	}
	// keep the reusable event buffers
	n.msg, n.neg, n.comp, n.tr, n.scratch = a.msg, a.neg, a.comp, a.tr, a.scratch
	*a = n
	return nil
}

const maxU32 = math.MaxUint32

func (d *dirState) unmarshal(r *wire.Reader) {
	d.failed = r.Bool()
	d.resync = r.Bool()
	d.winN = copy(d.win[:], r.Bytes(len(d.win)))
	d.nbN = copy(d.nbHdr[:], r.Bytes(len(d.nbHdr)-1))
	d.inMsg = r.Bool()
	d.nbType = r.Byte()
	d.stage = stage(r.Byte())
	d.lost = r.Bool()
	d.msgLen = int(r.Int(0, MaxMessageLength))
	d.pos = int(r.Int(0, MaxMessageLength))
	d.bufBase = int(r.Int(0, MaxMessageLength))
	d.want = int(r.Int(0, MaxBuffered))
	d.skipTo = int(r.Int(0, MaxMessageLength))
	d.buf = r.Bytes(MaxBuffered)
	d.base = int(r.Int(0, MaxMessageLength))
	d.end = int(r.Int(0, MaxMessageLength))
	d.next = int(r.Int(0, MaxMessageLength))
	d.index = int(r.Int(0, MaxCompound))
	d.compressed = r.Bool()
	ct := &d.ct
	ct.active = r.Bool()
	if ct.active {
		ct.orig = uint32(r.Int(0, maxU32))
		ct.count = int(r.Int(0, MaxChainWalk))
		ct.total = r.Int(0, math.MaxInt64)
		ct.curEnd = int(r.Int(0, MaxMessageLength))
		ct.malformed = r.Bool()
		ct.first.unmarshal(r)
		ct.cur.unmarshal(r)
		ct.nKept = int(r.Int(0, MaxChainPayloads))
		for i := 0; i < ct.nKept; i++ {
			ct.kept[i].unmarshal(r)
		}
	}
	rt := &d.rt
	rt.active = r.Bool()
	if rt.active {
		rt.idx = int(r.Int(0, MaxPendingTrans-1))
		rt.cmd = byte(r.Int(0, math.MaxUint8))
		rt.key.unmarshal(r)
		rt.pStart = int(r.Int(0, MaxMessageLength))
		rt.pEnd = int(r.Int(0, MaxMessageLength))
		rt.dStart = int(r.Int(0, MaxMessageLength))
		rt.dEnd = int(r.Int(0, MaxMessageLength))
		rt.pDisp = r.Int(0, maxU32)
		rt.dDisp = r.Int(0, maxU32)
		rt.pCount = r.Int(0, maxU32)
		rt.pOff = r.Int(0, maxU32)
		rt.dCount = r.Int(0, maxU32)
		rt.dOff = r.Int(0, maxU32)
	}
}

// validate checks the invariants the parser relies on.
func (d *dirState) validate(nTrans int) error {
	switch {
	case d.stage >= numStages:
		return fmt.Errorf("stage %d: %w", d.stage, errBadState)
	case d.pos > d.msgLen || d.skipTo > d.msgLen || d.bufBase > d.msgLen:
		return fmt.Errorf("position beyond the message: %w", errBadState)
	case d.inMsg && d.msgLen == 0:
		return fmt.Errorf("empty message in progress: %w", errBadState)
	case d.want > 0 && (len(d.buf) >= d.want || (len(d.buf) > 0 && d.bufBase+len(d.buf) != d.pos) ||
		(len(d.buf) == 0 && d.bufBase < d.pos)):
		return fmt.Errorf("collection buffer: %w", errBadState)
	case d.want == 0 && len(d.buf) != 0:
		return fmt.Errorf("buffer without collection: %w", errBadState)
	case d.base > d.end || d.end > d.msgLen || d.base+d.next > d.msgLen:
		return fmt.Errorf("SMB2 message bounds: %w", errBadState)
	case d.ct.active && d.ct.curEnd > d.msgLen:
		return fmt.Errorf("chained payload bounds: %w", errBadState)
	case d.rt.active && (d.rt.pStart > d.rt.pEnd || d.rt.pEnd > d.msgLen ||
		d.rt.dStart > d.rt.dEnd || d.rt.dEnd > d.msgLen || d.rt.idx >= nTrans):
		return fmt.Errorf("transaction regions: %w", errBadState)
	}
	return nil
}

func (p *payloadRec) unmarshal(r *wire.Reader) {
	p.alg = uint16(r.Int(0, math.MaxUint16))
	p.flags = uint16(r.Int(0, math.MaxUint16))
	p.length = uint32(r.Int(0, maxU32))
	p.orig = r.Int(-1, maxU32)
}

func (k *transKey) unmarshal(r *wire.Reader) {
	k.tid = uint16(r.Int(0, math.MaxUint16))
	k.uid = uint16(r.Int(0, math.MaxUint16))
	k.mid = uint16(r.Int(0, math.MaxUint16))
	k.pid = uint32(r.Int(0, maxU32))
}

func (e *transEntry) unmarshal(r *wire.Reader) {
	e.key.unmarshal(r)
	e.cmd = r.Byte()
	e.last = r.Byte()
	e.setupCount = int(r.Int(0, math.MaxUint8))
	e.setup0 = int(r.Int(-1, math.MaxUint16))
	e.function = int(r.Int(0, math.MaxUint16))
	e.totalParam = r.Int(0, maxU32)
	e.totalData = r.Int(0, maxU32)
	e.maxParam = r.Int(0, maxU32)
	e.maxData = r.Int(0, maxU32)
	e.secTotalParam = r.Int(-1, maxU32)
	e.secTotalData = r.Int(-1, maxU32)
	e.secondaries = int(r.Int(0, math.MaxInt32))
	const maxSent = math.MaxInt64 / 4 // sums of message regions; never near this
	e.paramSent = r.Int(0, maxSent)
	e.dataSent = r.Int(0, maxSent)
	e.paramNext = r.Int(0, maxSent)
	e.dataNext = r.Int(0, maxSent)
	e.feaSize = r.Int(-1, maxU32)
	e.feaHdrN = int(r.Int(0, 3))
	e.feaPos = r.Int(0, maxSent)
	e.feaPrev = r.Int(0, maxSent)
	e.feaCount = int(r.Int(0, math.MaxInt32))
	copy(e.params[:], r.Bytes(MaxTransParams))
	copy(e.feaHdr[:], r.Bytes(len(e.feaHdr)))
	for _, p := range [...]*bool{&e.mismatch, &e.overflow, &e.outOfOrder, &e.malformed, &e.gap, &e.feaStop, &e.feaOverrun} {
		*p = r.Bool()
	}
}
