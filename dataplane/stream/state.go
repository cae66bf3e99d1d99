package stream

import (
	"fmt"

	"github.com/patchgate/patchgate/dataplane/wire"
)

// stateVersion is the version of the exported connection state.
const stateVersion = 1

// MarshalState appends the connection's complete state to dst.
func (c *Conn) MarshalState(dst []byte) []byte {
	dst = append(dst, stateVersion, byte(c.State))
	dst = wire.AppendBool(dst, c.Midstream)
	dst = wire.AppendBool(dst, c.TS)
	for i := range c.Half {
		h := &c.Half[i]
		var flags uint64
		for bit, b := range []bool{h.Known, h.AckedKnown, h.synWScale, h.synTS, h.TSKnown, h.FIN, h.FINDone} {
			if b {
				flags |= 1 << bit
			}
		}
		dst = wire.AppendUvarint(dst, flags)
		dst = wire.AppendU32(dst, h.ISN)
		dst = wire.AppendU32(dst, h.Next)
		dst = wire.AppendU32(dst, h.Acked)
		dst = wire.AppendU32(dst, h.WndEdge)
		dst = append(dst, h.WShift, h.TTL)
		dst = wire.AppendU32(dst, h.TSRecent)
		dst = wire.AppendU32(dst, h.FINSeq)
		dst = wire.AppendBytes(dst, h.retained)
		dst = wire.AppendUvarint(dst, uint64(len(h.ooo)))
		for _, s := range h.ooo {
			dst = wire.AppendU32(dst, s.seq)
			dst = wire.AppendBytes(dst, s.data)
		}
	}
	return dst
}

// UnmarshalState restores a connection exported by MarshalState, checking it
// against this connection's limits.
func (c *Conn) UnmarshalState(src []byte) error {
	r := wire.NewReader(src)
	if v := r.Byte(); r.Err() == nil && v != stateVersion {
		return fmt.Errorf("dataplane/stream: state version %d not supported", v)
	}
	st := State(r.Byte())
	if r.Err() == nil && st > StateClosed {
		return fmt.Errorf("dataplane/stream: bad state %d", st)
	}
	n := Conn{cfg: c.cfg, State: st}
	n.Midstream = r.Bool()
	n.TS = r.Bool()
	for i := range n.Half {
		h := &n.Half[i]
		flags := r.Uvarint()
		if flags >= 1<<7 {
			r.Fail(fmt.Errorf("dataplane/stream: bad flags %#x", flags))
		}
		bits := []*bool{&h.Known, &h.AckedKnown, &h.synWScale, &h.synTS, &h.TSKnown, &h.FIN, &h.FINDone}
		for bit, p := range bits {
			*p = flags&(1<<bit) != 0
		}
		h.ISN = r.U32()
		h.Next = r.U32()
		h.Acked = r.U32()
		h.WndEdge = r.U32()
		h.WShift = r.Byte()
		h.TTL = r.Byte()
		if h.WShift > 14 {
			r.Fail(fmt.Errorf("dataplane/stream: window shift %d > 14", h.WShift))
		}
		h.TSRecent = r.U32()
		h.FINSeq = r.U32()
		h.retained = r.Bytes(c.cfg.MaxRetained)
		nseg := r.Uvarint()
		if nseg > uint64(c.cfg.MaxSegments) {
			r.Fail(fmt.Errorf("dataplane/stream: %d out-of-order segments exceed limit %d", nseg, c.cfg.MaxSegments))
		}
		prevEnd := h.Next
		for j := uint64(0); j < nseg && r.Err() == nil; j++ {
			s := segment{seq: r.U32()}
			s.data = r.Bytes(c.cfg.MaxOutOfOrder)
			ordered := seqLEQ(prevEnd, s.seq)
			if j == 0 {
				ordered = seqLT(h.Next, s.seq)
			}
			if len(s.data) == 0 || !ordered {
				r.Fail(fmt.Errorf("dataplane/stream: out-of-order segment %d misplaced", j))
			}
			prevEnd = s.seq + uint32(len(s.data))
			h.oooBytes += len(s.data)
			h.ooo = append(h.ooo, s)
		}
		if h.oooBytes > c.cfg.MaxOutOfOrder {
			r.Fail(fmt.Errorf("dataplane/stream: %d out-of-order bytes exceed limit %d", h.oooBytes, c.cfg.MaxOutOfOrder))
		}
	}
	if err := r.Done(); err != nil {
		return fmt.Errorf("dataplane/stream: %w", err)
	}
	*c = n
	return nil
}
