package http

import (
	"strings"

	"github.com/patchgate/patchgate/dataplane"
	"github.com/patchgate/patchgate/dataplane/analyzer"
)

// buildRequest fills a.req from the complete header section of d. It is a
// pure function of d (no sink), so a restored checkpoint rebuilds the same
// value. The event strings are substrings of one string made from the block.
func (a *Analyzer) buildRequest(d *direction) {
	r := &a.req
	m := &d.m
	s := string(m.block)
	st := &a.reqStore
	hdrs, args, cookies, specs, hm := st.headers[:0], st.args[:0], st.cookies[:0], st.specs[:0], r.Header
	hp, ap, cp, sp := r.Headers, r.Args, r.Cookies, r.Range.Specs
	if hm == nil {
		hm = make(map[string]string, 16)
	} else {
		clear(hm)
	}
	*r = Request{name: EventRequestHeaders, Index: d.count - 1, ContentLength: -1}
	r.Method = sub(s, m.start[0])
	target := sub(s, m.start[1])
	if m.v09 {
		r.Version = "HTTP/0.9"
	} else {
		r.Version = sub(s, m.start[2])
	}
	var authz, rng, reqRange string
	var hasAuthz, hasRange, hasReqRange, hasHost bool
	for _, f := range m.fields {
		h := Header{Name: sub(s, f.lower), RawName: sub(s, f.raw), Value: sub(s, f.value)}
		hdrs = append(hdrs, h)
		if old, ok := hm[h.Name]; ok {
			hm[h.Name] = old + ", " + h.Value
		} else {
			hm[h.Name] = h.Value
		}
		switch h.Name {
		case "host":
			if !hasHost {
				r.Host, hasHost = h.Value, true
			}
		case "cookie":
			cookies = appendCookies(cookies, h.Value)
		case "authorization":
			if !hasAuthz {
				authz, hasAuthz = h.Value, true
			}
		case "range":
			rng, hasRange = h.Value, true
		case "request-range":
			reqRange, hasReqRange = h.Value, true
		}
	}
	st.headers, st.cookies = hdrs, cookies
	r.Headers, r.Header, r.Cookies = pointers(hp, hdrs), hm, pointers(cp, cookies)
	r.ContentType = hm["content-type"]
	r.ContentLength, r.Chunked = declaredLength(hm)
	if host := parseURI(&r.URI, target, r.Method == "CONNECT", &a.scratch); host != "" {
		r.Host = host
	}
	args = appendForm(args, r.URI.Query, "query", true)
	st.args = args
	r.Args = pointers(ap, args)
	a.nQuery = len(args)
	if hasAuthz {
		parseAuth(authz, &r.Auth)
	}
	switch {
	case hasRange:
		specs = parseRange(rng, &r.Range, specs)
	case hasReqRange:
		specs = parseRange(reqRange, &r.Range, specs)
	}
	st.specs = specs
	r.Range.Specs = pointers(sp, specs)
}

// buildResponse fills a.resp from the complete header section of d.
func (a *Analyzer) buildResponse(d *direction) {
	r := &a.resp
	m := &d.m
	s := string(m.block)
	hdrs, hm, hp := a.respHeaders[:0], r.Header, r.Headers
	if hm == nil {
		hm = make(map[string]string, 16)
	} else {
		clear(hm)
	}
	*r = Response{name: EventResponseHeaders, Index: d.count - 1, RequestMethod: d.reqMethod, ContentLength: -1}
	if m.v09 {
		r.Version = "HTTP/0.9"
	} else {
		r.Version = sub(s, m.start[0])
		r.Status = m.status()
		r.Reason = sub(s, m.start[2])
	}
	for _, f := range m.fields {
		h := Header{Name: sub(s, f.lower), RawName: sub(s, f.raw), Value: sub(s, f.value)}
		hdrs = append(hdrs, h)
		if old, ok := hm[h.Name]; ok {
			hm[h.Name] = old + ", " + h.Value
		} else {
			hm[h.Name] = h.Value
		}
	}
	a.respHeaders = hdrs
	r.Headers, r.Header = pointers(hp, hdrs), hm
	r.ContentType = hm["content-type"]
	r.ContentLength, r.Chunked = declaredLength(hm)
}

// sub returns the substring of s at sp.
func sub(s string, sp span) string { return s[sp.off : sp.off+sp.n] }

// declaredLength returns the declared Content-Length (-1 when absent or
// malformed) and whether the last transfer coding is chunked.
func declaredLength(hm map[string]string) (int64, bool) {
	cl := int64(-1)
	if v, ok := hm["content-length"]; ok {
		if n, good, _ := parseContentLength([]byte(v)); good {
			cl = n
		}
	}
	te, ok := hm["transfer-encoding"]
	return cl, ok && lastCodingChunked([]byte(te))
}

// push records a request awaiting its response.
func (a *Analyzer) push(p pending, sink analyzer.Sink) {
	if a.overflow > 0 || len(a.fifo) >= a.cfg.MaxPipelined {
		a.overflow++
		if !a.overflowReported {
			a.overflowReported = true
			sink.Violation(dataplane.ToServer, CodePipelineOverflow, "too many requests awaiting a response")
		}
		return
	}
	a.fifo = append(a.fifo, p)
}

// peek returns the oldest request awaiting its response.
func (a *Analyzer) peek() (pending, bool) {
	if len(a.fifo) > 0 {
		return a.fifo[0], true
	}
	return pending{}, a.overflow > 0
}

// pop removes the oldest request awaiting its response.
func (a *Analyzer) pop() pending {
	if len(a.fifo) > 0 {
		p := a.fifo[0]
		n := copy(a.fifo, a.fifo[1:])
		a.fifo[n] = pending{}
		a.fifo = a.fifo[:n]
		return p
	}
	if a.overflow > 0 {
		a.overflow--
	}
	return pending{}
}

// internMethod returns a method string that does not keep the message block
// alive: a constant for registered methods, else a bounded copy.
func internMethod(m string) string {
	switch m {
	case "GET":
		return "GET"
	case "POST":
		return "POST"
	case "HEAD":
		return "HEAD"
	case "PUT":
		return "PUT"
	case "DELETE":
		return "DELETE"
	case "OPTIONS":
		return "OPTIONS"
	case "CONNECT":
		return "CONNECT"
	case "PATCH":
		return "PATCH"
	case "TRACE":
		return "TRACE"
	}
	if len(m) > maxMethodLength {
		m = m[:maxMethodLength]
	}
	return strings.Clone(m)
}
