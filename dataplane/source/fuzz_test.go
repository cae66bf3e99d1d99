package source

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"testing"

	"github.com/patchgate/patchgate/dataplane/decode"
)

// maxFuzzRecords bounds how many records one fuzz input may yield.
const maxFuzzRecords = 1000

// FuzzFileSource feeds arbitrary bytes to the capture reader: it must never
// panic, must stop with io.EOF or an error wrapping ErrFormat, ErrCorrupt,
// io.ErrUnexpectedEOF or an unsupported link type, and frames must respect
// MaxSnapLen.
func FuzzFileSource(f *testing.F) {
	frames := testFrames(3)
	f.Add(pcapBytes(binary.LittleEndian, false, 1, frames))
	f.Add(pcapBytes(binary.BigEndian, true, 276, frames))
	f.Add(pcapngBytes(binary.LittleEndian, 9, 1, frames))
	ng := &ngFile{order: binary.BigEndian}
	ng.shb().idb(113, 32, ng.opt(9, []byte{0x85})).spb(50, make([]byte, 50)).opb(0, 7, []byte("x"))
	f.Add(ng.b)
	f.Fuzz(func(t *testing.T, b []byte) {
		src, err := NewFileSource(bytes.NewReader(b), "fuzz")
		if err != nil {
			return
		}
		for range maxFuzzRecords {
			data, ci, err := src.ReadPacketData()
			if err == io.EOF {
				return
			}
			if err != nil {
				if !errors.Is(err, ErrCorrupt) && !errors.Is(err, io.ErrUnexpectedEOF) && !isLinkTypeErr(err) {
					t.Fatalf("unexpected error kind: %v", err)
				}
				return
			}
			if len(data) > MaxSnapLen || ci.CaptureLength != len(data) || ci.Length < ci.CaptureLength {
				t.Fatalf("frame of %d bytes, ci %+v", len(data), ci)
			}
		}
	})
}

func isLinkTypeErr(err error) bool {
	return errors.Is(err, decode.ErrUnsupportedLinkType)
}
