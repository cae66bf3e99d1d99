package http

import "strings"

// Event names emitted by the HTTP analyzer.
const (
	EventRequestHeaders  = "http.request_headers"
	EventRequest         = "http.request"
	EventResponseHeaders = "http.response_headers"
	EventResponse        = "http.response"
)

// Header is one header field as received.
type Header struct {
	// Name is the field name in lower case.
	Name string `expr:"name"`
	// RawName is the field name as sent.
	RawName string `expr:"raw_name"`
	// Value is the field value with surrounding whitespace removed and obsolete
	// line folding (obs-fold) replaced by single spaces.
	Value string `expr:"value"`
}

// URI is the request-target in raw and normalised forms.
type URI struct {
	// Raw is the request-target exactly as sent.
	Raw string `expr:"raw"`
	// PathRaw is the path part of Raw (before '?'), as sent.
	PathRaw string `expr:"path_raw"`
	// Path is PathRaw percent-decoded repeatedly until stable (at most
	// MaxDecodePasses passes; %uXXXX decoded too), backslashes turned into
	// slashes, repeated slashes merged and dot segments resolved. Case is kept.
	Path string `expr:"path"`
	// PathDecodedOnce is PathRaw after exactly one percent-decoding pass, with
	// no other normalisation (what a server that decodes once sees).
	PathDecodedOnce string `expr:"path_decoded_once"`
	// Query is the raw query (after '?', before any '#'), as sent.
	Query string `expr:"query"`
	// DecodePasses is how many percent-decoding passes changed the path
	// (2 or more means double encoding).
	DecodePasses int `expr:"decode_passes"`
	// EncodedDotSegment is true when a "." or ".." path segment appears only after
	// percent-decoding (e.g. "/.%2e/", "/%2e%2e/", "/.%%32%65/").
	EncodedDotSegment bool `expr:"encoded_dot_segment"`
	// DoubleEncodedDotSegment is true when such a segment appears only after a
	// second decoding pass ("/.%%32%65/", "/%252e%252e/").
	DoubleEncodedDotSegment bool `expr:"double_encoded_dot_segment"`
	// EscapesRoot is true when resolving the dot segments of the decoded path
	// climbs above "/" (e.g. "/a/../../etc/passwd").
	EscapesRoot bool `expr:"escapes_root"`
	// Invalid is true when the target could not be parsed as origin-form,
	// absolute-form, authority-form or asterisk-form.
	Invalid bool `expr:"invalid"`
}

// Arg is one parameter from the query string, a urlencoded body or a multipart
// body (name and value percent-decoded once, '+' as space for forms).
type Arg struct {
	Name  string `expr:"name"`
	Value string `expr:"value"`
	// Source is "query", "body" (application/x-www-form-urlencoded) or "multipart".
	Source string `expr:"source"`
}

// Auth is decoded HTTP authentication.
type Auth struct {
	// Scheme is the Authorization scheme in lower case ("basic", "bearer"), or "".
	Scheme string `expr:"scheme"`
	// User and Password are the decoded Basic credentials (empty otherwise).
	User     string `expr:"user"`
	Password string `expr:"password"`
	// Token is the credential string after the scheme for non-Basic schemes.
	Token string `expr:"token"`
}

// RangeSpec is one byte-range-spec of a Range header (RFC 9110 §14.1.2).
type RangeSpec struct {
	// First is the first-byte-pos, or -1 for a suffix range ("-500").
	First int64 `expr:"first"`
	// Last is the last-byte-pos, or -1 when absent ("100-"). Values that do not
	// fit in int64 are saturated to the int64 maximum.
	Last int64 `expr:"last"`
	// Suffix is the suffix-length of a suffix range, else -1.
	Suffix int64 `expr:"suffix"`
	// LastOverflows is true when last-byte-pos + 1 does not fit in an unsigned
	// 64-bit integer (last-byte-pos >= 18446744073709551615): the length
	// computation of a server using 64-bit arithmetic wraps.
	LastOverflows bool `expr:"last_overflows"`
}

// Range is the parsed Range header (or Request-Range when Range is absent).
type Range struct {
	// Present is true when the request carries Range or Request-Range.
	Present bool `expr:"present"`
	// Raw is the header value as received.
	Raw string `expr:"raw"`
	// Unit is the range unit in lower case ("bytes").
	Unit string `expr:"unit"`
	// Specs are the parsed ranges in order (at most MaxRangeSpecs are kept).
	Specs []*RangeSpec `expr:"specs"`
	// Count is the number of ranges in the header (even beyond those kept).
	Count int `expr:"count"`
	// Overlaps is the number of ranges that overlap an earlier range.
	Overlaps int `expr:"overlaps"`
	// Invalid is true when the value does not follow the grammar.
	Invalid bool `expr:"invalid"`
}

// Event slices hold pointers into per-analyzer value stores that are reused
// from message to message: a predicate iterating them (any(headers, ...))
// then boxes no value, and the analyzer allocates nothing per element. Like
// every event, they are valid only during the Sink call.

// stores are the reused value arrays behind a Request's pointer slices.
type stores struct {
	headers []Header
	args    []Arg
	cookies []Arg
	specs   []RangeSpec
}

// pointers sets dst to point at the elements of src.
func pointers[T any](dst []*T, src []T) []*T {
	dst = dst[:0]
	for i := range src {
		dst = append(dst, &src[i])
	}
	return dst
}

// Request is the event of http.request_headers (Body empty) and http.request
// (fired when the body is complete or the body inspection limit is reached).
type Request struct {
	name string

	// Index is the 0-based number of this request on the connection.
	Index int `expr:"index"`
	// Method is the method as sent (case kept).
	Method  string `expr:"method"`
	URI     URI    `expr:"uri"`
	Version string `expr:"version"` // "HTTP/1.1", "HTTP/1.0", "HTTP/0.9"
	// Headers in the order received.
	Headers []*Header `expr:"headers"`
	// Header maps lower-case names to values; repeated fields are joined with ", ".
	Header map[string]string `expr:"header"`
	Host   string            `expr:"host"`
	// ContentType is the Content-Type value, as sent.
	ContentType string `expr:"content_type"`
	// ContentLength is the declared Content-Length, or -1.
	ContentLength int64 `expr:"content_length"`
	Chunked       bool  `expr:"chunked"`
	// Args are the query arguments, then (in http.request) the body's form fields.
	Args    []*Arg `expr:"args"`
	Cookies []*Arg `expr:"cookies"`
	Auth    Auth   `expr:"auth"`
	Range   Range  `expr:"range"`
	// Body is the request body after de-chunking and Content-Encoding decoding,
	// up to the body inspection limit; empty in http.request_headers.
	Body string `expr:"body"`
	// BodyLength is the number of body bytes on the wire (after de-chunking).
	BodyLength int64 `expr:"body_length"`
	// BodyTruncated is true when Body holds less than the whole body.
	BodyTruncated bool `expr:"body_truncated"`
}

// EventName implements analyzer.Event.
func (r *Request) EventName() string { return r.name }

// Has implements analyzer.Prefilterable: "header:NAME" keys test presence of a
// header, "body" a non-empty body, "args" any argument, "cookies" any cookie,
// "auth" an Authorization header, "path:encoded" a percent sign in the raw path
// (no path segment can change under decoding without one).
func (r *Request) Has(key string) bool {
	switch key {
	case "path:encoded":
		return strings.IndexByte(r.URI.PathRaw, '%') >= 0
	case "body":
		return r.Body != ""
	case "args":
		return len(r.Args) > 0
	case "cookies":
		return len(r.Cookies) > 0
	case "auth":
		return r.Auth.Scheme != ""
	}
	if len(key) > 7 && key[:7] == "header:" {
		_, ok := r.Header[key[7:]]
		return ok
	}
	return false
}

// Response is the event of http.response_headers (Body empty) and http.response.
type Response struct {
	name string

	// Index is the 0-based number of this response on the connection.
	Index int `expr:"index"`
	// RequestMethod is the method of the request this response answers.
	RequestMethod string            `expr:"request_method"`
	Version       string            `expr:"version"`
	Status        int               `expr:"status"`
	Reason        string            `expr:"reason"`
	Headers       []*Header         `expr:"headers"`
	Header        map[string]string `expr:"header"`
	ContentType   string            `expr:"content_type"`
	ContentLength int64             `expr:"content_length"`
	Chunked       bool              `expr:"chunked"`
	Body          string            `expr:"body"`
	BodyLength    int64             `expr:"body_length"`
	BodyTruncated bool              `expr:"body_truncated"`
}

// EventName implements analyzer.Event.
func (r *Response) EventName() string { return r.name }

// Has implements analyzer.Prefilterable with the same keys as Request.Has.
func (r *Response) Has(key string) bool {
	switch key {
	case "body":
		return r.Body != ""
	}
	if len(key) > 7 && key[:7] == "header:" {
		_, ok := r.Header[key[7:]]
		return ok
	}
	return false
}
