package http

import (
	"bytes"
	"strings"
	"unicode/utf8"
)

// parseURI fills u from a request-target (RFC 9112 §3.2) and returns the
// authority of an absolute-form or authority-form target ("" otherwise).
// scratch is reused between calls.
func parseURI(u *URI, target string, connect bool, scratch *[]byte) string {
	*u = URI{Raw: target}
	var host, path string
	switch {
	case target == "*":
		u.PathRaw, u.Path, u.PathDecodedOnce = "*", "*", "*"
		return ""
	case target != "" && target[0] == '/':
		path = target
	case schemeEnd(target) > 0:
		rest := target[schemeEnd(target)+len("://"):]
		end := strings.IndexAny(rest, "/?#")
		if end < 0 {
			end = len(rest)
		}
		host, path = rest[:end], rest[end:]
		if path == "" || path[0] != '/' {
			// "http://h" and "http://h?q" address the root.
			u.Path = "/"
		}
	case connect:
		u.Invalid = target == "" || strings.ContainsAny(target, "/?#")
		return target
	default:
		u.Invalid = true
		path = target
	}
	if q := strings.IndexByte(path, '?'); q >= 0 {
		u.PathRaw, u.Query = path[:q], path[q+1:]
		if f := strings.IndexByte(u.Query, '#'); f >= 0 {
			u.Query = u.Query[:f]
		}
	} else {
		u.PathRaw = path
		if f := strings.IndexByte(path, '#'); f >= 0 {
			u.PathRaw = path[:f]
		}
	}
	normalizePath(u, scratch)
	return host
}

// schemeEnd returns the length of the scheme of an absolute URI with an
// authority ("scheme://"), or -1.
func schemeEnd(s string) int {
	i := strings.Index(s, "://")
	if i <= 0 {
		return -1
	}
	for j := 0; j < i; j++ {
		c := s[j]
		alpha := (c|0x20) >= 'a' && (c|0x20) <= 'z'
		if !alpha && (j == 0 || !(isDigit(c) || c == '+' || c == '-' || c == '.')) {
			return -1
		}
	}
	return i
}

// normalizePath sets the normalised path fields of u from u.PathRaw as the
// URI field docs describe.
func normalizePath(u *URI, scratch *[]byte) {
	raw := u.PathRaw
	if raw == "" {
		return // Path stays "" (or "/" for an absolute-form root)
	}
	cur, once := raw, raw
	dots0 := countDotSegments(raw)
	dots1 := dots0
	if strings.IndexByte(raw, '%') >= 0 {
		for pass := 0; pass < MaxDecodePasses; pass++ {
			next := unescape(cur, false)
			if next == cur {
				break
			}
			u.DecodePasses++
			cur = next
			if pass == 0 {
				once = next
				dots1 = countDotSegments(next)
			}
		}
	}
	u.PathDecodedOnce = once
	dotsN := dots1
	if u.DecodePasses > 1 {
		dotsN = countDotSegments(cur)
	}
	u.EncodedDotSegment = dotsN > dots0
	u.DoubleEncodedDotSegment = dotsN > dots1
	u.Path, u.EscapesRoot = resolvePath(cur, scratch)
}

// isSep reports whether c separates path segments once backslashes count as
// slashes.
func isSep(c byte) bool { return c == '/' || c == '\\' }

// countDotSegments counts the "." and ".." segments of p, splitting on '/'
// and '\'.
func countDotSegments(p string) int {
	n := 0
	start := 0
	for i := 0; i <= len(p); i++ {
		if i < len(p) && !isSep(p[i]) {
			continue
		}
		if seg := p[start:i]; seg == "." || seg == ".." {
			n++
		}
		start = i + 1
	}
	return n
}

// resolvePath turns backslashes into slashes, merges repeated slashes and
// resolves dot segments (RFC 3986 §5.2.4). escapes is true when a ".." climbs
// above the root.
func resolvePath(p string, scratch *[]byte) (out string, escapes bool) {
	if strings.IndexByte(p, '\\') < 0 && !strings.Contains(p, "//") &&
		!strings.Contains(p, "/.") && !strings.HasPrefix(p, ".") {
		return p, false
	}
	buf := (*scratch)[:0]
	lead := isSep(p[0])
	lastDir := false
	start := 0
	for i := 0; i <= len(p); i++ {
		if i < len(p) && !isSep(p[i]) {
			continue
		}
		seg := p[start:i]
		start = i + 1
		switch seg {
		case "", ".":
			lastDir = true
		case "..":
			lastDir = true
			if len(buf) == 0 {
				escapes = true
				continue
			}
			j := bytes.LastIndexByte(buf, '/')
			if j < 0 {
				j = 0
			}
			buf = buf[:j]
		default:
			lastDir = false
			if lead || len(buf) > 0 {
				buf = append(buf, '/')
			}
			buf = append(buf, seg...)
		}
	}
	if (lastDir && len(buf) > 0) || (len(buf) == 0 && lead) {
		buf = append(buf, '/')
	}
	*scratch = buf
	return string(buf), escapes
}

// unescape decodes %XX and %uXXXX escapes once (and '+' as space when plus is
// set). Malformed escapes stay as they are. It returns s itself when nothing
// was decoded.
func unescape(s string, plus bool) string {
	i := strings.IndexByte(s, '%')
	if plus {
		if j := strings.IndexByte(s, '+'); j >= 0 && (i < 0 || j < i) {
			i = j
		}
	}
	if i < 0 {
		return s
	}
	b := make([]byte, 0, len(s))
	b = append(b, s[:i]...)
	changed := false
	for i < len(s) {
		c := s[i]
		switch {
		case c == '+' && plus:
			b = append(b, ' ')
			changed = true
			i++
			continue
		case c != '%':
		case i+2 < len(s) && ishex(s[i+1]) && ishex(s[i+2]):
			b = append(b, hexval(s[i+1])<<4|hexval(s[i+2]))
			changed = true
			i += 3
			continue
		case i+5 < len(s) && (s[i+1] == 'u' || s[i+1] == 'U') &&
			ishex(s[i+2]) && ishex(s[i+3]) && ishex(s[i+4]) && ishex(s[i+5]):
			r := rune(hexval(s[i+2]))<<12 | rune(hexval(s[i+3]))<<8 | rune(hexval(s[i+4]))<<4 | rune(hexval(s[i+5]))
			b = utf8.AppendRune(b, r)
			changed = true
			i += 6
			continue
		}
		b = append(b, c)
		i++
	}
	if !changed {
		return s
	}
	return string(b)
}

func ishex(c byte) bool { _, ok := unhex(c); return ok }

func hexval(c byte) byte { v, _ := unhex(c); return v }
