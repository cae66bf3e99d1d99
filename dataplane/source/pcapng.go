package source

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"math/bits"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

// The pcapng reader is the project's own: gopacket v1.1.19's NgReader slices
// option values by untrusted lengths, divides by a resolution that can be
// zero and allocates whatever a block claims, so a damaged file can panic it
// or exhaust memory. This one bounds every read. Format: the IETF pcapng draft
// (draft-ietf-opsawg-pcapng).

// pcapng block types.
const (
	ngBlockSHB  = 0x0a0d0d0a // section header
	ngBlockIDB  = 0x00000001 // interface description
	ngBlockOPB  = 0x00000002 // packet (obsolete)
	ngBlockSPB  = 0x00000003 // simple packet
	ngBlockEPB  = 0x00000006 // enhanced packet
	ngByteOrder = 0x1a2b3c4d
)

// pcapng limits.
const (
	// ngMaxBlockLen bounds the blocks the reader loads into memory: a packet
	// of MaxSnapLen bytes plus 64 KiB of options. Other block types are
	// skipped without buffering, whatever their length.
	ngMaxBlockLen = MaxSnapLen + 64<<10
	// ngMaxInterfaces bounds the interfaces of one section (each costs a few
	// dozen bytes); real captures have a handful.
	ngMaxInterfaces = 1024
	ngMinBlockLen   = 12 // type, length, trailing length
	ngOptEnd        = 0
	ngOptTSResol    = 9  // if_tsresol
	ngOptTSOffset   = 14 // if_tsoffset
)

type ngInterface struct {
	lt         layers.LinkType
	ltErr      error  // non-nil when the link type is unsupported
	snapLen    uint32 // 0: no limit
	unitsPerS  uint64 // timestamp ticks per second
	offsetSecs int64
}

// ngReader reads the blocks of a pcapng stream.
type ngReader struct {
	r      *bufio.Reader
	order  binary.ByteOrder
	ifaces []ngInterface
	lt     layers.LinkType // link type of the file's first interface
	haveLT bool
	buf    []byte
	hdr    [12]byte
}

// start reads the first section header and blocks up to the first interface
// description, and returns the file's link type.
func (r *ngReader) start() (layers.LinkType, error) {
	r.order = binary.LittleEndian // replaced by the section header's byte order
	typ, body, err := r.readBlock()
	if err != nil {
		return 0, err
	}
	if typ != ngBlockSHB {
		return 0, fmt.Errorf("pcapng: first block is not a section header: %w", ErrCorrupt)
	}
	if err := r.section(body); err != nil {
		return 0, err
	}
	for !r.haveLT {
		typ, body, err := r.readBlock()
		if err == io.EOF {
			return 0, fmt.Errorf("pcapng: no interface description block: %w", ErrCorrupt)
		}
		if err != nil {
			return 0, err
		}
		if err := r.control(typ, body); err != nil {
			return 0, err
		}
		if typ == ngBlockEPB || typ == ngBlockSPB || typ == ngBlockOPB {
			return 0, fmt.Errorf("pcapng: packet before any interface description: %w", ErrCorrupt)
		}
	}
	return r.lt, nil
}

// next returns the next packet of the stream.
func (r *ngReader) next() ([]byte, gopacket.CaptureInfo, error) {
	for {
		typ, body, err := r.readBlock()
		if err != nil {
			return nil, gopacket.CaptureInfo{}, err
		}
		switch typ {
		case ngBlockEPB, ngBlockOPB, ngBlockSPB:
			return r.packet(typ, body)
		}
		if err := r.control(typ, body); err != nil {
			return nil, gopacket.CaptureInfo{}, err
		}
	}
}

// control handles a non-packet block.
func (r *ngReader) control(typ uint32, body []byte) error {
	switch typ {
	case ngBlockSHB:
		return r.section(body)
	case ngBlockIDB:
		return r.iface(body)
	}
	return nil // statistics, name resolution, custom, ...: skipped
}

// readBlock reads one block. It returns io.EOF only at a clean end between
// blocks. body is nil for block types that are skipped.
func (r *ngReader) readBlock() (uint32, []byte, error) {
	if _, err := io.ReadFull(r.r, r.hdr[:8]); err != nil {
		if err == io.EOF {
			return 0, nil, io.EOF
		}
		return 0, nil, unexpectedEOF(err)
	}
	typ := binary.LittleEndian.Uint32(r.hdr[0:4]) // the SHB type is a palindrome
	if typ == ngBlockSHB {
		if _, err := io.ReadFull(r.r, r.hdr[8:12]); err != nil {
			return 0, nil, unexpectedEOF(err)
		}
		switch {
		case binary.LittleEndian.Uint32(r.hdr[8:12]) == ngByteOrder:
			r.order = binary.LittleEndian
		case binary.BigEndian.Uint32(r.hdr[8:12]) == ngByteOrder:
			r.order = binary.BigEndian
		default:
			return 0, nil, fmt.Errorf("pcapng: bad byte-order magic: %w", ErrCorrupt)
		}
	} else {
		typ = r.order.Uint32(r.hdr[0:4])
	}
	total := r.order.Uint32(r.hdr[4:8])
	if total < ngMinBlockLen || total%4 != 0 || (typ == ngBlockSHB && total < 28) {
		return 0, nil, fmt.Errorf("pcapng: block type %#x has invalid length %d: %w", typ, total, ErrCorrupt)
	}
	bodyLen := int64(total) - ngMinBlockLen
	var body []byte
	switch typ {
	case ngBlockSHB, ngBlockIDB, ngBlockEPB, ngBlockSPB, ngBlockOPB:
		if total > ngMaxBlockLen {
			return 0, nil, fmt.Errorf("pcapng: block of %d bytes exceeds limit %d: %w", total, ngMaxBlockLen, ErrCorrupt)
		}
		if typ == ngBlockSHB {
			// The byte-order magic, first 4 bytes of the body, is already read.
			r.buf = append(r.buf[:0], r.hdr[8:12]...)
			r.buf = growTo(r.buf, int(bodyLen))
			if _, err := io.ReadFull(r.r, r.buf[4:bodyLen]); err != nil {
				return 0, nil, unexpectedEOF(err)
			}
		} else {
			r.buf = growTo(r.buf[:0], int(bodyLen))
			if _, err := io.ReadFull(r.r, r.buf); err != nil {
				return 0, nil, unexpectedEOF(err)
			}
		}
		body = r.buf
	default:
		if _, err := r.r.Discard(int(bodyLen)); err != nil {
			return 0, nil, unexpectedEOF(err)
		}
	}
	if _, err := io.ReadFull(r.r, r.hdr[:4]); err != nil {
		return 0, nil, unexpectedEOF(err)
	}
	if r.order.Uint32(r.hdr[:4]) != total {
		return 0, nil, fmt.Errorf("pcapng: block type %#x: trailing length differs from leading length: %w", typ, ErrCorrupt)
	}
	return typ, body, nil
}

// growTo returns b resized to n bytes, reusing its storage when it can.
func growTo(b []byte, n int) []byte {
	if cap(b) >= n {
		return b[:n]
	}
	nb := make([]byte, n)
	copy(nb, b)
	return nb
}

// section starts a new section: byte-order magic (4), version (2+2),
// section length (8), options.
func (r *ngReader) section(body []byte) error {
	if len(body) < 16 {
		return fmt.Errorf("pcapng: section header too short: %w", ErrCorrupt)
	}
	if major := r.order.Uint16(body[4:6]); major != 1 {
		return fmt.Errorf("pcapng: unsupported version %d.%d: %w", major, r.order.Uint16(body[6:8]), ErrCorrupt)
	}
	r.ifaces = r.ifaces[:0]
	return nil
}

// iface records an interface description: link type (2), reserved (2),
// snap length (4), options.
func (r *ngReader) iface(body []byte) error {
	if len(body) < 8 {
		return fmt.Errorf("pcapng: interface description too short: %w", ErrCorrupt)
	}
	if len(r.ifaces) >= ngMaxInterfaces {
		return fmt.Errorf("pcapng: more than %d interfaces in a section: %w", ngMaxInterfaces, ErrCorrupt)
	}
	in := ngInterface{snapLen: r.order.Uint32(body[4:8]), unitsPerS: 1e6}
	in.lt, in.ltErr = linkTypeFromFile(uint32(r.order.Uint16(body[0:2])))
	opts := body[8:]
	for len(opts) >= 4 {
		code, n := r.order.Uint16(opts[0:2]), int(r.order.Uint16(opts[2:4]))
		if code == ngOptEnd {
			break
		}
		padded := (n + 3) &^ 3
		if 4+padded > len(opts) {
			return fmt.Errorf("pcapng: interface option %d overruns its block: %w", code, ErrCorrupt)
		}
		v := opts[4 : 4+n]
		switch {
		case code == ngOptTSResol && n >= 1:
			ups, ok := unitsPerSecond(v[0])
			if !ok {
				return fmt.Errorf("pcapng: unsupported timestamp resolution %#x: %w", v[0], ErrCorrupt)
			}
			in.unitsPerS = ups
		case code == ngOptTSOffset && n == 8:
			in.offsetSecs = int64(r.order.Uint64(v))
		}
		opts = opts[4+padded:]
	}
	if !r.haveLT {
		if in.ltErr != nil {
			return in.ltErr
		}
		r.lt, r.haveLT = in.lt, true
	}
	r.ifaces = append(r.ifaces, in)
	return nil
}

// unitsPerSecond decodes if_tsresol: the high bit selects a power of two,
// otherwise a power of ten; the rest is the negative exponent. Resolutions
// whose tick count per second does not fit in 64 bits are refused.
func unitsPerSecond(res byte) (uint64, bool) {
	exp := uint(res & 0x7f)
	if res&0x80 != 0 {
		if exp > 63 {
			return 0, false
		}
		return 1 << exp, true
	}
	if exp > 19 {
		return 0, false
	}
	u := uint64(1)
	for range exp {
		u *= 10
	}
	return u, true
}

// packet decodes an enhanced, simple or obsolete packet block.
func (r *ngReader) packet(typ uint32, body []byte) ([]byte, gopacket.CaptureInfo, error) {
	var ci gopacket.CaptureInfo
	var ifid int
	var ts uint64
	var capLen, origLen uint32
	var data []byte
	switch typ {
	case ngBlockEPB, ngBlockOPB:
		// EPB: interface (4), ts high (4), ts low (4), captured (4), original (4).
		// OPB: interface (2), drops (2), then the same.
		if len(body) < 20 {
			return nil, ci, fmt.Errorf("pcapng: packet block too short: %w", ErrCorrupt)
		}
		if typ == ngBlockEPB {
			ifid = int(r.order.Uint32(body[0:4]))
		} else {
			ifid = int(r.order.Uint16(body[0:2]))
		}
		ts = uint64(r.order.Uint32(body[4:8]))<<32 | uint64(r.order.Uint32(body[8:12]))
		capLen, origLen = r.order.Uint32(body[12:16]), r.order.Uint32(body[16:20])
		if uint64(capLen) > uint64(len(body)-20) {
			return nil, ci, fmt.Errorf("pcapng: captured length %d exceeds its block: %w", capLen, ErrCorrupt)
		}
		data = body[20 : 20+capLen]
	case ngBlockSPB:
		// original length (4), data; the captured length is implied.
		if len(body) < 4 {
			return nil, ci, fmt.Errorf("pcapng: simple packet block too short: %w", ErrCorrupt)
		}
		origLen = r.order.Uint32(body[0:4])
		capLen = min(origLen, uint32(len(body)-4))
		if len(r.ifaces) > 0 && r.ifaces[0].snapLen != 0 {
			capLen = min(capLen, r.ifaces[0].snapLen)
		}
		data = body[4 : 4+capLen]
	}
	if capLen > MaxSnapLen {
		return nil, ci, fmt.Errorf("pcapng: captured length %d exceeds limit %d: %w", capLen, MaxSnapLen, ErrCorrupt)
	}
	if ifid >= len(r.ifaces) {
		return nil, ci, fmt.Errorf("pcapng: packet refers to interface %d of %d: %w", ifid, len(r.ifaces), ErrCorrupt)
	}
	in := &r.ifaces[ifid]
	if in.ltErr != nil {
		return nil, ci, in.ltErr
	}
	if in.lt != r.lt {
		return nil, ci, fmt.Errorf("pcapng: interface %d has link type %d, the file's first has %d: mixed link types are not supported: %w",
			ifid, in.lt, r.lt, ErrCorrupt)
	}
	if typ != ngBlockSPB {
		ci.Timestamp = in.timestamp(ts)
	}
	ci.CaptureLength = int(capLen)
	ci.Length = int(max(origLen, capLen))
	ci.InterfaceIndex = ifid
	return data, ci, nil
}

// timestamp converts a timestamp in interface ticks to a time.Time.
func (in *ngInterface) timestamp(ts uint64) time.Time {
	sec, frac := ts/in.unitsPerS, ts%in.unitsPerS
	hi, lo := bits.Mul64(frac, 1e9)
	nsec, _ := bits.Div64(hi, lo, in.unitsPerS) // frac < unitsPerS, so no overflow
	return time.Unix(int64(sec)+in.offsetSecs, int64(nsec)).UTC()
}
