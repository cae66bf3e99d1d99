package patch

import (
	"unicode/utf8"

	"github.com/expr-lang/expr"

	"github.com/patchgate/patchgate/dataplane/lookup"
)

// Function is a helper available to patch predicates beside expr's builtins.
type Function struct {
	Name string
	Doc  string
	opt  expr.Option
}

var registry []Function

// RegisterFunction adds a predicate helper with a typed signature (for the type
// checker), e.g. new(func(string) bool). Called from init functions.
func RegisterFunction(name, doc string, fn func(params ...any) (any, error), types ...any) {
	registry = append(registry, Function{Name: name, Doc: doc, opt: expr.Function(name, fn, types...)})
}

// Functions lists the registered predicate helpers.
func Functions() []Function { return append([]Function(nil), registry...) }

func functions() []expr.Option {
	out := make([]expr.Option, len(registry))
	for i, f := range registry {
		out[i] = f.opt
	}
	return out
}

func init() {
	RegisterFunction("log4j_jndi", "true when a vulnerable Log4j 2 logging the string would perform a JNDI lookup (nested lookups, defaults and case tricks evaluated)",
		func(p ...any) (any, error) { return lookup.JNDI(p[0].(string)), nil },
		new(func(string) bool))
	RegisterFunction("url_decode", "one percent-decoding pass (%XX and %uXXXX; '+' is kept)",
		func(p ...any) (any, error) { return URLDecode(p[0].(string)), nil },
		new(func(string) string))
}

// URLDecode performs one percent-decoding pass: %XX bytes and %uXXXX code points
// (encoded as UTF-8). Malformed escapes are kept literally; '+' is kept.
func URLDecode(s string) string {
	i := 0
	for i < len(s) && s[i] != '%' {
		i++
	}
	if i == len(s) {
		return s
	}
	out := make([]byte, 0, len(s))
	out = append(out, s[:i]...)
	for i < len(s) {
		c := s[i]
		if c == '%' {
			if i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]) {
				out = append(out, unhex(s[i+1])<<4|unhex(s[i+2]))
				i += 3
				continue
			}
			if i+5 < len(s) && (s[i+1] == 'u' || s[i+1] == 'U') && isHex(s[i+2]) && isHex(s[i+3]) && isHex(s[i+4]) && isHex(s[i+5]) {
				r := rune(unhex(s[i+2]))<<12 | rune(unhex(s[i+3]))<<8 | rune(unhex(s[i+4]))<<4 | rune(unhex(s[i+5]))
				out = utf8.AppendRune(out, r)
				i += 6
				continue
			}
		}
		out = append(out, c)
		i++
	}
	return string(out)
}

func isHex(c byte) bool {
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}

func unhex(c byte) byte {
	switch {
	case c >= '0' && c <= '9':
		return c - '0'
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}
