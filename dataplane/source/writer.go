package source

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"os"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

// Writer writes frames to a classic pcap stream (little-endian, nanosecond
// timestamps, snap length MaxSnapLen), readable by OpenFile, tcpdump,
// tcpreplay and Wireshark. Each frame is one Write call on the underlying
// writer; wrap it in a bufio.Writer for speed. Not safe for concurrent use.
type Writer struct {
	w   io.Writer
	buf []byte
}

// NewPcapWriter writes a pcap file header for link type lt to w (lt is
// stored as its on-disk value, 276 for decode.LinkTypeLinuxSLL2) and returns
// a Writer for the frames.
func NewPcapWriter(w io.Writer, lt layers.LinkType) (*Writer, error) {
	v, err := linkTypeToFile(lt)
	if err != nil {
		return nil, fmt.Errorf("dataplane/source: pcap writer: %w", err)
	}
	hdr := make([]byte, pcapHeaderLen)
	binary.LittleEndian.PutUint32(hdr[0:4], pcapMagicNano)
	binary.LittleEndian.PutUint16(hdr[4:6], 2) // version 2.4
	binary.LittleEndian.PutUint16(hdr[6:8], 4)
	binary.LittleEndian.PutUint32(hdr[16:20], MaxSnapLen)
	binary.LittleEndian.PutUint32(hdr[20:24], v)
	if _, err := w.Write(hdr); err != nil {
		return nil, fmt.Errorf("dataplane/source: pcap writer: file header: %w", err)
	}
	return &Writer{w: w}, nil
}

// WritePacket writes one frame. The captured length is len(data); the
// original length is ci.Length, or len(data) when that is smaller. A zero
// ci.Timestamp is written as the Unix epoch; other times must lie between
// 1970 and 2106, the range of the format's 32-bit seconds field.
func (w *Writer) WritePacket(ci gopacket.CaptureInfo, data []byte) error {
	if len(data) > MaxSnapLen {
		return fmt.Errorf("dataplane/source: pcap writer: frame of %d bytes exceeds snap length %d", len(data), MaxSnapLen)
	}
	var sec int64
	var nsec int
	if !ci.Timestamp.IsZero() {
		sec, nsec = ci.Timestamp.Unix(), ci.Timestamp.Nanosecond()
		if sec < 0 || sec > math.MaxUint32 {
			return fmt.Errorf("dataplane/source: pcap writer: timestamp %v outside the pcap range", ci.Timestamp)
		}
	}
	orig := max(ci.Length, len(data))
	if orig > math.MaxUint32 {
		return fmt.Errorf("dataplane/source: pcap writer: original length %d too large", orig)
	}
	b := w.buf[:0]
	b = binary.LittleEndian.AppendUint32(b, uint32(sec))
	b = binary.LittleEndian.AppendUint32(b, uint32(nsec))
	b = binary.LittleEndian.AppendUint32(b, uint32(len(data)))
	b = binary.LittleEndian.AppendUint32(b, uint32(orig))
	b = append(b, data...)
	w.buf = b
	if _, err := w.w.Write(b); err != nil {
		return fmt.Errorf("dataplane/source: pcap writer: %w", err)
	}
	return nil
}

// WritePcapFile writes frames to a new pcap file at path.
func WritePcapFile(path string, lt layers.LinkType, frames []Frame) (err error) {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("dataplane/source: %w", err)
	}
	defer func() {
		if cerr := f.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("dataplane/source: %w", cerr)
		}
	}()
	bw := bufio.NewWriter(f)
	w, err := NewPcapWriter(bw, lt)
	if err != nil {
		return err
	}
	for _, fr := range frames {
		if err := w.WritePacket(fr.CI, fr.Data); err != nil {
			return err
		}
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("dataplane/source: %w", err)
	}
	return nil
}
