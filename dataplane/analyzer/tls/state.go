package tls

import (
	"errors"
	"fmt"

	"github.com/patchgate/patchgate/dataplane/wire"
)

// stateVersion is the first byte of an exported state; bump it when the
// layout changes.
const stateVersion = 1

// maxCounter bounds imported counters so that arithmetic on them cannot overflow.
const maxCounter = 1 << 62

// conn flag bits.
const (
	cfOffersTLS13 = 1 << iota
	cfEncThenMAC
	cfTruncatedHMAC
	cfClientHeartbeat
	cfServerHeartbeat
	cfTLS13
	cfComplete
	cfKeyExchange
	cfServerHelloDone
	cfOpaque
	cfAll = 1<<iota - 1
)

// recv flag bits.
const (
	rfInRecord = 1 << iota
	rfRecEnc
	rfRecV2
	rfRecLost
	rfCandidate
	rfTentative
	rfHBEmitted
	rfSentEnc
	rfMidstream
	rfResync
	rfStopped
	rfResyncFail
	rfHsIn
	rfHsKeep
	rfHsDisabled
	rfCCSSeen
	rfAll = 1<<iota - 1
)

var errState = errors.New("dataplane/tls: bad state")

func flag(v bool, bit uint64) uint64 {
	if v {
		return bit
	}
	return 0
}

// MarshalState implements analyzer.Analyzer.
func (a *Analyzer) MarshalState(dst []byte) []byte {
	c := &a.c
	dst = append(dst, stateVersion)
	dst = wire.AppendUvarint(dst, flag(c.offersTLS13, cfOffersTLS13)|flag(c.encThenMAC, cfEncThenMAC)|
		flag(c.truncatedHMAC, cfTruncatedHMAC)|flag(c.clientHeartbeat, cfClientHeartbeat)|
		flag(c.serverHeartbeat, cfServerHeartbeat)|flag(c.tls13, cfTLS13)|flag(c.complete, cfComplete)|
		flag(c.keyExchange, cfKeyExchange)|flag(c.serverHelloDone, cfServerHelloDone)|flag(c.opaque, cfOpaque))
	dst = wire.AppendUvarint(dst, uint64(c.clientHellos))
	dst = wire.AppendUvarint(dst, uint64(c.serverHellos))
	dst = wire.AppendUvarint(dst, uint64(c.clientVersion))
	dst = wire.AppendUvarint(dst, uint64(c.serverVersion))
	dst = wire.AppendUvarint(dst, uint64(c.cipherSuite))
	dst = wire.AppendUvarint(dst, uint64(c.compression))
	for i := range a.dir {
		dst = a.dir[i].marshal(dst)
	}
	return dst
}

func (d *recv) marshal(dst []byte) []byte {
	dst = wire.AppendUvarint(dst, flag(d.inRecord, rfInRecord)|flag(d.recEnc, rfRecEnc)|flag(d.recV2, rfRecV2)|
		flag(d.recLost, rfRecLost)|flag(d.candidate, rfCandidate)|flag(d.tentative, rfTentative)|
		flag(d.hbEmitted, rfHBEmitted)|flag(d.sentEnc, rfSentEnc)|flag(d.midstream, rfMidstream)|
		flag(d.resync, rfResync)|flag(d.stopped, rfStopped)|flag(d.resyncFail, rfResyncFail)|
		flag(d.hsIn, rfHsIn)|flag(d.hsKeep, rfHsKeep)|flag(d.hsDisabled, rfHsDisabled)|flag(d.ccsSeen, rfCCSSeen))
	dst = wire.AppendBytes(dst, d.hdr[:d.hdrLen])
	dst = append(dst, d.recType, d.crypto, d.hsType)
	dst = wire.AppendUvarint(dst, uint64(d.recVersion))
	dst = wire.AppendUvarint(dst, uint64(d.recLen))
	dst = wire.AppendUvarint(dst, uint64(d.recLeft))
	dst = wire.AppendUvarint(dst, uint64(d.recIndex))
	dst = wire.AppendBytes(dst, d.body[:d.bodyLen])
	dst = wire.AppendUvarint(dst, uint64(d.scanned))
	dst = wire.AppendBytes(dst, d.hsHdr[:d.hsHdrLen])
	dst = wire.AppendUvarint(dst, uint64(d.hsLen))
	dst = wire.AppendUvarint(dst, uint64(d.hsLeft))
	dst = wire.AppendUvarint(dst, uint64(d.hsRecVer))
	dst = wire.AppendBytes(dst, d.hsBuf)
	dst = wire.AppendUvarint(dst, uint64(d.hsIndex))
	dst = wire.AppendBytes(dst, d.alert[:d.alertLen])
	dst = wire.AppendUvarint(dst, uint64(d.ccsIndex))
	dst = wire.AppendUvarint(dst, uint64(d.hbIndex))
	dst = wire.AppendUvarint(dst, uint64(d.hbLast+1))
	return dst
}

// readUint reads an unsigned varint and checks it is at most limit.
func readUint(r *wire.Reader, limit uint64, what string) uint64 {
	v := r.Uvarint()
	if r.Err() == nil && v > limit {
		r.Fail(fmt.Errorf("%w: %s %d exceeds %d", errState, what, v, limit))
		return 0
	}
	return v
}

// UnmarshalState implements analyzer.Analyzer. It validates every field and
// the relations between them, so that a restored analyzer cannot misbehave.
func (a *Analyzer) UnmarshalState(src []byte) error {
	r := wire.NewReader(src)
	if v := r.Byte(); r.Err() == nil && v != stateVersion {
		return fmt.Errorf("dataplane/tls: state version %d, want %d: %w", v, stateVersion, errState)
	}
	var n Analyzer
	c := &n.c
	f := readUint(r, cfAll, "conn flags")
	c.offersTLS13 = f&cfOffersTLS13 != 0
	c.encThenMAC = f&cfEncThenMAC != 0
	c.truncatedHMAC = f&cfTruncatedHMAC != 0
	c.clientHeartbeat = f&cfClientHeartbeat != 0
	c.serverHeartbeat = f&cfServerHeartbeat != 0
	c.tls13 = f&cfTLS13 != 0
	c.complete = f&cfComplete != 0
	c.keyExchange = f&cfKeyExchange != 0
	c.serverHelloDone = f&cfServerHelloDone != 0
	c.opaque = f&cfOpaque != 0
	c.clientHellos = int(readUint(r, maxCounter, "client hellos"))
	c.serverHellos = int(readUint(r, maxCounter, "server hellos"))
	c.clientVersion = uint16(readUint(r, 0xffff, "client version"))
	c.serverVersion = uint16(readUint(r, 0xffff, "server version"))
	c.cipherSuite = uint16(readUint(r, 0xffff, "cipher suite"))
	c.compression = uint8(readUint(r, 0xff, "compression"))
	for i := range n.dir {
		n.dir[i].unmarshal(r)
	}
	if err := r.Done(); err != nil {
		return fmt.Errorf("dataplane/tls: state: %w", err)
	}
	for i := range n.dir {
		if err := n.dir[i].check(); err != nil {
			return fmt.Errorf("dataplane/tls: state of direction %d: %w", i, err)
		}
	}
	// keep the reused event slices of a
	n.evRecord, n.evHS, n.evCH, n.evSH, n.evCert = a.evRecord, a.evHS, a.evCH, a.evSH, a.evCert
	for i := range n.dir {
		if n.dir[i].hsBuf == nil {
			n.dir[i].hsBuf = a.dir[i].hsBuf[:0]
		}
	}
	*a = n
	return nil
}

func (d *recv) unmarshal(r *wire.Reader) {
	f := readUint(r, rfAll, "direction flags")
	d.inRecord = f&rfInRecord != 0
	d.recEnc = f&rfRecEnc != 0
	d.recV2 = f&rfRecV2 != 0
	d.recLost = f&rfRecLost != 0
	d.candidate = f&rfCandidate != 0
	d.tentative = f&rfTentative != 0
	d.hbEmitted = f&rfHBEmitted != 0
	d.sentEnc = f&rfSentEnc != 0
	d.midstream = f&rfMidstream != 0
	d.resync = f&rfResync != 0
	d.stopped = f&rfStopped != 0
	d.resyncFail = f&rfResyncFail != 0
	d.hsIn = f&rfHsIn != 0
	d.hsKeep = f&rfHsKeep != 0
	d.hsDisabled = f&rfHsDisabled != 0
	d.ccsSeen = f&rfCCSSeen != 0
	d.hdrLen = copy(d.hdr[:], r.Bytes(recordHeaderLen))
	d.recType = r.Byte()
	d.crypto = r.Byte()
	d.hsType = r.Byte()
	d.recVersion = uint16(readUint(r, 0xffff, "record version"))
	d.recLen = int(readUint(r, maxSSLv2Length, "record length"))
	d.recLeft = int(readUint(r, maxSSLv2Length, "record bytes left"))
	d.recIndex = int(readUint(r, maxCounter, "record index"))
	d.bodyLen = copy(d.body[:], r.Bytes(len(d.body)))
	d.scanned = int(readUint(r, MaxResyncScan, "resync scan"))
	d.hsHdrLen = copy(d.hsHdr[:], r.Bytes(len(d.hsHdr)-1))
	d.hsLen = int(readUint(r, 1<<24-1, "handshake length"))
	d.hsLeft = int(readUint(r, 1<<24-1, "handshake bytes left"))
	d.hsRecVer = uint16(readUint(r, 0xffff, "handshake record version"))
	d.hsBuf = r.Bytes(MaxHandshakeMessage)
	d.hsIndex = int(readUint(r, maxCounter, "handshake index"))
	d.alertLen = copy(d.alert[:], r.Bytes(len(d.alert)-1))
	d.ccsIndex = int(readUint(r, maxCounter, "ccs index"))
	d.hbIndex = int(readUint(r, maxCounter, "heartbeat index"))
	d.hbLast = int(readUint(r, MaxRecordLength+1, "heartbeat length")) - 1
}

// check validates the relations between the fields of d.
func (d *recv) check() error {
	bad := func(what string) error { return fmt.Errorf("%w: %s", errState, what) }
	if d.crypto > cryptoUnknown {
		return bad("crypto state")
	}
	if d.inRecord {
		if d.hdrLen != 0 || d.resync {
			return bad("header bytes inside a record")
		}
		if d.recLeft > d.recLen {
			return bad("record bytes left exceed its length")
		}
		if d.recV2 {
			if d.recType != ContentHandshake || d.recLen < minSSLv2Hello || len(d.hsBuf) > d.recLen-3-d.recLeft {
				return bad("SSLv2 record")
			}
		} else if d.recType < ContentChangeCipherSpec || d.recType > ContentHeartbeat || d.recLen > MaxRecordLength {
			return bad("record type or length")
		}
		if d.bodyLen > d.recLen-d.recLeft {
			return bad("record body prefix")
		}
	} else {
		if d.candidate || (d.recV2 && d.hdrLen == 0) || d.bodyLen != 0 {
			return bad("record flags outside a record")
		}
		if d.hdrLen == recordHeaderLen && !d.resync {
			return bad("complete header not started")
		}
	}
	if d.hsIn {
		if d.hsHdrLen != 0 || d.hsLeft > d.hsLen || d.hsLeft == 0 {
			return bad("handshake message state")
		}
		if !d.hsKeep && len(d.hsBuf) != 0 {
			return bad("handshake buffer of an unkept message")
		}
		if d.hsKeep && len(d.hsBuf) != min(d.hsLen-d.hsLeft, MaxHandshakeMessage) {
			return bad("handshake buffer length")
		}
	} else if !d.recV2 && (d.hsKeep || len(d.hsBuf) != 0) {
		return bad("handshake buffer outside a message")
	}
	return nil
}
