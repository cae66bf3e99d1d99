package lookup

// datePatternLetters are the pattern letters java.text.SimpleDateFormat
// accepts; any other ASCII letter outside quotes makes the pattern invalid.
const datePatternLetters = "GyYMLwWDdFEuaHkKhmsSzZX"

// dateField stands for the output of one pattern field (a number, a month or
// day name, an era, a time zone). Its real value depends on the clock and the
// locale; no such value is a lone letter of "jndi", a '$', '{', '}' or ':', so
// one neutral placeholder is as good as the real text for this evaluation.
const dateField = "0"

// javaDate returns what ${date:pattern} produces: the pattern formatted as
// SimpleDateFormat does, with quoted literals ('j' gives "j", ” gives "'")
// kept exactly. An invalid pattern (unknown letter, unterminated quote) makes
// Log4j fall back to the default date format, which is all fields.
func javaDate(pattern string) string {
	out := make([]byte, 0, len(pattern))
	for i := 0; i < len(pattern); {
		c := pattern[i]
		switch {
		case c == '\'':
			if i+1 < len(pattern) && pattern[i+1] == '\'' {
				out = append(out, '\'')
				i += 2
				continue
			}
			// Quoted text up to the closing quote; '' inside is one quote.
			i++
			closed := false
			for i < len(pattern) {
				if pattern[i] == '\'' {
					if i+1 < len(pattern) && pattern[i+1] == '\'' {
						out = append(out, '\'')
						i += 2
						continue
					}
					i++
					closed = true
					break
				}
				out = append(out, pattern[i])
				i++
			}
			if !closed {
				return dateField
			}
		case ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z'):
			if !isPatternLetter(c) {
				return dateField
			}
			for i < len(pattern) && pattern[i] == c {
				i++
			}
			out = append(out, dateField...)
		default:
			out = append(out, c)
			i++
		}
	}
	return string(out)
}

func isPatternLetter(c byte) bool {
	for i := 0; i < len(datePatternLetters); i++ {
		if datePatternLetters[i] == c {
			return true
		}
	}
	return false
}
