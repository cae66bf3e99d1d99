package http

import (
	"bytes"
	"fmt"

	"github.com/patchgate/patchgate/dataplane"
	"github.com/patchgate/patchgate/dataplane/analyzer"
)

// state is where a direction's parser stands.
type state uint8

const (
	stStart      state = iota // before a request or status line (empty lines skipped)
	stHeaders                 // inside the header section
	stBodyLength              // inside a Content-Length body; remaining bytes left
	stChunkSize               // expecting a chunk-size line
	stChunkData               // inside chunk data; remaining bytes left
	stChunkEnd                // expecting the CRLF after chunk data
	stTrailers                // inside the trailer section
	stBodyClose               // inside a body delimited by the end of the connection
	stResync                  // after a gap: skipping lines until a start line
	stTunnel                  // protocol switched (101, CONNECT): bytes are not HTTP
	stDone                    // direction ended (End, or after an HTTP/0.9 request)
	stFailed                  // a fatal violation stopped the parser
	numStates
)

// hasHeaders reports whether a direction in state s holds a message whose
// header section is complete (its event value is built).
func (s state) hasHeaders() bool {
	switch s {
	case stBodyLength, stChunkSize, stChunkData, stChunkEnd, stTrailers, stBodyClose:
		return true
	}
	return false
}

// inMessage reports whether a direction in state s is inside a message (the
// message fields of a checkpoint are meaningful).
func (s state) inMessage() bool { return s == stHeaders || s.hasHeaders() }

// direction is the parser state of one byte stream.
type direction struct {
	dir      dataplane.Direction
	state    state
	failCode string // violation code that stopped the parser (stFailed)

	line     []byte // partial line, at most cfg.MaxLineLength bytes
	skipLong bool   // resync: discarding the rest of an over-long line
	chunkCR  bool   // stChunkEnd: the CR was seen

	count    int    // messages whose header section completed
	reported uint32 // once-per-message violations already reported

	m            message
	body         []byte // body bytes kept for inspection (de-chunked, raw coding)
	bodyLen      int64  // body bytes seen (de-chunked)
	remaining    int64  // bytes left in the Content-Length body or current chunk
	trailers     int    // trailer fields seen
	trailerBytes int    // trailer section bytes seen
	truncEmitted bool   // the body event of this message was sent
	reqMethod    string // to client: method of the request being answered
}

// resetMessage forgets the current message, keeping buffers.
func (d *direction) resetMessage() {
	d.m.reset()
	d.chunkCR = false
	d.reported = 0
	d.body = d.body[:0]
	d.bodyLen = 0
	d.remaining = 0
	d.trailers = 0
	d.trailerBytes = 0
	d.truncEmitted = false
	d.reqMethod = ""
}

// feed runs the state machine of d over data.
func (a *Analyzer) feed(d *direction, data []byte, sink analyzer.Sink) error {
	if d.state == stFailed {
		return d.stoppedErr()
	}
	for len(data) > 0 {
		var err error
		switch d.state {
		case stFailed:
			return d.stoppedErr()
		case stTunnel, stDone:
			return nil
		case stBodyLength, stChunkData:
			n := int64(len(data))
			if n > d.remaining {
				n = d.remaining
			}
			a.bodyBytes(d, data[:n], sink)
			data = data[n:]
			d.remaining -= n
			switch {
			case d.remaining > 0:
				// More body is certain: the inspection buffer being full
				// means the body is truncated.
				if len(d.body) >= a.cfg.MaxBodyInspect && !d.truncEmitted {
					a.emitBody(d, sink, true)
				}
			case d.state == stBodyLength:
				a.messageDone(d, sink)
			default:
				d.state = stChunkEnd
				d.chunkCR = false
			}
		case stBodyClose:
			a.bodyBytes(d, data, sink)
			data = nil
		case stChunkEnd:
			c := data[0]
			data = data[1:]
			switch {
			case c == '\r' && !d.chunkCR:
				d.chunkCR = true
			case c == '\n':
				if !d.chunkCR {
					d.reportOnce(reportedBareLF, sink, CodeBareLF, "line ended by LF without CR")
				}
				d.state = stChunkSize
			default:
				err = d.fail(sink, CodeBadChunkData, "chunk data not followed by CRLF")
			}
		default:
			data, err = a.lines(d, data, sink)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// lines consumes data up to and including the next complete line and handles
// it; a partial line is buffered.
func (a *Analyzer) lines(d *direction, data []byte, sink analyzer.Sink) ([]byte, error) {
	i := bytes.IndexByte(data, '\n')
	if d.skipLong {
		if i < 0 {
			return nil, nil
		}
		d.skipLong = false
		return data[i+1:], nil
	}
	max := a.cfg.MaxLineLength
	if (i < 0 && len(d.line)+len(data) > max) || (i >= 0 && len(d.line)+i > max) {
		switch {
		case d.state == stResync || (d.state == stStart && d.dir == dataplane.ToServer && a.pendingSwitch):
			// Not a line to parse (resync), or the new protocol's bytes
			// after an Upgrade/CONNECT request: skip it.
			d.state = stResync
			d.line = d.line[:0]
			if i < 0 {
				d.skipLong = true
				return nil, nil
			}
			return data[i+1:], nil
		case a.rawResponse(d):
			a.startRaw(d, sink)
			a.bodyBytes(d, d.line, sink)
			a.bodyBytes(d, data, sink)
			d.line = d.line[:0]
			return nil, nil
		}
		return nil, d.fail(sink, CodeLineTooLong, fmt.Sprintf("line longer than %d bytes", max))
	}
	if i < 0 {
		d.line = append(d.line, data...)
		return nil, nil
	}
	var line []byte
	if len(d.line) == 0 {
		line = data[:i]
	} else {
		d.line = append(d.line, data[:i]...)
		line = d.line
	}
	data = data[i+1:]
	bare := true
	if len(line) > 0 && line[len(line)-1] == '\r' {
		line = line[:len(line)-1]
		bare = false
	}
	err := a.onLine(d, line, bare, sink)
	d.line = d.line[:0]
	return data, err
}

// onLine handles one complete line (terminator removed) in a line state.
func (a *Analyzer) onLine(d *direction, line []byte, bare bool, sink analyzer.Sink) error {
	switch d.state {
	case stStart, stResync:
		if d.dir == dataplane.ToServer {
			return a.requestLine(d, line, bare, sink)
		}
		return a.statusLine(d, line, bare, sink)
	case stHeaders:
		return a.headerLine(d, line, bare, sink)
	case stChunkSize:
		return a.chunkSizeLine(d, line, bare, sink)
	case stTrailers:
		return a.trailerLine(d, line, bare, sink)
	}
	return nil
}

// bodyBytes adds body bytes to the current message: kept up to
// cfg.MaxBodyInspect, counted always. A byte arriving when the buffer is full
// proves the body truncated and fires the body event.
func (a *Analyzer) bodyBytes(d *direction, p []byte, sink analyzer.Sink) {
	if len(p) == 0 {
		return
	}
	if d.truncEmitted {
		d.bodyLen += int64(len(p))
		return
	}
	room := a.cfg.MaxBodyInspect - len(d.body)
	if len(p) > room {
		d.body = append(d.body, p[:room]...)
		d.bodyLen += int64(room)
		a.emitBody(d, sink, true)
		d.bodyLen += int64(len(p) - room)
		return
	}
	d.body = append(d.body, p...)
	d.bodyLen += int64(len(p))
}

// messageDone completes the current message: its body event (unless already
// sent), a Boundary, and the state for the next message.
func (a *Analyzer) messageDone(d *direction, sink analyzer.Sink) {
	if !d.truncEmitted {
		a.emitBody(d, sink, false)
	}
	sink.Boundary(d.dir)
	v09 := d.m.v09
	d.resetMessage()
	d.state = stStart
	if v09 && d.dir == dataplane.ToServer {
		// The server answers an HTTP/0.9 request and closes the connection.
		d.state = stDone
	}
}

// emitBody sends http.request / http.response for the current message.
func (a *Analyzer) emitBody(d *direction, sink analyzer.Sink, truncated bool) {
	d.truncEmitted = true
	if d.dir == dataplane.ToServer {
		r := &a.req
		r.name = EventRequest
		r.Body, r.BodyTruncated = a.decodeBody(d.body, r.Header["content-encoding"], truncated)
		r.BodyLength = d.bodyLen
		a.reqStore.args = a.appendBodyArgs(a.reqStore.args[:a.nQuery], r.Body, r.ContentType)
		r.Args = pointers(r.Args, a.reqStore.args)
		sink.Event(r)
		return
	}
	r := &a.resp
	r.name = EventResponse
	r.Body, r.BodyTruncated = a.decodeBody(d.body, r.Header["content-encoding"], truncated)
	r.BodyLength = d.bodyLen
	sink.Event(r)
}

// rawResponse reports whether the response about to start in d answers an
// HTTP/0.9 request (it then has no status line).
func (a *Analyzer) rawResponse(d *direction) bool {
	if d.dir != dataplane.ToClient || d.state != stStart {
		return false
	}
	p, ok := a.peek()
	return ok && p.v09
}

// startRaw starts an HTTP/0.9 response: no status line or headers, a body up
// to the end of the connection.
func (a *Analyzer) startRaw(d *direction, sink analyzer.Sink) {
	p := a.pop()
	d.resetMessage()
	d.m.v09 = true
	d.reqMethod = p.method
	d.count++
	a.buildResponse(d)
	sink.Event(&a.resp)
	d.state = stBodyClose
}
