package http

import "bytes"

// tchar marks the token characters of RFC 9110 §5.6.2.
var tchar = func() (t [256]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
		t[c-'a'+'A'] = true
	}
	for _, c := range "!#$%&'*+-.^_`|~" {
		t[c] = true
	}
	return t
}()

func isToken(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if !tchar[c] {
			return false
		}
	}
	return true
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func lower(c byte) byte {
	if c >= 'A' && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

func hasUpper(b []byte) bool {
	for _, c := range b {
		if c >= 'A' && c <= 'Z' {
			return true
		}
	}
	return false
}

func indexByte(b []byte, c byte) int { return bytes.IndexByte(b, c) }

func isOWS(c byte) bool { return c == ' ' || c == '\t' }

func trimOWS(b []byte) []byte {
	for len(b) > 0 && isOWS(b[0]) {
		b = b[1:]
	}
	return trimRightOWS(b)
}

func trimRightOWS(b []byte) []byte {
	for len(b) > 0 && isOWS(b[len(b)-1]) {
		b = b[:len(b)-1]
	}
	return b
}

// validValue reports whether a field value is free of CR and NUL, which no
// server treats the same way (bare CR is a known smuggling vector).
func validValue(b []byte) bool {
	return bytes.IndexByte(b, '\r') < 0 && bytes.IndexByte(b, 0) < 0
}

// isFramingName reports whether a field name (any case) is Content-Length or
// Transfer-Encoding, the fields that decide message framing.
func isFramingName(name []byte) bool {
	return framingName(name) != ""
}

func framingName(name []byte) string {
	switch {
	case bytes.EqualFold(name, []byte("content-length")):
		return "Content-Length"
	case bytes.EqualFold(name, []byte("transfer-encoding")):
		return "Transfer-Encoding"
	}
	return ""
}

// startSpans are the three parts of a start line.
type startSpans struct {
	s   [3]span
	v09 bool
}

// parseRequestLine parses method SP+ target SP+ HTTP/1.x (trailing spaces
// allowed), or an HTTP/0.9 "GET target" unless strict.
func parseRequestLine(line []byte, strict bool) (rl startSpans, ok bool) {
	i := 0
	for i < len(line) && tchar[line[i]] {
		i++
	}
	if i == 0 || i >= len(line) || line[i] != ' ' {
		return rl, false
	}
	rl.s[0] = span{0, i}
	for i < len(line) && line[i] == ' ' {
		i++
	}
	j := i
	for j < len(line) && line[j] > ' ' && line[j] != 0x7f {
		j++
	}
	if j == i {
		return rl, false
	}
	rl.s[1] = span{i, j - i}
	if j == len(line) {
		if strict || string(line[:rl.s[0].n]) != "GET" {
			return rl, false
		}
		rl.v09 = true
		return rl, true
	}
	if line[j] != ' ' {
		return rl, false
	}
	for j < len(line) && line[j] == ' ' {
		j++
	}
	if !isVersion(line[j:]) {
		return rl, false
	}
	rl.s[2] = span{j, 8}
	for _, c := range line[j+8:] {
		if c != ' ' {
			return rl, false
		}
	}
	return rl, true
}

// isVersion reports whether b starts with "HTTP/1." and a digit.
func isVersion(b []byte) bool {
	return len(b) >= 8 && string(b[:7]) == "HTTP/1." && isDigit(b[7])
}

// versionMinor returns the minor version digit of an "HTTP/1.x" span, or 0
// when b is not a version (a corrupt checkpoint must not panic us).
func versionMinor(b []byte) byte {
	if !isVersion(b) {
		return 0
	}
	return b[7] - '0'
}

// parseStatusLine parses HTTP/1.x SP 3DIGIT [SP reason].
func parseStatusLine(line []byte) (sl startSpans, ok bool) {
	if len(line) < 12 || !isVersion(line) || line[8] != ' ' ||
		!isDigit(line[9]) || !isDigit(line[10]) || !isDigit(line[11]) || line[9] == '0' {
		return sl, false
	}
	sl.s[0] = span{0, 8}
	sl.s[1] = span{9, 3}
	if len(line) == 12 {
		sl.s[2] = span{12, 0}
		return sl, true
	}
	if line[12] != ' ' {
		return sl, false
	}
	for _, c := range line[13:] {
		if (c < ' ' && c != '\t') || c == 0x7f {
			return sl, false
		}
	}
	sl.s[2] = span{13, len(line) - 13}
	return sl, true
}

// maxChunkSizeDigits bounds the significant hex digits of a chunk size:
// 15 digits (up to 2^60-1) never overflow int64.
const maxChunkSizeDigits = 15

// parseChunkSize parses a chunk-size line: hex digits, optional whitespace,
// optional ";" extensions.
func parseChunkSize(line []byte) (int64, bool) {
	i := 0
	for i < len(line) && line[i] == '0' {
		i++
	}
	start := i
	var v int64
	for i < len(line) {
		h, ok := unhex(line[i])
		if !ok {
			break
		}
		v = v<<4 | int64(h)
		i++
		if i-start > maxChunkSizeDigits {
			return 0, false
		}
	}
	if i == 0 {
		return 0, false
	}
	rest := line[i:]
	for len(rest) > 0 && isOWS(rest[0]) {
		rest = rest[1:]
	}
	if len(rest) > 0 && (rest[0] != ';' || !validValue(rest)) {
		return 0, false
	}
	return v, true
}

func unhex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}
