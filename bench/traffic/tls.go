package traffic

import (
	"github.com/patchgate/patchgate/dataplane"
	"github.com/patchgate/patchgate/dataplane/gen"
)

// TLS framing constants (RFC 8446, RFC 5246).
const (
	tlsCCS       = 20
	tlsAlert     = 21
	tlsHandshake = 22
	tlsAppData   = 23

	hsClientHello       = 1
	hsServerHello       = 2
	hsCertificate       = 11
	hsServerKeyExchange = 12
	hsServerHelloDone   = 14
	hsClientKeyExchange = 16

	// maxPlaintext is the largest record plaintext (2^14).
	maxPlaintext = 1 << 14
	// tls13Overhead is the content-type byte and AEAD tag added to every
	// TLS 1.3 record; tls12GCMOverhead the explicit nonce and tag of
	// AES-GCM in TLS 1.2.
	tls13Overhead    = 1 + 16
	tls12GCMOverhead = 8 + 16

	// tls13Share is the share of TLS sessions negotiating TLS 1.3.
	tls13Share = 0.7
)

var alpnOffers = [][]string{{"h2", "http/1.1"}, {"http/1.1"}}

// tlsFlow adds a TLS session to s: a full handshake (TLS 1.3 with the
// middlebox-compatibility ChangeCipherSpec, or TLS 1.2 ECDHE-RSA-AES128-GCM
// with a plaintext certificate chain), application data records sized by the
// object-size model, a close_notify alert, and the TCP close. Ciphertext is
// random bytes of the right lengths: the analyzer (and any gateway) sees
// only record framing after the handshake.
func (b *builder) tlsFlow(s *gen.TCPSession) {
	r := b.r
	sni := hostNames[r.intn(len(hostNames))]
	alpn := alpnOffers[r.intn(len(alpnOffers))]
	v13 := r.chance(tls13Share)
	overhead := tls12GCMOverhead
	if v13 {
		b.stats.TLS.Versions["1.3"]++
		overhead = tls13Overhead
		s.Send(dataplane.ToServer, b.record(tlsHandshake, 0x0301, b.clientHello(sni, alpn, true)))
		// ServerHello, compatibility CCS, then EncryptedExtensions,
		// Certificate, CertificateVerify and Finished in encrypted records.
		flight := b.record(tlsHandshake, 0x0303, b.serverHello(true, alpn[0]))
		flight = append(flight, b.record(tlsCCS, 0x0303, []byte{1})...)
		flight = b.encrypted(flight, tlsAppData, r.between(2500, 5000), overhead)
		s.Send(dataplane.ToClient, flight)
		fin := b.record(tlsCCS, 0x0303, []byte{1})
		fin = b.encrypted(fin, tlsAppData, 36, overhead) // Finished: 4 + 32
		s.Send(dataplane.ToServer, fin)
	} else {
		b.stats.TLS.Versions["1.2"]++
		s.Send(dataplane.ToServer, b.record(tlsHandshake, 0x0301, b.clientHello(sni, alpn, false)))
		hs := b.serverHello(false, alpn[0])
		hs = append(hs, b.certificate()...)
		hs = append(hs, b.serverKeyExchange()...)
		hs = append(hs, hsServerHelloDone, 0, 0, 0)
		s.Send(dataplane.ToClient, b.records(tlsHandshake, 0x0303, hs))
		cke := []byte{hsClientKeyExchange, 0, 0, 33, 32}
		cke = b.appendFill(cke, b.noise, 32)
		fl := b.record(tlsHandshake, 0x0303, cke)
		fl = append(fl, b.record(tlsCCS, 0x0303, []byte{1})...)
		fl = b.encrypted(fl, tlsHandshake, 16, overhead) // Finished: 4 + 12
		s.Send(dataplane.ToServer, fl)
		sf := b.record(tlsCCS, 0x0303, []byte{1})
		sf = b.encrypted(sf, tlsHandshake, 16, overhead)
		s.Send(dataplane.ToClient, sf)
	}
	n := r.geometric(meanRequests, maxRequests)
	for k := 0; k < n; k++ {
		class := b.pickClass()
		b.stats.TLS.Requests[classNames[class]]++
		s.Send(dataplane.ToServer, b.encrypted(nil, tlsAppData, r.logUniform(300, 2000), overhead))
		s.Send(dataplane.ToClient, b.encrypted(nil, tlsAppData, b.objectSize(class), overhead))
	}
	closeType := byte(tlsAlert)
	if v13 {
		closeType = tlsAppData // TLS 1.3 hides the real type inside
	}
	s.Send(dataplane.ToServer, b.encrypted(nil, closeType, 2, overhead)) // close_notify
	s.Close(dataplane.ToServer)
}

// record appends one TLS record header and body.
func (b *builder) record(ctype byte, version uint16, body []byte) []byte {
	out := make([]byte, 0, 5+len(body))
	out = append(out, ctype, byte(version>>8), byte(version), byte(len(body)>>8), byte(len(body)))
	return append(out, body...)
}

// records splits plaintext handshake bytes into records of at most 2^14.
func (b *builder) records(ctype byte, version uint16, data []byte) []byte {
	var out []byte
	for len(data) > 0 {
		c := min(len(data), maxPlaintext)
		out = append(out, b.record(ctype, version, data[:c])...)
		data = data[c:]
	}
	return out
}

// encrypted appends protected records carrying n plaintext bytes (split at
// 2^14), each overhead bytes longer, filled with random bytes. TLS 1.3
// records all say application data; TLS 1.2 ones carry their real type.
func (b *builder) encrypted(dst []byte, ctype byte, n, overhead int) []byte {
	for first := true; n > 0 || first; first = false {
		c := min(n, maxPlaintext)
		l := c + overhead
		dst = append(dst, ctype, 3, 3, byte(l>>8), byte(l))
		dst = b.appendFill(dst, b.noise, l)
		n -= c
	}
	return dst
}

// handshake wraps a handshake body in its 4-byte header.
func handshake(typ byte, body []byte) []byte {
	out := make([]byte, 0, 4+len(body))
	out = append(out, typ, byte(len(body)>>16), byte(len(body)>>8), byte(len(body)))
	return append(out, body...)
}

func u16(v int) []byte { return []byte{byte(v >> 8), byte(v)} }

// ext encodes one extension.
func ext(typ int, data []byte) []byte {
	out := append(u16(typ), u16(len(data))...)
	return append(out, data...)
}

func (b *builder) clientHello(sni string, alpn []string, tls13 bool) []byte {
	body := []byte{3, 3}
	body = b.appendFill(body, b.noise, 32) // random
	body = append(body, 32)
	body = b.appendFill(body, b.noise, 32) // legacy session id
	suites := []int{0xc02b, 0xc02f, 0xc02c, 0xc030, 0xcca9, 0xcca8, 0xc013, 0xc014, 0x009c, 0x009d, 0x002f, 0x0035}
	if tls13 {
		suites = append([]int{0x1301, 0x1302, 0x1303}, suites...)
	}
	body = append(body, u16(2*len(suites))...)
	for _, s := range suites {
		body = append(body, u16(s)...)
	}
	body = append(body, 1, 0) // compression: null
	var exts []byte
	name := append([]byte{0}, u16(len(sni))...)
	name = append(name, sni...)
	exts = append(exts, ext(0, append(u16(len(name)), name...))...) // server_name
	exts = append(exts, ext(23, nil)...)                            // extended_master_secret
	exts = append(exts, ext(0xff01, []byte{0})...)                  // renegotiation_info
	exts = append(exts, ext(10, []byte{0, 6, 0, 0x1d, 0, 0x17, 0, 0x18})...)
	exts = append(exts, ext(11, []byte{1, 0})...) // ec_point_formats
	exts = append(exts, ext(35, nil)...)          // session_ticket
	var protos []byte
	for _, p := range alpn {
		protos = append(protos, byte(len(p)))
		protos = append(protos, p...)
	}
	exts = append(exts, ext(16, append(u16(len(protos)), protos...))...)
	exts = append(exts, ext(13, []byte{0, 16, 4, 3, 8, 4, 4, 1, 5, 3, 8, 5, 5, 1, 8, 6, 6, 1})...)
	if tls13 {
		ks := []byte{0, 0x1d, 0, 32}
		ks = b.appendFill(ks, b.noise, 32)
		exts = append(exts, ext(51, append(u16(len(ks)), ks...))...) // key_share
		exts = append(exts, ext(45, []byte{1, 1})...)                // psk_key_exchange_modes
		exts = append(exts, ext(43, []byte{4, 3, 4, 3, 3})...)       // supported_versions
	}
	body = append(body, u16(len(exts))...)
	body = append(body, exts...)
	return handshake(hsClientHello, body)
}

func (b *builder) serverHello(tls13 bool, alpn string) []byte {
	body := []byte{3, 3}
	body = b.appendFill(body, b.noise, 32)
	body = append(body, 32)
	body = b.appendFill(body, b.noise, 32)
	var exts []byte
	if tls13 {
		body = append(body, 0x13, 0x01, 0)
		ks := []byte{0, 0x1d, 0, 32}
		ks = b.appendFill(ks, b.noise, 32)
		exts = append(exts, ext(51, ks)...)
		exts = append(exts, ext(43, []byte{3, 4})...)
	} else {
		body = append(body, 0xc0, 0x2f, 0)
		exts = append(exts, ext(0xff01, []byte{0})...)
		exts = append(exts, ext(23, nil)...)
		exts = append(exts, ext(11, []byte{1, 0})...)
		p := append([]byte{byte(len(alpn))}, alpn...)
		exts = append(exts, ext(16, append(u16(len(p)), p...))...)
	}
	body = append(body, u16(len(exts))...)
	body = append(body, exts...)
	return handshake(hsServerHello, body)
}

// certificate is a chain of 2–3 certificates of 900–1900 bytes (leaf and
// intermediates of RSA-2048/ECDSA chains are about that size); the bytes
// are filler: the analyzer reads sizes only.
func (b *builder) certificate() []byte {
	var list []byte
	for i, n := 0, b.r.between(2, 3); i < n; i++ {
		sz := b.r.between(900, 1900)
		list = append(list, byte(sz>>16), byte(sz>>8), byte(sz))
		list = b.appendFill(list, b.noise, sz)
	}
	body := []byte{byte(len(list) >> 16), byte(len(list) >> 8), byte(len(list))}
	return handshake(hsCertificate, append(body, list...))
}

// serverKeyExchange is ECDHE over x25519 signed with RSA-PSS-SHA256 (2048).
func (b *builder) serverKeyExchange() []byte {
	body := []byte{3, 0, 0x1d, 32}
	body = b.appendFill(body, b.noise, 32)
	body = append(body, 8, 4, 1, 0) // rsa_pss_rsae_sha256, 256-byte signature
	body = b.appendFill(body, b.noise, 256)
	return handshake(hsServerKeyExchange, body)
}
