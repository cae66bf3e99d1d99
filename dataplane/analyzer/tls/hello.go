package tls

import (
	"bytes"

	"github.com/patchgate/patchgate/dataplane"
	"github.com/patchgate/patchgate/dataplane/analyzer"
)

// Extension types the analyzer looks into (IANA TLS ExtensionType registry).
const (
	ExtServerName          = 0
	ExtTruncatedHMAC       = 4
	ExtSupportedGroups     = 10
	ExtSignatureAlgorithms = 13
	ExtHeartbeat           = 15
	ExtALPN                = 16
	ExtEncryptThenMAC      = 22
	ExtSupportedVersions   = 43
)

// helloRetryRandom is the ServerHello.random of a HelloRetryRequest
// (SHA-256 of "HelloRetryRequest", RFC 8446 §4.1.3).
var helloRetryRandom = []byte{
	0xcf, 0x21, 0xad, 0x74, 0xe5, 0x9a, 0x61, 0x11, 0xbe, 0x1d, 0x8c, 0x02, 0x1e, 0x65, 0xb8, 0x91,
	0xc2, 0xa2, 0x11, 0x16, 0x7a, 0xbb, 0x8c, 0x5e, 0x07, 0x9e, 0x09, 0xe2, 0xc8, 0xa8, 0x33, 0x9c,
}

// reader is a bounds-checked cursor over a handshake message; after the first
// short read ok is false and every read returns zero.
type reader struct {
	b  []byte
	ok bool
}

func (r *reader) u8() int {
	if !r.ok || len(r.b) < 1 {
		r.ok = false
		return 0
	}
	v := int(r.b[0])
	r.b = r.b[1:]
	return v
}

func (r *reader) u16() int {
	if !r.ok || len(r.b) < 2 {
		r.ok = false
		return 0
	}
	v := int(r.b[0])<<8 | int(r.b[1])
	r.b = r.b[2:]
	return v
}

func (r *reader) bytes(n int) []byte {
	if !r.ok || n < 0 || len(r.b) < n {
		r.ok = false
		return nil
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

// vec8 and vec16 read a vector with a 1- or 2-byte length prefix.
func (r *reader) vec8() reader  { return reader{b: r.bytes(r.u8()), ok: r.ok} }
func (r *reader) vec16() reader { return reader{b: r.bytes(r.u16()), ok: r.ok} }

// appendU16s appends the 16-bit values of r to dst (at most limit kept) and
// reports whether r held a whole number of them.
func appendU16s(dst []int, r reader, limit int) ([]int, bool) {
	for len(r.b) >= 2 {
		v := r.u16()
		if len(dst) < limit {
			dst = append(dst, v)
		}
	}
	return dst, r.ok && len(r.b) == 0
}

func cutName(b []byte) string {
	if len(b) > MaxNameLength {
		b = b[:MaxNameLength]
	}
	return string(b)
}

// resetClientHello clears the reused ClientHello event.
func (a *Analyzer) resetClientHello(dir dataplane.Direction) *ClientHello {
	ev := &a.evCH
	*ev = ClientHello{
		FromClient:          dir == dataplane.ToServer,
		Index:               a.c.clientHellos,
		CipherSuites:        ev.CipherSuites[:0],
		CompressionMethods:  ev.CompressionMethods[:0],
		Extensions:          ev.Extensions[:0],
		ServerNames:         ev.ServerNames[:0],
		ALPN:                ev.ALPN[:0],
		SupportedVersions:   ev.SupportedVersions[:0],
		SupportedGroups:     ev.SupportedGroups[:0],
		SignatureAlgorithms: ev.SignatureAlgorithms[:0],
	}
	return ev
}

// noteClientHello records what later events depend on.
func (a *Analyzer) noteClientHello(ev *ClientHello) {
	if a.c.clientHellos == 0 {
		a.c.clientVersion = uint16(ev.Version)
	}
	a.c.clientHellos++
	if ev.MaxVersion >= 0x0304 {
		a.c.offersTLS13 = true
	}
	a.c.clientHeartbeat = ev.Heartbeat
}

// parseClientHello parses the ClientHello in d.hsBuf (RFC 8446 §4.1.2).
func (a *Analyzer) parseClientHello(dir dataplane.Direction, d *recv, sink analyzer.Sink) {
	ev := a.resetClientHello(dir)
	ev.Length = d.hsLen
	ev.RecordVersion = int(d.hsRecVer)
	r := reader{b: d.hsBuf, ok: true}
	ev.Version = r.u16()
	ev.MaxVersion = ev.Version
	r.bytes(32)
	ev.SessionIDLength = len(r.vec8().b)
	cs := r.vec16()
	ev.CipherSuiteCount = len(cs.b) / 2
	var good bool
	ev.CipherSuites, good = appendU16s(ev.CipherSuites, cs, MaxListItems)
	ev.Malformed = !good
	for _, m := range r.vec8().b {
		if len(ev.CompressionMethods) < MaxListItems {
			ev.CompressionMethods = append(ev.CompressionMethods, int(m))
		}
	}
	if r.ok && len(r.b) > 0 {
		exts := r.vec16()
		if !a.clientExtensions(ev, exts) {
			ev.Malformed = true
		}
	}
	if !r.ok || len(r.b) != 0 {
		ev.Malformed = true
	}
	for _, v := range ev.SupportedVersions {
		if v&0xff00 == 0x0300 && v > ev.MaxVersion {
			ev.MaxVersion = v
		}
	}
	a.noteClientHello(ev)
	sink.Event(ev)
}

// clientExtensions parses the ClientHello extensions block; false if malformed.
func (a *Analyzer) clientExtensions(ev *ClientHello, r reader) bool {
	ok := r.ok
	for ok && len(r.b) > 0 {
		typ := r.u16()
		body := r.vec16()
		if !r.ok {
			return false
		}
		ev.ExtensionCount++
		if len(ev.Extensions) < MaxExtensions {
			for _, t := range ev.Extensions {
				if t == typ {
					ev.DuplicateExtension = true
				}
			}
			ev.Extensions = append(ev.Extensions, typ)
		}
		switch typ {
		case ExtServerName:
			list := body.vec16()
			for list.ok && len(list.b) > 0 {
				kind := list.u8()
				name := list.vec16()
				if !list.ok {
					break
				}
				if kind == 0 && len(ev.ServerNames) < MaxNames {
					s := cutName(name.b)
					if len(ev.ServerNames) == 0 {
						ev.ServerName = s
					}
					ev.ServerNames = append(ev.ServerNames, s)
				}
			}
			ok = ok && list.ok && len(body.b) == 0
		case ExtALPN:
			list := body.vec16()
			for list.ok && len(list.b) > 0 {
				p := list.vec8()
				if list.ok && len(ev.ALPN) < MaxNames {
					ev.ALPN = append(ev.ALPN, cutName(p.b))
				}
			}
			ok = ok && list.ok && len(body.b) == 0
		case ExtSupportedVersions:
			var good bool
			ev.SupportedVersions, good = appendU16s(ev.SupportedVersions, body.vec8(), MaxListItems)
			ok = ok && good && len(body.b) == 0
		case ExtSupportedGroups:
			var good bool
			ev.SupportedGroups, good = appendU16s(ev.SupportedGroups, body.vec16(), MaxListItems)
			ok = ok && good && len(body.b) == 0
		case ExtSignatureAlgorithms:
			var good bool
			ev.SignatureAlgorithms, good = appendU16s(ev.SignatureAlgorithms, body.vec16(), MaxListItems)
			ok = ok && good && len(body.b) == 0
		case ExtHeartbeat:
			ev.Heartbeat = true
			ev.HeartbeatMode = body.u8()
			ok = ok && body.ok && len(body.b) == 0
		}
	}
	return ok
}

// parseServerHello parses the ServerHello in d.hsBuf and records the
// negotiated parameters.
func (a *Analyzer) parseServerHello(dir dataplane.Direction, d *recv, sink analyzer.Sink) {
	ev := &a.evSH
	*ev = ServerHello{
		FromClient:    dir == dataplane.ToServer,
		Index:         a.c.serverHellos,
		Length:        d.hsLen,
		RecordVersion: int(d.hsRecVer),
		Extensions:    ev.Extensions[:0],
	}
	r := reader{b: d.hsBuf, ok: true}
	ev.Version = r.u16()
	ev.SelectedVersion = ev.Version
	random := r.bytes(32)
	ev.HelloRetryRequest = r.ok && bytes.Equal(random, helloRetryRandom)
	ev.SessionIDLength = len(r.vec8().b)
	ev.CipherSuite = r.u16()
	ev.CompressionMethod = r.u8()
	etm, trunc := false, false
	if r.ok && len(r.b) > 0 {
		exts := r.vec16()
		for exts.ok && len(exts.b) > 0 {
			typ := exts.u16()
			body := exts.vec16()
			if !exts.ok {
				break
			}
			ev.ExtensionCount++
			if len(ev.Extensions) < MaxExtensions {
				for _, t := range ev.Extensions {
					if t == typ {
						ev.DuplicateExtension = true
					}
				}
				ev.Extensions = append(ev.Extensions, typ)
			}
			switch typ {
			case ExtSupportedVersions:
				if v := body.u16(); body.ok {
					ev.SelectedVersion = v
				}
			case ExtALPN:
				list := body.vec16()
				p := list.vec8()
				if list.ok {
					ev.ALPN = cutName(p.b)
				}
			case ExtHeartbeat:
				ev.Heartbeat = true
				ev.HeartbeatMode = body.u8()
			case ExtEncryptThenMAC:
				etm = true
			case ExtTruncatedHMAC:
				trunc = true
			}
		}
		if !exts.ok {
			ev.Malformed = true
		}
	}
	if !r.ok || len(r.b) != 0 {
		ev.Malformed = true
	}
	a.c.serverHellos++
	if dir == dataplane.ToClient && !ev.Malformed {
		a.c.serverVersion = uint16(ev.SelectedVersion)
		a.c.cipherSuite = uint16(ev.CipherSuite)
		a.c.compression = uint8(ev.CompressionMethod)
		a.c.encThenMAC = etm
		a.c.truncatedHMAC = trunc
		a.c.serverHeartbeat = ev.Heartbeat
		if ev.SelectedVersion == 0x0304 && !ev.HelloRetryRequest {
			// TLS 1.3: everything after ServerHello is encrypted, both ways
			a.c.tls13 = true
			for i := range a.dir {
				if a.dir[i].crypto == cryptoPlain {
					a.dir[i].crypto = cryptoOn
				}
			}
			a.dir[dataplane.ToServer].resetHandshake()
		}
	}
	sink.Event(ev)
}
