package source

import (
	"io"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

// Frame is one captured frame and its capture metadata.
type Frame struct {
	Data []byte
	CI   gopacket.CaptureInfo
}

// MemorySource is a Source over frames held in memory, for tests and for
// replaying generated traffic. It is not safe for concurrent use.
type MemorySource struct {
	lt     layers.LinkType
	frames []Frame
	next   int
	buf    []byte
}

var _ Source = (*MemorySource)(nil)

// NewMemorySource returns a source yielding frames (see Append) with link type lt.
func NewMemorySource(lt layers.LinkType, frames ...Frame) *MemorySource {
	m := &MemorySource{lt: lt}
	for _, f := range frames {
		m.Append(f.Data, f.CI)
	}
	return m
}

// Append adds a copy of data to the end of the source. A zero
// ci.CaptureLength or ci.Length is set to len(data).
func (m *MemorySource) Append(data []byte, ci gopacket.CaptureInfo) {
	if ci.CaptureLength == 0 {
		ci.CaptureLength = len(data)
	}
	if ci.Length == 0 {
		ci.Length = len(data)
	}
	m.frames = append(m.frames, Frame{Data: append([]byte(nil), data...), CI: ci})
}

// ReadPacketData returns the next frame, or io.EOF after the last one. The
// data is a copy, valid until the next call; the caller may modify it.
func (m *MemorySource) ReadPacketData() ([]byte, gopacket.CaptureInfo, error) {
	if m.next >= len(m.frames) {
		return nil, gopacket.CaptureInfo{}, io.EOF
	}
	f := m.frames[m.next]
	m.next++
	m.buf = append(m.buf[:0], f.Data...)
	return m.buf, f.CI, nil
}

// LinkType returns the link type given to NewMemorySource.
func (m *MemorySource) LinkType() layers.LinkType { return m.lt }

// Len returns the number of frames the source holds.
func (m *MemorySource) Len() int { return len(m.frames) }

// Rewind makes the next ReadPacketData return the first frame again.
func (m *MemorySource) Rewind() { m.next = 0 }
