package http

import (
	"math"
	"strings"
)

// parseRange parses a Range (or Request-Range) value into r (RFC 9110 §14.1).
// specs is the reused backing array of r.Specs; the parsed specs are
// returned (the caller points r.Specs at them). Only the "bytes" unit is parsed; other units are
// kept as Unit with no specs. A spec whose last-byte-pos is below its
// first-byte-pos makes the value Invalid, as RFC 9110 §14.1.1 says.
func parseRange(v string, r *Range, specs []RangeSpec) []RangeSpec {
	*r = Range{Present: true, Raw: v}
	specs = specs[:0]
	eq := strings.IndexByte(v, '=')
	if eq < 0 {
		r.Invalid = true
		return specs
	}
	unit := strings.Trim(v[:eq], " \t")
	if strings.EqualFold(unit, "bytes") {
		r.Unit = "bytes"
	} else {
		r.Unit = strings.ToLower(unit)
		r.Invalid = !isToken([]byte(unit))
		return specs
	}
	list := v[eq+1:]
	for list != "" {
		var elem string
		if i := strings.IndexByte(list, ','); i >= 0 {
			elem, list = list[:i], list[i+1:]
		} else {
			elem, list = list, ""
		}
		elem = strings.Trim(elem, " \t")
		if elem == "" {
			continue // empty list elements are allowed (RFC 9110 §5.6.1)
		}
		r.Count++
		spec, ok := parseRangeSpec(elem)
		if !ok {
			r.Invalid = true
			continue
		}
		if spec.Last >= 0 && spec.Last < spec.First {
			r.Invalid = true // kept: patches may still want to see it
		}
		if len(specs) < MaxRangeSpecs {
			specs = append(specs, spec)
		}
	}
	if r.Count == 0 {
		r.Invalid = true
	}
	r.Overlaps = countOverlaps(specs)
	return specs
}

// parseRangeSpec parses first-last, first- or -suffix.
func parseRangeSpec(s string) (RangeSpec, bool) {
	spec := RangeSpec{First: -1, Last: -1, Suffix: -1}
	dash := strings.IndexByte(s, '-')
	if dash < 0 {
		return spec, false
	}
	first, last := s[:dash], s[dash+1:]
	if first == "" {
		n, _, ok := parseRangeNumber(last)
		if !ok {
			return spec, false
		}
		spec.Suffix = n
		return spec, true
	}
	n, _, ok := parseRangeNumber(first)
	if !ok {
		return spec, false
	}
	spec.First = n
	if last == "" {
		return spec, true
	}
	n, over, ok := parseRangeNumber(last)
	if !ok {
		return spec, false
	}
	spec.Last, spec.LastOverflows = n, over
	return spec, true
}

// maxUint64Decimal is 2^64-1, the value at and above which last-byte-pos + 1
// wraps in unsigned 64-bit arithmetic.
const maxUint64Decimal = "18446744073709551615"

// parseRangeNumber parses 1*DIGIT, saturating at the int64 maximum. overU64 is
// true when the value is at least 2^64-1 (leading zeros ignored, any length).
func parseRangeNumber(s string) (n int64, overU64, ok bool) {
	if s == "" {
		return 0, false, false
	}
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return 0, false, false
		}
	}
	sig := strings.TrimLeft(s, "0")
	switch {
	case len(sig) > len(maxUint64Decimal):
		overU64 = true
	case len(sig) == len(maxUint64Decimal):
		overU64 = sig >= maxUint64Decimal
	}
	if len(sig) > 19 || (len(sig) == 19 && sig > "9223372036854775807") {
		return math.MaxInt64, overU64, true
	}
	for i := 0; i < len(sig); i++ {
		n = n*10 + int64(sig[i]-'0')
	}
	return n, overU64, true
}

// countOverlaps counts the specs that overlap an earlier one. Closed and
// open-ended ranges are compared as intervals; suffix ranges overlap other
// suffix ranges and open-ended ranges (both reach the end of the
// representation); a suffix range and a closed range cannot be compared
// without the representation length and are not counted.
func countOverlaps(specs []RangeSpec) int {
	n := 0
	for i := 1; i < len(specs); i++ {
		for j := 0; j < i; j++ {
			if overlap(specs[i], specs[j]) {
				n++
				break
			}
		}
	}
	return n
}

func overlap(a, b RangeSpec) bool {
	aSuf, bSuf := a.First < 0, b.First < 0
	switch {
	case aSuf && bSuf:
		return true
	case aSuf:
		return b.Last < 0
	case bSuf:
		return a.Last < 0
	}
	aLast, bLast := a.Last, b.Last
	if aLast < 0 {
		aLast = math.MaxInt64
	}
	if bLast < 0 {
		bLast = math.MaxInt64
	}
	return a.First <= bLast && b.First <= aLast
}
