// Package stream is the TCP normaliser and reassembler of an inline gateway.
//
// It tracks one connection per Conn: the handshake, sequence numbers, windows
// and timestamps of both directions, and turns segments into the in-order byte
// stream each direction's receiver will see. Because the gateway is inline it
// can make the stream it inspects the stream the server gets:
//
//   - First copy wins. Bytes already forwarded are remembered until the
//     receiver acknowledges them; a retransmission or overlap carrying different
//     bytes is dropped (and reported as an evasion), so the receiver can only
//     ever assemble the bytes that were inspected.
//   - Out-of-order segments are forwarded and buffered. Their bytes reach the
//     analyzer when the gap before them is filled, and the verdict on those
//     bytes is applied to the gap-filling packet: if it is dropped, the receiver
//     never gets a contiguous stream past the gap, so nothing it could deliver
//     to the application escapes inspection.
//   - Segments the receiver would discard (outside its window, after its FIN,
//     without ACK once established, failing PAWS) are dropped rather than
//     inspected, so they can neither hide nor inject bytes.
//   - A RST changes the connection's state only if its sequence number is
//     exactly the next expected one (RFC 5961, as Linux does); others pass and
//     the receiver answers them with a challenge ACK.
//
// A Conn's whole state can be exported and imported (MarshalState) so another
// gateway resumes the connection exactly.
package stream

import (
	"github.com/patchgate/patchgate/dataplane"
	"github.com/patchgate/patchgate/dataplane/decode"
)

// Limits. They bound memory per connection; a connection that would exceed
// them has the offending segment dropped (the sender retransmits later), never
// passed uninspected.
const (
	// DefaultMaxRetained bounds forwarded-but-unacknowledged bytes remembered per
	// direction for retransmission checks. 1 MiB covers a scaled receive window
	// on a data-center path; beyond it new data is dropped until the receiver
	// acknowledges.
	DefaultMaxRetained = 1 << 20
	// DefaultMaxOutOfOrder bounds out-of-order bytes buffered per direction.
	DefaultMaxOutOfOrder = 256 << 10
	// DefaultMaxSegments bounds the number of out-of-order segments held per
	// direction (a flood of 1-byte segments must not cost a list entry each
	// without limit).
	DefaultMaxSegments = 1024
	// maxAckGap bounds the gap an acknowledgement may skip: beyond a maximal
	// scaled window it cannot be genuine.
	maxAckGap = 1 << 30
	// DefaultTTLSlack is how far below the TTL of a direction's first packet
	// (its SYN, which demonstrably reached the server) a data segment's TTL may
	// fall. An insertion decoy must expire between the gateway and the server,
	// so it arrives with a TTL no larger than the few hops left; real segments
	// keep their TTL, or lose a hop or two when a route changes.
	DefaultTTLSlack = 8
)

// State is the connection state as seen by the gateway.
type State uint8

const (
	StateNew         State = iota // nothing seen
	StateSynSent                  // client SYN seen
	StateSynRecv                  // server SYN-ACK seen
	StateEstablished              // handshake complete (or picked up mid-stream)
	StateClosing                  // a FIN seen in at least one direction
	StateClosed                   // both FINs, or an accepted RST
)

var stateNames = []string{"new", "syn_sent", "syn_recv", "established", "closing", "closed"}

func (s State) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return "invalid"
}

// Config bounds a connection's buffers.
type Config struct {
	MaxRetained   int
	MaxOutOfOrder int
	MaxSegments   int
	// TTLSlack: data segments whose TTL is more than this below the TTL of
	// their direction's first segment are dropped as insertion attempts.
	// Negative disables the check.
	TTLSlack int
	// GapOnAck: when a receiver acknowledges bytes the gateway never saw, skip
	// to the acknowledged point and report a gap (the analyzer resynchronises)
	// instead of waiting forever for them. Offline captures lose packets, so
	// replay wants it; an inline gateway forwards every byte itself, so such
	// an ACK is forged or comes from asymmetric routing and is only clamped.
	GapOnAck bool
}

// DefaultConfig returns the default limits.
func DefaultConfig() Config {
	return Config{MaxRetained: DefaultMaxRetained, MaxOutOfOrder: DefaultMaxOutOfOrder, MaxSegments: DefaultMaxSegments,
		TTLSlack: DefaultTTLSlack, GapOnAck: true}
}

// segment is a buffered out-of-order piece.
type segment struct {
	seq  uint32
	data []byte
}

// Half is the state of one direction, named by its sender.
type Half struct {
	// Known is true once the sender's sequence space is known (SYN seen, or
	// inferred when picked up mid-stream).
	Known bool
	ISN   uint32
	// Next is the sequence number of the next in-order byte.
	Next uint32
	// retained holds forwarded bytes not yet acknowledged: [Next-len, Next).
	retained []byte
	ooo      []segment
	oooBytes int

	// Acked is the highest acknowledgement the receiver has sent for this direction.
	Acked      uint32
	AckedKnown bool
	// WndEdge is the right edge of the receiver's advertised window (Acked + window).
	WndEdge uint32

	// WShift is the window scale this sender announced (applies to windows it
	// advertises), valid when the connection negotiated scaling.
	WShift uint8
	// SYN options announced by this sender.
	synWScale bool
	synTS     bool
	// wndStale: the receiver's window comes from another node's checkpoint
	// and has not been confirmed by an acknowledgement since (MarkMoved).
	wndStale bool

	// TSRecent is the last timestamp value seen from this sender (PAWS).
	TSRecent uint32
	TSKnown  bool

	// TTL is the IP TTL (hop limit) of the sender's first segment.
	TTL uint8

	// FIN is set once a FIN from this sender has been seen; FINSeq is its
	// sequence number. FINDone once the stream reached it in order.
	FIN     bool
	FINSeq  uint32
	FINDone bool
}

// Conn is one TCP connection.
type Conn struct {
	cfg   Config
	State State
	// Midstream is true when the connection was picked up without a handshake.
	Midstream bool
	// Moved is true for a connection resumed from a checkpoint another node
	// exported (MarkMoved; not part of the state). Like a midstream pickup,
	// it may have missed bytes the old node forwarded after its last
	// checkpoint, so a hole its receiver acknowledges is skipped as a gap
	// (see GapOnAck) instead of stalling the connection.
	Moved bool
	// TS is true when both sides negotiated timestamps (PAWS applies).
	TS   bool
	Half [2]Half
}

// MarkMoved marks a connection resumed from another node's checkpoint:
// holes its receivers acknowledge are skipped as gaps, and until each
// receiver's first acknowledgement after the move, the windows recorded in
// the checkpoint (possibly stale: the sender may be far ahead) do not drop
// data beyond their right edge. Such data is buffered out of order as usual,
// so it is inspected once the receiver's acknowledgement closes the hole.
func (c *Conn) MarkMoved() {
	c.Moved = true
	c.Half[0].wndStale, c.Half[1].wndStale = true, true
}

// New returns a connection in StateNew.
func New(cfg Config) *Conn { return &Conn{cfg: cfg} }

// Result is the outcome of one segment.
type Result struct {
	Verdict dataplane.Verdict // Pass or Drop
	Reason  dataplane.Reason
	// Evasion is true when the segment was dropped because it tried to make
	// the gateway and the receiver see different bytes.
	Evasion bool
	// Ended lists directions whose stream ended (FIN reached in order) during
	// this segment.
	Ended [2]bool
	// Reset is true when a RST was accepted.
	Reset bool
}

// Receiver receives what the normaliser releases, in stream order.
type Receiver interface {
	// Data receives in-order stream bytes; data is only valid during the call.
	Data(dir dataplane.Direction, data []byte)
	// Gap tells that n bytes of dir were skipped and will never be delivered
	// (the receiver acknowledged bytes the gateway never saw; see GapOnAck).
	Gap(dir dataplane.Direction, n int)
}

func seqLT(a, b uint32) bool  { return int32(a-b) < 0 }
func seqLEQ(a, b uint32) bool { return int32(a-b) <= 0 }

// Bytes returns the bytes buffered by the connection (for memory accounting).
func (c *Conn) Bytes() int {
	return cap(c.Half[0].retained) + cap(c.Half[1].retained) + c.Half[0].oooBytes + c.Half[1].oooBytes
}

// Pickup initialises a connection first seen mid-stream from a packet sent in
// direction dir: the sender's next sequence number is the packet's, and its
// acknowledgement gives the other direction's.
func (c *Conn) Pickup(dir dataplane.Direction, p *decode.Packet) {
	c.Midstream = true
	c.State = StateEstablished
	c.TS = false
	c.Half = [2]Half{}
	h := &c.Half[dir]
	h.Known, h.ISN, h.Next, h.TTL = true, p.Seq-1, p.Seq, p.TTL
	if p.HasFlag(decode.FlagSYN) {
		h.Next = p.Seq + 1
	}
	if p.HasFlag(decode.FlagACK) {
		o := &c.Half[dir.Reverse()]
		o.Known, o.ISN, o.Next = true, p.Ack-1, p.Ack
	}
}

// Segment processes one TCP segment sent in direction dir. In-order bytes are
// passed to deliver (possibly several times, when the segment fills a gap).
func (c *Conn) Segment(dir dataplane.Direction, p *decode.Packet, deliver Receiver) Result {
	var res Result
	h := &c.Half[dir]
	o := &c.Half[dir.Reverse()]
	syn, ack, rst, fin := p.HasFlag(decode.FlagSYN), p.HasFlag(decode.FlagACK), p.HasFlag(decode.FlagRST), p.HasFlag(decode.FlagFIN)

	switch {
	case syn && !ack:
		return c.syn(dir, p, deliver)
	case syn && ack:
		return c.synAck(dir, p)
	case c.State == StateNew && !rst:
		// First segment of a connection whose handshake was not seen.
		c.Pickup(dir, p)
	}

	if !h.Known {
		// A segment from a side whose sequence space we never learnt (its SYN-ACK
		// was not seen). Learn it from this segment.
		h.Known, h.ISN, h.Next, h.TTL = true, p.Seq-1, p.Seq, p.TTL
	}
	if h.TTL == 0 {
		h.TTL = p.TTL
	}

	if rst {
		return c.reset(dir, p)
	}
	if c.State == StateClosed {
		// After both FINs (or an accepted RST) only acknowledgements and
		// retransmissions of what was already sent may pass.
		end := p.Seq + uint32(len(p.Payload))
		if fin {
			end++
		}
		if (len(p.Payload) == 0 && !fin) || seqLEQ(end, h.Next) {
			return res
		}
		res.Verdict, res.Reason = dataplane.Drop, dataplane.ReasonTCPState
		return res
	}
	if !ack {
		// Linux discards segments without ACK outside the handshake.
		res.Verdict, res.Reason = dataplane.Drop, dataplane.ReasonTCPState
		return res
	}
	if c.State == StateSynSent {
		// Data or ACK before the server answered: the server has no connection
		// to put it in.
		res.Verdict, res.Reason = dataplane.Drop, dataplane.ReasonTCPState
		return res
	}
	// PAWS (RFC 7323): a segment whose timestamp is older than the last one
	// seen from its sender is discarded by the receiver.
	if c.TS && p.Opts.HasTimestamp {
		if h.TSKnown && int32(p.Opts.TSVal-h.TSRecent) < 0 {
			res.Verdict, res.Reason = dataplane.Drop, dataplane.ReasonTCPState
			return res
		}
	}
	if c.State == StateSynRecv && dir == dataplane.ToServer {
		if p.Ack != o.Next {
			res.Verdict, res.Reason = dataplane.Drop, dataplane.ReasonTCPState
			return res
		}
		c.State = StateEstablished
	}

	data := p.Payload
	seq := p.Seq
	if len(data) > 0 && c.cfg.TTLSlack >= 0 && int(p.TTL)+c.cfg.TTLSlack < int(h.TTL) {
		// Would expire before the server: inspecting it would let a decoy
		// stand in for the real bytes.
		res.Verdict, res.Reason, res.Evasion = dataplane.Drop, dataplane.ReasonLowTTL, true
		return res
	}
	if p.HasFlag(decode.FlagURG) {
		// A receiver without SO_OOBINLINE (the default) pulls the urgent byte
		// out of the stream — the one before the pointer, or the first byte of
		// the segment when the pointer is 0 (Linux tcp_check_urg), possibly in
		// a later segment — so the application would read other bytes than
		// the ones inspected. Whatever the pointer, the segment is dropped.
		res.Verdict, res.Reason, res.Evasion = dataplane.Drop, dataplane.ReasonTCPUrgent, true
		return res
	}
	// RFC 7323 §4.3: TS.Recent follows only segments at or before the
	// receiver's next expected byte; a reordered later segment must not make
	// the earlier ones look stale.
	inOrder := seqLEQ(seq, h.Next)
	if len(data) > 0 || fin {
		if r, ok := c.checkWindow(h, seq, len(data)); !ok {
			return r
		}
		if h.FIN && (seqLT(h.FINSeq, seq+uint32(len(data))) || (fin && seq+uint32(len(data)) != h.FINSeq)) {
			// Data beyond the FIN, or a second FIN elsewhere.
			res.Verdict, res.Reason = dataplane.Drop, dataplane.ReasonTCPState
			return res
		}
	}
	if len(data) > 0 {
		if r, ok := c.data(dir, seq, data, deliver); !ok {
			return r
		}
	}
	if c.TS && p.Opts.HasTimestamp && inOrder && (!h.TSKnown || int32(p.Opts.TSVal-h.TSRecent) > 0) {
		h.TSRecent, h.TSKnown = p.Opts.TSVal, true
	}
	if fin && !h.FIN {
		h.FIN, h.FINSeq = true, seq+uint32(len(data))
		if c.State < StateClosing {
			c.State = StateClosing
		}
	}
	if h.FIN && !h.FINDone && h.Next == h.FINSeq {
		h.FINDone = true
		h.Next++
		res.Ended[dir] = true
	}
	c.ack(dir, p, deliver)
	if h.FINDone && o.FINDone {
		c.State = StateClosed
	}
	return res
}

// syn handles a SYN without ACK.
func (c *Conn) syn(dir dataplane.Direction, p *decode.Packet, deliver Receiver) Result {
	var res Result
	h := &c.Half[dir]
	switch c.State {
	case StateNew, StateSynSent:
		// A repeated SYN with another ISN replaces the first: the server's
		// SYN-ACK will confirm which one it accepted.
		if dir != dataplane.ToServer {
			res.Verdict, res.Reason = dataplane.Drop, dataplane.ReasonTCPState
			return res
		}
		*h = Half{Known: true, ISN: p.Seq, Next: p.Seq + 1, TTL: p.TTL}
		h.synWScale, h.synTS = p.Opts.HasWScale, p.Opts.HasTimestamp
		if p.Opts.HasWScale {
			h.WShift = min(p.Opts.WScale, 14)
		}
		if p.Opts.HasTimestamp {
			h.TSRecent, h.TSKnown = p.Opts.TSVal, true
		}
		c.State = StateSynSent
		if len(p.Payload) > 0 {
			// Data in a SYN is inspected at once: a server with TCP Fast Open
			// delivers it to the application. A server without TFO does not
			// acknowledge it and the client retransmits it after the handshake;
			// the retransmission must then match (first copy wins).
			if r, ok := c.data(dir, p.Seq+1, p.Payload, deliver); !ok {
				*h = Half{}
				c.State = StateNew
				return r
			}
		}
		return res
	}
	// A SYN on a live connection: a receiver in ESTABLISHED answers with a
	// challenge ACK and keeps its state; so do we, and the SYN goes no further.
	res.Verdict, res.Reason = dataplane.Drop, dataplane.ReasonTCPState
	return res
}

// synAck handles the server's SYN-ACK.
func (c *Conn) synAck(dir dataplane.Direction, p *decode.Packet) Result {
	var res Result
	h := &c.Half[dir]
	o := &c.Half[dir.Reverse()]
	switch c.State {
	case StateSynSent, StateSynRecv:
	default:
		if c.State == StateNew {
			// SYN-ACK without a SYN: treat as mid-stream pickup.
			c.Pickup(dir, p)
			c.State = StateSynRecv
			return res
		}
		res.Verdict, res.Reason = dataplane.Drop, dataplane.ReasonTCPState
		return res
	}
	if dir != dataplane.ToClient {
		res.Verdict, res.Reason = dataplane.Drop, dataplane.ReasonTCPState
		return res
	}
	if p.Ack != o.Next && p.Ack != o.ISN+1 {
		// The server acknowledges a different ISN than the last SYN we saw:
		// it accepted another SYN; its acknowledgement is authoritative.
		o.ISN, o.Next = p.Ack-1, p.Ack
		o.retained, o.ooo, o.oooBytes = nil, nil, 0
	}
	*h = Half{Known: true, ISN: p.Seq, Next: p.Seq + 1, TTL: p.TTL}
	if p.Opts.HasWScale && o.synWScale {
		h.WShift = min(p.Opts.WScale, 14)
	} else {
		h.WShift, o.WShift = 0, 0
	}
	c.TS = p.Opts.HasTimestamp && o.synTS
	if c.TS {
		h.TSRecent, h.TSKnown = p.Opts.TSVal, true
	}
	// The SYN-ACK carries the server's first (unscaled) window for the client.
	o.Acked, o.AckedKnown = p.Ack, true
	o.WndEdge = p.Ack + uint32(p.Window)
	c.State = StateSynRecv
	return res
}

// reset handles a RST.
func (c *Conn) reset(dir dataplane.Direction, p *decode.Packet) Result {
	var res Result
	h := &c.Half[dir]
	if c.State == StateSynSent && dir == dataplane.ToClient {
		// A RST answering a SYN is valid when it acknowledges the SYN.
		if p.HasFlag(decode.FlagACK) && p.Ack == c.Half[dataplane.ToServer].Next {
			c.State, res.Reset = StateClosed, true
		}
		return res
	}
	if p.Seq == h.Next {
		c.State, res.Reset = StateClosed, true
	}
	// Other RSTs pass without changing state; the receiver sends a challenge ACK.
	return res
}

// checkWindow drops data that starts beyond the receiver's window or lies
// entirely below what the receiver has already acknowledged by more than a
// window (ancient or forged).
func (c *Conn) checkWindow(h *Half, seq uint32, n int) (Result, bool) {
	var res Result
	if !h.AckedKnown {
		return res, true
	}
	wnd := h.WndEdge - h.Acked
	if n > 0 && !h.wndStale && !seqLT(seq, h.WndEdge) && !(wnd == 0 && seq == h.Acked && n == 1) {
		// Starts at or beyond the right edge (a 1-byte zero-window probe excepted).
		res.Verdict, res.Reason = dataplane.Drop, dataplane.ReasonTCPWindow
		return res, false
	}
	if end := seq + uint32(n); seqLT(end, h.Acked-max(wnd, 65535)) {
		res.Verdict, res.Reason = dataplane.Drop, dataplane.ReasonTCPWindow
		return res, false
	}
	return res, true
}

// ack processes the acknowledgement and window carried by a segment from dir,
// which concern the other direction's data.
func (c *Conn) ack(dir dataplane.Direction, p *decode.Packet, deliver Receiver) {
	h := &c.Half[dir]
	o := &c.Half[dir.Reverse()]
	a := p.Ack
	if !o.Known || !p.HasFlag(decode.FlagACK) {
		return
	}
	if seqLT(o.Next, a) {
		if (c.cfg.GapOnAck || c.Midstream || c.Moved) && c.State >= StateEstablished && !o.FINDone && a-o.Next <= maxAckGap {
			c.skip(dir.Reverse(), a, deliver)
		} else {
			// Never trust an acknowledgement beyond what we forwarded.
			a = o.Next
		}
	}
	if !o.AckedKnown || seqLT(o.Acked, a) {
		o.Acked, o.AckedKnown = a, true
	}
	o.wndStale = false
	edge := a + uint32(p.Window)<<h.WShift
	if !o.AckedKnown || seqLT(o.WndEdge, edge) || o.WndEdge == 0 {
		o.WndEdge = edge
	} else if a == o.Acked {
		// Window shrink from the current acknowledgement is allowed to take effect.
		o.WndEdge = edge
	}
	// Drop retained bytes the receiver now has.
	if n := int(int32(o.Acked - (o.Next - uint32(len(o.retained))))); n > 0 {
		if n >= len(o.retained) {
			o.retained = o.retained[:0]
		} else {
			o.retained = append(o.retained[:0], o.retained[n:]...)
		}
	}
}
