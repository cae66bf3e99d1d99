package http

import "strings"

// Arg sources.
const (
	sourceQuery     = "query"
	sourceBody      = "body"
	sourceMultipart = "multipart"
	sourceCookie    = "cookie"
)

// appendForm appends the name=value pairs of an application/x-www-form-urlencoded
// string (or a query), each decoded once, at most MaxArgs of them.
func appendForm(dst []Arg, s, source string, plus bool) []Arg {
	for n := 0; s != "" && n < MaxArgs; {
		var pair string
		if i := strings.IndexByte(s, '&'); i >= 0 {
			pair, s = s[:i], s[i+1:]
		} else {
			pair, s = s, ""
		}
		if pair == "" {
			continue
		}
		name, value := pair, ""
		if i := strings.IndexByte(pair, '='); i >= 0 {
			name, value = pair[:i], pair[i+1:]
		}
		dst = append(dst, Arg{Name: unescape(name, plus), Value: unescape(value, plus), Source: source})
		n++
	}
	return dst
}

// appendCookies appends the pairs of one Cookie field value (RFC 6265 §5.4),
// decoded once without '+' handling, keeping the cookie list at most MaxArgs.
func appendCookies(dst []Arg, v string) []Arg {
	for v != "" && len(dst) < MaxArgs {
		var pair string
		if i := strings.IndexByte(v, ';'); i >= 0 {
			pair, v = v[:i], v[i+1:]
		} else {
			pair, v = v, ""
		}
		pair = strings.Trim(pair, " \t")
		if pair == "" {
			continue
		}
		name, value := pair, ""
		if i := strings.IndexByte(pair, '='); i >= 0 {
			name, value = strings.TrimRight(pair[:i], " \t"), strings.TrimLeft(pair[i+1:], " \t")
		}
		dst = append(dst, Arg{Name: unescape(name, false), Value: unescape(value, false), Source: sourceCookie})
	}
	return dst
}

// appendBodyArgs appends the fields of a form body: urlencoded pairs, or the
// parts of multipart/form-data (name and content as sent, not decoded).
func (a *Analyzer) appendBodyArgs(dst []Arg, body, contentType string) []Arg {
	if body == "" {
		return dst
	}
	mt, params := contentType, ""
	if i := strings.IndexByte(contentType, ';'); i >= 0 {
		mt, params = contentType[:i], contentType[i+1:]
	}
	mt = strings.Trim(mt, " \t")
	switch {
	case strings.EqualFold(mt, "application/x-www-form-urlencoded"):
		return appendForm(dst, body, sourceBody, true)
	case strings.EqualFold(mt, "multipart/form-data"):
		if b := param(params, "boundary"); b != "" && len(b) <= maxBoundaryLength {
			return appendMultipart(dst, body, b)
		}
	}
	return dst
}

// param returns the value of parameter key in a "; k=v; k2="v2"" list (quotes
// removed, backslash escapes kept as sent).
func param(params, key string) string {
	for params != "" {
		params = strings.TrimLeft(params, " \t;")
		eq := strings.IndexByte(params, '=')
		if eq < 0 {
			return ""
		}
		k := strings.TrimRight(params[:eq], " \t")
		params = strings.TrimLeft(params[eq+1:], " \t")
		var v string
		if strings.HasPrefix(params, `"`) {
			end := 1
			for end < len(params) && params[end] != '"' {
				if params[end] == '\\' {
					end++
				}
				end++
			}
			if end > len(params) {
				end = len(params)
			}
			v = params[1:end]
			if end < len(params) {
				end++
			}
			params = params[end:]
		} else {
			end := strings.IndexByte(params, ';')
			if end < 0 {
				end = len(params)
			}
			v, params = strings.TrimRight(params[:end], " \t"), params[end:]
		}
		if strings.EqualFold(k, key) {
			return v
		}
		if i := strings.IndexByte(params, ';'); i >= 0 {
			params = params[i:]
		} else {
			params = ""
		}
	}
	return ""
}

// appendMultipart appends the parts of a multipart/form-data body (RFC 7578),
// at most MaxArgs. A part cut by the inspection limit keeps what arrived.
func appendMultipart(dst []Arg, body, boundary string) []Arg {
	nldelim := "\n--" + boundary // a delimiter after the first follows a line end
	delim := nldelim[1:]
	i := strings.Index(body, delim)
	if i < 0 {
		return dst
	}
	rest := body[i+len(delim):]
	for n := 0; n < MaxArgs; n++ {
		if strings.HasPrefix(rest, "--") {
			return dst // close delimiter
		}
		eol := strings.IndexByte(rest, '\n')
		if eol < 0 {
			return dst
		}
		rest = rest[eol+1:]
		name, ended := "", false
		for lines := 0; lines < maxPartHeaderLines; lines++ {
			eol = strings.IndexByte(rest, '\n')
			if eol < 0 {
				return dst
			}
			line := strings.TrimSuffix(rest[:eol], "\r")
			rest = rest[eol+1:]
			if line == "" {
				ended = true
				break
			}
			const cd = "content-disposition:"
			if len(line) > len(cd) && strings.EqualFold(line[:len(cd)], cd) {
				v := line[len(cd):]
				if j := strings.IndexByte(v, ';'); j >= 0 {
					name = param(v[j:], "name")
				}
			}
		}
		if !ended {
			return dst
		}
		j := strings.Index(rest, nldelim)
		if j < 0 {
			return append(dst, Arg{Name: name, Value: rest, Source: sourceMultipart})
		}
		dst = append(dst, Arg{Name: name, Value: strings.TrimSuffix(rest[:j], "\r"), Source: sourceMultipart})
		rest = rest[j+1+len(delim):]
	}
	return dst
}
