// Package tls is the TLS analyzer: it follows the record layer of a TLS (or
// SSL 3.0) connection in both directions, reassembles plaintext handshake
// messages, parses ClientHello, ServerHello and Certificate, and reports
// ChangeCipherSpec, alerts and heartbeat messages (RFC 6520) as events that
// virtual patches can test. After the switch to encryption only record-level
// facts are known, and the events say so. It never decrypts anything.
package tls

import (
	"errors"
	"fmt"

	"github.com/patchgate/patchgate/dataplane"
	"github.com/patchgate/patchgate/dataplane/analyzer"
)

// Limits. Each bounds memory or work an attacker can cause per flow.
const (
	// MaxRecordLength is the largest record body accepted: 2^14 plaintext
	// plus 2048 bytes of expansion, the TLSCiphertext limit of RFC 5246 §6.2.3.
	// A longer record is a protocol violation.
	MaxRecordLength = 1<<14 + 2048
	// MaxHandshakeMessage bounds handshake reassembly. ClientHello and
	// ServerHello longer than this are violations (real ones are a few KiB);
	// a longer Certificate is parsed on its first MaxHandshakeMessage bytes.
	MaxHandshakeMessage = 64 << 10
	// MaxListItems bounds the cipher suites, certificate sizes and other
	// integer lists kept in one event (counts continue past it).
	MaxListItems = 512
	// MaxExtensions bounds the extension types kept in one event.
	MaxExtensions = 256
	// MaxNames bounds the server names and ALPN protocols kept in one event.
	MaxNames = 16
	// MaxNameLength bounds one kept server name or ALPN protocol; longer ones
	// are cut.
	MaxNameLength = 1024
	// MaxResyncScan bounds how many bytes are searched for a record header
	// after a gap before the analyzer gives up on the flow. A live TLS stream
	// has a header at least every MaxRecordLength+5 bytes.
	MaxResyncScan = 4 * (MaxRecordLength + recordHeaderLen)
	// MinHeartbeatLength is the smallest conforming heartbeat message:
	// type (1) + payload_length (2) + empty payload + 16 bytes of padding.
	MinHeartbeatLength = 1 + 2 + 16

	recordHeaderLen = 5
	maxSSLv2Length  = 0x7fff
	// minSSLv2Hello: msg_type, version, three 2-byte lengths.
	minSSLv2Hello = 9
)

var (
	errStopped = errors.New("dataplane/tls: direction stopped after a protocol violation")
	errResync  = errors.New("dataplane/tls: no record header found after a gap")
)

// cryptoState says how a direction's record bodies are protected.
const (
	cryptoPlain   = 0 // not switched yet
	cryptoOn      = 1 // switched (CCS, or TLS 1.3 keys)
	cryptoUnknown = 2 // a gap may have hidden the switch
)

// recv is the record-layer and handshake-layer state of one direction.
type recv struct {
	// record header accumulation (or resync window)
	hdr    [recordHeaderLen]byte
	hdrLen int

	inRecord   bool
	recType    uint8
	recVersion uint16
	recLen     int
	recLeft    int
	recEnc     bool
	recV2      bool
	recLost    bool // a gap inside the body: its contents are unknown
	candidate  bool // the current record was found by resync: skipped silently
	tentative  bool // the next header confirms the resync (or restarts it)
	recIndex   int
	body       [3]byte // first bytes of a CCS or heartbeat body
	bodyLen    int
	hbEmitted  bool
	crypto     uint8
	sentEnc    bool // an encrypted record was sent after switching
	midstream  bool
	resync     bool
	scanned    int
	stopped    bool
	resyncFail bool

	// handshake layer (plaintext)
	hsHdr      [4]byte
	hsHdrLen   int
	hsIn       bool
	hsType     uint8
	hsLen      int
	hsLeft     int
	hsKeep     bool
	hsRecVer   uint16
	hsBuf      []byte
	hsDisabled bool
	hsIndex    int

	alert    [2]byte
	alertLen int

	ccsIndex int
	ccsSeen  bool
	hbIndex  int
	hbLast   int // record length of the last heartbeat record, -1 none
}

// conn is the state both directions share.
type conn struct {
	clientHellos    int
	serverHellos    int
	clientVersion   uint16 // legacy_version of the first ClientHello
	offersTLS13     bool
	serverVersion   uint16 // selected version, 0 before ServerHello
	cipherSuite     uint16
	compression     uint8
	encThenMAC      bool
	truncatedHMAC   bool
	clientHeartbeat bool
	serverHeartbeat bool
	tls13           bool
	complete        bool
	keyExchange     bool // client sent ClientKeyExchange
	serverHelloDone bool
	opaque          bool // pure SSLv2: nothing more is parsed
}

// Analyzer is the TLS analyzer of one flow. The zero value is not ready; use New.
type Analyzer struct {
	c   conn
	dir [2]recv

	// reused event values
	evRecord Record
	evHS     Handshake
	evCH     ClientHello
	evSH     ServerHello
	evCert   Certificate
	evCCS    ChangeCipherSpec
	evAlert  Alert
	evHB     Heartbeat
}

var _ analyzer.Analyzer = (*Analyzer)(nil)

// New returns a fresh analyzer for one flow.
func New() *Analyzer {
	a := &Analyzer{}
	a.dir[0].hbLast = -1
	a.dir[1].hbLast = -1
	return a
}

// Feed implements analyzer.Analyzer.
func (a *Analyzer) Feed(dir dataplane.Direction, data []byte, sink analyzer.Sink) error {
	dir &= 1
	d := &a.dir[dir]
	if d.resyncFail {
		return errResync
	}
	if d.stopped {
		return errStopped
	}
	if a.c.opaque {
		return nil
	}
	for len(data) > 0 {
		if d.resync {
			n, found := a.scan(d, data)
			data = data[n:]
			if !found {
				if d.resyncFail {
					return errResync
				}
				continue
			}
			if err := a.startRecord(dir, d, sink); err != nil {
				return err
			}
			continue
		}
		if !d.inRecord {
			if d.hdrLen == 0 && dir == dataplane.ToServer && d.recIndex == 0 && !d.midstream && data[0]&0x80 != 0 {
				d.recV2 = true
			}
			n := copy(d.hdr[d.hdrLen:], data)
			d.hdrLen += n
			data = data[n:]
			if d.hdrLen < recordHeaderLen {
				return nil
			}
			if err := a.startRecord(dir, d, sink); err != nil {
				return err
			}
			continue
		}
		n := d.recLeft
		if n > len(data) {
			n = len(data)
		}
		if err := a.recordBody(dir, d, data[:n], sink); err != nil {
			return err
		}
		d.recLeft -= n
		data = data[n:]
		if d.recLeft == 0 {
			if err := a.endRecord(dir, d, sink); err != nil {
				return err
			}
		}
		if a.c.opaque {
			return nil
		}
	}
	return nil
}

// violation reports code, stops the direction and returns the error Feed returns.
func (a *Analyzer) violation(dir dataplane.Direction, d *recv, sink analyzer.Sink, code, detail string) error {
	sink.Violation(dir, code, detail)
	d.stopped = true
	return fmt.Errorf("dataplane/tls: %s: %s: %w", code, detail, errStopped)
}

// plausibleHeader reports whether h looks like a TLS record header.
func plausibleHeader(h []byte) bool {
	if h[0] < ContentChangeCipherSpec || h[0] > ContentHeartbeat || h[1] != 3 || h[2] > 4 {
		return false
	}
	n := int(h[3])<<8 | int(h[4])
	return n <= MaxRecordLength
}

// scan searches data for a plausible record header after a gap. It returns
// the bytes consumed and whether d.hdr now holds a candidate header.
func (a *Analyzer) scan(d *recv, data []byte) (int, bool) {
	for i := 0; i < len(data); i++ {
		if d.scanned >= MaxResyncScan {
			d.resyncFail = true
			return i, false
		}
		d.scanned++
		if d.hdrLen == recordHeaderLen {
			copy(d.hdr[:], d.hdr[1:])
			d.hdrLen--
		}
		d.hdr[d.hdrLen] = data[i]
		d.hdrLen++
		if d.hdrLen == recordHeaderLen && plausibleHeader(d.hdr[:]) {
			d.resync = false
			d.candidate = true
			d.scanned = 0
			return i + 1, true
		}
	}
	return len(data), false
}

// startRecord handles a complete header in d.hdr.
func (a *Analyzer) startRecord(dir dataplane.Direction, d *recv, sink analyzer.Sink) error {
	h := d.hdr
	d.hdrLen = 0
	if d.recV2 {
		return a.startSSLv2(dir, d, sink)
	}
	length := int(h[3])<<8 | int(h[4])
	if !plausibleHeader(h[:]) {
		if d.tentative {
			// the resync candidate was wrong: search on
			d.tentative = false
			d.resync = true
			d.scanned = 0
			return nil
		}
		switch {
		case h[0] < ContentChangeCipherSpec || h[0] > ContentHeartbeat:
			return a.violation(dir, d, sink, "tls.bad_content_type", fmt.Sprintf("record content type %d", h[0]))
		case h[1] != 3 || h[2] > 4:
			return a.violation(dir, d, sink, "tls.bad_version", fmt.Sprintf("record version 0x%02x%02x", h[1], h[2]))
		default:
			return a.violation(dir, d, sink, "tls.record_too_long", fmt.Sprintf("record length %d exceeds %d", length, MaxRecordLength))
		}
	}
	d.inRecord = true
	d.recType = h[0]
	d.recVersion = uint16(h[1])<<8 | uint16(h[2])
	d.recLen = length
	d.recLeft = length
	d.recLost = false
	d.bodyLen = 0
	d.hbEmitted = false
	d.recEnc = a.encrypted(d, d.recType)
	d.tentative = false
	if d.candidate {
		// first record after a resync: confirmed only by a valid next header
		d.recLost = true
		if d.recLeft == 0 {
			return a.endRecord(dir, d, sink)
		}
		return nil
	}
	a.emitRecord(dir, d, sink)
	if d.recType == ContentHeartbeat && d.recEnc {
		a.emitHeartbeat(dir, d, sink)
	}
	if d.recLeft == 0 {
		return a.endRecord(dir, d, sink)
	}
	return nil
}

// encrypted reports whether a record of type t in direction d is protected.
func (a *Analyzer) encrypted(d *recv, t uint8) bool {
	switch {
	case t == ContentApplicationData:
		return true
	case d.crypto == cryptoUnknown:
		return true
	case d.crypto == cryptoOn:
		// TLS 1.3 keeps the middlebox-compatibility CCS in plaintext
		return !(a.c.tls13 && t == ContentChangeCipherSpec)
	}
	return false
}

func (a *Analyzer) emitRecord(dir dataplane.Direction, d *recv, sink analyzer.Sink) {
	ev := &a.evRecord
	*ev = Record{
		ContentType:       int(d.recType),
		Version:           int(d.recVersion),
		Length:            d.recLen,
		Encrypted:         d.recEnc,
		HandshakeComplete: a.c.complete,
		FromClient:        dir == dataplane.ToServer,
		Direction:         dir.String(),
		Index:             d.recIndex,
		SSLv2:             d.recV2,
		Midstream:         d.midstream,
	}
	sink.Event(ev)
}

// recordBody handles body bytes of the current record.
func (a *Analyzer) recordBody(dir dataplane.Direction, d *recv, p []byte, sink analyzer.Sink) error {
	if d.recLost {
		return nil
	}
	if d.recV2 {
		d.hsBuf = append(d.hsBuf, p...)
		return nil
	}
	if d.recEnc {
		return nil
	}
	switch d.recType {
	case ContentHandshake:
		return a.handshakeBytes(dir, d, p, sink)
	case ContentAlert:
		for _, b := range p {
			d.alert[d.alertLen] = b
			d.alertLen++
			if d.alertLen == 2 {
				d.alertLen = 0
				a.emitAlert(dir, d, sink)
			}
		}
	case ContentChangeCipherSpec, ContentHeartbeat:
		n := copy(d.body[d.bodyLen:], p)
		d.bodyLen += n
		if d.recType == ContentHeartbeat && d.bodyLen == 3 && !d.hbEmitted {
			a.emitHeartbeat(dir, d, sink)
		}
	}
	return nil
}

// endRecord finishes the current record.
func (a *Analyzer) endRecord(dir dataplane.Direction, d *recv, sink analyzer.Sink) error {
	err := a.closeRecord(dir, d, sink)
	d.bodyLen = 0
	d.hbEmitted = false
	return err
}

func (a *Analyzer) closeRecord(dir dataplane.Direction, d *recv, sink analyzer.Sink) error {
	d.inRecord = false
	if d.candidate {
		// the candidate record ended; the next header confirms or refutes it
		d.candidate = false
		d.tentative = true
		d.recLost = false
		return nil
	}
	if d.recV2 {
		d.recV2 = false
		d.recIndex++
		err := a.finishSSLv2(dir, d, sink)
		sink.Boundary(dir)
		return err
	}
	d.recIndex++
	if !d.recEnc {
		switch {
		case d.recType == ContentChangeCipherSpec:
			// a gap inside the body hides its value, not the switch
			a.changeCipherSpec(dir, d, sink, !d.recLost)
		case d.recType == ContentHeartbeat && !d.recLost && !d.hbEmitted:
			a.emitHeartbeat(dir, d, sink)
		}
	}
	if d.recEnc && d.crypto != cryptoPlain {
		d.sentEnc = true
		a.checkComplete()
	}
	sink.Boundary(dir)
	return nil
}

func (a *Analyzer) checkComplete() {
	s, c := &a.dir[dataplane.ToServer], &a.dir[dataplane.ToClient]
	if s.crypto != cryptoPlain && c.crypto != cryptoPlain && s.sentEnc && c.sentEnc {
		a.c.complete = true
	}
}

// changeCipherSpec handles the end of a plaintext CCS record, reporting it
// when emit is set.
func (a *Analyzer) changeCipherSpec(dir dataplane.Direction, d *recv, sink analyzer.Sink, emit bool) {
	if emit {
		a.emitChangeCipherSpec(dir, d, sink)
	}
	d.ccsIndex++
	d.ccsSeen = true
	// TLS 1.3 compatibility CCS switches nothing; nor does a client's early
	// one while a TLS 1.3 answer is still possible.
	if a.c.tls13 || (dir == dataplane.ToServer && a.c.offersTLS13 && a.c.serverHellos == 0) {
		return
	}
	if d.crypto == cryptoPlain {
		d.crypto = cryptoOn
	}
	d.resetHandshake()
}

func (a *Analyzer) emitChangeCipherSpec(dir dataplane.Direction, d *recv, sink analyzer.Sink) {
	peer := &a.dir[dir^1]
	ev := &a.evCCS
	value := -1
	if d.bodyLen > 0 {
		value = int(d.body[0])
	}
	*ev = ChangeCipherSpec{
		FromClient:           dir == dataplane.ToServer,
		Length:               d.recLen,
		Value:                value,
		Index:                d.ccsIndex,
		KeyExchangeSent:      a.c.keyExchange,
		ServerHelloDone:      a.c.serverHelloDone,
		PeerChangeCipherSpec: peer.ccsSeen,
		ServerHelloSeen:      a.c.serverHellos > 0,
		ServerVersion:        int(a.c.serverVersion),
		ClientOffersTLS13:    a.c.offersTLS13,
		HandshakeComplete:    a.c.complete,
		HandshakeGap:         d.hsDisabled || peer.hsDisabled,
	}
	sink.Event(ev)
}

// keepBufCap is the largest handshake buffer kept for reuse between
// messages; a larger one (a long certificate chain) is released so that idle
// flows stay small.
const keepBufCap = 4 << 10

func (d *recv) resetHandshake() {
	d.hsHdrLen = 0
	d.hsIn = false
	d.hsKeep = false
	d.releaseBuf()
	d.alertLen = 0
}

func (d *recv) releaseBuf() {
	if cap(d.hsBuf) > keepBufCap {
		d.hsBuf = nil
	} else {
		d.hsBuf = d.hsBuf[:0]
	}
}

func (a *Analyzer) emitAlert(dir dataplane.Direction, d *recv, sink analyzer.Sink) {
	ev := &a.evAlert
	*ev = Alert{
		FromClient:        dir == dataplane.ToServer,
		Level:             int(d.alert[0]),
		Description:       int(d.alert[1]),
		Fatal:             d.alert[0] == 2,
		HandshakeComplete: a.c.complete,
	}
	sink.Event(ev)
}

func (a *Analyzer) emitHeartbeat(dir dataplane.Direction, d *recv, sink analyzer.Sink) {
	d.hbEmitted = true
	ev := &a.evHB
	*ev = Heartbeat{
		FromClient:        dir == dataplane.ToServer,
		Direction:         dir.String(),
		Encrypted:         d.recEnc,
		HandshakeComplete: a.c.complete,
		RecordLength:      d.recLen,
		MessageType:       -1,
		PayloadLength:     -1,
		PayloadSize:       -1,
		PaddingLength:     -1,
		MinRecordLength:   a.minHeartbeatRecord(d.recEnc),
		PeerRecordLength:  a.dir[dir^1].hbLast,
		Negotiated:        a.c.clientHeartbeat && a.c.serverHeartbeat,
		Index:             d.hbIndex,
		Version:           int(d.recVersion),
		Midstream:         d.midstream,
	}
	if !d.recEnc {
		if d.bodyLen > 0 {
			ev.MessageType = int(d.body[0])
		}
		if d.bodyLen == 3 {
			pl := int(d.body[1])<<8 | int(d.body[2])
			room := d.recLen - 3
			ev.PayloadLength = pl
			ev.PayloadSize = min(pl, room)
			ev.PaddingLength = max(room-pl, 0)
		} else {
			ev.Truncated = true
		}
	}
	d.hbIndex++
	d.hbLast = d.recLen
	sink.Event(ev)
}

// Gap implements analyzer.Analyzer: n bytes of dir are lost. Inside a record
// body the record boundaries survive (only the body is unknown); otherwise the
// direction searches the following bytes for a plausible record header.
func (a *Analyzer) Gap(dir dataplane.Direction, n int, sink analyzer.Sink) {
	dir &= 1
	d := &a.dir[dir]
	if n <= 0 || d.stopped || d.resyncFail || a.c.opaque {
		return
	}
	if d.inRecord && !d.resync {
		if n <= d.recLeft {
			d.recLeft -= n
			d.recLost = true
			if d.recType == ContentHandshake || d.recV2 {
				d.hsDisabled = true
				d.resetHandshake()
			}
			if d.recLeft == 0 {
				_ = a.endRecord(dir, d, sink)
			}
			return
		}
	}
	// record boundaries are lost
	d.inRecord = false
	d.recLost = false
	d.bodyLen = 0
	d.hbEmitted = false
	d.recV2 = false
	d.candidate = false
	d.tentative = false
	d.hdrLen = 0
	d.resync = true
	d.midstream = true
	d.hsDisabled = true
	d.resetHandshake()
	if d.crypto == cryptoPlain {
		d.crypto = cryptoUnknown
	}
}

// End implements analyzer.Analyzer. A partial record at the end of a
// direction produces nothing more.
func (a *Analyzer) End(dir dataplane.Direction, sink analyzer.Sink) {}
