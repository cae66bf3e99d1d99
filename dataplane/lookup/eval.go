package lookup

import "strings"

// evaluator substitutes lookups the way Log4j 2.14.1's StrSubstitutor does
// (prefix "${", suffix "}", escape '$', default-value separator ":-", escaped
// separator ":\-", substitution inside variable names enabled) and records
// whether a JNDI lookup was performed on the way. One evaluator is used by one
// goroutine at a time; JNDI takes them from a pool.
type evaluator struct {
	// raw, pct and unesc hold the input and its decoded variants, reused
	// across calls.
	raw   []byte
	pct   [2][]byte
	unesc []byte

	budget int  // work units left (bytes scanned or copied)
	depth  int  // current substitution nesting
	found  bool // a lookup with prefix "jndi" was evaluated
	over   bool // a bound was exceeded; the result falls back to candidate
	region int  // start of the top-level lookup being evaluated
}

// evaluate reports whether substituting s performs a JNDI lookup. When a bound
// is exceeded while a top-level lookup is evaluated, the rest of s from that
// lookup on is judged by candidate instead (fail safe: neither padding, nor
// nesting, nor work spent on a decoy hides a later payload, and benign text
// without a JNDI prefix's letters still passes).
func (e *evaluator) evaluate(s string) bool {
	e.budget = workBase + workPerByte*len(s)
	e.depth, e.found, e.over, e.region = 0, false, false, 0
	e.subst(s, true)
	if e.found {
		return true
	}
	return e.over && candidate([]byte(s[e.region:]))
}

func (e *evaluator) done() bool { return e.found || e.over }

// spend charges n units of work and reports whether the budget still holds.
func (e *evaluator) spend(n int) bool {
	e.budget -= n
	if e.budget < 0 {
		e.over = true
	}
	return !e.over
}

// subst returns s with its lookups replaced by their values, as
// StrSubstitutor.substitute does:
//   - a "${" preceded (in the output built so far) by '$' is escaped: the '$'
//     is dropped and scanning resumes after it, so lookups nested inside an
//     escaped one are still evaluated;
//   - a lookup extends to the '}' that balances it, counting nested "${";
//   - its name is substituted first, then split at the default separator and
//     resolved; a resolved value (or the default) replaces the lookup and is
//     substituted again, an unresolved lookup stays as it was written;
//   - an unclosed "${" ends the substitution of s.
//
// A top-level lookup longer than MaxLookupLength is not evaluated (e.over).
//
// top marks the string handed to the logger. There, an unclosed "${" is also
// evaluated as if closed at the end, because the text that follows the field
// in the log line (a "}" of a formatted map or JSON object) may close it.
func (e *evaluator) subst(s string, top bool) string {
	if !e.spend(len(s) + 1) {
		return s
	}
	p := strings.Index(s, "${")
	if p < 0 {
		return s
	}
	if e.depth >= MaxDepth {
		e.over = true
		return s
	}
	e.depth++
	defer func() { e.depth-- }()

	// The top-level result is not needed, only its last byte (for escapes).
	out := output{keep: !top}
	if out.keep {
		out.buf = make([]byte, 0, len(s))
	}
	pos := 0
	for {
		out.add(s[pos:p])
		if out.last == '$' {
			// Escaped: the escape character goes, the "${" stays literal.
			pos = p + 1
		} else {
			if top {
				e.region = p
			}
			end, open := closing(s, p)
			if !e.spend(end - p) {
				return s
			}
			if top && end-p > MaxLookupLength {
				e.over = true
				return s
			}
			if end == len(s) {
				// Unclosed.
				if top {
					e.lookup(s[p+2:] + strings.Repeat("}", open))
				}
				out.add(s[p:])
				return string(out.buf)
			}
			if v, ok := e.lookup(s[p+2 : end]); ok {
				out.add(e.subst(v, false))
			} else {
				out.add(s[p : end+1])
			}
			pos = end + 1
		}
		if e.done() {
			return s
		}
		i := strings.Index(s[pos:], "${")
		if i < 0 {
			out.add(s[pos:])
			return string(out.buf)
		}
		p = pos + i
	}
}

// output collects a substitution result, or only its last byte.
type output struct {
	keep bool
	buf  []byte
	last byte // last byte added, 0 while empty
}

func (o *output) add(s string) {
	if len(s) == 0 {
		return
	}
	o.last = s[len(s)-1]
	if o.keep {
		o.buf = append(o.buf, s...)
	}
}

// closing returns the index of the '}' that closes the lookup opened at s[p:],
// or len(s) and the number of nested lookups still open when there is none.
func closing(s string, p int) (end, open int) {
	for i := p + 2; i < len(s); i++ {
		switch s[i] {
		case '$':
			if i+1 < len(s) && s[i+1] == '{' {
				open++
				i++
			}
		case '}':
			if open == 0 {
				return i, 0
			}
			open--
		}
	}
	return len(s), open
}

// lookup evaluates the lookup whose text between "${" and "}" is expr. It
// returns the replacement and whether there is one.
func (e *evaluator) lookup(expr string) (string, bool) {
	name := e.subst(expr, false)
	if e.done() {
		return "", false
	}
	name, def, hasDef := splitDefault(name)
	if v, ok := e.resolve(name); ok {
		return v, true
	}
	if hasDef {
		return def, true
	}
	return "", false
}

// splitDefault splits a substituted variable name at the first ":-" into name
// and default value. An escaped separator ":\-" before it stays in the name as
// ":-" (and a ":-" after it still starts the default), as StrSubstitutor does.
func splitDefault(expr string) (name, def string, ok bool) {
	for i := 0; i+1 < len(expr); i++ {
		if expr[i] != ':' {
			continue
		}
		if strings.HasPrefix(expr[i:], `:\-`) {
			prefix := expr[:i] + ":"
			for j := i + 3; j+1 < len(expr); j++ {
				if expr[j] == ':' && expr[j+1] == '-' {
					return prefix + expr[i+3:j], expr[j+2:], true
				}
			}
			return prefix + expr[i+2:], "", false
		}
		if expr[i+1] == '-' {
			return expr[:i], expr[i+2:], true
		}
	}
	return expr, "", false
}

// resolve performs the lookup name as Log4j's Interpolator does: the text
// before the first ':' is the lookup's prefix (compared in lower case), the
// rest its key. It returns the value and whether there is one (a missing value
// makes the default, if any, apply). Lookups whose values the gateway cannot
// know (env, sys, ctx, main, k8s, ...) are taken as unset, which is what the
// attacker relies on when adding a default; so are unknown prefixes and names
// without a prefix (configuration properties).
func (e *evaluator) resolve(name string) (string, bool) {
	c := strings.IndexByte(name, ':')
	if c < 0 {
		return "", false
	}
	prefix, key := name[:c], name[c+1:]
	switch {
	case equalFoldASCII(prefix, "jndi"):
		e.found = true
		return "", false
	case equalFoldASCII(prefix, "lower"):
		if !e.spend(len(key)) {
			return "", false
		}
		return javaLower(key), true
	case equalFoldASCII(prefix, "upper"):
		if !e.spend(len(key)) {
			return "", false
		}
		return javaUpper(key), true
	case equalFoldASCII(prefix, "date"):
		if !e.spend(len(key)) {
			return "", false
		}
		return javaDate(key), true
	}
	return "", false
}

// equalFoldASCII reports whether s equals the lower-case ASCII word w, ignoring
// ASCII case. Log4j lower-cases the prefix with Locale.US; no other character
// lower-cases to one of the ASCII letters of the prefixes compared here
// (U+0130 becomes "i" plus a combining dot, two characters).
func equalFoldASCII(s, w string) bool {
	if len(s) != len(w) {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != w[i] {
			return false
		}
	}
	return true
}
