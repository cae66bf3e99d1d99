package gen

import "github.com/patchgate/patchgate/dataplane"

// UDPFlow builds the datagrams of one UDP flow between client and server.
// The transforms of this package apply to its segments too (TCP fields are
// ignored): Fragment, Duplicate, Reorder, Decoy, Modify. It is not safe for
// concurrent use.
type UDPFlow struct {
	client, server Endpoint
	opts           SessionOptions
	segs           []Segment
	msgs           [2]int
}

// NewUDPFlow starts a UDP flow; of opts, only TTL, LinkType and Clock apply.
func NewUDPFlow(client, server Endpoint, opts SessionOptions) (*UDPFlow, error) {
	if err := checkPair(client, server); err != nil {
		return nil, err
	}
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	return &UDPFlow{client: client, server: server, opts: opts.withDefaults()}, nil
}

// Send appends one datagram from dir and returns its message index within
// the direction. The payload is copied; an oversized payload makes Frames
// fail.
func (f *UDPFlow) Send(dir dataplane.Direction, payload []byte) int {
	msg := f.msgs[dir]
	f.msgs[dir]++
	f.segs = append(f.segs, Segment{Dir: dir, Payload: append([]byte(nil), payload...), Msg: msg})
	return msg
}

// Segments returns a copy of the datagrams so far.
func (f *UDPFlow) Segments() []Segment { return append([]Segment(nil), f.segs...) }

// Frames applies the transforms to a copy of the datagrams and serialises
// the result.
func (f *UDPFlow) Frames(ts ...Transform) ([]Frame, error) {
	segs := f.Segments()
	for _, t := range ts {
		segs = t(segs)
	}
	return newEncoder(f.client, f.server, f.opts, false).encode(segs)
}

// Capture is Frames wrapped in a Capture of the flow's link type.
func (f *UDPFlow) Capture(ts ...Transform) (*Capture, error) {
	fr, err := f.Frames(ts...)
	if err != nil {
		return nil, err
	}
	return &Capture{LinkType: f.opts.LinkType, Frames: fr}, nil
}

// UDPDatagram builds one Ethernet frame carrying payload from client to
// server (dir ToServer) or back, with default options and the first
// timestamp of DefaultClock.
func UDPDatagram(client, server Endpoint, dir dataplane.Direction, payload []byte) (Frame, error) {
	f, err := NewUDPFlow(client, server, DefaultSessionOptions())
	if err != nil {
		return Frame{}, err
	}
	f.Send(dir, payload)
	fr, err := f.Frames()
	if err != nil {
		return Frame{}, err
	}
	return fr[0], nil
}
