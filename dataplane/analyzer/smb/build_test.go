package smb

import (
	"encoding/binary"
	"fmt"
	"strings"
	"unicode/utf16"

	"github.com/patchgate/patchgate/dataplane"
	"github.com/patchgate/patchgate/dataplane/analyzer"
)

// Builders of SMB test traffic (field layouts from MS-SMB2 and MS-CIFS).

func u16(v uint16) []byte { return binary.LittleEndian.AppendUint16(nil, v) }
func u32(v uint32) []byte { return binary.LittleEndian.AppendUint32(nil, v) }
func u64(v uint64) []byte { return binary.LittleEndian.AppendUint64(nil, v) }

func cat(parts ...[]byte) []byte {
	var out []byte
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// nb wraps payload in a NetBIOS session message.
func nb(payload []byte) []byte {
	n := len(payload)
	return append([]byte{0, byte(n >> 16), byte(n >> 8), byte(n)}, payload...)
}

// h2 describes an SMB2 header.
type h2 struct {
	cmd     uint16
	flags   uint32
	next    uint32
	mid     uint64
	tid     uint32
	sid     uint64
	credits uint16
	status  uint32
}

func (h h2) bytes() []byte {
	b := make([]byte, 64)
	copy(b, "\xfeSMB")
	binary.LittleEndian.PutUint16(b[4:], 64)
	binary.LittleEndian.PutUint16(b[6:], 1)
	binary.LittleEndian.PutUint32(b[8:], h.status)
	binary.LittleEndian.PutUint16(b[12:], h.cmd)
	binary.LittleEndian.PutUint16(b[14:], h.credits)
	binary.LittleEndian.PutUint32(b[16:], h.flags)
	binary.LittleEndian.PutUint32(b[20:], h.next)
	binary.LittleEndian.PutUint64(b[24:], h.mid)
	binary.LittleEndian.PutUint32(b[32:], 0xFEFF)
	binary.LittleEndian.PutUint32(b[36:], h.tid)
	binary.LittleEndian.PutUint64(b[40:], h.sid)
	return b
}

func pad8(b []byte) []byte {
	for len(b)%8 != 0 {
		b = append(b, 0)
	}
	return b
}

// negCtx builds one negotiate context (unpadded).
func negCtx(typ uint16, data []byte) []byte {
	return cat(u16(typ), u16(uint16(len(data))), u32(0), data)
}

func compressionCtx(flags uint32, algs ...uint16) []byte {
	d := cat(u16(uint16(len(algs))), u16(0), u32(flags))
	for _, a := range algs {
		d = append(d, u16(a)...)
	}
	return negCtx(ctxCompression, d)
}

func preauthCtx() []byte {
	return negCtx(ctxPreauth, cat(u16(1), u16(32), u16(1), make([]byte, 32)))
}

func encryptionCtx(ciphers ...uint16) []byte {
	d := u16(uint16(len(ciphers)))
	for _, c := range ciphers {
		d = append(d, u16(c)...)
	}
	return negCtx(ctxEncryption, d)
}

// contextList lays out contexts 8-byte aligned starting at an aligned offset.
func contextList(ctxs [][]byte) []byte {
	var out []byte
	for i, c := range ctxs {
		out = append(out, c...)
		if i < len(ctxs)-1 {
			out = pad8(out)
		}
	}
	return out
}

// negReq builds an SMB2 NEGOTIATE request (header included).
func negReq(mid uint64, dialects []uint16, ctxs ...[]byte) []byte {
	body := cat(u16(36), u16(uint16(len(dialects))), u16(1), u16(0), u32(0x7f), make([]byte, 16))
	fixedEnd := 64 + 36 + 2*len(dialects)
	ctxOff := (fixedEnd + 7) &^ 7
	if len(ctxs) > 0 {
		body = cat(body, u32(uint32(ctxOff)), u16(uint16(len(ctxs))), u16(0))
	} else {
		body = cat(body, make([]byte, 8))
	}
	for _, d := range dialects {
		body = append(body, u16(d)...)
	}
	msg := cat(h2{cmd: smb2Negotiate, mid: mid}.bytes(), body)
	if len(ctxs) > 0 {
		msg = cat(pad8(msg), contextList(ctxs))
	}
	return msg
}

// negResp builds an SMB2 NEGOTIATE response with a 16-byte security blob.
func negResp(mid uint64, dialect uint16, maxT, maxR, maxW uint32, ctxs ...[]byte) []byte {
	sec := []byte("\x60\x0e\x06\x06\x2b\x06\x01\x05\x05\x02\xa0\x04\x30\x02\xa0\x00")
	secOff := 64 + 64
	ctxOff := 0
	if len(ctxs) > 0 {
		ctxOff = (secOff + len(sec) + 7) &^ 7
	}
	body := cat(u16(65), u16(1), u16(dialect), u16(uint16(len(ctxs))), make([]byte, 16), u32(0x2f),
		u32(maxT), u32(maxR), u32(maxW), make([]byte, 16), u16(uint16(secOff)), u16(uint16(len(sec))),
		u32(uint32(ctxOff)), sec)
	msg := cat(h2{cmd: smb2Negotiate, flags: smb2FlagResponse, mid: mid, credits: 1}.bytes(), body)
	if len(ctxs) > 0 {
		msg = cat(pad8(msg), contextList(ctxs))
	}
	return msg
}

// treeConnect builds an SMB2 TREE_CONNECT request.
func treeConnect(mid uint64, path string) []byte {
	var p []byte
	for _, u := range utf16.Encode([]rune(path)) {
		p = append(p, u16(u)...)
	}
	return cat(h2{cmd: smb2TreeConnect, mid: mid, sid: 0x11}.bytes(), u16(9), u16(0), u16(72), u16(uint16(len(p))), p)
}

func readReq(h h2, length uint32, off uint64) []byte {
	h.cmd = smb2Read
	return cat(h.bytes(), u16(49), []byte{0x50, 0}, u32(length), u64(off), make([]byte, 16),
		u32(1), u32(0), u32(0), u16(0), u16(0), []byte{0})
}

func writeReq(h h2, off uint64, data []byte) []byte {
	h.cmd = smb2Write
	return cat(h.bytes(), u16(49), u16(0x70), u32(uint32(len(data))), u64(off), make([]byte, 16),
		u32(0), u32(0), u16(0), u16(0), u32(0), data)
}

func ioctlReq(h h2, code uint32, in []byte, maxOut uint32) []byte {
	h.cmd = smb2IOCTL
	return cat(h.bytes(), u16(57), u16(0), u32(code), make([]byte, 16), u32(0x78), u32(uint32(len(in))),
		u32(0), u32(0x78), u32(0), u32(maxOut), u32(1), u32(0), in)
}

// compound links SMB2 messages with NextCommand (8-byte aligned).
func compound(msgs ...[]byte) []byte {
	var out []byte
	for i, m := range msgs {
		m = append([]byte(nil), m...)
		if i < len(msgs)-1 {
			m = pad8(m)
			binary.LittleEndian.PutUint32(m[20:], uint32(len(m)))
		}
		out = append(out, m...)
	}
	return out
}

// compUnchained builds an unchained COMPRESSION_TRANSFORM_HEADER message.
func compUnchained(orig uint32, alg uint16, off uint32, rest []byte) []byte {
	return cat([]byte("\xfcSMB"), u32(orig), u16(alg), u16(0), u32(off), rest)
}

// chainPayload builds a chained payload (header and data). orig < 0 omits
// OriginalPayloadSize.
func chainPayload(alg, flags uint16, orig int64, data []byte) []byte {
	if orig >= 0 {
		return cat(u16(alg), u16(flags), u32(uint32(len(data)+4)), u32(uint32(orig)), data)
	}
	return cat(u16(alg), u16(flags), u32(uint32(len(data))), data)
}

func patternPayload(b byte, reps uint32) []byte {
	return chainPayload(algPatternV1, 0, -1, cat([]byte{b, 0}, u16(0), u32(reps)))
}

// compChained builds a chained transform; the first payload's flags get CHAINED.
func compChained(orig uint32, payloads ...[]byte) []byte {
	first := append([]byte(nil), payloads[0]...)
	binary.LittleEndian.PutUint16(first[2:], compressFlagChain)
	return cat([]byte("\xfcSMB"), u32(orig), first, cat(payloads[1:]...))
}

// k1 is an SMB1 transaction identity.
type k1 struct{ tid, pid, uid, mid uint16 }

func smb1Hdr(cmd, flags byte, k k1) []byte {
	b := make([]byte, 32)
	copy(b, "\xffSMB")
	b[4] = cmd
	b[9] = flags
	binary.LittleEndian.PutUint16(b[10:], 0xc807)
	binary.LittleEndian.PutUint16(b[24:], k.tid)
	binary.LittleEndian.PutUint16(b[26:], k.pid)
	binary.LittleEndian.PutUint16(b[28:], k.uid)
	binary.LittleEndian.PutUint16(b[30:], k.mid)
	return b
}

// transMsg builds a transaction message whose words are produced by
// words(paramOffset, dataOffset); params and data follow the byte count
// (params 4-byte aligned, data 4-byte aligned).
func transMsg(cmd byte, k k1, wc int, words func(po, do int) []byte, params, data []byte) []byte {
	start := 32 + 1 + 2*wc + 2
	po := (start + 3) &^ 3
	do := (po + len(params) + 3) &^ 3
	if len(data) == 0 {
		do = po + len(params)
	}
	w := words(po, do)
	if len(w) != 2*wc {
		panic(fmt.Sprintf("words: %d bytes for wc %d", len(w), wc))
	}
	bytesPart := make([]byte, do-start+len(data))
	copy(bytesPart[po-start:], params)
	copy(bytesPart[do-start:], data)
	return cat(smb1Hdr(cmd, 0x18, k), []byte{byte(wc)}, w, u16(uint16(len(bytesPart))), bytesPart)
}

func trans2Primary(k k1, tp, td uint16, setup []uint16, params, data []byte) []byte {
	wc := 14 + len(setup)
	return transMsg(smb1Trans2, k, wc, func(po, do int) []byte {
		w := cat(u16(tp), u16(td), u16(64), u16(0xffff), []byte{0, 0}, u16(0), u32(0), u16(0),
			u16(uint16(len(params))), u16(uint16(po)), u16(uint16(len(data))), u16(uint16(do)),
			[]byte{byte(len(setup)), 0})
		for _, s := range setup {
			w = append(w, u16(s)...)
		}
		return w
	}, params, data)
}

func trans2Secondary(k k1, tp, td uint16, pdisp, ddisp uint16, params, data []byte) []byte {
	return transMsg(smb1Trans2Second, k, 9, func(po, do int) []byte {
		return cat(u16(tp), u16(td), u16(uint16(len(params))), u16(uint16(po)), u16(pdisp),
			u16(uint16(len(data))), u16(uint16(do)), u16(ddisp), u16(0))
	}, params, data)
}

func ntTransPrimary(k k1, tp, td uint32, function uint16, setup []uint16, params, data []byte) []byte {
	wc := 19 + len(setup)
	return transMsg(smb1NTTrans, k, wc, func(po, do int) []byte {
		w := cat([]byte{byte(len(setup))}, u16(0), u32(tp), u32(td), u32(64), u32(0xffff),
			u32(uint32(len(params))), u32(uint32(po)), u32(uint32(len(data))), u32(uint32(do)),
			[]byte{byte(len(setup))}, u16(function))
		for _, s := range setup {
			w = append(w, u16(s)...)
		}
		return w
	}, params, data)
}

func ntTransSecondary(k k1, tp, td, pdisp, ddisp uint32, params, data []byte) []byte {
	return transMsg(smb1NTTransSecond, k, 18, func(po, do int) []byte {
		return cat([]byte{0, 0, 0}, u32(tp), u32(td), u32(uint32(len(params))), u32(uint32(po)), u32(pdisp),
			u32(uint32(len(data))), u32(uint32(do)), u32(ddisp), []byte{0})
	}, params, data)
}

// fea builds one OS/2 FEA entry.
func fea(name string, value []byte) []byte {
	return cat([]byte{0, byte(len(name))}, u16(uint16(len(value))), []byte(name), []byte{0}, value)
}

// feaList builds an FEA list whose size field is size (or the real size when size < 0).
func feaList(size int64, entries ...[]byte) []byte {
	body := cat(entries...)
	if size < 0 {
		size = int64(4 + len(body))
	}
	return cat(u32(uint32(size)), body)
}

// feed is one Feed call in a test stream.
type feed struct {
	dir  dataplane.Direction
	data []byte
}

func toServer(b ...[]byte) feed { return feed{dataplane.ToServer, cat(b...)} }
func toClient(b ...[]byte) feed { return feed{dataplane.ToClient, cat(b...)} }

// recorder is a Sink keeping a printable trace and copies of the events.
type recorder struct {
	trace      []string
	events     []analyzer.Event
	boundaries [2]int
	violations []string
}

func (r *recorder) Event(ev analyzer.Event) {
	var c analyzer.Event
	switch e := ev.(type) {
	case *Message:
		v := *e
		c = &v
	case *Negotiate:
		v := *e
		v.Dialects = append([]int(nil), e.Dialects...)
		v.Contexts = append([]NegotiateContext(nil), e.Contexts...)
		v.CompressionAlgorithms = append([]int(nil), e.CompressionAlgorithms...)
		v.Ciphers = append([]int(nil), e.Ciphers...)
		v.SigningAlgorithms = append([]int(nil), e.SigningAlgorithms...)
		v.HashAlgorithms = append([]int(nil), e.HashAlgorithms...)
		c = &v
	case *CompressionTransform:
		v := *e
		v.Payloads = append([]ChainPayload(nil), e.Payloads...)
		v.NegotiatedAlgorithms = append([]int(nil), e.NegotiatedAlgorithms...)
		c = &v
	case *Trans:
		v := *e
		c = &v
	default:
		panic("unknown event type")
	}
	r.events = append(r.events, c)
	r.trace = append(r.trace, fmt.Sprintf("%s %+v", ev.EventName(), ev))
}

func (r *recorder) Boundary(dir dataplane.Direction) {
	r.boundaries[dir]++
	r.trace = append(r.trace, "boundary "+dir.String())
}

func (r *recorder) Violation(dir dataplane.Direction, code, detail string) {
	r.violations = append(r.violations, code)
	r.trace = append(r.trace, "violation "+dir.String()+" "+code)
}

func (r *recorder) String() string { return strings.Join(r.trace, "\n") }

// of returns the recorded events of type T.
func of[T analyzer.Event](r *recorder) []T {
	var out []T
	for _, e := range r.events {
		if v, ok := e.(T); ok {
			out = append(out, v)
		}
	}
	return out
}

// run feeds a stream to a fresh analyzer, optionally cutting every feed into
// pieces of at most chunk bytes, and ends both directions.
func run(stream []feed, chunk int) (*recorder, *Analyzer, error) {
	a := New()
	r := &recorder{}
	for _, f := range stream {
		for b := f.data; len(b) > 0; {
			n := len(b)
			if chunk > 0 && n > chunk {
				n = chunk
			}
			if err := a.Feed(f.dir, b[:n], r); err != nil {
				return r, a, err
			}
			b = b[n:]
		}
	}
	a.End(dataplane.ToServer, r)
	a.End(dataplane.ToClient, r)
	return r, a, nil
}
