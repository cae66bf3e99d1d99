// Package smb is the SMB analyzer: it follows NetBIOS session framing on TCP
// ports 445 and 139 and parses SMB1 (enough for TRANSACTION, TRANSACTION2 and
// NT_TRANSACT with their secondaries), SMB2/3 headers and compounds, the
// NEGOTIATE, SESSION_SETUP, TREE_CONNECT, READ, WRITE and IOCTL commands, and
// the SMB 3.1.1 compression transform header. It emits smb.message,
// smb2.negotiate, smb2.compression_transform and smb1.trans events.
//
// The analyzer only buffers what it needs to parse headers (at most
// MaxBuffered bytes per direction) and streams through message bodies such as
// WRITE data. Its whole state, including the connection's negotiated dialect,
// limits and compression algorithms, can be exported and imported.
package smb

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/patchgate/patchgate/dataplane"
	"github.com/patchgate/patchgate/dataplane/analyzer"
)

// ErrNotSMB is returned by Feed when the stream stops being NetBIOS session
// traffic (an unknown NetBIOS message type); the analyzer gives up on the flow.
var ErrNotSMB = errors.New("not a NetBIOS session stream")

// stage is what the parser of one direction does with the message bytes it
// collects.
type stage uint8

const (
	stIdle       stage = iota // nothing more to parse: skip to the message end
	stProto                   // 4-byte protocol id
	stSMB1Hdr                 // SMB1 header and WordCount
	stSMB1Words               // SMB1 parameter words and ByteCount
	stSMB2Hdr                 // SMB2 header (of a compound member)
	stSMB2Body                // SMB2 fixed body part
	stCompHdr                 // compression transform header
	stChainHdr                // chained compression payload header
	stChainExtra              // OriginalPayloadSize or Pattern_V1 fields
	stTransform               // encryption transform header
	numStages
)

// payloadRec is one chained compression payload header.
type payloadRec struct {
	alg, flags uint16
	length     uint32
	orig       int64 // -1 when unknown
}

// chainState follows a chained compression transform across Feed calls.
type chainState struct {
	active    bool
	orig      uint32 // OriginalCompressedSegmentSize
	first     payloadRec
	count     int // payload headers walked
	total     int64
	malformed bool
	nKept     int
	kept      [MaxChainPayloads]payloadRec
	cur       payloadRec
	curEnd    int // message position where the current payload ends
}

// routeState sends the parameter and data bytes of the SMB1 transaction
// message being streamed to its transaction entry.
type routeState struct {
	active bool
	idx    int // index in the transaction table
	key    transKey
	cmd    byte
	// regions in message positions, and the displacement of their first byte
	pStart, pEnd int
	dStart, dEnd int
	pDisp, dDisp int64
	// the message's declared fields, for the event
	pCount, pOff, dCount, dOff int64
}

// dirState is the parser state of one direction.
type dirState struct {
	failed bool

	// resynchronisation after a gap: a sliding window over the stream
	resync bool
	win    [8]byte
	winN   int

	// NetBIOS framing
	nbHdr  [4]byte
	nbN    int
	inMsg  bool
	nbType byte
	msgLen int
	pos    int  // payload bytes of the current message consumed
	lost   bool // bytes of the current message were lost (gap)

	// collection of header bytes
	stage   stage
	buf     []byte
	bufBase int // message position of buf[0]
	want    int // collect until len(buf) == want (0: not collecting)
	skipTo  int // skip (and route) until pos reaches skipTo

	// SMB2 message within the NetBIOS message
	base       int // start of the current SMB2 message
	end        int // end of the current SMB2 message
	next       int // validated NextCommand, 0 for the last member
	index      int // compound index
	compressed bool

	ct chainState
	rt routeState
}

// connState is what the connection negotiated.
type connState struct {
	negotiated  bool
	dialect     uint16
	maxTransact uint32
	maxRead     uint32
	maxWrite    uint32
	compChained bool
	compAlgs    []uint16 // from the NEGOTIATE response, at most MaxAlgorithms
}

// Analyzer parses one SMB connection. It is used by one goroutine at a time.
type Analyzer struct {
	conn  connState
	dir   [2]dirState
	trans []transEntry

	// event values reused between calls (not state)
	msg     Message
	neg     Negotiate
	comp    CompressionTransform
	tr      Trans
	scratch []byte
}

var _ analyzer.Analyzer = (*Analyzer)(nil)

// New returns an analyzer for one connection.
func New() *Analyzer { return &Analyzer{} }

func le16(b []byte) uint16 { return binary.LittleEndian.Uint16(b) }
func le32(b []byte) uint32 { return binary.LittleEndian.Uint32(b) }
func le64(b []byte) uint64 { return binary.LittleEndian.Uint64(b) }

// isProto reports whether b starts with the protocol id c 'S' 'M' 'B'.
func isProto(b []byte, c byte) bool {
	return len(b) >= 4 && b[0] == c && b[1] == 'S' && b[2] == 'M' && b[3] == 'B'
}

// Feed implements analyzer.Analyzer.
func (a *Analyzer) Feed(dir dataplane.Direction, data []byte, sink analyzer.Sink) error {
	if dir > dataplane.ToClient {
		return fmt.Errorf("dataplane/smb: direction %d out of range", dir)
	}
	d := &a.dir[dir]
	if d.failed {
		return fmt.Errorf("dataplane/smb: flow abandoned earlier: %w", ErrNotSMB)
	}
	if d.resync {
		n, ok := d.scan(data)
		data = data[n:]
		if !ok {
			return nil
		}
		w := d.win
		d.win, d.winN, d.resync = [8]byte{}, 0, false
		if err := a.framed(dir, w[:], sink); err != nil {
			return err
		}
	}
	return a.framed(dir, data, sink)
}

// scan slides the resynchronisation window over data until it holds the start
// of a plausible SMB message; it returns the bytes consumed.
func (d *dirState) scan(data []byte) (int, bool) {
	for i, c := range data {
		if d.winN < len(d.win) {
			d.win[d.winN] = c
			d.winN++
		} else {
			copy(d.win[:], d.win[1:])
			d.win[7] = c
		}
		if d.winN == len(d.win) && plausibleStart(d.win[:]) {
			return i + 1, true
		}
	}
	return len(data), false
}

// plausibleStart reports whether b (8 bytes) is a NetBIOS session message
// header followed by an SMB protocol id and a length that can hold its header.
func plausibleStart(b []byte) bool {
	if b[0] != 0 || b[5] != 'S' || b[6] != 'M' || b[7] != 'B' {
		return false
	}
	l := int(b[1])<<16 | int(b[2])<<8 | int(b[3])
	switch b[4] {
	case 0xFF:
		return l >= smb1HeaderSize+3
	case 0xFE:
		return l >= smb2HeaderSize
	case 0xFC:
		return l >= compressHeaderSize
	case 0xFD:
		return l >= transformSize
	}
	return false
}

// framed processes bytes of a direction whose NetBIOS framing is known.
func (a *Analyzer) framed(dir dataplane.Direction, data []byte, sink analyzer.Sink) error {
	d := &a.dir[dir]
	for len(data) > 0 {
		if !d.inMsg {
			k := copy(d.nbHdr[d.nbN:], data)
			d.nbN += k
			data = data[k:]
			if d.nbN < len(d.nbHdr) {
				return nil
			}
			d.nbN = 0
			if err := a.startMessage(dir, sink); err != nil {
				d.failed = true
				return err
			}
			continue
		}
		n := d.msgLen - d.pos
		if n > len(data) {
			n = len(data)
		}
		a.consume(dir, data[:n], sink)
		data = data[n:]
		if d.pos >= d.msgLen {
			a.finishMessage(dir, sink)
		}
	}
	return nil
}

// startMessage handles a complete NetBIOS header.
func (a *Analyzer) startMessage(dir dataplane.Direction, sink analyzer.Sink) error {
	d := &a.dir[dir]
	t := d.nbHdr[0]
	l := int(d.nbHdr[1])<<16 | int(d.nbHdr[2])<<8 | int(d.nbHdr[3])
	switch t {
	case 0x00:
	case 0x81, 0x82, 0x83, 0x84, 0x85: // session request/responses, retarget, keepalive
		if l > MaxControlLength {
			sink.Violation(dir, "smb.netbios_control_length",
				fmt.Sprintf("NetBIOS message type 0x%02x of %d bytes", t, l))
		}
	default:
		sink.Violation(dir, "smb.netbios_bad_type", fmt.Sprintf("NetBIOS message type 0x%02x", t))
		return fmt.Errorf("dataplane/smb: NetBIOS message type 0x%02x: %w", t, ErrNotSMB)
	}
	if l == 0 {
		sink.Boundary(dir)
		return nil
	}
	d.inMsg, d.nbType, d.msgLen, d.pos, d.lost = true, t, l, 0, false
	d.ct.active, d.rt.active = false, false
	d.buf = d.buf[:0]
	d.want, d.bufBase, d.skipTo = 0, 0, 0
	d.base, d.end, d.next, d.index, d.compressed = 0, 0, 0, 0, false
	if t == 0x00 {
		d.stage = stProto
		d.collect(0, 4)
	} else {
		d.stage = stIdle
		d.skipTo = l
	}
	return nil
}

// collect asks for n bytes starting at message position at (clamped to the
// message and to MaxBuffered). It returns false if at lies behind.
func (d *dirState) collect(at, n int) bool {
	if at < d.pos || at > d.msgLen {
		return false
	}
	if n > MaxBuffered {
		n = MaxBuffered
	}
	if n > d.msgLen-at {
		n = d.msgLen - at
	}
	d.bufBase, d.skipTo, d.want = at, at, n
	d.buf = d.buf[:0]
	return true
}

// extend asks for buf to grow to total bytes (from bufBase), clamped to
// MaxBuffered and to the message position limit.
func (d *dirState) extend(total, limit int) {
	if total > MaxBuffered {
		total = MaxBuffered
	}
	if total > limit-d.bufBase {
		total = limit - d.bufBase
	}
	if total < len(d.buf) {
		total = len(d.buf)
	}
	d.want = total
}

// idle stops parsing the current message.
func (d *dirState) idle() {
	d.stage = stIdle
	d.want = 0
	if d.skipTo < d.msgLen {
		d.skipTo = d.msgLen
	}
}

// consume processes bytes inside the current NetBIOS message.
func (a *Analyzer) consume(dir dataplane.Direction, data []byte, sink analyzer.Sink) {
	d := &a.dir[dir]
	for len(data) > 0 {
		if d.pos < d.skipTo {
			k := d.skipTo - d.pos
			if k > len(data) {
				k = len(data)
			}
			if d.rt.active {
				a.route(dir, d.pos, data[:k])
			}
			d.pos += k
			data = data[k:]
			continue
		}
		if d.want > len(d.buf) {
			k := d.want - len(d.buf)
			if k > len(data) {
				k = len(data)
			}
			d.buf = append(d.buf, data[:k]...)
			d.pos += k
			data = data[k:]
			if len(d.buf) == d.want {
				a.step(dir, sink)
			}
			continue
		}
		d.skipTo = d.msgLen
	}
}

// step runs the parser stage on a completed collection, again as long as a
// stage asks for no more bytes than it already has.
func (a *Analyzer) step(dir dataplane.Direction, sink analyzer.Sink) {
	d := &a.dir[dir]
	for i := 0; i < int(numStages)*2; i++ { // each stage moves forward; bounded anyway
		d.want = 0
		switch d.stage {
		case stProto:
			a.onProto(dir, sink)
		case stSMB1Hdr:
			a.onSMB1Hdr(dir, sink)
		case stSMB1Words:
			a.onSMB1Words(dir, sink)
		case stSMB2Hdr:
			a.onSMB2Hdr(dir, sink)
		case stSMB2Body:
			a.onSMB2Body(dir, sink)
		case stCompHdr:
			a.onCompHdr(dir, sink)
		case stChainHdr:
			a.onChainHdr(dir, sink)
		case stChainExtra:
			a.onChainExtra(dir, sink)
		case stTransform:
			a.onTransform(dir, sink)
		default:
			d.idle()
		}
		if d.want == 0 || len(d.buf) < d.want {
			return
		}
	}
	d.idle()
}

// onProto dispatches on the protocol id.
func (a *Analyzer) onProto(dir dataplane.Direction, sink analyzer.Sink) {
	d := &a.dir[dir]
	if len(d.buf) < 4 || d.buf[1] != 'S' || d.buf[2] != 'M' || d.buf[3] != 'B' {
		sink.Violation(dir, "smb.unknown_protocol", "NetBIOS message without an SMB protocol id")
		d.idle()
		return
	}
	switch d.buf[0] {
	case 0xFF:
		d.stage = stSMB1Hdr
		d.extend(smb1HeaderSize+1, d.msgLen)
	case 0xFE:
		d.base, d.end, d.next, d.index, d.compressed = 0, d.msgLen, 0, 0, false
		d.stage = stSMB2Hdr
		d.extend(smb2HeaderSize, d.msgLen)
	case 0xFC:
		d.stage = stCompHdr
		d.extend(compressHeaderSize, d.msgLen)
	case 0xFD:
		d.stage = stTransform
		d.extend(transformSize, d.msgLen)
	default:
		sink.Violation(dir, "smb.unknown_protocol", fmt.Sprintf("protocol id 0x%02x 'SMB'", d.buf[0]))
		d.idle()
	}
}

// finishMessage ends the current NetBIOS message.
func (a *Analyzer) finishMessage(dir dataplane.Direction, sink analyzer.Sink) {
	d := &a.dir[dir]
	if d.ct.active && !d.lost {
		a.emitChain(dir, sink)
	}
	if d.rt.active {
		a.finishTransPart(dir, sink)
	}
	d.inMsg = false
	d.stage = stIdle
	d.want, d.skipTo, d.bufBase = 0, 0, 0
	d.buf = d.buf[:0]
	d.ct.active, d.rt.active = false, false
	d.base, d.end, d.next, d.index, d.compressed = 0, 0, 0, 0, false
	sink.Boundary(dir)
}

// Gap implements analyzer.Analyzer. A gap inside a message skips the rest of
// that message's parsing; a gap across a message end makes the direction
// search for the next plausible SMB message.
func (a *Analyzer) Gap(dir dataplane.Direction, n int, sink analyzer.Sink) {
	if dir > dataplane.ToClient || n <= 0 {
		return
	}
	d := &a.dir[dir]
	if d.failed {
		return
	}
	if d.resync {
		d.winN = 0
		return
	}
	if d.inMsg && n <= d.msgLen-d.pos {
		d.lost = true
		if d.rt.active {
			a.transGap(dir)
		}
		d.ct.active = false
		d.buf = d.buf[:0]
		d.pos += n
		d.idle()
		if d.pos >= d.msgLen {
			a.finishMessage(dir, sink)
		}
		return
	}
	if d.inMsg && d.rt.active {
		a.transGap(dir)
		a.finishTransPart(dir, sink)
	}
	d.inMsg, d.nbN, d.stage, d.want = false, 0, stIdle, 0
	d.buf = d.buf[:0]
	d.ct.active, d.rt.active = false, false
	d.resync, d.winN = true, 0
}

// End implements analyzer.Analyzer. When the client's direction ends, the
// SMB1 transactions still waiting for secondaries are reported as "end".
func (a *Analyzer) End(dir dataplane.Direction, sink analyzer.Sink) {
	if dir != dataplane.ToServer {
		return
	}
	d := &a.dir[dir]
	d.rt.active = false
	for len(a.trans) > 0 {
		a.emitTrans(0, "end", nil, sink)
		a.removeTrans(0)
	}
}
