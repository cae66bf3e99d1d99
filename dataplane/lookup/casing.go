package lookup

import (
	"unicode"
	"unicode/utf8"
)

// javaLower returns s lower-cased as Java's String.toLowerCase does in a
// non-Turkic locale: per character, except that U+0130 (capital I with dot
// above) becomes "i" followed by U+0307, so "JNDİ" does not become "jndi".
// Bytes that are not valid UTF-8 are kept.
func javaLower(s string) string {
	return mapCase(s, false)
}

// javaUpper returns s upper-cased per character as Java's String.toUpperCase
// does. Java's multi-character mappings ("ß" to "SS", ligatures) are not
// reproduced: none of them yields a character that matters to substitution or
// to a JNDI prefix on its own. U+0131 (dotless i) becomes "I", as in Java.
func javaUpper(s string) string {
	return mapCase(s, true)
}

func mapCase(s string, upper bool) string {
	ascii, same := true, true
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= utf8.RuneSelf {
			ascii = false
			break
		}
		if (upper && 'a' <= c && c <= 'z') || (!upper && 'A' <= c && c <= 'Z') {
			same = false
		}
	}
	if ascii && same {
		return s
	}
	out := make([]byte, 0, len(s)+len(s)/2)
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if upper && 'a' <= c && c <= 'z' {
				c -= 'a' - 'A'
			} else if !upper && 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			out = append(out, c)
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			out = append(out, c)
		case !upper && r == '\u0130':
			out = append(out, "i\u0307"...)
		case upper:
			out = utf8.AppendRune(out, unicode.ToUpper(r))
		default:
			out = utf8.AppendRune(out, unicode.ToLower(r))
		}
		i += n
	}
	return string(out)
}
