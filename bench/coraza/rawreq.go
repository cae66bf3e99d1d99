package corazabench

import (
	"bytes"
	"strconv"
	"strings"
)

// rawRequest is a request split by hand, for the requests net/http refuses
// (a request target with a "%" that is not an escape, such as "%%32%65"):
// an Apache or a proxy in front of it accepts them, so a WAF in front of
// such a server must still judge them.
type rawRequest struct {
	method, target, proto string
	headers               [][2]string
	body                  []byte
}

// splitRaw splits a request into its line, its header fields (obsolete line
// folding joined with one space, values trimmed) and a Content-Length body.
func splitRaw(raw []byte) (*rawRequest, bool) {
	head, body, ok := bytes.Cut(raw, []byte("\r\n\r\n"))
	if !ok {
		return nil, false
	}
	lines := strings.Split(string(head), "\r\n")
	parts := strings.Fields(lines[0])
	if len(parts) != 3 {
		return nil, false
	}
	r := &rawRequest{method: parts[0], target: parts[1], proto: parts[2]}
	for _, l := range lines[1:] {
		if (strings.HasPrefix(l, " ") || strings.HasPrefix(l, "\t")) && len(r.headers) > 0 {
			h := &r.headers[len(r.headers)-1]
			h[1] = strings.TrimSpace(h[1] + " " + strings.TrimSpace(l))
			continue
		}
		k, v, ok := strings.Cut(l, ":")
		if !ok {
			return nil, false
		}
		r.headers = append(r.headers, [2]string{k, strings.TrimSpace(v)})
	}
	for _, h := range r.headers {
		if strings.EqualFold(h[0], "content-length") {
			n, err := strconv.Atoi(h[1])
			if err != nil || n < 0 || n > len(body) {
				return nil, false
			}
			body = body[:n]
		}
	}
	r.body = body
	return r, true
}
