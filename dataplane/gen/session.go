package gen

import (
	"fmt"

	"github.com/google/gopacket/layers"

	"github.com/patchgate/patchgate/dataplane"
)

// SessionOptions configure a TCPSession or UDPFlow. Zero values of
// SegmentSize, Window, TTL, AckEvery and LinkType mean their defaults; start
// from DefaultSessionOptions to get a typical modern TCP stack.
type SessionOptions struct {
	// ClientISN and ServerISN are the initial sequence numbers.
	ClientISN, ServerISN uint32
	// MSS is the maximum segment size option sent in SYN and SYN-ACK; 0
	// omits the option.
	MSS uint16
	// SegmentSize is the largest payload per data segment, 1..MaxSegmentSize;
	// 0 means MSS (DefaultMSS when MSS is 0).
	SegmentSize int
	// Window is the window field of every segment; 0 means DefaultWindow.
	Window uint16
	// WindowScale is the shift advertised in the window scale option; a
	// negative value omits the option.
	WindowScale int
	// SACKPermitted adds the SACK-permitted option to SYN and SYN-ACK.
	SACKPermitted bool
	// Timestamps adds the timestamps option (RFC 7323) to every segment but RSTs.
	Timestamps bool
	// TTL is the IPv4 TTL / IPv6 hop limit; 0 means DefaultTTL.
	TTL uint8
	// AckEvery is how many data segments a receiver takes before it sends a
	// pure ACK; 0 means DefaultAckEvery.
	AckEvery int
	// Midstream starts the session established, without a handshake, as a
	// gateway sees a flow it picks up in the middle.
	Midstream bool
	// LinkType is layers.LinkTypeEthernet (the default) or layers.LinkTypeRaw.
	LinkType layers.LinkType
	// Clock stamps the frames; the zero Clock is DefaultClock.
	Clock Clock
}

// DefaultSessionOptions returns the options of a typical Linux client and
// server on Ethernet: MSS 1460, window scale 7, SACK, timestamps, TTL 64.
func DefaultSessionOptions() SessionOptions {
	return SessionOptions{
		ClientISN:     DefaultClientISN,
		ServerISN:     DefaultServerISN,
		MSS:           DefaultMSS,
		Window:        DefaultWindow,
		WindowScale:   DefaultWindowScale,
		SACKPermitted: true,
		Timestamps:    true,
		TTL:           DefaultTTL,
		AckEvery:      DefaultAckEvery,
		LinkType:      layers.LinkTypeEthernet,
		Clock:         DefaultClock(),
	}
}

// Validate reports the first field that is out of range.
func (o SessionOptions) Validate() error {
	switch {
	case o.SegmentSize < 0 || o.SegmentSize > MaxSegmentSize:
		return fmt.Errorf("dataplane/gen: SegmentSize %d outside 0..%d", o.SegmentSize, MaxSegmentSize)
	case o.WindowScale > MaxWindowScale:
		return fmt.Errorf("dataplane/gen: WindowScale %d above the RFC 7323 maximum %d", o.WindowScale, MaxWindowScale)
	case o.AckEvery < 0:
		return fmt.Errorf("dataplane/gen: AckEvery %d is negative", o.AckEvery)
	case o.LinkType != 0 && o.LinkType != layers.LinkTypeEthernet && o.LinkType != layers.LinkTypeRaw:
		return fmt.Errorf("dataplane/gen: LinkType %v unsupported (want Ethernet or Raw)", o.LinkType)
	}
	return nil
}

// withDefaults fills the zero values that stand for defaults.
func (o SessionOptions) withDefaults() SessionOptions {
	if o.SegmentSize == 0 {
		o.SegmentSize = int(o.MSS)
		if o.SegmentSize == 0 {
			o.SegmentSize = DefaultMSS
		}
	}
	if o.Window == 0 {
		o.Window = DefaultWindow
	}
	if o.TTL == 0 {
		o.TTL = DefaultTTL
	}
	if o.AckEvery == 0 {
		o.AckEvery = DefaultAckEvery
	}
	if o.LinkType == 0 {
		o.LinkType = layers.LinkTypeEthernet
	}
	return o
}

// Timestamp option clocks of the two sides start at different values so a
// test can tell them apart.
const (
	clientTSBase = 1000
	serverTSBase = 700000
)

// TCPSession builds one TCP connection from client to server as a list of
// segments: handshake, data with the receiver's ACKs, FIN or RST. It is not
// safe for concurrent use.
type TCPSession struct {
	client, server Endpoint
	opts           SessionOptions
	segs           []Segment
	sndNxt         [2]uint32 // next sequence number each direction sends
	inflight       [2]int    // bytes of each direction the other side has not ACKed yet
	unacked        [2]int    // data segments of each direction not ACKed yet
	ts             [2]uint32 // last timestamp value each direction sent
	msgs           [2]int    // messages sent per direction
}

// NewTCPSession starts a session between client and server (both IPv4 or
// both IPv6); unless opts.Midstream, it begins with SYN, SYN-ACK, ACK.
func NewTCPSession(client, server Endpoint, opts SessionOptions) (*TCPSession, error) {
	if err := checkPair(client, server); err != nil {
		return nil, err
	}
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	s := &TCPSession{client: client, server: server, opts: opts.withDefaults()}
	s.ts = [2]uint32{clientTSBase, serverTSBase}
	cISN, sISN := s.opts.ClientISN, s.opts.ServerISN
	if s.opts.Midstream {
		s.sndNxt = [2]uint32{cISN + 1, sISN + 1}
		return s, nil
	}
	s.sndNxt = [2]uint32{cISN, sISN}
	s.emit(dataplane.ToServer, SYN, nil, -1)
	s.emit(dataplane.ToClient, SYN|ACK, nil, -1)
	s.emit(dataplane.ToServer, ACK, nil, -1)
	return s, nil
}

// Options returns the session's options with defaults filled in.
func (s *TCPSession) Options() SessionOptions { return s.opts }

// emit appends one segment from dir and advances its sequence space.
func (s *TCPSession) emit(dir dataplane.Direction, flags Flags, payload []byte, msg int) {
	s.ts[dir]++
	seg := Segment{
		Dir:     dir,
		Seq:     s.sndNxt[dir],
		Flags:   flags,
		Window:  s.opts.Window,
		TSVal:   s.ts[dir],
		TSEcr:   s.ts[dir.Reverse()],
		Payload: payload,
		Msg:     msg,
	}
	if flags&ACK != 0 {
		seg.Ack = s.sndNxt[dir.Reverse()]
		// Any segment with ACK acknowledges everything the other side sent.
		s.inflight[dir.Reverse()], s.unacked[dir.Reverse()] = 0, 0
	} else {
		seg.TSEcr = 0 // no ACK: nothing to echo (RFC 7323 §3.2)
	}
	s.segs = append(s.segs, seg)
	s.sndNxt[dir] = seg.end()
}

// window returns the number of bytes the receiver of dir accepts.
func (s *TCPSession) window() int {
	w := int(s.opts.Window)
	if s.opts.WindowScale > 0 {
		w <<= s.opts.WindowScale
	}
	return w
}

// Send appends one message from dir: data cut into segments of at most
// SegmentSize bytes (PSH on the last), and the pure ACKs the receiver sends
// every AckEvery segments, whenever the sender would exceed the window, and
// after the message. It returns the message's index within its direction.
// Data is copied.
func (s *TCPSession) Send(dir dataplane.Direction, data []byte) int {
	msg := s.msgs[dir]
	s.msgs[dir]++
	if len(data) == 0 {
		return msg
	}
	buf := append([]byte(nil), data...)
	win := s.window()
	for off := 0; off < len(buf); {
		n := min(s.opts.SegmentSize, len(buf)-off, win)
		if s.inflight[dir]+n > win {
			s.emit(dir.Reverse(), ACK, nil, -1)
		}
		flags := ACK
		if off+n == len(buf) {
			flags |= PSH
		}
		s.emit(dir, flags, buf[off:off+n:off+n], msg)
		s.inflight[dir] += n
		s.unacked[dir]++
		off += n
		if s.unacked[dir] >= s.opts.AckEvery {
			s.emit(dir.Reverse(), ACK, nil, -1)
		}
	}
	if s.unacked[dir] > 0 {
		s.emit(dir.Reverse(), ACK, nil, -1)
	}
	return msg
}

// Close appends an orderly close started by first: FIN+ACK, the other side's
// FIN+ACK, and the final ACK.
func (s *TCPSession) Close(first dataplane.Direction) {
	s.emit(first, FIN|ACK, nil, -1)
	s.emit(first.Reverse(), FIN|ACK, nil, -1)
	s.emit(first, ACK, nil, -1)
}

// Reset appends a RST+ACK from dir.
func (s *TCPSession) Reset(dir dataplane.Direction) {
	s.emit(dir, RST|ACK, nil, -1)
}

// Segments returns a copy of the segments so far (payload bytes are shared
// and must not be modified).
func (s *TCPSession) Segments() []Segment {
	return append([]Segment(nil), s.segs...)
}

// Frames applies the transforms, in order, to a copy of the segments and
// serialises the result. Calling it again gives identical frames.
func (s *TCPSession) Frames(ts ...Transform) ([]Frame, error) {
	segs := s.Segments()
	for _, t := range ts {
		segs = t(segs)
	}
	return s.Encode(segs)
}

// Encode serialises a segment list (usually Segments rewritten by
// transforms) with the session's addresses and options. ACK numbers are
// recomputed from what each side has accepted so far in emission order, as a
// receiver does, unless a segment has KeepAck.
func (s *TCPSession) Encode(segs []Segment) ([]Frame, error) {
	e := newEncoder(s.client, s.server, s.opts, true)
	return e.encode(segs)
}

// Capture is Frames wrapped in a Capture of the session's link type.
func (s *TCPSession) Capture(ts ...Transform) (*Capture, error) {
	f, err := s.Frames(ts...)
	if err != nil {
		return nil, err
	}
	return &Capture{LinkType: s.opts.LinkType, Frames: f}, nil
}
