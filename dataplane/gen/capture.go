package gen

import (
	"fmt"
	"io"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"

	"github.com/patchgate/patchgate/dataplane"
)

// pcapSnapLen is the snapshot length written in capture headers: larger than
// any frame the generator builds (64 KiB IP packet plus link header).
const pcapSnapLen = 262144

// Frame is one serialised link-layer frame with its capture info and the
// generator's description of it.
type Frame struct {
	Data []byte
	CI   gopacket.CaptureInfo
	Meta FrameMeta
}

// FrameMeta says where a frame came from, so tests can find message
// boundaries and tell decoys from genuine traffic without decoding.
type FrameMeta struct {
	// Flow is the index of the frame's flow in a multi-flow capture (Mix);
	// 0 in the output of a single session or flow.
	Flow int
	// Dir is the direction of the frame within its flow.
	Dir dataplane.Direction
	// Msg is the index of the message (one Send call) among the messages of
	// the same direction, counted from 0; -1 when the frame carries no
	// message bytes (handshake, pure ACK, FIN, RST).
	Msg int
	// Last is true on the last frame of the output that carries bytes of
	// message (Dir, Msg): cutting a capture after it keeps the whole message.
	Last bool
	// Segment is the index of the frame's segment in the transformed list.
	Segment int
	// Fragment is the index of the IP fragment within its segment in emission
	// order, or -1 when the segment was not fragmented.
	Fragment int
	// Decoy is true when the frame carries bytes that are not the genuine
	// stream's (an insertion decoy, an overlap or overlapping fragment with
	// different content). Reassembling only non-decoy frames yields the data
	// that was sent.
	Decoy bool
}

// Clock assigns deterministic timestamps: frame i of an output is stamped
// Start + i*Step. A zero Clock means DefaultClock.
type Clock struct {
	Start time.Time
	Step  time.Duration
}

// DefaultClock starts at 2025-01-01T00:00:00Z and steps 100 µs per frame.
func DefaultClock() Clock {
	return Clock{Start: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC), Step: 100 * time.Microsecond}
}

// At returns the timestamp of frame i.
func (c Clock) At(i int) time.Time {
	if c.Start.IsZero() && c.Step == 0 {
		c = DefaultClock()
	}
	return c.Start.Add(time.Duration(i) * c.Step)
}

// Stamp sets the capture timestamps of frames from the clock, in order.
func (c Clock) Stamp(frames []Frame) {
	for i := range frames {
		frames[i].CI.Timestamp = c.At(i)
	}
}

// Capture is a sequence of frames of one link type, ready to be written to a
// capture file or fed to a source.
type Capture struct {
	LinkType layers.LinkType
	Frames   []Frame
}

// Bytes returns the total number of frame bytes, for b.SetBytes.
func (c *Capture) Bytes() int64 {
	var n int64
	for i := range c.Frames {
		n += int64(len(c.Frames[i].Data))
	}
	return n
}

// WritePcap writes the capture in libpcap format with microsecond timestamps.
func (c *Capture) WritePcap(w io.Writer) error {
	pw := pcapgo.NewWriter(w)
	if err := pw.WriteFileHeader(pcapSnapLen, c.LinkType); err != nil {
		return fmt.Errorf("dataplane/gen: pcap header: %w", err)
	}
	for i := range c.Frames {
		if err := pw.WritePacket(c.Frames[i].CI, c.Frames[i].Data); err != nil {
			return fmt.Errorf("dataplane/gen: pcap frame %d: %w", i, err)
		}
	}
	return nil
}

// WritePcapNG writes the capture in pcapng format: one section, one interface
// of the capture's link type, one enhanced packet block per frame.
func (c *Capture) WritePcapNG(w io.Writer) error {
	nw, err := pcapgo.NewNgWriter(w, c.LinkType)
	if err != nil {
		return fmt.Errorf("dataplane/gen: pcapng header: %w", err)
	}
	for i := range c.Frames {
		if err := nw.WritePacket(c.Frames[i].CI, c.Frames[i].Data); err != nil {
			return fmt.Errorf("dataplane/gen: pcapng frame %d: %w", i, err)
		}
	}
	if err := nw.Flush(); err != nil {
		return fmt.Errorf("dataplane/gen: pcapng flush: %w", err)
	}
	return nil
}
