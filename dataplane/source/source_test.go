package source

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"path/filepath"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/patchgate/patchgate/dataplane/decode"
)

// sourceFactory builds a Source of the given link type yielding frames.
type sourceFactory struct {
	name string
	make func(t *testing.T, lt layers.LinkType, frames []Frame) Source
}

func fileSource(t *testing.T, b []byte) Source {
	t.Helper()
	s, err := NewFileSource(bytes.NewReader(b), "test capture")
	if err != nil {
		t.Fatalf("NewFileSource: %v", err)
	}
	return s
}

func fileLT(t *testing.T, lt layers.LinkType) uint32 {
	t.Helper()
	v, err := linkTypeToFile(lt)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// allSources lists every Source implementation and file variant; the
// contract test runs against each.
var allSources = []sourceFactory{
	{"memory", func(t *testing.T, lt layers.LinkType, frames []Frame) Source {
		return NewMemorySource(lt, frames...)
	}},
	{"pcap-le-micro", func(t *testing.T, lt layers.LinkType, frames []Frame) Source {
		return fileSource(t, pcapBytes(binary.LittleEndian, false, fileLT(t, lt), frames))
	}},
	{"pcap-be-micro", func(t *testing.T, lt layers.LinkType, frames []Frame) Source {
		return fileSource(t, pcapBytes(binary.BigEndian, false, fileLT(t, lt), frames))
	}},
	{"pcap-le-nano", func(t *testing.T, lt layers.LinkType, frames []Frame) Source {
		return fileSource(t, pcapBytes(binary.LittleEndian, true, fileLT(t, lt), frames))
	}},
	{"pcap-be-nano", func(t *testing.T, lt layers.LinkType, frames []Frame) Source {
		return fileSource(t, pcapBytes(binary.BigEndian, true, fileLT(t, lt), frames))
	}},
	{"pcapng-le", func(t *testing.T, lt layers.LinkType, frames []Frame) Source {
		return fileSource(t, pcapngBytes(binary.LittleEndian, 6, uint16(fileLT(t, lt)), frames))
	}},
	{"pcapng-be-nano", func(t *testing.T, lt layers.LinkType, frames []Frame) Source {
		return fileSource(t, pcapngBytes(binary.BigEndian, 9, uint16(fileLT(t, lt)), frames))
	}},
	{"writer+openfile", func(t *testing.T, lt layers.LinkType, frames []Frame) Source {
		path := filepath.Join(t.TempDir(), "capture.pcap")
		if err := WritePcapFile(path, lt, frames); err != nil {
			t.Fatal(err)
		}
		s, err := OpenFile(path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}},
}

// TestSourceContract checks what every consumer of a Source relies on:
// frames come back in order with their bytes and capture metadata, the link
// type is reported, the end is io.EOF (and stays io.EOF), and the caller may
// scribble on returned data without changing later frames.
func TestSourceContract(t *testing.T) {
	for _, f := range allSources {
		t.Run(f.name, func(t *testing.T) {
			for _, lt := range []layers.LinkType{layers.LinkTypeEthernet, decode.LinkTypeLinuxSLL2, layers.LinkTypeRaw} {
				frames := testFrames(9)
				src := f.make(t, lt, frames)
				if got := src.LinkType(); got != lt {
					t.Fatalf("LinkType() = %d, want %d", got, lt)
				}
				for i, want := range frames {
					data, ci, err := src.ReadPacketData()
					if err != nil {
						t.Fatalf("frame %d: %v", i, err)
					}
					if !bytes.Equal(data, want.Data) {
						t.Fatalf("frame %d: data differs", i)
					}
					if !ci.Timestamp.Equal(want.CI.Timestamp) || ci.CaptureLength != len(want.Data) || ci.Length != want.CI.Length {
						t.Fatalf("frame %d: ci %+v, want %+v", i, ci, want.CI)
					}
					for j := range data {
						data[j] = 0xee // consumers may modify the frame in place
					}
				}
				for range 2 {
					if _, _, err := src.ReadPacketData(); err != io.EOF {
						t.Fatalf("after the last frame: err = %v, want io.EOF", err)
					}
				}
				if c, ok := src.(Closer); ok {
					if err := c.Close(); err != nil {
						t.Fatalf("Close: %v", err)
					}
				}
			}
		})
	}
}

func TestSourceContractEmpty(t *testing.T) {
	for _, f := range allSources {
		src := f.make(t, layers.LinkTypeEthernet, nil)
		if _, _, err := src.ReadPacketData(); err != io.EOF {
			t.Errorf("%s: empty source: err = %v, want io.EOF", f.name, err)
		}
	}
}

func TestMemorySourceRewind(t *testing.T) {
	m := NewMemorySource(layers.LinkTypeRaw)
	m.Append([]byte{0x45, 1, 2}, gopacket.CaptureInfo{Timestamp: baseTime})
	if m.Len() != 1 {
		t.Fatalf("Len = %d", m.Len())
	}
	d1, ci, _ := m.ReadPacketData()
	if ci.CaptureLength != 3 || ci.Length != 3 {
		t.Fatalf("lengths not filled in: %+v", ci)
	}
	d1[0] = 0
	if _, _, err := m.ReadPacketData(); err != io.EOF {
		t.Fatalf("err = %v", err)
	}
	m.Rewind()
	d2, _, err := m.ReadPacketData()
	if err != nil || d2[0] != 0x45 {
		t.Fatalf("after Rewind: %v %x (caller's write must not reach the stored frame)", err, d2)
	}
}

func TestLinkTypeMapping(t *testing.T) {
	for file, want := range map[uint32]layers.LinkType{
		1: layers.LinkTypeEthernet, 101: layers.LinkTypeRaw, 12: decode.LinkTypeRawAlt, 228: layers.LinkTypeIPv4,
		229: layers.LinkTypeIPv6, 113: layers.LinkTypeLinuxSLL, 276: decode.LinkTypeLinuxSLL2,
	} {
		got, err := linkTypeFromFile(file)
		if err != nil || got != want {
			t.Errorf("link type %d: got %d, %v; want %d", file, got, err, want)
		}
		back, err := linkTypeToFile(want)
		if err != nil || back != file {
			t.Errorf("link type %d: written back as %d, %v", file, back, err)
		}
	}
	// 20 is SLL2's in-memory stand-in, never a valid file value; 257 would
	// alias Ethernet if truncated to 8 bits.
	for _, bad := range []uint32{0, 9, 20, 105, 257, 0x10001} {
		if _, err := linkTypeFromFile(bad); !errors.Is(err, decode.ErrUnsupportedLinkType) {
			t.Errorf("link type %d accepted (err %v)", bad, err)
		}
	}
}
