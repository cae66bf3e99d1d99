package tls

import (
	"fmt"
	"strings"

	"github.com/patchgate/patchgate/dataplane"
	"github.com/patchgate/patchgate/dataplane/analyzer"
)

// This file builds TLS traffic for the tests from its parts.

func u16(v int) []byte { return []byte{byte(v >> 8), byte(v)} }
func u24(v int) []byte { return []byte{byte(v >> 16), byte(v >> 8), byte(v)} }

func cat(parts ...[]byte) []byte {
	var out []byte
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

func vec8(b []byte) []byte  { return cat([]byte{byte(len(b))}, b) }
func vec16(b []byte) []byte { return cat(u16(len(b)), b) }

func rec(typ byte, version int, body []byte) []byte {
	return cat([]byte{typ}, u16(version), u16(len(body)), body)
}

func hsMsg(typ byte, body []byte) []byte { return cat([]byte{typ}, u24(len(body)), body) }

func ext(typ int, body []byte) []byte { return cat(u16(typ), vec16(body)) }

func sniExt(names ...string) []byte {
	var list []byte
	for _, n := range names {
		list = cat(list, []byte{0}, vec16([]byte(n)))
	}
	return ext(ExtServerName, vec16(list))
}

func alpnExt(protos ...string) []byte {
	var list []byte
	for _, p := range protos {
		list = cat(list, vec8([]byte(p)))
	}
	return ext(ExtALPN, vec16(list))
}

func u16list(vs ...int) []byte {
	var b []byte
	for _, v := range vs {
		b = cat(b, u16(v))
	}
	return b
}

func heartbeatExt(mode byte) []byte { return ext(ExtHeartbeat, []byte{mode}) }

func random(fill byte) []byte {
	r := make([]byte, 32)
	for i := range r {
		r[i] = fill
	}
	return r
}

// clientHelloBody builds a ClientHello body with the given extensions (nil:
// no extensions block at all).
func clientHelloBody(version int, suites []int, exts ...[]byte) []byte {
	b := cat(u16(version), random(0x11), vec8(nil), vec16(u16list(suites...)), vec8([]byte{0}))
	if exts != nil {
		b = cat(b, vec16(cat(exts...)))
	}
	return b
}

func serverHelloBody(version, suite int, exts ...[]byte) []byte {
	b := cat(u16(version), random(0x22), vec8(nil), u16(suite), []byte{0})
	if exts != nil {
		b = cat(b, vec16(cat(exts...)))
	}
	return b
}

func certificateBody(sizes ...int) []byte {
	var list []byte
	for _, n := range sizes {
		list = cat(list, u24(n), make([]byte, n))
	}
	return cat(u24(len(list)), list)
}

func heartbeatMsg(typ byte, payloadLength, payload, padding int) []byte {
	return cat([]byte{typ}, u16(payloadLength), make([]byte, payload), make([]byte, padding))
}

// opaque returns n bytes standing for ciphertext.
func opaque(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + 3)
	}
	return b
}

// chunk is one Feed call of a test conversation, or a Gap of gap bytes.
type chunk struct {
	dir  dataplane.Direction
	data []byte
	gap  int
}

func gapOf(dir dataplane.Direction, n int) chunk { return chunk{dir: dir, gap: n} }

func toServer(parts ...[]byte) chunk { return chunk{dir: dataplane.ToServer, data: cat(parts...)} }
func toClient(parts ...[]byte) chunk { return chunk{dir: dataplane.ToClient, data: cat(parts...)} }

// recorder is an analyzer.Sink that keeps a printable log and copies of events.
type recorder struct {
	log    []string
	events []analyzer.Event
}

func (r *recorder) Event(ev analyzer.Event) {
	r.log = append(r.log, fmt.Sprintf("%s %+v", ev.EventName(), ev))
	r.events = append(r.events, clone(ev))
}

func (r *recorder) Boundary(dir dataplane.Direction) {
	r.log = append(r.log, "boundary "+dir.String())
}

func (r *recorder) Violation(dir dataplane.Direction, code, detail string) {
	r.log = append(r.log, fmt.Sprintf("violation %s %s %s", dir, code, detail))
}

func (r *recorder) String() string { return strings.Join(r.log, "\n") }

// clone copies an event, including its slices, since analyzers reuse them.
func clone(ev analyzer.Event) analyzer.Event {
	switch e := ev.(type) {
	case *Record:
		c := *e
		return &c
	case *Handshake:
		c := *e
		return &c
	case *ClientHello:
		c := *e
		c.CipherSuites = append([]int(nil), e.CipherSuites...)
		c.CompressionMethods = append([]int(nil), e.CompressionMethods...)
		c.Extensions = append([]int(nil), e.Extensions...)
		c.ServerNames = append([]string(nil), e.ServerNames...)
		c.ALPN = append([]string(nil), e.ALPN...)
		c.SupportedVersions = append([]int(nil), e.SupportedVersions...)
		c.SupportedGroups = append([]int(nil), e.SupportedGroups...)
		c.SignatureAlgorithms = append([]int(nil), e.SignatureAlgorithms...)
		return &c
	case *ServerHello:
		c := *e
		c.Extensions = append([]int(nil), e.Extensions...)
		return &c
	case *Certificate:
		c := *e
		c.Sizes = append([]int(nil), e.Sizes...)
		return &c
	case *ChangeCipherSpec:
		c := *e
		return &c
	case *Alert:
		c := *e
		return &c
	case *Heartbeat:
		c := *e
		return &c
	}
	panic(fmt.Sprintf("unknown event %T", ev))
}

// run feeds a conversation to a fresh analyzer and returns the sink and the
// first error.
func run(chunks []chunk) (*recorder, error) {
	r := &recorder{}
	return r, play(New(), chunks, r)
}

// play feeds chunks to a, logging and returning the first error.
func play(a *Analyzer, chunks []chunk, r *recorder) error {
	for _, c := range chunks {
		if c.gap > 0 {
			a.Gap(c.dir, c.gap, r)
			continue
		}
		if err := a.Feed(c.dir, c.data, r); err != nil {
			r.log = append(r.log, "error "+err.Error())
			return err
		}
	}
	return nil
}

// find returns the events of type T in r.
func find[T analyzer.Event](r *recorder) []T {
	var out []T
	for _, ev := range r.events {
		if e, ok := ev.(T); ok {
			out = append(out, e)
		}
	}
	return out
}

// Common suites used by the tests.
const (
	suiteAES128SHA       = 0x002f // TLS_RSA_WITH_AES_128_CBC_SHA
	suiteECDHEAES128GCM  = 0xc02f // TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256
	suiteTLS13AES128GCM  = 0x1301
	suiteChaCha          = 0xcca8
	suiteRC4SHA          = 0x0005
	suiteUnknownForTests = 0x00ff
)

// tls12Handshake returns a full TLS 1.2-style handshake (version v, suite s)
// with the heartbeat extension offered and accepted, up to and including both
// Finished records, so that the handshake is complete at its end.
func tls12Handshake(v, s int) []chunk {
	return []chunk{
		toServer(rec(ContentHandshake, 0x0301, hsMsg(HandshakeClientHello,
			clientHelloBody(v, []int{s, 0x0035}, sniExt("example.test"), heartbeatExt(1))))),
		toClient(rec(ContentHandshake, v, cat(
			hsMsg(HandshakeServerHello, serverHelloBody(v, s, heartbeatExt(1))),
			hsMsg(HandshakeCertificate, certificateBody(700, 900)),
			hsMsg(HandshakeServerHelloDone, nil)))),
		toServer(
			rec(ContentHandshake, v, hsMsg(HandshakeClientKeyExchange, vec16(opaque(256)))),
			rec(ContentChangeCipherSpec, v, []byte{1}),
			rec(ContentHandshake, v, opaque(64))),
		toClient(
			rec(ContentChangeCipherSpec, v, []byte{1}),
			rec(ContentHandshake, v, opaque(64))),
	}
}

// tls13Handshake returns a TLS 1.3 handshake with middlebox-compatibility
// CCS records, ending with the client's encrypted Finished.
func tls13Handshake() []chunk {
	return []chunk{
		toServer(rec(ContentHandshake, 0x0301, hsMsg(HandshakeClientHello,
			clientHelloBody(0x0303, []int{0x1301, 0x1302},
				sniExt("tls13.example"), alpnExt("h2", "http/1.1"),
				ext(ExtSupportedVersions, vec8(u16list(0x0304, 0x0303))),
				ext(ExtSupportedGroups, vec16(u16list(0x001d, 0x0017))),
				ext(ExtSignatureAlgorithms, vec16(u16list(0x0403, 0x0804))))))),
		toClient(
			rec(ContentHandshake, 0x0303, hsMsg(HandshakeServerHello,
				serverHelloBody(0x0303, suiteTLS13AES128GCM, ext(ExtSupportedVersions, u16(0x0304))))),
			rec(ContentChangeCipherSpec, 0x0303, []byte{1}),
			rec(ContentApplicationData, 0x0303, opaque(1200))),
		toServer(
			rec(ContentChangeCipherSpec, 0x0303, []byte{1}),
			rec(ContentApplicationData, 0x0303, opaque(53))),
	}
}

func concat(parts ...[]chunk) []chunk {
	var out []chunk
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}
