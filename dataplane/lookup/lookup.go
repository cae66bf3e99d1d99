// Package lookup decides whether a string would make a vulnerable Log4j 2
// perform a JNDI lookup when it is logged: the vulnerable condition of
// CVE-2021-44228 and CVE-2021-45046 (Log4j 2.0-beta9 to 2.14.1 with message
// lookups, and 2.15.0 through context lookups).
//
// Rather than looking for byte patterns, JNDI evaluates the string the way
// Log4j's StrSubstitutor does — nested lookups inside-out, case-insensitive
// prefixes, ${lower:}, ${upper:}, ${date:} quoted literals, ":-" default values,
// "$${" escapes, unknown lookups kept as text — and reports whether any
// evaluated lookup has the prefix "jndi". Every obfuscation that works against
// Log4j therefore works against it too, and benign text that merely contains
// "${" (shell parameter expansions, JavaScript templates, prices) does not match.
//
// The evaluation is bounded in lookup length, nesting depth and total work (see
// the constants); an input that exceeds a bound is judged by a necessary
// condition of every JNDI lookup instead (see README.md).
package lookup

import (
	"bytes"
	"strings"
	"sync"
)

// Limits of the evaluator. Each bounds work that a hostile string could
// otherwise make unbounded.
const (
	// MaxLookupLength is the longest top-level lookup (from "${" to the "}" that
	// closes it, or to the end of an unclosed one) evaluated exactly. It equals
	// the HTTP analyzer's body inspection limit and header section limit, so a
	// lookup in any HTTP field is evaluated exactly; a longer one is judged by
	// the necessary condition (candidate) alone. Strings of any length are
	// otherwise evaluated lookup by lookup, in time linear in their length.
	MaxLookupLength = 64 << 10
	// MaxDepth bounds the nesting of substitutions (a lookup inside a lookup's
	// name, or a lookup's value substituted again). Real payloads nest 3 or 4
	// deep; the bound keeps the evaluator's recursion (and stack) small.
	MaxDepth = 32
	// MaxDecodePasses is how many percent-decoding passes are tried: an
	// application that decodes a parameter twice before logging it is real,
	// three times is the most any known stack does.
	MaxDecodePasses = 3

	// workBase and workPerByte set the work budget of one evaluation, in bytes
	// scanned or copied (and so allocated): workBase + workPerByte*len(input).
	// Real input costs a few units per byte (one scan per nesting level, one
	// copy per substitution); the budget exists for inputs whose substitution
	// is exponential, such as default values that contain unresolved lookups
	// nested many levels deep (Log4j itself spends that work; CVE-2021-45105
	// is the same shape). About 2 ns per unit.
	workBase    = 8 << 10
	workPerByte = 16
	// minJNDI is the length of the shortest string that can perform a JNDI
	// lookup, "${jndi:" (an unclosed lookup may be closed by the text that
	// follows the field in the log line).
	minJNDI = 7
)

// JNDI reports whether s, when logged by a vulnerable Log4j 2 with message
// lookups enabled, would perform a JNDI lookup. It evaluates s as it is, after
// each of up to MaxDecodePasses percent-decoding passes (%XX and %uXXXX), and
// each of those after one pass of JSON/JavaScript backslash escapes and
// HTML/XML character references, because applications commonly decode fields
// that way before logging them. It is safe for concurrent use and does not
// allocate for strings that cannot contain a lookup.
func JNDI(s string) bool {
	if len(s) < minJNDI || !mayHoldLookup(s) {
		return false
	}
	e := evaluators.Get().(*evaluator)
	found := e.judge(s)
	e.release()
	evaluators.Put(e)
	return found
}

// maxPooledBuffer bounds the decode buffers a pooled evaluator keeps, so one
// huge input does not pin its copies in memory.
const maxPooledBuffer = 2 * MaxLookupLength

func (e *evaluator) release() {
	for i := range e.pct {
		if cap(e.pct[i]) > maxPooledBuffer {
			e.pct[i] = nil
		}
	}
	if cap(e.unesc) > maxPooledBuffer {
		e.unesc = nil
	}
	if cap(e.raw) > maxPooledBuffer {
		e.raw = nil
	}
}

var evaluators = sync.Pool{New: func() any { return new(evaluator) }}

// mayHoldLookup reports whether s contains '$' or a character that starts an
// encoding of one ('%', '\\', '&'). Without any of them no variant of s can
// contain "${".
func mayHoldLookup(s string) bool {
	return strings.IndexByte(s, '$') >= 0 || strings.IndexByte(s, '%') >= 0 ||
		strings.IndexByte(s, '\\') >= 0 || strings.IndexByte(s, '&') >= 0
}

// judge tries s as it is, then after each percent-decoding pass; each of
// those also after one unescaping pass.
func (e *evaluator) judge(s string) bool {
	e.raw = append(e.raw[:0], s...)
	if e.try(e.raw, s) {
		return true
	}
	src := e.raw
	for pass := 0; pass < MaxDecodePasses; pass++ {
		if bytes.IndexByte(src, '%') < 0 {
			return false
		}
		var changed bool
		e.pct[pass&1], changed = percentDecode(e.pct[pass&1][:0], src)
		if !changed {
			return false
		}
		src = e.pct[pass&1]
		if e.try(src, "") {
			return true
		}
	}
	return false
}

// try evaluates one variant v (whose string form is s, when the caller has
// one), and v after one unescaping pass.
func (e *evaluator) try(v []byte, s string) bool {
	if candidate(v) {
		if s == "" {
			s = string(v)
		}
		if e.evaluate(s) {
			return true
		}
	}
	if !mayUnescape(v) {
		return false
	}
	var changed bool
	e.unesc, changed = unescape(e.unesc[:0], v)
	return changed && candidate(e.unesc) && e.evaluate(string(e.unesc))
}
