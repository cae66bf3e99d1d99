package http

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"compress/zlib"
	"errors"
	"io"
	"strings"
	"sync"
	"unsafe"
)

// Content codings the analyzer decodes.
const (
	codingNone = iota
	codingGzip
	codingDeflate
)

// codingOf maps a Content-Encoding value to a coding the analyzer decodes.
// Lists of codings ("gzip, br") are not decoded.
func codingOf(ce string) int {
	ce = strings.Trim(ce, " \t")
	switch {
	case strings.EqualFold(ce, "gzip"), strings.EqualFold(ce, "x-gzip"):
		return codingGzip
	case strings.EqualFold(ce, "deflate"):
		return codingDeflate
	}
	return codingNone
}

// decodeBody returns the event body for the raw body bytes: decoded when the
// Content-Encoding is gzip or deflate (at most cfg.MaxDecompressed bytes),
// the raw bytes when there is no such coding or decoding fails. A partial body
// (truncated) that decodes up to its end keeps what was decoded. The second
// result is the BodyTruncated flag.
func (a *Analyzer) decodeBody(raw []byte, ce string, truncated bool) (string, bool) {
	if len(raw) == 0 {
		return "", truncated
	}
	kind := codingOf(ce)
	if kind == codingNone {
		return view(raw), truncated
	}
	dc := decoders.Get().(*decoder)
	defer decoders.Put(dc)
	out, cut, ok := dc.decode(kind, raw, a.cfg.MaxDecompressed, truncated)
	if !ok {
		return view(raw), truncated
	}
	// The decoder goes back to the pool, so its output is copied.
	return string(out), truncated || cut
}

// view returns a string sharing b's bytes. Events are only valid during the
// Sink call (analyzer.Sink), and b is not modified before the call returns, so
// the body need not be copied for every message.
func view(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

// decoder holds reusable decompressors. Their state is never carried across
// messages: a body is decoded whole from the buffered raw bytes when its event
// fires, so a checkpoint only needs the raw bytes.
type decoder struct {
	src bytes.Reader
	gz  *gzip.Reader
	zl  io.ReadCloser
	fl  io.ReadCloser
	out []byte
}

// decoders is shared by all analyzers so that idle flows hold no
// decompressor memory (a flate reader keeps a 32 KiB window).
var decoders = sync.Pool{New: func() any { return new(decoder) }}

// maxPooledOutput bounds the output buffer a pooled decoder keeps.
const maxPooledOutput = 64 << 10

// decodeReadSize is the growth step of the output buffer.
const decodeReadSize = 4 << 10

// decode decompresses in, at most max bytes (cut reports more). ok is false
// when the data is not valid for the coding; with partial set, data that ends
// early is valid.
func (dc *decoder) decode(kind int, in []byte, max int, partial bool) (out []byte, cut, ok bool) {
	dc.src.Reset(in)
	var r io.Reader
	switch kind {
	case codingGzip:
		if dc.gz == nil {
			gz, err := gzip.NewReader(&dc.src)
			if err != nil {
				return nil, false, false
			}
			dc.gz = gz
		} else if err := dc.gz.Reset(&dc.src); err != nil {
			return nil, false, false
		}
		r = dc.gz
	case codingDeflate:
		// RFC 9110 §8.4.1.2 says zlib format; some senders use raw deflate.
		if looksZlib(in) {
			if dc.zl == nil {
				zl, err := zlib.NewReader(&dc.src)
				if err != nil {
					return nil, false, false
				}
				dc.zl = zl
			} else if err := dc.zl.(zlib.Resetter).Reset(&dc.src, nil); err != nil {
				return nil, false, false
			}
			r = dc.zl
		} else {
			if dc.fl == nil {
				dc.fl = flate.NewReader(&dc.src)
			} else if err := dc.fl.(flate.Resetter).Reset(&dc.src, nil); err != nil {
				return nil, false, false
			}
			r = dc.fl
		}
	default:
		return nil, false, false
	}
	out = dc.out[:0]
	for {
		if len(out) == cap(out) {
			out = append(out, make([]byte, decodeReadSize)...)[:len(out)]
		}
		end := cap(out)
		if end > max+1 {
			end = max + 1
		}
		n, err := r.Read(out[len(out):end])
		out = out[:len(out)+n]
		if len(out) > max {
			out, cut = out[:max], true
			break
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			if partial && errors.Is(err, io.ErrUnexpectedEOF) {
				break
			}
			return nil, false, false
		}
	}
	if cap(out) <= maxPooledOutput {
		dc.out = out[:0]
	} else {
		dc.out = nil
	}
	return out, cut, true
}

// looksZlib reports whether b starts with a zlib header (RFC 1950 §2.2:
// method 8, header checksum divisible by 31).
func looksZlib(b []byte) bool {
	return len(b) >= 2 && b[0]&0x0f == 8 && (uint16(b[0])<<8|uint16(b[1]))%31 == 0
}
