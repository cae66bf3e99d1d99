package http

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/patchgate/patchgate/dataplane"
	"github.com/patchgate/patchgate/dataplane/analyzer"
)

// record is one thing an analyzer produced: an event (deep-copied, because the
// analyzer reuses its event values), a boundary, a violation, or an error
// returned by Feed.
type record struct {
	Kind   string // "event", "boundary", "violation", "error"
	Dir    dataplane.Direction
	Req    *Request
	Resp   *Response
	Code   string
	Detail string
}

// recorder is an analyzer.Sink that keeps everything it is given.
type recorder struct{ recs []record }

var _ analyzer.Sink = (*recorder)(nil)

func (r *recorder) Event(ev analyzer.Event) {
	switch e := ev.(type) {
	case *Request:
		r.recs = append(r.recs, record{Kind: "event", Dir: dataplane.ToServer, Req: cloneRequest(e)})
	case *Response:
		r.recs = append(r.recs, record{Kind: "event", Dir: dataplane.ToClient, Resp: cloneResponse(e)})
	default:
		panic(fmt.Sprintf("unexpected event %T", ev))
	}
}

func (r *recorder) Boundary(dir dataplane.Direction) {
	r.recs = append(r.recs, record{Kind: "boundary", Dir: dir})
}

func (r *recorder) Violation(dir dataplane.Direction, code, detail string) {
	r.recs = append(r.recs, record{Kind: "violation", Dir: dir, Code: code, Detail: detail})
}

// cloneSlice copies s; empty slices become nil so that reused (empty,
// non-nil) and fresh (nil) buffers compare equal.
func cloneSlice[T any](s []T) []T {
	if len(s) == 0 {
		return nil
	}
	return slices.Clone(s)
}

func cloneMap(m map[string]string) map[string]string {
	if len(m) == 0 {
		return nil
	}
	return maps.Clone(m)
}

// clonePtrs deep-copies a slice of pointers into the analyzer's reused stores.
func clonePtrs[T any](s []*T) []*T {
	if len(s) == 0 {
		return nil
	}
	return ptrs(vals(s))
}

// ptrs and vals convert between value and pointer slices in tests.
func ptrs[T any](v []T) []*T { return pointers(nil, v) }

func vals[T any](p []*T) []T {
	if p == nil {
		return nil
	}
	out := make([]T, len(p))
	for i, x := range p {
		out[i] = *x
	}
	return out
}

func cloneRequest(e *Request) *Request {
	c := *e
	c.Headers = clonePtrs(e.Headers)
	c.Header = cloneMap(e.Header)
	c.Args = clonePtrs(e.Args)
	c.Cookies = clonePtrs(e.Cookies)
	c.Range.Specs = clonePtrs(e.Range.Specs)
	return &c
}

func cloneResponse(e *Response) *Response {
	c := *e
	c.Headers = clonePtrs(e.Headers)
	c.Header = cloneMap(e.Header)
	return &c
}

// summary renders records compactly for table tests:
//
//	>H GET /x            request headers      <H 200 GET     response headers
//	>R 5 "hello"         request body event   <R 5 "hello"   response body event
//	>|  <|               boundaries           >! code        violation
//	>X                   Feed returned an error
func summary(recs []record) []string {
	out := make([]string, 0, len(recs))
	for _, r := range recs {
		arrow := ">"
		if r.Dir == dataplane.ToClient {
			arrow = "<"
		}
		var s string
		switch r.Kind {
		case "boundary":
			s = arrow + "|"
		case "violation":
			s = arrow + "! " + r.Code
		case "error":
			s = arrow + "X"
		case "event":
			switch {
			case r.Req != nil && r.Req.name == EventRequestHeaders:
				s = fmt.Sprintf(">H %s %s", r.Req.Method, r.Req.URI.Raw)
			case r.Req != nil:
				s = fmt.Sprintf(">R %d %q", r.Req.BodyLength, r.Req.Body)
				if r.Req.BodyTruncated {
					s += " trunc"
				}
			case r.Resp.name == EventResponseHeaders:
				s = fmt.Sprintf("<H %d %s", r.Resp.Status, r.Resp.RequestMethod)
			default:
				s = fmt.Sprintf("<R %d %q", r.Resp.BodyLength, r.Resp.Body)
				if r.Resp.BodyTruncated {
					s += " trunc"
				}
			}
		}
		out = append(out, s)
	}
	return out
}

// chunk is one piece of a test conversation.
type chunk struct {
	dir  dataplane.Direction
	data string
}

// cs builds a conversation from alternating direction markers and data:
// cs(">", "GET / HTTP/1.1\r\n\r\n", "<", "HTTP/1.1 200 OK\r\n...").
func cs(parts ...string) []chunk {
	var out []chunk
	for i := 0; i+1 < len(parts); i += 2 {
		d := dataplane.ToServer
		if parts[i] == "<" {
			d = dataplane.ToClient
		}
		out = append(out, chunk{d, parts[i+1]})
	}
	return out
}

// player feeds a conversation to analyzers and records the outcome; after an
// error from Feed nothing more is fed (the engine drops the flow).
type player struct {
	rec  recorder
	dead bool
}

func (p *player) feed(a *Analyzer, dir dataplane.Direction, b []byte) {
	if p.dead {
		return
	}
	if err := a.Feed(dir, b, &p.rec); err != nil {
		if !errors.Is(err, ErrStopped) {
			panic(fmt.Sprintf("Feed error does not wrap ErrStopped: %v", err))
		}
		p.rec.recs = append(p.rec.recs, record{Kind: "error", Dir: dir})
		p.dead = true
	}
}

func (p *player) end(a *Analyzer) {
	if p.dead {
		return
	}
	a.End(dataplane.ToServer, &p.rec)
	a.End(dataplane.ToClient, &p.rec)
}

func newAnalyzer(t testing.TB, cfg Config) *Analyzer {
	t.Helper()
	a, err := NewWithConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// playWhole feeds each chunk in one call.
func playWhole(t testing.TB, cfg Config, conv []chunk) []record {
	a := newAnalyzer(t, cfg)
	var p player
	for _, c := range conv {
		p.feed(a, c.dir, []byte(c.data))
	}
	p.end(a)
	return p.rec.recs
}

// playBytes feeds every byte in its own call.
func playBytes(t testing.TB, cfg Config, conv []chunk) []record {
	a := newAnalyzer(t, cfg)
	var p player
	for _, c := range conv {
		for i := 0; i < len(c.data); i++ {
			p.feed(a, c.dir, []byte{c.data[i]})
		}
	}
	p.end(a)
	return p.rec.recs
}

// playHandover feeds the first k bytes of the conversation to one analyzer,
// moves its state to a fresh one and feeds the rest there. It also checks
// that the restored analyzer exports the very same state.
func playHandover(t testing.TB, cfg Config, conv []chunk, k int) []record {
	t.Helper()
	a := newAnalyzer(t, cfg)
	var p player
	handed := false
	handover := func() {
		handed = true
		if p.dead {
			return
		}
		st := a.MarshalState(nil)
		nb := newAnalyzer(t, cfg)
		if err := nb.UnmarshalState(st); err != nil {
			t.Fatalf("split %d: UnmarshalState: %v", k, err)
		}
		if again := nb.MarshalState(nil); string(again) != string(st) {
			t.Fatalf("split %d: restored state exports differently:\n%x\n%x", k, st, again)
		}
		a = nb
	}
	pos := 0
	for _, c := range conv {
		b := []byte(c.data)
		if !handed && k < pos+len(b) {
			p.feed(a, c.dir, b[:k-pos])
			handover()
			b = b[k-pos:]
		}
		p.feed(a, c.dir, b)
		pos += len(c.data)
	}
	if !handed {
		handover()
	}
	p.end(a)
	return p.rec.recs
}

func totalLen(conv []chunk) int {
	n := 0
	for _, c := range conv {
		n += len(c.data)
	}
	return n
}

func diffSummaries(want, got []record) string {
	ws, gs := summary(want), summary(got)
	var b strings.Builder
	for i := 0; i < len(ws) || i < len(gs); i++ {
		var w, g string
		if i < len(ws) {
			w = ws[i]
		}
		if i < len(gs) {
			g = gs[i]
		}
		mark := "  "
		if w != g {
			mark = "!="
		}
		fmt.Fprintf(&b, "%s %-40s %s\n", mark, w, g)
	}
	return b.String()
}
