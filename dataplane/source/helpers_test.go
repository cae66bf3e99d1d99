package source

import (
	"encoding/binary"
	"time"

	"github.com/google/gopacket"
)

// byteOrder is binary.LittleEndian or binary.BigEndian.
type byteOrder interface {
	binary.ByteOrder
	binary.AppendByteOrder
}

var baseTime = time.Date(2026, 11, 3, 9, 30, 0, 0, time.UTC)

// testFrames returns n distinct frames with microsecond timestamps (exact in
// every format) and one frame whose original length exceeds its capture.
func testFrames(n int) []Frame {
	frames := make([]Frame, n)
	for i := range frames {
		data := make([]byte, 14+i*37%300)
		for j := range data {
			data[j] = byte(i*7 + j)
		}
		ci := gopacket.CaptureInfo{
			Timestamp:     baseTime.Add(time.Duration(i)*1500*time.Millisecond + time.Duration(i*13)*time.Microsecond),
			CaptureLength: len(data),
			Length:        len(data),
		}
		if i == 1 {
			ci.Length = len(data) + 1000 // snap-length truncated capture
		}
		frames[i] = Frame{Data: data, CI: ci}
	}
	return frames
}

// pcapBytes builds a classic pcap file by hand, in either byte order and
// timestamp resolution.
func pcapBytes(order byteOrder, nano bool, linkType uint32, frames []Frame) []byte {
	magic := uint32(0xa1b2c3d4)
	if nano {
		magic = 0xa1b23c4d
	}
	b := order.AppendUint32(nil, magic)
	b = order.AppendUint16(b, 2)
	b = order.AppendUint16(b, 4)
	b = order.AppendUint32(b, 0)
	b = order.AppendUint32(b, 0)
	b = order.AppendUint32(b, 65535)
	b = order.AppendUint32(b, linkType)
	for _, f := range frames {
		frac := uint32(f.CI.Timestamp.Nanosecond())
		if !nano {
			frac /= 1000
		}
		b = order.AppendUint32(b, uint32(f.CI.Timestamp.Unix()))
		b = order.AppendUint32(b, frac)
		b = order.AppendUint32(b, uint32(len(f.Data)))
		b = order.AppendUint32(b, uint32(f.CI.Length))
		b = append(b, f.Data...)
	}
	return b
}

// ngFile builds pcapng streams block by block.
type ngFile struct {
	order byteOrder
	b     []byte
}

func (f *ngFile) block(typ uint32, body []byte) *ngFile {
	for len(body)%4 != 0 {
		body = append(body, 0)
	}
	total := uint32(12 + len(body))
	f.b = f.order.AppendUint32(f.b, typ)
	f.b = f.order.AppendUint32(f.b, total)
	f.b = append(f.b, body...)
	f.b = f.order.AppendUint32(f.b, total)
	return f
}

func (f *ngFile) shb() *ngFile {
	body := f.order.AppendUint32(nil, 0x1a2b3c4d)
	body = f.order.AppendUint16(body, 1)
	body = f.order.AppendUint16(body, 0)
	body = f.order.AppendUint64(body, ^uint64(0)) // section length unknown
	return f.block(0x0a0d0d0a, body)
}

// opt encodes one option (padded).
func (f *ngFile) opt(code uint16, v []byte) []byte {
	o := f.order.AppendUint16(nil, code)
	o = f.order.AppendUint16(o, uint16(len(v)))
	o = append(o, v...)
	for len(o)%4 != 0 {
		o = append(o, 0)
	}
	return o
}

func (f *ngFile) idb(lt uint16, snap uint32, opts ...[]byte) *ngFile {
	body := f.order.AppendUint16(nil, lt)
	body = f.order.AppendUint16(body, 0)
	body = f.order.AppendUint32(body, snap)
	for _, o := range opts {
		body = append(body, o...)
	}
	if len(opts) > 0 {
		body = append(body, 0, 0, 0, 0) // opt_endofopt
	}
	return f.block(1, body)
}

// epb appends an enhanced packet block with a timestamp in ticks.
func (f *ngFile) epb(ifid uint32, ticks uint64, data []byte, origLen int) *ngFile {
	body := f.order.AppendUint32(nil, ifid)
	body = f.order.AppendUint32(body, uint32(ticks>>32))
	body = f.order.AppendUint32(body, uint32(ticks))
	body = f.order.AppendUint32(body, uint32(len(data)))
	body = f.order.AppendUint32(body, uint32(origLen))
	body = append(body, data...)
	return f.block(6, body)
}

func (f *ngFile) opb(ifid uint16, ticks uint64, data []byte) *ngFile {
	body := f.order.AppendUint16(nil, ifid)
	body = f.order.AppendUint16(body, 0)
	body = f.order.AppendUint32(body, uint32(ticks>>32))
	body = f.order.AppendUint32(body, uint32(ticks))
	body = f.order.AppendUint32(body, uint32(len(data)))
	body = f.order.AppendUint32(body, uint32(len(data)))
	body = append(body, data...)
	return f.block(2, body)
}

func (f *ngFile) spb(origLen uint32, data []byte) *ngFile {
	return f.block(3, append(f.order.AppendUint32(nil, origLen), data...))
}

// pcapngBytes builds a pcapng file with one Ethernet interface whose
// timestamps have resolution 10^-exp seconds.
func pcapngBytes(order byteOrder, exp uint8, linkType uint16, frames []Frame) []byte {
	f := &ngFile{order: order}
	f.shb()
	var opts [][]byte
	if exp != 6 {
		opts = append(opts, f.opt(9, []byte{exp}))
	}
	f.idb(linkType, 0, opts...)
	f.block(5, make([]byte, 12)) // an interface statistics block, to be skipped
	unit := uint64(1)
	for range exp {
		unit *= 10
	}
	for _, fr := range frames {
		ts := fr.CI.Timestamp
		ticks := uint64(ts.Unix())*unit + uint64(ts.Nanosecond())*unit/1e9
		f.epb(0, ticks, fr.Data, fr.CI.Length)
	}
	return f.b
}
