package dns

// Limits of domain-name decoding (RFC 1035 §2.3.4, §4.1.4).
const (
	// MaxNameLength is the longest name in uncompressed wire form, length
	// bytes and the root label included. Longer names are malformed.
	MaxNameLength = 255
	// MaxNameLabels bounds the labels of a name (root included): 127 one-byte
	// labels plus the root are all that fit in MaxNameLength bytes.
	MaxNameLabels = 128
	// MaxNameJumps bounds the compression pointers followed for one name. Every
	// pointer must also point before the start of the part of the name being
	// read, so loops are impossible; the bound caps the work per name.
	MaxNameJumps = 128
)

// Reasons a name is malformed (also message MalformedReason codes).
const (
	reasonTruncated      = "truncated"
	reasonPointerForward = "name_pointer_forward"
	reasonTooManyJumps   = "name_too_many_jumps"
	reasonNameTooLong    = "name_too_long"
	reasonTooManyLabels  = "name_too_many_labels"
	reasonBadLabelType   = "name_bad_label_type"
)

// span locates a string in the message's string arena.
type span struct{ off, end int32 }

// readName decodes the name starting at off. Labels read before the first
// compression pointer must end at or before limit (the end of the message or
// of the enclosing record data); labels reached through pointers must lie in
// the message. A pointer must point before the start of the name segment that
// contains it, which makes every chain strictly decreasing and loop-free.
//
// It returns the offset just past the name on the wire, the span of its
// presentation form (when d.build), its uncompressed wire length, and a
// non-empty reason when the name is malformed.
func (d *decoder) readName(off, limit int) (next int, sp span, wireLen int, reason string) {
	msg := d.msg
	pos, end := off, limit
	next = -1
	segStart := off
	jumps, labels := 0, 0
	wireLen = 1 // the root label
	start := len(d.arena)
	for {
		if pos >= end {
			return d.nameFail(off, next, start, reasonTruncated)
		}
		c := msg[pos]
		switch c & 0xC0 {
		case 0x00:
			if c == 0 {
				if next < 0 {
					next = pos + 1
				}
				if d.build {
					if labels == 0 {
						d.arena = append(d.arena, '.')
					}
					sp = span{int32(start), int32(len(d.arena))}
				}
				if wireLen > d.maxNameLen {
					d.maxNameLen = wireLen
				}
				if jumps > d.maxJumps {
					d.maxJumps = jumps
				}
				return next, sp, wireLen, ""
			}
			l := int(c)
			if pos+1+l > end {
				return d.nameFail(off, next, start, reasonTruncated)
			}
			labels++
			wireLen += 1 + l
			if labels+1 > MaxNameLabels {
				return d.nameFail(off, next, start, reasonTooManyLabels)
			}
			if wireLen > MaxNameLength {
				return d.nameFail(off, next, start, reasonNameTooLong)
			}
			if d.build {
				if labels > 1 {
					d.arena = append(d.arena, '.')
				}
				d.arena = appendLabel(d.arena, msg[pos+1:pos+1+l])
			}
			pos += 1 + l
		case 0xC0:
			if pos+2 > end {
				return d.nameFail(off, next, start, reasonTruncated)
			}
			if next < 0 {
				next = pos + 2
			}
			target := int(c&0x3F)<<8 | int(msg[pos+1])
			if target >= segStart {
				return d.nameFail(off, next, start, reasonPointerForward)
			}
			jumps++
			if jumps > MaxNameJumps {
				return d.nameFail(off, next, start, reasonTooManyJumps)
			}
			segStart, pos, end = target, target, len(msg)
		default:
			// 0x40 (extended label types, RFC 6891 §5) and 0x80 (reserved).
			return d.nameFail(off, next, start, reasonBadLabelType)
		}
	}
}

// nameFail undoes the arena writes of a failed name and reports reason.
func (d *decoder) nameFail(off, next, start int, reason string) (int, span, int, string) {
	d.arena = d.arena[:start]
	if next < 0 {
		next = off
	}
	return next, span{}, 0, reason
}

// appendLabel appends one label in presentation form: ASCII letters
// lower-cased; '.', '\' and bytes outside 0x21-0x7E escaped.
func appendLabel(dst, label []byte) []byte {
	for i, c := range label {
		if c < 0x21 || c > 0x7E || c == '.' || c == '\\' || ('A' <= c && c <= 'Z') {
			return appendLabelSlow(append(dst, label[:i]...), label[i:])
		}
	}
	return append(dst, label...)
}

func appendLabelSlow(dst, label []byte) []byte {
	for _, c := range label {
		switch {
		case c == '.' || c == '\\':
			dst = append(dst, '\\', c)
		case c < 0x21 || c > 0x7E:
			dst = append(dst, '\\', '0'+c/100, '0'+c/10%10, '0'+c%10)
		case 'A' <= c && c <= 'Z':
			dst = append(dst, c+'a'-'A')
		default:
			dst = append(dst, c)
		}
	}
	return dst
}
