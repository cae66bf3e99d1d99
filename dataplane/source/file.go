package source

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"
)

// MaxSnapLen is the largest frame a capture file may hold: libpcap's
// MAXIMUM_SNAPLEN, which tcpdump and Wireshark also apply when reading. It
// bounds the reader's buffer whatever a file header claims.
const MaxSnapLen = 262144

// Capture file magic numbers.
const (
	pcapMagicMicro = 0xa1b2c3d4 // classic pcap, microsecond timestamps
	pcapMagicNano  = 0xa1b23c4d // classic pcap, nanosecond timestamps
	pcapngMagic    = 0x0a0d0d0a // pcapng section header block type
	pcapHeaderLen  = 24
	readBufferSize = 64 << 10
)

// ErrFormat is wrapped by the error for a file that is neither pcap nor pcapng.
var ErrFormat = errors.New("not a pcap or pcapng file")

// ErrCorrupt is wrapped by errors for capture files whose structure is invalid
// (bad lengths, bad block trailers, records larger than MaxSnapLen, ...).
var ErrCorrupt = errors.New("corrupt capture file")

// FileSource reads frames from a pcap or pcapng capture. It is not safe for
// concurrent use. After the first error every read returns that error.
type FileSource struct {
	name   string
	file   *os.File // nil when reading from a caller's io.Reader
	format string
	lt     layers.LinkType
	rd     func() ([]byte, gopacket.CaptureInfo, error)
	n      int // records read
	err    error
}

var (
	_ Source = (*FileSource)(nil)
	_ Closer = (*FileSource)(nil)
)

// OpenFile opens a pcap (either byte order, microsecond or nanosecond
// timestamps) or pcapng capture, recognised by its magic number. It fails if
// the capture's link type is not one the decoder supports (the error wraps
// decode.ErrUnsupportedLinkType and names the type). Errors name the file.
func OpenFile(path string) (*FileSource, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("dataplane/source: %w", err)
	}
	s, err := NewFileSource(f, path)
	if err != nil {
		f.Close()
		return nil, err
	}
	s.file = f
	return s, nil
}

// NewFileSource reads a pcap or pcapng capture from r, like OpenFile; name
// is used in error messages. Close does not close r.
func NewFileSource(r io.Reader, name string) (*FileSource, error) {
	br := bufio.NewReaderSize(r, readBufferSize)
	s := &FileSource{name: name}
	magic, err := br.Peek(4)
	if err != nil {
		return nil, s.wrap(ErrFormat)
	}
	switch m := binary.LittleEndian.Uint32(magic); {
	case m == pcapngMagic:
		s.format = "pcapng"
		err = s.openPcapng(br)
	case m == pcapMagicMicro || m == pcapMagicNano ||
		binary.BigEndian.Uint32(magic) == pcapMagicMicro || binary.BigEndian.Uint32(magic) == pcapMagicNano:
		s.format = "pcap"
		err = s.openPcap(br)
	default:
		return nil, s.wrap(ErrFormat)
	}
	if err != nil {
		return nil, err
	}
	return s, nil
}

// openPcap reads the classic pcap file header itself (gopacket's reader
// truncates the link type to 8 bits) and hands the records to pcapgo.
func (s *FileSource) openPcap(br *bufio.Reader) error {
	hdr, err := br.Peek(pcapHeaderLen)
	if err != nil {
		return s.wrap(fmt.Errorf("file header: %w", unexpectedEOF(err)))
	}
	var order binary.ByteOrder = binary.LittleEndian
	if m := binary.BigEndian.Uint32(hdr); m == pcapMagicMicro || m == pcapMagicNano {
		order = binary.BigEndian
	}
	// The low 16 bits hold the link type; the high bits carry FCS
	// information, and trailing FCS bytes are dropped by IP length trimming.
	lt, err := linkTypeFromFile(order.Uint32(hdr[20:24]) & 0xffff)
	if err != nil {
		return s.wrap(err)
	}
	pr, err := pcapgo.NewReader(br)
	if err != nil {
		return s.wrap(fmt.Errorf("%v: %w", err, ErrCorrupt))
	}
	pr.SetSnaplen(MaxSnapLen)
	s.lt = lt
	s.rd = func() ([]byte, gopacket.CaptureInfo, error) {
		data, ci, err := pr.ZeroCopyReadPacketData()
		switch {
		case err == nil:
			return data, ci, nil
		case errors.Is(err, io.EOF) && ci.CaptureLength == 0 && ci.Timestamp.IsZero():
			return nil, ci, io.EOF // clean end between records
		case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
			return nil, ci, unexpectedEOF(err)
		}
		return nil, ci, fmt.Errorf("%v: %w", err, ErrCorrupt)
	}
	return nil
}

// openPcapng reads the first section header and interface description.
func (s *FileSource) openPcapng(br *bufio.Reader) error {
	ng := &ngReader{r: br}
	lt, err := ng.start()
	if err != nil {
		return s.wrap(err)
	}
	s.lt = lt
	s.rd = ng.next
	return nil
}

// ReadPacketData returns the next frame, io.EOF at the clean end of the file,
// or an error naming the file and record (wrapping io.ErrUnexpectedEOF when
// the file ends inside a record). The data is valid until the next call.
func (s *FileSource) ReadPacketData() ([]byte, gopacket.CaptureInfo, error) {
	if s.err != nil {
		return nil, gopacket.CaptureInfo{}, s.err
	}
	data, ci, err := s.rd()
	if err != nil {
		if err == io.EOF {
			s.err = io.EOF
		} else {
			s.err = s.wrap(fmt.Errorf("record %d: %w", s.n+1, err))
		}
		return nil, gopacket.CaptureInfo{}, s.err
	}
	s.n++
	return data, ci, nil
}

// LinkType returns the capture's link type (decode.LinkTypeLinuxSLL2 for SLL2).
func (s *FileSource) LinkType() layers.LinkType { return s.lt }

// Format returns "pcap" or "pcapng".
func (s *FileSource) Format() string { return s.format }

// Close closes the file opened by OpenFile.
func (s *FileSource) Close() error {
	if s.file == nil {
		return nil
	}
	err := s.file.Close()
	s.file = nil
	if err != nil {
		return fmt.Errorf("dataplane/source: %s: %w", s.name, err)
	}
	return nil
}

func (s *FileSource) wrap(err error) error {
	return fmt.Errorf("dataplane/source: %s: %w", s.name, err)
}

// unexpectedEOF turns an end of file met inside a structure into
// io.ErrUnexpectedEOF, leaving other errors alone.
func unexpectedEOF(err error) error {
	if err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("truncated: %w", io.ErrUnexpectedEOF)
	}
	return err
}
