package dns

import (
	"errors"
	"fmt"

	"github.com/patchgate/patchgate/dataplane/wire"
)

// stateVersion is the first byte of an exported state record.
const stateVersion = 1

// maxStateIndex bounds the message counters accepted from a state record.
const maxStateIndex = 1 << 48

// Transport tags in state records.
const (
	stateTCP = 1
	stateUDP = 2
)

// MarshalState appends the analyzer's complete state to dst: per direction the
// message counter and the framing position (prefix byte read, partial message
// buffered, bytes left to skip). Its size is bounded by 2 × (MaxMessageSize +
// a few bytes).
func (a *Analyzer) MarshalState(dst []byte) []byte {
	dst = append(dst, stateVersion)
	if a.tcp {
		dst = append(dst, stateTCP)
	} else {
		dst = append(dst, stateUDP)
	}
	for i := range a.dirs {
		st := &a.dirs[i]
		dst = wire.AppendUvarint(dst, uint64(st.index))
		dst = append(dst, byte(st.phase))
		switch st.phase {
		case phaseLen:
			dst = append(dst, st.have)
			if st.have == 1 {
				dst = append(dst, st.prefix)
			}
		case phaseBody:
			dst = wire.AppendUvarint(dst, uint64(st.need))
			dst = wire.AppendBytes(dst, st.buf)
		case phaseSkip:
			dst = wire.AppendUvarint(dst, uint64(st.skip))
		}
	}
	return dst
}

// UnmarshalState restores state produced by MarshalState of an analyzer of the
// same transport. It validates every field; on error the analyzer is unchanged.
func (a *Analyzer) UnmarshalState(src []byte) error {
	r := wire.NewReader(src)
	if v := r.Byte(); r.Err() == nil && v != stateVersion {
		r.Fail(fmt.Errorf("state version %d, want %d", v, stateVersion))
	}
	want := byte(stateUDP)
	if a.tcp {
		want = stateTCP
	}
	if t := r.Byte(); r.Err() == nil && t != want {
		r.Fail(fmt.Errorf("state of transport %d, analyzer has %d", t, want))
	}
	var dirs [2]dirState
	for i := range dirs {
		readDir(r, &dirs[i], a.tcp)
	}
	if err := r.Done(); err != nil {
		return fmt.Errorf("dataplane/dns: bad state: %w", err)
	}
	for i := range dirs {
		a.dirs[i] = dirs[i]
	}
	return nil
}

var errBadPhase = errors.New("framing state out of range")

func readDir(r *wire.Reader, st *dirState, tcp bool) {
	idx := r.Uvarint()
	if idx > maxStateIndex {
		r.Fail(fmt.Errorf("message counter %d out of range", idx))
	}
	st.index = int(idx)
	st.phase = phase(r.Byte())
	if r.Err() != nil {
		return
	}
	if st.phase >= numPhases || (!tcp && st.phase != phaseLen) {
		r.Fail(fmt.Errorf("%w: phase %d", errBadPhase, st.phase))
		return
	}
	switch st.phase {
	case phaseLen:
		st.have = r.Byte()
		if r.Err() == nil && (st.have > 1 || (!tcp && st.have != 0)) {
			r.Fail(fmt.Errorf("%w: %d prefix bytes", errBadPhase, st.have))
		}
		if st.have == 1 {
			st.prefix = r.Byte()
		}
	case phaseBody:
		need := r.Uvarint()
		if r.Err() == nil && (need == 0 || need > MaxMessageSize) {
			r.Fail(fmt.Errorf("%w: message length %d", errBadPhase, need))
			return
		}
		st.need = int(need)
		st.buf = r.Bytes(MaxMessageSize)
		if r.Err() == nil && len(st.buf) >= st.need {
			r.Fail(fmt.Errorf("%w: %d bytes buffered of a %d-byte message", errBadPhase, len(st.buf), st.need))
		}
	case phaseSkip:
		skip := r.Uvarint()
		if r.Err() == nil && (skip == 0 || skip > MaxMessageSize) {
			r.Fail(fmt.Errorf("%w: %d bytes to skip", errBadPhase, skip))
		}
		st.skip = int(skip)
	}
}
