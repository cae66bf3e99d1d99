// Package http is the HTTP/1.x analyzer: it parses requests (to server) and
// responses (to client) incrementally, across any segmentation, and emits
// http.request_headers, http.request, http.response_headers and http.response
// events with normalised URIs, arguments, cookies, credentials, ranges and
// decoded bodies. It reports request-smuggling and evasion signs as violations
// and stops parsing a direction whose framing became ambiguous. Its complete
// state can be exported and imported at any byte (flow checkpoints).
package http

import (
	"fmt"

	"github.com/patchgate/patchgate/dataplane"
	"github.com/patchgate/patchgate/dataplane/analyzer"
)

// Analyzer parses the two byte streams of one HTTP/1.x connection. It is used
// by one goroutine at a time (the engine shard that owns the flow).
type Analyzer struct {
	cfg  Config
	dirs [2]direction

	// fifo holds the requests still waiting for their response, oldest first;
	// overflow counts requests beyond cfg.MaxPipelined queued after them.
	fifo             []pending
	overflow         int
	overflowReported bool
	// pendingSwitch is set while an Upgrade or CONNECT request waits for its
	// response: bytes the client sends meanwhile may belong to the new protocol.
	pendingSwitch bool

	// Reused event values and the number of query arguments at the front of
	// req.Args (body arguments follow them in http.request).
	req  Request
	resp Response
	// reqStore and respHeaders hold the values the events' pointer slices
	// point into, reused from message to message.
	reqStore    stores
	respHeaders []Header
	nQuery      int
	dec         decoder
	scratch     []byte
}

// pending is a request awaiting its response.
type pending struct {
	method  string
	v09     bool // HTTP/0.9 simple request: the response has no status line
	upgrade bool // Upgrade or CONNECT: a 101 / 2xx response switches protocols
}

var _ analyzer.Analyzer = (*Analyzer)(nil)

// New returns an analyzer with the default limits.
func New() *Analyzer {
	a, _ := NewWithConfig(DefaultConfig())
	return a
}

// NewWithConfig returns an analyzer with the given limits, or the error of
// cfg.Validate.
func NewWithConfig(cfg Config) (*Analyzer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	a := &Analyzer{cfg: cfg}
	a.reset()
	return a, nil
}

// reset returns the analyzer to the state of a new connection, keeping buffers.
func (a *Analyzer) reset() {
	for i := range a.dirs {
		d := &a.dirs[i]
		d.dir = dataplane.Direction(i)
		d.state = stStart
		d.failCode = ""
		d.line = d.line[:0]
		d.skipLong = false
		d.count = 0
		d.resetMessage()
	}
	a.fifo = a.fifo[:0]
	a.overflow = 0
	a.overflowReported = false
	a.pendingSwitch = false
	a.nQuery = 0
}

// Feed implements analyzer.Analyzer. It returns an error wrapping ErrStopped
// once the direction met a fatal violation.
func (a *Analyzer) Feed(dir dataplane.Direction, data []byte, sink analyzer.Sink) error {
	if dir > dataplane.ToClient {
		return fmt.Errorf("dataplane/http: feed: unknown direction %d", dir)
	}
	return a.feed(&a.dirs[dir], data, sink)
}

// Gap implements analyzer.Analyzer. Inside a Content-Length body at least as long
// as the gap the analyzer skips exactly n bytes (the body event then reports
// BodyTruncated); elsewhere it drops the partial message and resynchronises at
// the next line that is a valid request line (to server) or status line (to
// client). Inside a close-delimited body the gap is counted as body.
func (a *Analyzer) Gap(dir dataplane.Direction, n int, sink analyzer.Sink) {
	if dir > dataplane.ToClient || n <= 0 {
		return
	}
	d := &a.dirs[dir]
	switch d.state {
	case stFailed, stTunnel, stDone:
		return
	case stBodyClose:
		if !d.truncEmitted {
			a.emitBody(d, sink, true)
		}
		d.bodyLen += int64(n)
		return
	case stBodyLength:
		if int64(n) <= d.remaining {
			if !d.truncEmitted {
				a.emitBody(d, sink, true)
			}
			d.bodyLen += int64(n)
			d.remaining -= int64(n)
			if d.remaining == 0 {
				a.messageDone(d, sink)
			}
			return
		}
	}
	d.line = d.line[:0]
	d.skipLong = false
	d.resetMessage()
	d.state = stResync
}

// End implements analyzer.Analyzer. A close-delimited response completes here;
// a message whose headers were seen but whose body is incomplete gets its body
// event with BodyTruncated set (no Boundary follows).
func (a *Analyzer) End(dir dataplane.Direction, sink analyzer.Sink) {
	if dir > dataplane.ToClient {
		return
	}
	d := &a.dirs[dir]
	switch d.state {
	case stBodyClose:
		a.messageDone(d, sink)
	case stBodyLength, stChunkSize, stChunkData, stChunkEnd, stTrailers:
		if !d.truncEmitted {
			a.emitBody(d, sink, true)
		}
	case stStart:
		if len(d.line) > 0 && a.rawResponse(d) {
			a.startRaw(d, sink)
			a.bodyBytes(d, d.line, sink)
			a.messageDone(d, sink)
		}
	}
	if d.state != stFailed {
		d.state = stDone
	}
	d.line = d.line[:0]
	d.resetMessage()
}
