package source

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/patchgate/patchgate/dataplane/decode"
)

// readAll reads a source to its end and returns the frames and the final error.
func readAll(src Source) ([]Frame, error) {
	var out []Frame
	for {
		data, ci, err := src.ReadPacketData()
		if err != nil {
			return out, err
		}
		out = append(out, Frame{Data: append([]byte(nil), data...), CI: ci})
	}
}

func writeTemp(t *testing.T, name string, b []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestOpenFileRejectsOtherFiles(t *testing.T) {
	for name, content := range map[string][]byte{
		"text":  []byte("GET / HTTP/1.1\r\n\r\n"),
		"empty": nil,
		"short": {0xd4, 0xc3},
	} {
		path := writeTemp(t, "capture.pcap", content)
		_, err := OpenFile(path)
		if !errors.Is(err, ErrFormat) {
			t.Errorf("%s: err = %v, want ErrFormat", name, err)
			continue
		}
		if want := "dataplane/source: " + path + ": not a pcap or pcapng file"; err.Error() != want {
			t.Errorf("%s: message %q, want %q", name, err, want)
		}
	}
	if _, err := OpenFile(filepath.Join(t.TempDir(), "missing.pcap")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: err = %v, want fs.ErrNotExist", err)
	}
}

func TestOpenFileUnsupportedLinkType(t *testing.T) {
	cases := map[string][]byte{
		"pcap ppp":       pcapBytes(binary.LittleEndian, false, 9, nil),
		"pcap 257":       pcapBytes(binary.BigEndian, true, 257, nil), // must not alias Ethernet (1)
		"pcapng 802.11":  pcapngBytes(binary.LittleEndian, 6, 105, nil),
		"pcapng 20":      pcapngBytes(binary.LittleEndian, 6, 20, nil),
		"pcap usb linux": pcapBytes(binary.LittleEndian, false, 220, nil),
	}
	for name, b := range cases {
		path := writeTemp(t, "capture.pcap", b)
		_, err := OpenFile(path)
		if !errors.Is(err, decode.ErrUnsupportedLinkType) {
			t.Errorf("%s: err = %v, want ErrUnsupportedLinkType", name, err)
			continue
		}
		if !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "link type ") {
			t.Errorf("%s: error %q names neither file nor type", name, err)
		}
	}
}

func TestPcapLinkTypes(t *testing.T) {
	for file, want := range map[uint32]layers.LinkType{
		1: layers.LinkTypeEthernet, 101: layers.LinkTypeRaw, 12: decode.LinkTypeRawAlt, 228: layers.LinkTypeIPv4,
		229: layers.LinkTypeIPv6, 113: layers.LinkTypeLinuxSLL, 276: decode.LinkTypeLinuxSLL2,
	} {
		for _, b := range [][]byte{pcapBytes(binary.LittleEndian, false, file, nil), pcapngBytes(binary.BigEndian, 6, uint16(file), nil)} {
			s, err := NewFileSource(bytes.NewReader(b), "x")
			if err != nil || s.LinkType() != want {
				t.Errorf("link type %d: %v, LinkType %d, want %d", file, err, s.LinkType(), want)
			}
		}
	}
}

// TestTruncatedFinalRecord cuts captures at every byte of their last record:
// the complete records still come out, then an error that wraps
// io.ErrUnexpectedEOF and names the file (never io.EOF, never a panic).
func TestTruncatedFinalRecord(t *testing.T) {
	frames := testFrames(3)
	for name, full := range map[string][]byte{
		"pcap":   pcapBytes(binary.LittleEndian, true, 1, frames),
		"pcapng": pcapngBytes(binary.BigEndian, 6, 1, frames),
	} {
		twoRecords := map[string]int{
			"pcap":   len(pcapBytes(binary.LittleEndian, true, 1, frames[:2])),
			"pcapng": len(pcapngBytes(binary.BigEndian, 6, 1, frames[:2])),
		}[name]
		for cut := twoRecords + 1; cut < len(full); cut++ {
			src, err := NewFileSource(bytes.NewReader(full[:cut]), "cut.pcap")
			if err != nil {
				t.Fatalf("%s cut at %d: open: %v", name, cut, err)
			}
			got, err := readAll(src)
			if len(got) != 2 {
				t.Fatalf("%s cut at %d: %d complete frames, want 2", name, cut, len(got))
			}
			if !errors.Is(err, io.ErrUnexpectedEOF) || !strings.Contains(err.Error(), "cut.pcap") {
				t.Fatalf("%s cut at %d: err = %v, want a named io.ErrUnexpectedEOF", name, cut, err)
			}
			if _, _, again := src.ReadPacketData(); again != err {
				t.Fatalf("%s: error not sticky: %v then %v", name, err, again)
			}
		}
	}
	for name, b := range map[string][]byte{
		"pcap header":   pcapBytes(binary.LittleEndian, false, 1, nil)[:10],
		"pcapng header": pcapngBytes(binary.LittleEndian, 6, 1, nil)[:20],
		"pcapng no idb": (&ngFile{order: binary.LittleEndian}).shb().b,
	} {
		if _, err := NewFileSource(bytes.NewReader(b), "x"); err == nil {
			t.Errorf("%s: truncated file opened", name)
		} else if name != "pcapng no idb" && !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Errorf("%s: err = %v, want io.ErrUnexpectedEOF", name, err)
		}
	}
}

func TestPcapRecordLargerThanSnapLimit(t *testing.T) {
	b := pcapBytes(binary.LittleEndian, false, 1, testFrames(1))
	binary.LittleEndian.PutUint32(b[24+8:], MaxSnapLen+1)
	src := fileSource(t, b)
	if _, _, err := src.ReadPacketData(); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("err = %v, want ErrCorrupt", err)
	}
}

func TestPcapngFeatures(t *testing.T) {
	le := &ngFile{order: binary.LittleEndian}
	le.shb().
		idb(1, 0, le.opt(2, []byte("eth0")), le.opt(9, []byte{0x80 | 20}), le.opt(14, binary.LittleEndian.AppendUint64(nil, 100))).
		idb(1, 64).
		block(0x0bad, make([]byte, 40)). // unknown block type: skipped
		epb(0, 3<<20|1<<19, []byte("half a second"), 13).
		opb(1, 2_500_000, []byte("obsolete block")).
		spb(100, bytes.Repeat([]byte{7}, 100)) // interface 0 has no snap length: kept whole
	be := &ngFile{order: binary.BigEndian}
	be.shb().idb(1, 16).spb(100, bytes.Repeat([]byte{9}, 100)).epb(0, 5_000_001, []byte("second section"), 14)
	b := append(le.b, be.b...)

	src := fileSource(t, b)
	got, err := readAll(src)
	if err != io.EOF {
		t.Fatalf("err = %v", err)
	}
	want := []struct {
		data string
		ts   time.Time
		caps int
		orig int
	}{
		{"half a second", time.Unix(100+3, 500_000_000).UTC(), 13, 13}, // 2^-20 resolution, offset 100 s
		{"obsolete block", time.Unix(2, 500_000_000).UTC(), 14, 14},    // interface 1: microseconds
		{string(bytes.Repeat([]byte{7}, 100)), time.Time{}, 100, 100},  // SPB: no timestamp
		{string(bytes.Repeat([]byte{9}, 16)), time.Time{}, 16, 100},    // SPB cut to snap length 16
		{"second section", time.Unix(5, 1000).UTC(), 14, 14},           // new section, big-endian
	}
	if len(got) != len(want) {
		t.Fatalf("%d frames, want %d", len(got), len(want))
	}
	for i, w := range want {
		if string(got[i].Data) != w.data || !got[i].CI.Timestamp.Equal(w.ts) || got[i].CI.CaptureLength != w.caps || got[i].CI.Length != w.orig {
			t.Errorf("frame %d: %q %v cap %d len %d; want %q %v %d %d", i, got[i].Data, got[i].CI.Timestamp,
				got[i].CI.CaptureLength, got[i].CI.Length, w.data, w.ts, w.caps, w.orig)
		}
	}
}

func TestPcapngCorrupt(t *testing.T) {
	good := func() *ngFile { f := &ngFile{order: binary.LittleEndian}; return f.shb().idb(1, 0) }
	mixed := good()
	mixed.idb(101, 0).epb(1, 0, []byte{0x45}, 1)
	badTrailer := good().epb(0, 0, []byte("abcd"), 4)
	badTrailer.b[len(badTrailer.b)-1] ^= 1
	oddLen := good().epb(0, 0, []byte("abcd"), 4)
	binary.LittleEndian.PutUint32(oddLen.b[len(good().b)+4:], 37)
	huge := good()
	huge.b = binary.LittleEndian.AppendUint32(huge.b, 6)
	huge.b = binary.LittleEndian.AppendUint32(huge.b, 0xfffffff0)
	huge.b = append(huge.b, make([]byte, 64)...)
	capTooBig := good().epb(0, 0, []byte("abcd"), 4)
	binary.LittleEndian.PutUint32(capTooBig.b[len(good().b)+8+12:], 5000)
	noIface := good().epb(3, 0, []byte("abcd"), 4)
	oversized := good().epb(0, 0, make([]byte, MaxSnapLen+1), MaxSnapLen+1)
	bad := map[string][]byte{
		"mixed link types":         mixed.b,
		"trailer mismatch":         badTrailer.b,
		"length not multiple of 4": oddLen.b,
		"huge block":               huge.b,
		"captured length too big":  capTooBig.b,
		"unknown interface":        noIface.b,
		"frame above MaxSnapLen":   oversized.b,
	}
	for name, b := range bad {
		src, err := NewFileSource(bytes.NewReader(b), "bad.pcapng")
		if err == nil {
			_, err = readAll(src)
		}
		if !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: err = %v, want ErrCorrupt", name, err)
		}
	}
	lateIDB := &ngFile{order: binary.LittleEndian}
	lateIDB.shb().epb(0, 0, []byte("x"), 1).idb(1, 0)
	badRes := &ngFile{order: binary.LittleEndian}
	badRes.shb().idb(1, 0, badRes.opt(9, []byte{20}))
	for name, b := range map[string][]byte{"packet before interface": lateIDB.b, "resolution 10^-20": badRes.b} {
		if _, err := NewFileSource(bytes.NewReader(b), "bad.pcapng"); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: err = %v, want ErrCorrupt", name, err)
		}
	}
}

func TestWriter(t *testing.T) {
	var buf bytes.Buffer
	w, err := NewPcapWriter(&buf, decode.LinkTypeLinuxSLL2)
	if err != nil {
		t.Fatal(err)
	}
	if lt := binary.LittleEndian.Uint32(buf.Bytes()[20:24]); lt != 276 {
		t.Fatalf("SLL2 written as link type %d, want 276", lt)
	}
	ts := time.Date(2026, 1, 2, 3, 4, 5, 123456789, time.UTC)
	if err := w.WritePacket(gopacket.CaptureInfo{Timestamp: ts, Length: 500}, []byte("frame")); err != nil {
		t.Fatal(err)
	}
	if err := w.WritePacket(gopacket.CaptureInfo{}, []byte("zero time")); err != nil {
		t.Fatal(err)
	}
	for name, ci := range map[string]gopacket.CaptureInfo{
		"before 1970": {Timestamp: time.Date(1969, 12, 31, 0, 0, 0, 0, time.UTC)},
		"after 2106":  {Timestamp: time.Date(2107, 1, 1, 0, 0, 0, 0, time.UTC)},
	} {
		if err := w.WritePacket(ci, []byte("x")); err == nil {
			t.Errorf("%s: timestamp accepted", name)
		}
	}
	if err := w.WritePacket(gopacket.CaptureInfo{}, make([]byte, MaxSnapLen+1)); err == nil {
		t.Error("oversized frame accepted")
	}
	got, err := readAll(fileSource(t, buf.Bytes()))
	if err != io.EOF || len(got) != 2 {
		t.Fatalf("read back %d frames, err %v", len(got), err)
	}
	if !got[0].CI.Timestamp.Equal(ts) || got[0].CI.Length != 500 || string(got[0].Data) != "frame" {
		t.Fatalf("frame 0: %+v %q (nanoseconds must survive)", got[0].CI, got[0].Data)
	}
	if !got[1].CI.Timestamp.Equal(time.Unix(0, 0)) {
		t.Fatalf("zero timestamp read back as %v", got[1].CI.Timestamp)
	}
	if _, err := NewPcapWriter(io.Discard, layers.LinkTypePPP); !errors.Is(err, decode.ErrUnsupportedLinkType) {
		t.Fatalf("PPP writer: err = %v", err)
	}
}
