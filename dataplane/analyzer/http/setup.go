package http

import (
	"github.com/patchgate/patchgate/dataplane"
	"github.com/patchgate/patchgate/dataplane/analyzer"
)

// Name is the analyzer's registered name and EVE app_proto.
const Name = "http"

// Ports are the well-known HTTP server ports used as a detection hint.
var Ports = []uint16{80, 8080, 8000, 8008, 8888, 3128}

func init() {
	requestKeys := []string{"header:", "body", "args", "cookies", "auth", "path:encoded"}
	responseKeys := []string{"header:", "body"}
	analyzer.Register(analyzer.Spec{
		Name:      Name,
		Transport: analyzer.TCP,
		Ports:     Ports,
		Detect:    Detect,
		New:       func() analyzer.Analyzer { return New() },
		Events: []analyzer.EventSpec{
			{Name: EventRequestHeaders, Schema: Request{}, Prefilter: requestKeys,
				Doc: "a request's start line and header section are complete (body empty)"},
			{Name: EventRequest, Schema: Request{}, Prefilter: requestKeys,
				Doc: "a request's body is complete, or MaxBodyInspect body bytes arrived (body_truncated)"},
			{Name: EventResponseHeaders, Schema: Response{}, Prefilter: responseKeys,
				Doc: "a response's status line and header section are complete (body empty)"},
			{Name: EventResponse, Schema: Response{}, Prefilter: responseKeys,
				Doc: "a response's body is complete, or MaxBodyInspect body bytes arrived (body_truncated)"},
		},
	})
}

// maxDetectMethod bounds the method token Detect scans (registered methods are
// at most 17 bytes).
const maxDetectMethod = 24

// maxDetectBlankLines bounds the empty lines Detect skips before a request
// line (RFC 9112 §2.2 asks servers to ignore at least one).
const maxDetectBlankLines = 4

// knownMethods are methods from the IANA registry and common extensions.
var knownMethods = map[string]bool{
	"GET": true, "HEAD": true, "POST": true, "PUT": true, "DELETE": true,
	"CONNECT": true, "OPTIONS": true, "TRACE": true, "PATCH": true,
	"PROPFIND": true, "PROPPATCH": true, "MKCOL": true, "COPY": true, "MOVE": true,
	"LOCK": true, "UNLOCK": true, "SEARCH": true, "REPORT": true, "MKCALENDAR": true,
	"MKACTIVITY": true, "CHECKOUT": true, "MERGE": true, "VERSION-CONTROL": true,
	"BIND": true, "UNBIND": true, "REBIND": true, "ACL": true, "LINK": true,
	"UNLINK": true, "PURGE": true, "M-SEARCH": true, "NOTIFY": true,
	"SUBSCRIBE": true, "UNSUBSCRIBE": true, "QUERY": true,
}

// Detect recognises HTTP/1.x by content: a request line start (a method
// token followed by a space) to the server, "HTTP/1." to the client.
func Detect(p analyzer.Probe) analyzer.Confidence {
	if p.Transport == analyzer.UDP {
		return analyzer.No
	}
	data := p.Data
	if p.Dir == dataplane.ToClient {
		const v = "HTTP/1."
		if len(data) < len(v) {
			if string(data) == v[:len(data)] {
				return analyzer.NeedMore
			}
			return analyzer.No
		}
		if string(data[:len(v)]) == v {
			return analyzer.Yes
		}
		return analyzer.No
	}
	for blank := 0; blank < maxDetectBlankLines && len(data) > 0 && (data[0] == '\r' || data[0] == '\n'); blank++ {
		data = data[1:]
	}
	i := 0
	for i < len(data) && i <= maxDetectMethod && tchar[data[i]] {
		i++
	}
	switch {
	case i == len(data) && i <= maxDetectMethod:
		return analyzer.NeedMore
	case i == 0 || i > maxDetectMethod || data[i] != ' ':
		return analyzer.No
	case knownMethods[string(data[:i])]:
		return analyzer.Yes
	}
	for _, c := range data[:i] {
		if (c < 'A' || c > 'Z') && c != '-' && c != '_' {
			return analyzer.No
		}
	}
	// An unregistered upper-case method: ask for a target that looks like one.
	if i+1 >= len(data) {
		return analyzer.NeedMore
	}
	if c := data[i+1]; c == '/' || c == '*' {
		return analyzer.Yes
	}
	return analyzer.No
}
