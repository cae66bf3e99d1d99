package http

import (
	"errors"
	"fmt"
	"math"

	"github.com/patchgate/patchgate/dataplane/wire"
)

// stateVersion is the first field of an exported state; bump it when the
// layout changes.
const stateVersion = 1

// MarshalState implements analyzer.Analyzer. The record holds, per direction,
// the parser state, the partial line, the start line and header fields parsed
// so far, the body framing position (bytes left, chunk state), the body bytes
// kept for inspection (raw, still content-coded: decoding is redone from them),
// counters and the resync mode; and the requests awaiting a response.
func (a *Analyzer) MarshalState(dst []byte) []byte {
	dst = wire.AppendUvarint(dst, stateVersion)
	dst = wire.AppendBool(dst, a.pendingSwitch)
	dst = wire.AppendBool(dst, a.overflowReported)
	dst = wire.AppendUvarint(dst, uint64(a.overflow))
	dst = wire.AppendUvarint(dst, uint64(len(a.fifo)))
	for _, p := range a.fifo {
		dst = wire.AppendString(dst, p.method)
		dst = wire.AppendBool(dst, p.v09)
		dst = wire.AppendBool(dst, p.upgrade)
	}
	for i := range a.dirs {
		dst = a.dirs[i].marshal(dst)
	}
	return dst
}

func (d *direction) marshal(dst []byte) []byte {
	dst = append(dst, byte(d.state))
	dst = wire.AppendString(dst, d.failCode)
	dst = wire.AppendBytes(dst, d.line)
	dst = wire.AppendBool(dst, d.skipLong)
	dst = wire.AppendUvarint(dst, uint64(d.count))
	if !d.state.inMessage() {
		return dst // between messages: nothing else is kept
	}
	dst = wire.AppendBool(dst, d.chunkCR)
	dst = wire.AppendUvarint(dst, uint64(d.reported))
	m := &d.m
	dst = wire.AppendBytes(dst, m.block)
	for _, sp := range m.start {
		dst = appendSpan(dst, sp)
	}
	dst = wire.AppendBool(dst, m.v09)
	dst = wire.AppendUvarint(dst, uint64(len(m.fields)))
	for _, f := range m.fields {
		dst = appendSpan(dst, f.raw)
		dst = appendSpan(dst, f.lower)
		dst = appendSpan(dst, f.value)
	}
	dst = wire.AppendUvarint(dst, uint64(m.hdrBytes))
	dst = wire.AppendBytes(dst, d.body)
	dst = wire.AppendUvarint(dst, uint64(d.bodyLen))
	dst = wire.AppendUvarint(dst, uint64(d.remaining))
	dst = wire.AppendUvarint(dst, uint64(d.trailers))
	dst = wire.AppendUvarint(dst, uint64(d.trailerBytes))
	dst = wire.AppendBool(dst, d.truncEmitted)
	return wire.AppendString(dst, d.reqMethod)
}

func appendSpan(dst []byte, sp span) []byte {
	dst = wire.AppendUvarint(dst, uint64(sp.off))
	return wire.AppendUvarint(dst, uint64(sp.n))
}

// errCorrupt marks a state record that decodes but does not make sense.
var errCorrupt = errors.New("inconsistent state record")

// UnmarshalState implements analyzer.Analyzer. It validates every length and
// offset against the analyzer's Config; on error the analyzer is reset to a
// new connection's state.
func (a *Analyzer) UnmarshalState(src []byte) error {
	a.reset()
	r := wire.NewReader(src)
	if v := r.Uvarint(); r.Err() == nil && v != stateVersion {
		return fmt.Errorf("dataplane/http: unmarshal state: version %d unknown", v)
	}
	a.pendingSwitch = r.Bool()
	a.overflowReported = r.Bool()
	a.overflow = readInt(r, math.MaxInt32)
	n := readInt(r, a.cfg.MaxPipelined)
	for i := 0; i < n && r.Err() == nil; i++ {
		p := pending{method: internMethod(r.String(maxMethodLength))}
		p.v09 = r.Bool()
		p.upgrade = r.Bool()
		a.fifo = append(a.fifo, p)
	}
	for i := range a.dirs {
		a.dirs[i].unmarshal(r, a.cfg)
	}
	err := r.Done()
	if err == nil {
		err = a.check()
	}
	if err != nil {
		a.reset()
		return fmt.Errorf("dataplane/http: unmarshal state: %w", err)
	}
	for i := range a.dirs {
		if d := &a.dirs[i]; d.state.hasHeaders() {
			if i == 0 {
				a.buildRequest(d)
			} else {
				a.buildResponse(d)
			}
		}
	}
	return nil
}

// readInt reads an unsigned varint that must not exceed max.
func readInt(r *wire.Reader, max int) int {
	v := r.Uvarint()
	if r.Err() == nil && v > uint64(max) {
		r.Fail(fmt.Errorf("value %d exceeds %d: %w", v, max, errCorrupt))
		return 0
	}
	return int(v)
}

// readInt64 reads an unsigned varint that must fit in int64.
func readInt64(r *wire.Reader) int64 {
	v := r.Uvarint()
	if r.Err() == nil && v > math.MaxInt64 {
		r.Fail(fmt.Errorf("value %d exceeds int64: %w", v, errCorrupt))
		return 0
	}
	return int64(v)
}

func readSpan(r *wire.Reader, limit int) span {
	off := readInt(r, limit)
	n := readInt(r, limit)
	if r.Err() == nil && off+n > limit {
		r.Fail(fmt.Errorf("span %d+%d beyond %d bytes: %w", off, n, limit, errCorrupt))
	}
	return span{off, n}
}

// maxBlock bounds the header block of a message: the start line plus, per
// header byte, at most two copies (raw and lower-case name).
func maxBlock(cfg Config) int { return cfg.MaxLineLength + 2*cfg.MaxHeaderBytes }

func (d *direction) unmarshal(r *wire.Reader, cfg Config) {
	st := r.Byte()
	if r.Err() == nil && st >= byte(numStates) {
		r.Fail(fmt.Errorf("parser state %d unknown: %w", st, errCorrupt))
	}
	d.state = state(st)
	d.failCode = r.String(64)
	d.line = append(d.line[:0], r.Bytes(cfg.MaxLineLength)...)
	d.skipLong = r.Bool()
	d.count = readInt(r, math.MaxInt32)
	if !d.state.inMessage() {
		return
	}
	d.chunkCR = r.Bool()
	d.reported = uint32(readInt(r, math.MaxUint16))
	m := &d.m
	m.block = append(m.block[:0], r.Bytes(maxBlock(cfg))...)
	for i := range m.start {
		m.start[i] = readSpan(r, len(m.block))
	}
	m.v09 = r.Bool()
	nf := readInt(r, cfg.MaxHeaders)
	for i := 0; i < nf && r.Err() == nil; i++ {
		var f field
		f.raw = readSpan(r, len(m.block))
		f.lower = readSpan(r, len(m.block))
		f.value = readSpan(r, len(m.block))
		m.fields = append(m.fields, f)
	}
	m.hdrBytes = readInt(r, cfg.MaxHeaderBytes)
	d.body = append(d.body[:0], r.Bytes(cfg.MaxBodyInspect)...)
	d.bodyLen = readInt64(r)
	d.remaining = readInt64(r)
	d.trailers = readInt(r, cfg.MaxHeaders)
	d.trailerBytes = readInt(r, cfg.MaxHeaderBytes)
	d.truncEmitted = r.Bool()
	d.reqMethod = internMethod(r.String(maxMethodLength))
}

// check validates relations between fields that single reads cannot.
func (a *Analyzer) check() error {
	for i := range a.dirs {
		d := &a.dirs[i]
		if d.bodyLen < int64(len(d.body)) {
			return fmt.Errorf("%s: body length %d below kept bytes %d: %w", d.dir, d.bodyLen, len(d.body), errCorrupt)
		}
		if (d.state == stBodyLength || d.state == stChunkData) && d.remaining == 0 {
			return fmt.Errorf("%s: body state with no bytes left: %w", d.dir, errCorrupt)
		}
		if d.state == stFailed && d.failCode == "" {
			return fmt.Errorf("%s: failed state without a code: %w", d.dir, errCorrupt)
		}
		if d.state.hasHeaders() && d.count == 0 {
			return fmt.Errorf("%s: message without a count: %w", d.dir, errCorrupt)
		}
	}
	return nil
}
