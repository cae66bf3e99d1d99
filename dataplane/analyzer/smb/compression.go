package smb

import (
	"github.com/patchgate/patchgate/dataplane"
	"github.com/patchgate/patchgate/dataplane/analyzer"
)

// resetComp clears the reusable compression event and fills the connection's
// negotiated fields.
func (a *Analyzer) resetComp(dir dataplane.Direction) *CompressionTransform {
	c := &a.comp
	*c = CompressionTransform{
		Payloads:             c.Payloads[:0],
		NegotiatedAlgorithms: c.NegotiatedAlgorithms[:0],
	}
	c.Direction = directionName(uint8(dir))
	cs := &a.conn
	c.Negotiated = cs.negotiated
	c.Dialect = int(cs.dialect)
	for _, v := range cs.compAlgs {
		c.NegotiatedAlgorithms = append(c.NegotiatedAlgorithms, int(v))
		if v != algNone {
			c.CompressionNegotiated = true
		}
	}
	c.ChainedNegotiated = cs.compChained
	c.MaxTransactSize = int(cs.maxTransact)
	c.MaxReadSize = int(cs.maxRead)
	c.MaxWriteSize = int(cs.maxWrite)
	c.MaxSize = max(c.MaxTransactSize, c.MaxReadSize, c.MaxWriteSize)
	c.MessageLength = a.dir[dir].msgLen
	return c
}

// algNegotiated reports whether algorithm alg may be used on the connection.
func (a *Analyzer) algNegotiated(alg uint16) bool {
	if alg == algNone {
		return true
	}
	for _, v := range a.conn.compAlgs {
		if v == alg {
			return true
		}
	}
	return false
}

// onCompHdr handles the 16-byte compression transform header.
func (a *Analyzer) onCompHdr(dir dataplane.Direction, sink analyzer.Sink) {
	d := &a.dir[dir]
	h := d.buf
	if len(h) < compressHeaderSize {
		sink.Violation(dir, "smb2.truncated_header", "compression transform header truncated")
		d.idle()
		return
	}
	orig := le32(h[4:])
	alg := le16(h[8:])
	flags := le16(h[10:])
	if flags&compressFlagChain != 0 {
		ct := &d.ct
		*ct = chainState{active: true, orig: orig}
		ct.first = payloadRec{alg: alg, flags: flags, length: le32(h[12:]), orig: -1}
		a.chainPayload(dir, 8, ct.first)
		return
	}
	off := le32(h[12:])
	c := a.resetComp(dir)
	c.OriginalSize = int(orig)
	c.Algorithm = int(alg)
	c.AlgorithmName = algorithmName(alg)
	c.Flags = int(flags)
	c.Offset = int(off)
	c.Sum = int(int64(orig) + int64(off))
	c.Overflow = int64(orig)+int64(off) > 0xFFFFFFFF
	c.Length = d.msgLen - compressHeaderSize
	c.CompressedLength = int(int64(c.Length) - int64(off))
	c.OffsetBeyondMessage = int64(off) > int64(c.Length)
	c.AlgorithmNegotiated = a.algNegotiated(alg)
	sink.Event(c)
	// The uncompressed prefix usually starts with the SMB2 header.
	if int64(off) >= smb2HeaderSize && compressHeaderSize+smb2HeaderSize <= d.msgLen {
		end := int64(compressHeaderSize) + int64(off)
		if end > int64(d.msgLen) {
			end = int64(d.msgLen)
		}
		d.base, d.end, d.next, d.index, d.compressed = compressHeaderSize, int(end), 0, 0, true
		d.stage = stSMB2Hdr
		if d.collect(compressHeaderSize, smb2HeaderSize) {
			return
		}
	}
	d.idle()
}

// chainPayload handles a chained payload header p whose 8 bytes start at
// message position at.
func (a *Analyzer) chainPayload(dir dataplane.Direction, at int, p payloadRec) {
	d := &a.dir[dir]
	ct := &d.ct
	ct.count++
	dataAt := at + 8
	end := int64(dataAt) + int64(p.length)
	if end > int64(d.msgLen) {
		ct.malformed = true
		end = int64(d.msgLen)
	}
	ct.cur = p
	ct.curEnd = int(end)
	need := 0
	switch {
	case algHasOriginalSize(p.alg):
		need = 4
	case p.alg == algPatternV1:
		need = 8
	case p.alg == algNone:
		p.orig = int64(p.length)
	}
	if need > 0 {
		if int64(p.length) < int64(need) || dataAt+need > d.msgLen {
			ct.malformed = true
			d.keep(p)
			d.idle()
			return
		}
		d.stage = stChainExtra
		if !d.collect(dataAt, need) {
			d.idle()
		}
		return
	}
	d.keep(p)
	a.nextChainPayload(dir)
}

// onChainExtra reads OriginalPayloadSize or the Pattern_V1 fields.
func (a *Analyzer) onChainExtra(dir dataplane.Direction, sink analyzer.Sink) {
	d := &a.dir[dir]
	ct := &d.ct
	p := ct.cur
	switch {
	case p.alg == algPatternV1 && len(d.buf) >= 8:
		p.orig = int64(le32(d.buf[4:]))
	case len(d.buf) >= 4:
		p.orig = int64(le32(d.buf))
	default:
		ct.malformed = true
	}
	d.keep(p)
	a.nextChainPayload(dir)
}

// nextChainPayload moves to the payload header after the current payload.
func (a *Analyzer) nextChainPayload(dir dataplane.Direction) {
	d := &a.dir[dir]
	ct := &d.ct
	at := ct.curEnd
	switch {
	case at >= d.msgLen:
		d.idle()
	case d.msgLen-at < 8:
		ct.malformed = true
		d.idle()
	case ct.count >= MaxChainWalk:
		d.idle()
	default:
		d.stage = stChainHdr
		if !d.collect(at, 8) {
			d.idle()
		}
	}
}

// onChainHdr handles a chained payload header after the first.
func (a *Analyzer) onChainHdr(dir dataplane.Direction, sink analyzer.Sink) {
	d := &a.dir[dir]
	if len(d.buf) < 8 {
		d.ct.malformed = true
		d.idle()
		return
	}
	p := payloadRec{alg: le16(d.buf), flags: le16(d.buf[2:]), length: le32(d.buf[4:]), orig: -1}
	a.chainPayload(dir, d.bufBase, p)
}

// emitChain fires smb2.compression_transform for a chained message at its end.
func (a *Analyzer) emitChain(dir dataplane.Direction, sink analyzer.Sink) {
	d := &a.dir[dir]
	ct := &d.ct
	c := a.resetComp(dir)
	c.Chained = true
	c.OriginalSize = int(ct.orig)
	c.Algorithm = int(ct.first.alg)
	c.AlgorithmName = algorithmName(ct.first.alg)
	c.Flags = int(ct.first.flags)
	c.Length = int(ct.first.length)
	c.Sum = int(ct.orig)
	c.PayloadCount = ct.count
	c.ChainOriginalTotal = int(ct.total)
	c.ChainMalformed = ct.malformed
	c.AlgorithmNegotiated = true
	for i := 0; i < ct.nKept; i++ {
		p := ct.kept[i]
		c.Payloads = append(c.Payloads, ChainPayload{
			Algorithm: int(p.alg), Flags: int(p.flags), Length: int(p.length), OriginalSize: int(p.orig),
		})
		if !a.algNegotiated(p.alg) {
			c.AlgorithmNegotiated = false
		}
	}
	if !a.algNegotiated(ct.first.alg) {
		c.AlgorithmNegotiated = false
	}
	sink.Event(c)
}

// keep records a walked payload in the chain state.
func (d *dirState) keep(p payloadRec) {
	ct := &d.ct
	if p.orig > 0 {
		ct.total += p.orig
	}
	if ct.nKept < len(ct.kept) {
		ct.kept[ct.nKept] = p
		ct.nKept++
	}
}
