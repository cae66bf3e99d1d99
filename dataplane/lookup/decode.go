package lookup

import (
	"bytes"
	"unicode/utf16"
	"unicode/utf8"
)

// candidate reports the necessary condition of every JNDI lookup: v holds "${"
// and, after the first "${", the letters j, n, d and i in that order (in any
// case; U+0131, dotless i, upper-cases to "I"). Substitution only concatenates
// text of the input in its original order — lookup values are the input's own
// default values, lower/upper arguments and date literals — so a JNDI prefix
// can be assembled from no other characters.
func candidate(v []byte) bool {
	p := bytes.Index(v, dollarBrace)
	if p < 0 {
		return false
	}
	i := p + 2
	for k := 0; k < len("jndi"); k++ {
		lower := "jndi"[k]
		n := nextEither(v[i:], lower, lower-('a'-'A'))
		if k == 3 {
			if d := bytes.Index(v[i:], dotlessI); d >= 0 && (n < 0 || d < n) {
				n = d
			}
		}
		if n < 0 {
			return false
		}
		i += n + 1
	}
	return true
}

var (
	dollarBrace = []byte("${")
	dotlessI    = []byte("\u0131")
)

// nextEither returns the index of the first a or b in v, or -1.
func nextEither(v []byte, a, b byte) int {
	i := bytes.IndexByte(v, a)
	if i < 0 {
		return bytes.IndexByte(v, b)
	}
	if j := bytes.IndexByte(v[:i], b); j >= 0 {
		return j
	}
	return i
}

// percentDecode appends to dst one percent-decoding pass over src: %XX as a
// byte, %uXXXX (IIS, some Java decoders) as the code point in UTF-8. Malformed
// escapes and '+' are kept. It reports whether anything was decoded.
func percentDecode(dst, src []byte) ([]byte, bool) {
	changed := false
	for i := 0; i < len(src); {
		n := bytes.IndexByte(src[i:], '%')
		if n < 0 {
			dst = append(dst, src[i:]...)
			break
		}
		dst = append(dst, src[i:i+n]...)
		i += n
		if i+2 < len(src) && isHex(src[i+1]) && isHex(src[i+2]) {
			dst = append(dst, unhex(src[i+1])<<4|unhex(src[i+2]))
			i += 3
			changed = true
			continue
		}
		if i+5 < len(src) && (src[i+1] == 'u' || src[i+1] == 'U') {
			if r, ok := hex4(src, i+2); ok {
				dst = utf8.AppendRune(dst, r)
				i += 6
				changed = true
				continue
			}
		}
		dst = append(dst, '%')
		i++
	}
	return dst, changed
}

// unescape appends to dst one pass of the escapes an application may decode
// before it logs a value: JSON and JavaScript string escapes (\uXXXX with
// surrogate pairs, \xHH, \n and friends, a backslash before any other character
// dropped) and HTML/XML character references (&#36;, &#x24;, with or without
// the ';', and the named references of the characters lookups are built from).
// It reports whether anything was decoded.
func unescape(dst, src []byte) ([]byte, bool) {
	changed := false
	for i := 0; i < len(src); {
		c := src[i]
		switch {
		case c == '\\' && i+1 < len(src):
			r, n := backslash(src, i)
			dst = utf8.AppendRune(dst, r)
			i += n
			changed = true
		case c == '&':
			if r, n := charRef(src, i); n > 0 {
				dst = utf8.AppendRune(dst, r)
				i += n
				changed = true
				continue
			}
			dst = append(dst, c)
			i++
		default:
			dst = append(dst, c)
			i++
		}
	}
	return dst, changed
}

// backslash decodes the escape at src[i] (a backslash, not the last byte) and
// returns the character and the escape's length.
func backslash(src []byte, i int) (rune, int) {
	switch c := src[i+1]; c {
	case 'u':
		r, ok := hex4(src, i+2)
		if !ok {
			return 'u', 2
		}
		if utf16.IsSurrogate(r) {
			if i+11 < len(src) && src[i+6] == '\\' && src[i+7] == 'u' {
				if lo, ok := hex4(src, i+8); ok {
					if p := utf16.DecodeRune(r, lo); p != utf8.RuneError {
						return p, 12
					}
				}
			}
			return utf8.RuneError, 6
		}
		return r, 6
	case 'x':
		if i+3 < len(src) && isHex(src[i+2]) && isHex(src[i+3]) {
			return rune(unhex(src[i+2])<<4 | unhex(src[i+3])), 4
		}
		return 'x', 2
	case 'n':
		return '\n', 2
	case 'r':
		return '\r', 2
	case 't':
		return '\t', 2
	case 'b':
		return '\b', 2
	case 'f':
		return '\f', 2
	default:
		if c >= utf8.RuneSelf {
			r, n := utf8.DecodeRune(src[i+1:])
			return r, 1 + n
		}
		return rune(c), 2
	}
}

// maxRefDigits bounds the digits of a numeric character reference (the
// largest code point, U+10FFFF, has 7 decimal digits).
const maxRefDigits = 7

// namedRefs are the HTML named references of the characters lookups are made
// of (and of '&' itself, for double-escaped text).
var namedRefs = [...]struct {
	name []byte
	r    rune
}{
	{[]byte("dollar;"), '$'}, {[]byte("lbrace;"), '{'}, {[]byte("lcub;"), '{'}, {[]byte("rbrace;"), '}'}, {[]byte("rcub;"), '}'},
	{[]byte("colon;"), ':'}, {[]byte("hyphen;"), '-'}, {[]byte("dash;"), '-'}, {[]byte("amp;"), '&'}, {[]byte("sol;"), '/'},
	{[]byte("bsol;"), '\\'}, {[]byte("percnt;"), '%'}, {[]byte("quot;"), '"'}, {[]byte("apos;"), '\''}, {[]byte("lt;"), '<'}, {[]byte("gt;"), '>'},
}

// charRef decodes the character reference at src[i] ('&') and returns the
// character and the reference's length, or a length of 0 when there is none.
func charRef(src []byte, i int) (rune, int) {
	j := i + 1
	if j < len(src) && src[j] == '#' {
		j++
		hex := j < len(src) && (src[j] == 'x' || src[j] == 'X')
		if hex {
			j++
		}
		start := j
		var r rune
		for j < len(src) && j-start < maxRefDigits {
			d := src[j]
			switch {
			case hex && isHex(d):
				r = r<<4 | rune(unhex(d))
			case '0' <= d && d <= '9':
				r = r*10 + rune(d-'0')
			default:
				goto end
			}
			j++
		}
	end:
		if j == start || r > utf8.MaxRune {
			return 0, 0
		}
		if j < len(src) && src[j] == ';' {
			j++
		}
		if !utf8.ValidRune(r) {
			r = utf8.RuneError
		}
		return r, j - i
	}
	for _, n := range namedRefs {
		if bytes.HasPrefix(src[j:], n.name) {
			return n.r, 1 + len(n.name)
		}
	}
	return 0, 0
}

// mayUnescape reports whether unescaping v can produce a '$': v holds an
// escape unescape decodes, and a '$' or an escape that can stand for one
// (\u, \x, &#, &dollar;).
func mayUnescape(v []byte) bool {
	dollar := bytes.IndexByte(v, '$') >= 0
	for _, c := range [2]byte{'\\', '&'} {
		for i := 0; ; {
			n := bytes.IndexByte(v[i:], c)
			if n < 0 {
				break
			}
			if dollar {
				return true
			}
			i += n + 1
			if i < len(v) {
				switch {
				case c == '\\' && (v[i] == 'u' || v[i] == 'x'):
					return true
				case c == '&' && (v[i] == '#' || bytes.HasPrefix(v[i:], refDollar)):
					return true
				}
			}
		}
	}
	return false
}

var refDollar = []byte("dollar;")

func hex4(s []byte, i int) (rune, bool) {
	if i+4 > len(s) {
		return 0, false
	}
	var r rune
	for k := i; k < i+4; k++ {
		if !isHex(s[k]) {
			return 0, false
		}
		r = r<<4 | rune(unhex(s[k]))
	}
	return r, true
}

func isHex(c byte) bool {
	return ('0' <= c && c <= '9') || ('a' <= c && c <= 'f') || ('A' <= c && c <= 'F')
}

func unhex(c byte) byte {
	switch {
	case '0' <= c && c <= '9':
		return c - '0'
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}
