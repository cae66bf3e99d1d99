package http

import (
	"github.com/patchgate/patchgate/dataplane"
	"github.com/patchgate/patchgate/dataplane/analyzer"
)

// span locates bytes in message.block.
type span struct{ off, n int }

// field is one header field: raw name, lower-case name and value in the block.
// The value is always the last of the three, so obs-fold can extend it.
type field struct{ raw, lower, value span }

// message is the start line and header section of the message being parsed,
// kept as one byte block plus spans: the event strings are substrings of a
// single string made from the block, and a checkpoint carries it verbatim.
type message struct {
	block []byte
	// start: request method, target, version; response version, status, reason.
	start    [3]span
	v09      bool // HTTP/0.9 request, or the response to one
	fields   []field
	hdrBytes int // header section bytes so far, terminators included
}

func (m *message) reset() {
	m.block = m.block[:0]
	m.start = [3]span{}
	m.v09 = false
	m.fields = m.fields[:0]
	m.hdrBytes = 0
}

// bytes returns the bytes of sp (callers only pass validated spans).
func (m *message) bytes(sp span) []byte { return m.block[sp.off : sp.off+sp.n] }

// add appends b to the block and returns its span.
func (m *message) add(b []byte) span {
	sp := span{len(m.block), len(b)}
	m.block = append(m.block, b...)
	return sp
}

// lineBytes is the size of a line with its terminator.
func lineBytes(line []byte, bare bool) int {
	if bare {
		return len(line) + 1
	}
	return len(line) + 2
}

// requestLine handles a line in stStart or stResync of the request direction.
func (a *Analyzer) requestLine(d *direction, line []byte, bare bool, sink analyzer.Sink) error {
	resync := d.state == stResync
	if len(line) == 0 {
		// RFC 9112 §2.2: empty lines before a request line are ignored.
		return nil
	}
	rl, ok := parseRequestLine(line, resync)
	if !ok {
		switch {
		case resync:
			return nil
		case a.pendingSwitch:
			// Bytes after an Upgrade/CONNECT request that are not a request:
			// likely the new protocol. Skip to the next request line, if any.
			d.state = stResync
			return nil
		}
		return d.fail(sink, CodeBadRequestLine, "malformed request line")
	}
	d.resetMessage()
	for i := range d.m.start {
		d.m.start[i] = rl.s[i]
	}
	d.m.add(line)
	d.m.v09 = rl.v09
	d.m.hdrBytes = lineBytes(line, bare)
	if bare {
		d.reportOnce(reportedBareLF, sink, CodeBareLF, "line ended by LF without CR")
	}
	if rl.v09 {
		return a.requestHeadersDone(d, sink)
	}
	d.state = stHeaders
	return nil
}

// statusLine handles a line in stStart or stResync of the response direction.
func (a *Analyzer) statusLine(d *direction, line []byte, bare bool, sink analyzer.Sink) error {
	resync := d.state == stResync
	sl, ok := parseStatusLine(line)
	if !ok {
		switch {
		case a.rawResponse(d):
			a.startRaw(d, sink)
			a.bodyBytes(d, line, sink)
			if bare {
				a.bodyBytes(d, []byte{'\n'}, sink)
			} else {
				a.bodyBytes(d, []byte{'\r', '\n'}, sink)
			}
			return nil
		case resync, len(line) == 0:
			return nil
		}
		return d.fail(sink, CodeBadStatusLine, "malformed status line")
	}
	d.resetMessage()
	for i := range d.m.start {
		d.m.start[i] = sl.s[i]
	}
	d.m.add(line)
	d.m.hdrBytes = lineBytes(line, bare)
	if bare {
		d.reportOnce(reportedBareLF, sink, CodeBareLF, "line ended by LF without CR")
	}
	d.state = stHeaders
	return nil
}

// headerLine handles a line of the header section.
func (a *Analyzer) headerLine(d *direction, line []byte, bare bool, sink analyzer.Sink) error {
	if bare {
		d.reportOnce(reportedBareLF, sink, CodeBareLF, "line ended by LF without CR")
	}
	m := &d.m
	m.hdrBytes += lineBytes(line, bare)
	if m.hdrBytes > a.cfg.MaxHeaderBytes {
		return d.fail(sink, CodeHeadersTooLarge, "header section too large")
	}
	if len(line) == 0 {
		if d.dir == dataplane.ToServer {
			return a.requestHeadersDone(d, sink)
		}
		return a.responseHeadersDone(d, sink)
	}
	if line[0] == ' ' || line[0] == '\t' {
		return a.foldLine(d, line, sink)
	}
	colon := indexByte(line, ':')
	if colon < 0 {
		return d.fail(sink, CodeBadHeader, "header line without colon")
	}
	name := line[:colon]
	tn := trimRightOWS(name)
	if len(tn) == 0 {
		return d.fail(sink, CodeBadHeader, "empty header name")
	}
	if !isToken(tn) {
		return d.fail(sink, CodeBadHeader, "invalid character in header name")
	}
	value := trimOWS(line[colon+1:])
	if !validValue(value) {
		return d.fail(sink, CodeBadHeader, "CR or NUL in header value")
	}
	if len(tn) < len(name) {
		if isFramingName(tn) {
			return d.fail(sink, CodeHeaderSpaceBeforeColon, "whitespace before colon in "+framingName(tn))
		}
		d.reportOnce(reportedSpaceBeforeColon, sink, CodeHeaderSpaceBeforeColon, "whitespace between field name and colon")
	}
	if len(m.fields) >= a.cfg.MaxHeaders {
		return d.fail(sink, CodeTooManyHeaders, "too many header fields")
	}
	var f field
	f.raw = m.add(name)
	f.lower = span{f.raw.off, len(tn)}
	if hasUpper(tn) {
		f.lower = span{len(m.block), len(tn)}
		for _, c := range tn {
			m.block = append(m.block, lower(c))
		}
	}
	f.value = m.add(value)
	m.fields = append(m.fields, f)
	return nil
}

// foldLine joins an obs-fold continuation line to the previous field value.
func (a *Analyzer) foldLine(d *direction, line []byte, sink analyzer.Sink) error {
	m := &d.m
	if len(m.fields) == 0 {
		return d.fail(sink, CodeObsFold, "continuation line before the first header field")
	}
	f := &m.fields[len(m.fields)-1]
	if name := m.bytes(f.lower); isFramingName(name) {
		return d.fail(sink, CodeObsFold, "folded "+framingName(name))
	}
	cont := trimOWS(line)
	if !validValue(cont) {
		return d.fail(sink, CodeBadHeader, "CR or NUL in header value")
	}
	d.reportOnce(reportedObsFold, sink, CodeObsFold, "obsolete line folding")
	if len(cont) == 0 {
		return nil
	}
	if f.value.n > 0 {
		m.block = append(m.block, ' ')
	}
	m.block = append(m.block, cont...)
	f.value.n = len(m.block) - f.value.off
	return nil
}

// requestHeadersDone ends a request's header section: framing checks, the
// http.request_headers event, and the body state.
func (a *Analyzer) requestHeadersDone(d *direction, sink analyzer.Sink) error {
	d.count++
	m := &d.m
	http10 := !m.v09 && versionMinor(m.bytes(m.start[2])) == 0
	fr := computeFraming(m, http10, false)
	fr.report(d.dir, sink)
	a.buildRequest(d)
	r := &a.req
	upgrade := r.Method == "CONNECT" || r.Header["upgrade"] != ""
	a.push(pending{method: internMethod(r.Method), v09: m.v09, upgrade: upgrade}, sink)
	if upgrade {
		a.pendingSwitch = true
	}
	sink.Event(r)
	if fr.fatal != "" {
		d.stop(fr.fatal)
		return d.stoppedErr()
	}
	return a.startBody(d, fr, sink)
}

// responseHeadersDone ends a response's header section.
func (a *Analyzer) responseHeadersDone(d *direction, sink analyzer.Sink) error {
	d.count++
	m := &d.m
	status := m.status()
	p, _ := a.peek()
	interim := status < 200 && status != 101
	if !interim {
		a.pop()
	}
	d.reqMethod = p.method
	tunnel := status == 101 || (p.method == "CONNECT" && status >= 200 && status < 300)
	bodiless := p.method == "HEAD" || status < 200 || status == 204 || status == 304
	var fr framing
	if !tunnel && !bodiless {
		http10 := versionMinor(m.bytes(m.start[0])) == 0
		fr = computeFraming(m, http10, true)
		fr.report(d.dir, sink)
	}
	if p.upgrade && !interim && !tunnel {
		// The server refused to switch: the client keeps speaking HTTP.
		a.pendingSwitch = false
	}
	a.buildResponse(d)
	sink.Event(&a.resp)
	switch {
	case fr.fatal != "":
		d.stop(fr.fatal)
		return d.stoppedErr()
	case tunnel:
		a.emitBody(d, sink, false)
		sink.Boundary(d.dir)
		for i := range a.dirs {
			o := &a.dirs[i]
			if o.state != stFailed && o.state != stDone {
				o.state = stTunnel
				o.line = o.line[:0]
				o.resetMessage()
			}
		}
		return nil
	case bodiless:
		fr.mode = bodyNone
	}
	return a.startBody(d, fr, sink)
}

// startBody enters the body state chosen by the framing.
func (a *Analyzer) startBody(d *direction, fr framing, sink analyzer.Sink) error {
	switch fr.mode {
	case bodyLength:
		if fr.length > 0 {
			d.remaining = fr.length
			d.state = stBodyLength
			return nil
		}
	case bodyChunked:
		d.state = stChunkSize
		return nil
	case bodyClose:
		d.state = stBodyClose
		return nil
	}
	a.messageDone(d, sink)
	return nil
}

// chunkSizeLine handles a chunk-size line: hex size, optional whitespace and
// chunk extensions (ignored).
func (a *Analyzer) chunkSizeLine(d *direction, line []byte, bare bool, sink analyzer.Sink) error {
	if bare {
		d.reportOnce(reportedBareLF, sink, CodeBareLF, "line ended by LF without CR")
	}
	size, ok := parseChunkSize(line)
	if !ok {
		return d.fail(sink, CodeBadChunkSize, "malformed chunk size")
	}
	if size == 0 {
		d.state = stTrailers
		return nil
	}
	if len(d.body) >= a.cfg.MaxBodyInspect && !d.truncEmitted {
		a.emitBody(d, sink, true)
	}
	d.remaining = size
	d.state = stChunkData
	return nil
}

// trailerLine handles a line of the trailer section. Trailer fields are
// checked and counted, not kept.
func (a *Analyzer) trailerLine(d *direction, line []byte, bare bool, sink analyzer.Sink) error {
	if bare {
		d.reportOnce(reportedBareLF, sink, CodeBareLF, "line ended by LF without CR")
	}
	if len(line) == 0 {
		a.messageDone(d, sink)
		return nil
	}
	d.trailerBytes += lineBytes(line, bare)
	if d.trailerBytes > a.cfg.MaxHeaderBytes {
		return d.fail(sink, CodeHeadersTooLarge, "trailer section too large")
	}
	if line[0] == ' ' || line[0] == '\t' {
		d.reportOnce(reportedObsFold, sink, CodeObsFold, "obsolete line folding")
		return nil
	}
	d.trailers++
	if d.trailers > a.cfg.MaxHeaders {
		return d.fail(sink, CodeTooManyHeaders, "too many trailer fields")
	}
	colon := indexByte(line, ':')
	if colon <= 0 || !isToken(trimRightOWS(line[:colon])) || !validValue(line[colon+1:]) {
		return d.fail(sink, CodeBadHeader, "malformed trailer field")
	}
	return nil
}

// status returns the status code of a response message (0 for HTTP/0.9).
func (m *message) status() int {
	if m.v09 || m.start[1].n != 3 {
		return 0
	}
	b := m.bytes(m.start[1])
	return int(b[0]-'0')*100 + int(b[1]-'0')*10 + int(b[2]-'0')
}
