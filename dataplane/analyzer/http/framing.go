package http

import (
	"bytes"
	"fmt"

	"github.com/patchgate/patchgate/dataplane"
	"github.com/patchgate/patchgate/dataplane/analyzer"
)

// bodyMode is how a message body is delimited (RFC 9112 §6.3).
type bodyMode uint8

const (
	bodyNone    bodyMode = iota // no body
	bodyLength                  // Content-Length bytes
	bodyChunked                 // chunked transfer coding
	bodyClose                   // until the connection closes (responses only)
)

// violation is one report collected while checking framing.
type violation struct{ code, detail string }

// framing is the outcome of the framing checks of one header section.
type framing struct {
	mode   bodyMode
	length int64
	nv     int
	v      [4]violation
	// fatal is the code of the first violation; framing with any violation is
	// ambiguous, so the direction stops.
	fatal string
}

func (f *framing) add(code, detail string) {
	if f.nv < len(f.v) {
		f.v[f.nv] = violation{code, detail}
		f.nv++
	}
	if f.fatal == "" {
		f.fatal = code
	}
}

func (f *framing) report(dir dataplane.Direction, sink analyzer.Sink) {
	for _, v := range f.v[:f.nv] {
		sink.Violation(dir, v.code, v.detail)
	}
}

// maxDetailValue bounds how much of a peer's field value a violation detail
// quotes.
const maxDetailValue = 64

func clip(b []byte) []byte {
	if len(b) > maxDetailValue {
		return b[:maxDetailValue]
	}
	return b
}

// computeFraming applies the message-length rules to a header section and
// collects the smuggling signs. It reads only the message, so it can be
// re-run safely; the caller reports the violations once.
func computeFraming(m *message, http10, response bool) framing {
	var f framing
	var te []byte
	teCount, clCount := 0, 0
	cl := int64(-1)
	clBad, clDiff := false, false
	for _, fl := range m.fields {
		switch string(m.bytes(fl.lower)) {
		case "content-length":
			clCount++
			v, ok, differ := parseContentLength(m.bytes(fl.value))
			switch {
			case !ok:
				clBad = true
			case differ || (cl >= 0 && v != cl):
				clDiff = true
			case cl < 0:
				cl = v
			}
		case "transfer-encoding":
			teCount++
			if teCount == 1 {
				te = m.bytes(fl.value)
			}
		}
	}
	if teCount > 0 {
		switch {
		case http10:
			f.add(CodeTEObfuscated, "Transfer-Encoding in an HTTP/1.0 message")
		case teCount > 1:
			f.add(CodeTEObfuscated, "repeated Transfer-Encoding field")
		case string(te) != "chunked":
			f.add(CodeTEObfuscated, fmt.Sprintf("Transfer-Encoding %q is not exactly \"chunked\"", clip(te)))
		}
		if clCount > 0 {
			f.add(CodeCLTEConflict, "both Content-Length and Transfer-Encoding")
		}
		switch {
		case lastCodingChunked(te):
			f.mode = bodyChunked
		case response:
			f.mode = bodyClose
		}
		return f
	}
	switch {
	case clBad:
		f.add(CodeBadContentLength, "malformed Content-Length value")
	case clDiff:
		f.add(CodeCLDuplicate, "differing Content-Length values")
	case cl >= 0:
		f.mode = bodyLength
		f.length = cl
		return f
	}
	if response {
		f.mode = bodyClose
	}
	return f
}

// maxContentLengthDigits bounds the significant digits of a Content-Length:
// 18 digits always fit in int64.
const maxContentLengthDigits = 18

// parseContentLength parses a Content-Length value, which may be a list of
// identical values ("5, 5"). differ is true when the list holds two values.
func parseContentLength(b []byte) (v int64, ok, differ bool) {
	v = -1
	for len(b) > 0 || v < 0 {
		var elem []byte
		if i := bytes.IndexByte(b, ','); i >= 0 {
			elem, b = b[:i], b[i+1:]
			if len(b) == 0 {
				return 0, false, false // trailing comma
			}
		} else {
			elem, b = b, nil
		}
		n, good := parseDecimal(trimOWS(elem))
		if !good {
			return 0, false, false
		}
		if v >= 0 && n != v {
			differ = true
		}
		if v < 0 {
			v = n
		}
	}
	return v, true, differ
}

// parseDecimal parses 1*DIGIT that fits in int64.
func parseDecimal(b []byte) (int64, bool) {
	if len(b) == 0 {
		return 0, false
	}
	var v int64
	sig := 0
	for _, c := range b {
		if !isDigit(c) {
			return 0, false
		}
		if sig > 0 || c != '0' {
			sig++
		}
		if sig > maxContentLengthDigits {
			return 0, false
		}
		v = v*10 + int64(c-'0')
	}
	return v, true
}

// lastCodingChunked reports whether the last transfer coding of a
// Transfer-Encoding value is chunked (any case).
func lastCodingChunked(te []byte) bool {
	if i := bytes.LastIndexByte(te, ','); i >= 0 {
		te = te[i+1:]
	}
	return bytes.EqualFold(trimOWS(te), []byte("chunked"))
}
