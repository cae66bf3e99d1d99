// Package wire is the compact binary encoding used for flow checkpoints and
// analyzer state: unsigned varints, zig-zag signed varints, length-prefixed bytes.
// A Reader never panics: after the first error every read returns a zero value
// and Err reports what went wrong, so decoders can read a whole record and check
// once at the end.
package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// ErrShort is returned when a record ends before a field does.
var ErrShort = errors.New("wire: record truncated")

// AppendUvarint appends v as an unsigned varint.
func AppendUvarint(dst []byte, v uint64) []byte { return binary.AppendUvarint(dst, v) }

// AppendVarint appends v as a zig-zag signed varint.
func AppendVarint(dst []byte, v int64) []byte { return binary.AppendVarint(dst, v) }

// AppendBool appends a boolean as one byte.
func AppendBool(dst []byte, b bool) []byte {
	if b {
		return append(dst, 1)
	}
	return append(dst, 0)
}

// AppendBytes appends a length-prefixed byte string.
func AppendBytes(dst, b []byte) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(b)))
	return append(dst, b...)
}

// AppendString appends a length-prefixed string.
func AppendString(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

// AppendU32 appends a fixed 4-byte big-endian value (sequence numbers).
func AppendU32(dst []byte, v uint32) []byte { return binary.BigEndian.AppendUint32(dst, v) }

// Reader decodes a record produced with the Append functions.
type Reader struct {
	b   []byte
	err error
}

// NewReader returns a Reader over b.
func NewReader(b []byte) *Reader { return &Reader{b: b} }

// Err returns the first error met, if any.
func (r *Reader) Err() error { return r.err }

// Len returns the number of unread bytes.
func (r *Reader) Len() int { return len(r.b) }

// Fail records err (if no error was recorded yet); decoders use it for
// semantic checks ("state 9 unknown").
func (r *Reader) Fail(err error) {
	if r.err == nil {
		r.err = err
	}
	r.b = nil
}

// Uvarint reads an unsigned varint.
func (r *Reader) Uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.Fail(ErrShort)
		return 0
	}
	r.b = r.b[n:]
	return v
}

// Varint reads a zig-zag signed varint.
func (r *Reader) Varint() int64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.Fail(ErrShort)
		return 0
	}
	r.b = r.b[n:]
	return v
}

// Int reads a signed varint and checks it lies in [lo, hi].
func (r *Reader) Int(lo, hi int64) int64 {
	v := r.Varint()
	if r.err == nil && (v < lo || v > hi) {
		r.Fail(fmt.Errorf("wire: value %d out of range [%d,%d]", v, lo, hi))
		return 0
	}
	return v
}

// Bool reads one boolean byte.
func (r *Reader) Bool() bool {
	if r.err != nil {
		return false
	}
	if len(r.b) < 1 {
		r.Fail(ErrShort)
		return false
	}
	v := r.b[0]
	r.b = r.b[1:]
	if v > 1 {
		r.Fail(fmt.Errorf("wire: bad boolean %d", v))
		return false
	}
	return v == 1
}

// Byte reads one byte.
func (r *Reader) Byte() byte {
	if r.err != nil {
		return 0
	}
	if len(r.b) < 1 {
		r.Fail(ErrShort)
		return 0
	}
	v := r.b[0]
	r.b = r.b[1:]
	return v
}

// U32 reads a fixed 4-byte big-endian value.
func (r *Reader) U32() uint32 {
	if r.err != nil {
		return 0
	}
	if len(r.b) < 4 {
		r.Fail(ErrShort)
		return 0
	}
	v := binary.BigEndian.Uint32(r.b)
	r.b = r.b[4:]
	return v
}

// Bytes reads a length-prefixed byte string of at most max bytes and returns a
// copy of it (nil for an empty string).
func (r *Reader) Bytes(max int) []byte {
	n := r.Uvarint()
	if r.err != nil {
		return nil
	}
	if n > uint64(max) {
		r.Fail(fmt.Errorf("wire: byte string of %d bytes exceeds limit %d", n, max))
		return nil
	}
	if uint64(len(r.b)) < n {
		r.Fail(ErrShort)
		return nil
	}
	if n == 0 {
		return nil
	}
	out := make([]byte, n)
	copy(out, r.b[:n])
	r.b = r.b[n:]
	return out
}

// String reads a length-prefixed string of at most max bytes.
func (r *Reader) String(max int) string { return string(r.Bytes(max)) }

// Done returns Err, or an error if unread bytes remain.
func (r *Reader) Done() error {
	if r.err != nil {
		return r.err
	}
	if len(r.b) != 0 {
		return fmt.Errorf("wire: %d trailing bytes", len(r.b))
	}
	return nil
}
