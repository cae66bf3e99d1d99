package tls

import (
	"fmt"

	"github.com/patchgate/patchgate/dataplane"
	"github.com/patchgate/patchgate/dataplane/analyzer"
)

// handshakeBytes feeds plaintext handshake-record body bytes into the
// handshake message reassembler of d. Messages may span records and a record
// may hold several messages.
func (a *Analyzer) handshakeBytes(dir dataplane.Direction, d *recv, p []byte, sink analyzer.Sink) error {
	if d.hsDisabled {
		return nil
	}
	for len(p) > 0 {
		if !d.hsIn {
			if d.hsHdrLen == 0 {
				d.hsRecVer = d.recVersion
			}
			n := copy(d.hsHdr[d.hsHdrLen:], p)
			d.hsHdrLen += n
			p = p[n:]
			if d.hsHdrLen < len(d.hsHdr) {
				return nil
			}
			if err := a.startMessage(dir, d, sink); err != nil {
				return err
			}
			continue
		}
		n := min(d.hsLeft, len(p))
		if d.hsKeep {
			room := MaxHandshakeMessage - len(d.hsBuf)
			d.hsBuf = append(d.hsBuf, p[:min(n, room)]...)
		}
		d.hsLeft -= n
		p = p[n:]
		if d.hsLeft == 0 {
			a.finishMessage(dir, d, sink)
		}
	}
	return nil
}

// startMessage handles a complete handshake header in d.hsHdr.
func (a *Analyzer) startMessage(dir dataplane.Direction, d *recv, sink analyzer.Sink) error {
	d.hsHdrLen = 0
	d.hsType = d.hsHdr[0]
	d.hsLen = int(d.hsHdr[1])<<16 | int(d.hsHdr[2])<<8 | int(d.hsHdr[3])
	d.hsLeft = d.hsLen
	d.hsIn = true
	d.hsBuf = d.hsBuf[:0]
	ev := &a.evHS
	*ev = Handshake{
		MsgType:           int(d.hsType),
		Length:            d.hsLen,
		FromClient:        dir == dataplane.ToServer,
		Index:             d.hsIndex,
		HandshakeComplete: a.c.complete,
	}
	d.hsIndex++
	sink.Event(ev)
	switch d.hsType {
	case HandshakeClientHello, HandshakeServerHello:
		if d.hsLen > MaxHandshakeMessage {
			d.hsIn = false
			return a.violation(dir, d, sink, "tls.handshake_too_long",
				fmt.Sprintf("handshake message type %d of %d bytes exceeds %d", d.hsType, d.hsLen, MaxHandshakeMessage))
		}
		d.hsKeep = true
	case HandshakeCertificate:
		d.hsKeep = true
	default:
		d.hsKeep = false
	}
	if d.hsLeft == 0 {
		a.finishMessage(dir, d, sink)
	}
	return nil
}

// finishMessage handles a complete handshake message.
func (a *Analyzer) finishMessage(dir dataplane.Direction, d *recv, sink analyzer.Sink) {
	d.hsIn = false
	switch d.hsType {
	case HandshakeClientHello:
		a.parseClientHello(dir, d, sink)
	case HandshakeServerHello:
		a.parseServerHello(dir, d, sink)
	case HandshakeCertificate:
		a.parseCertificate(dir, d, sink)
	case HandshakeServerHelloDone:
		if dir == dataplane.ToClient {
			a.c.serverHelloDone = true
		}
	case HandshakeClientKeyExchange:
		if dir == dataplane.ToServer {
			a.c.keyExchange = true
		}
	}
	d.hsKeep = false
	d.releaseBuf()
}

// parseCertificate emits tls.certificate for the (TLS 1.2-style) message in
// d.hsBuf: certificate_list<0..2^24-1> of ASN.1Cert<1..2^24-1>.
func (a *Analyzer) parseCertificate(dir dataplane.Direction, d *recv, sink analyzer.Sink) {
	ev := &a.evCert
	*ev = Certificate{
		FromClient: dir == dataplane.ToServer,
		Length:     d.hsLen,
		Sizes:      ev.Sizes[:0],
		Truncated:  d.hsLen > len(d.hsBuf),
	}
	b := d.hsBuf
	if len(b) < 3 {
		ev.Malformed = !ev.Truncated
		sink.Event(ev)
		return
	}
	ev.ListLength = int(b[0])<<16 | int(b[1])<<8 | int(b[2])
	if ev.ListLength != d.hsLen-3 {
		ev.Malformed = true
	}
	b = b[3:]
	for len(b) >= 3 {
		n := int(b[0])<<16 | int(b[1])<<8 | int(b[2])
		b = b[3:]
		if n > len(b) && !ev.Truncated {
			ev.Malformed = true
			break
		}
		ev.Count++
		if len(ev.Sizes) < MaxListItems {
			ev.Sizes = append(ev.Sizes, n)
		}
		ev.MaxSize = max(ev.MaxSize, n)
		if n > len(b) {
			break
		}
		b = b[n:]
	}
	if len(b) > 0 && !ev.Truncated {
		ev.Malformed = true
	}
	sink.Event(ev)
}

// startSSLv2 handles the 5-byte start of an SSLv2-compatible ClientHello:
// 2-byte length with the high bit set, msg_type 1, 2-byte version.
func (a *Analyzer) startSSLv2(dir dataplane.Direction, d *recv, sink analyzer.Sink) error {
	h := d.hdr
	length := int(h[0]&0x7f)<<8 | int(h[1])
	version := uint16(h[3])<<8 | uint16(h[4])
	if h[2] != HandshakeClientHello || length < minSSLv2Hello || !(version == 0x0002 || (h[3] == 3 && h[4] <= 4)) {
		d.recV2 = false
		return a.violation(dir, d, sink, "tls.bad_sslv2_hello",
			fmt.Sprintf("SSLv2 record: length %d, type %d, version 0x%04x", length, h[2], version))
	}
	d.inRecord = true
	d.recType = ContentHandshake
	d.recVersion = version
	d.recLen = length
	d.recLeft = length - 3 // msg_type and version were in the "header"
	d.recLost = false
	d.recEnc = false
	d.hsBuf = d.hsBuf[:0]
	a.emitRecord(dir, d, sink)
	if d.recLeft == 0 {
		return a.endRecord(dir, d, sink)
	}
	return nil
}

// finishSSLv2 parses the body of an SSLv2 ClientHello (RFC 6101 E.1, RFC 5246
// E.2): cipher_spec_length, session_id_length, challenge_length, then the
// cipher specs (3 bytes each), the session id and the challenge.
func (a *Analyzer) finishSSLv2(dir dataplane.Direction, d *recv, sink analyzer.Sink) error {
	b := d.hsBuf
	ev := a.resetClientHello(dir)
	ev.Length = d.recLen
	ev.RecordVersion = int(d.recVersion)
	ev.Version = int(d.recVersion)
	ev.MaxVersion = ev.Version
	ev.SSLv2 = true
	if len(b) < 6 || d.recLost {
		ev.Malformed = true
	} else {
		specLen := int(b[0])<<8 | int(b[1])
		sidLen := int(b[2])<<8 | int(b[3])
		chLen := int(b[4])<<8 | int(b[5])
		b = b[6:]
		ev.SessionIDLength = sidLen
		if specLen%3 != 0 || specLen+sidLen+chLen != len(b) {
			ev.Malformed = true
		}
		specs := b[:min(specLen, len(b))]
		for len(specs) >= 3 {
			ev.CipherSuiteCount++
			if len(ev.CipherSuites) < MaxListItems {
				ev.CipherSuites = append(ev.CipherSuites, int(specs[0])<<16|int(specs[1])<<8|int(specs[2]))
			}
			specs = specs[3:]
		}
	}
	a.noteClientHello(ev)
	d.releaseBuf()
	sink.Event(ev)
	if d.recVersion == 0x0002 {
		// pure SSLv2: the rest of the flow is SSLv2 framing, not followed
		a.c.opaque = true
	}
	return nil
}
