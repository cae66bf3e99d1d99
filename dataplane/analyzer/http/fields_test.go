package http

import (
	"encoding/base64"
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/patchgate/patchgate/dataplane"
)

// events returns the request and response events of a whole-fed conversation.
func events(t *testing.T, cfg Config, conv []chunk) (reqs []*Request, resps []*Response) {
	t.Helper()
	for _, r := range playWhole(t, cfg, conv) {
		switch {
		case r.Req != nil:
			reqs = append(reqs, r.Req)
		case r.Resp != nil:
			resps = append(resps, r.Resp)
		}
	}
	return reqs, resps
}

func TestRequestFields(t *testing.T) {
	body := "a=1&b=x%20y+z"
	creds := base64.StdEncoding.EncodeToString([]byte("alice:s3:cret"))
	conv := cs(">", "POST /shop/%2e%2e/admin?id=5&q=a+b&flag HTTP/1.1\r\n"+
		"Host: example.com\r\n"+
		"X-Forwarded-For: 1.1.1.1\r\n"+
		"x-forwarded-for: 2.2.2.2\r\n"+
		"Cookie: sid=abc; theme=dark%21\r\n"+
		"Authorization: Basic "+creds+"\r\n"+
		"Range: bytes=0-99, 50-150,-20\r\n"+
		"Content-Type: application/x-www-form-urlencoded; charset=utf-8\r\n"+
		fmt.Sprintf("Content-Length: %d\r\n\r\n%s", len(body), body))
	reqs, _ := events(t, testConfig(), conv)
	if len(reqs) != 2 {
		t.Fatalf("got %d request events, want 2", len(reqs))
	}
	h, r := reqs[0], reqs[1]
	if h.EventName() != EventRequestHeaders || r.EventName() != EventRequest {
		t.Fatalf("event names %q, %q", h.EventName(), r.EventName())
	}
	if h.Body != "" || h.BodyLength != 0 {
		t.Errorf("headers event carries a body: %q", h.Body)
	}
	if r.Method != "POST" || r.Version != "HTTP/1.1" || r.Index != 0 || r.Host != "example.com" {
		t.Errorf("method/version/index/host = %q %q %d %q", r.Method, r.Version, r.Index, r.Host)
	}
	wantURI := URI{Raw: "/shop/%2e%2e/admin?id=5&q=a+b&flag", PathRaw: "/shop/%2e%2e/admin", Path: "/admin",
		PathDecodedOnce: "/shop/../admin", Query: "id=5&q=a+b&flag", DecodePasses: 1, EncodedDotSegment: true}
	if r.URI != wantURI {
		t.Errorf("URI = %+v\nwant %+v", r.URI, wantURI)
	}
	if got := r.Header["x-forwarded-for"]; got != "1.1.1.1, 2.2.2.2" {
		t.Errorf("repeated header joined = %q", got)
	}
	if r.Headers[2].RawName != "x-forwarded-for" || r.Headers[1].RawName != "X-Forwarded-For" || r.Headers[1].Name != "x-forwarded-for" {
		t.Errorf("headers keep raw and lower names: %+v", r.Headers[1:3])
	}
	if r.ContentType != "application/x-www-form-urlencoded; charset=utf-8" || r.ContentLength != int64(len(body)) || r.Chunked {
		t.Errorf("content type/length/chunked = %q %d %v", r.ContentType, r.ContentLength, r.Chunked)
	}
	wantArgs := []Arg{{"id", "5", "query"}, {"q", "a b", "query"}, {"flag", "", "query"},
		{"a", "1", "body"}, {"b", "x y z", "body"}}
	if !reflect.DeepEqual(vals(r.Args), wantArgs) {
		t.Errorf("args = %+v", r.Args)
	}
	if !reflect.DeepEqual(vals(h.Args), wantArgs[:3]) {
		t.Errorf("headers event args = %+v, want the query only", h.Args)
	}
	wantCookies := []Arg{{"sid", "abc", "cookie"}, {"theme", "dark!", "cookie"}}
	if !reflect.DeepEqual(vals(r.Cookies), wantCookies) {
		t.Errorf("cookies = %+v", r.Cookies)
	}
	if r.Auth != (Auth{Scheme: "basic", User: "alice", Password: "s3:cret"}) {
		t.Errorf("auth = %+v", r.Auth)
	}
	wantRange := Range{Present: true, Raw: "bytes=0-99, 50-150,-20", Unit: "bytes", Count: 3, Overlaps: 1,
		Specs: ptrs([]RangeSpec{{0, 99, -1, false}, {50, 150, -1, false}, {-1, -1, 20, false}})}
	if !reflect.DeepEqual(r.Range, wantRange) {
		t.Errorf("range = %+v", r.Range)
	}
	for _, key := range []string{"header:cookie", "body", "args", "cookies", "auth"} {
		if !r.Has(key) {
			t.Errorf("Has(%q) = false", key)
		}
	}
	if r.Has("header:x-missing") || h.Has("body") {
		t.Errorf("Has reports absent keys")
	}
}

func TestResponseFields(t *testing.T) {
	conv := cs(">", "GET / HTTP/1.1\r\n\r\nGET /2 HTTP/1.1\r\n\r\n",
		"<", "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\nContent-Length: 4\r\n\r\nbody"+
			"HTTP/1.0 503 Service Unavailable\r\nTransfer-Encoding: chunked\r\n\r\n")
	_, resps := events(t, testConfig(), conv)
	if len(resps) != 3 {
		t.Fatalf("got %d response events, want 3", len(resps))
	}
	r := resps[1]
	if r.EventName() != EventResponse || r.Status != 200 || r.Reason != "OK" || r.Version != "HTTP/1.1" ||
		r.RequestMethod != "GET" || r.Index != 0 || r.ContentType != "text/html" || r.ContentLength != 4 ||
		r.Body != "body" || r.BodyLength != 4 {
		t.Errorf("response = %+v", r)
	}
	if r.Header["set-cookie"] != "a=1, b=2" || !r.Has("header:set-cookie") || !r.Has("body") {
		t.Errorf("set-cookie = %q", r.Header["set-cookie"])
	}
	// HTTP/1.0 with Transfer-Encoding is a smuggling sign: the third event is
	// the headers event of the second response, after which parsing stopped.
	if s := resps[2]; s.Index != 1 || s.Status != 503 || !s.Chunked {
		t.Errorf("second response = %+v", s)
	}
}

func TestHTTP09Fields(t *testing.T) {
	reqs, resps := events(t, testConfig(), cs(">", "GET /x\r\n", "<", "raw"))
	if reqs[1].Version != "HTTP/0.9" || resps[1].Version != "HTTP/0.9" || resps[1].Body != "raw" {
		t.Errorf("0.9 request %+v response %+v", reqs[1], resps[1])
	}
}

func TestAbsoluteFormOverridesHost(t *testing.T) {
	reqs, _ := events(t, testConfig(), cs(">", "GET http://example.com/a/../b?x=1 HTTP/1.1\r\nHost: other\r\n\r\n"))
	r := reqs[0]
	if r.Host != "example.com" || r.URI.PathRaw != "/a/../b" || r.URI.Path != "/b" || r.URI.Query != "x=1" || r.URI.Invalid {
		t.Errorf("absolute form: host %q uri %+v", r.Host, r.URI)
	}
}

func TestObsFoldValue(t *testing.T) {
	reqs, _ := events(t, testConfig(), cs(">", "GET / HTTP/1.1\r\nX-Long: a\r\n  b\r\n\tc \r\nX-Empty:\r\n d\r\n\r\n"))
	if v := reqs[0].Header["x-long"]; v != "a b c" {
		t.Errorf("folded value = %q", v)
	}
	if v := reqs[0].Header["x-empty"]; v != "d" {
		t.Errorf("folded empty value = %q", v)
	}
}

func TestMultipartArgs(t *testing.T) {
	mp := "preamble\r\n--XyZ\r\nContent-Disposition: form-data; name=\"user\"\r\n\r\nbob\r\n" +
		"--XyZ\r\ncontent-disposition: form-data; name=\"f\"; filename=\"a.txt\"\r\nContent-Type: text/plain\r\n\r\nline1\r\nline2\r\n--XyZ--\r\n"
	cfg := testConfig()
	cfg.MaxBodyInspect = 1024
	reqs, _ := events(t, cfg, cs(">", fmt.Sprintf("POST /up HTTP/1.1\r\nContent-Type: multipart/form-data; boundary=\"XyZ\"\r\nContent-Length: %d\r\n\r\n%s", len(mp), mp)))
	want := []Arg{{"user", "bob", "multipart"}, {"f", "line1\r\nline2", "multipart"}}
	if got := vals(reqs[1].Args); !reflect.DeepEqual(got, want) {
		t.Errorf("multipart args = %q", got)
	}
}

func TestURINormalisation(t *testing.T) {
	tests := []struct {
		target string
		want   URI
	}{
		{"/", URI{Path: "/", PathDecodedOnce: "/"}},
		{"/a/b", URI{Path: "/a/b", PathDecodedOnce: "/a/b"}},
		{"/a//b///c/", URI{Path: "/a/b/c/", PathDecodedOnce: "/a//b///c/"}},
		{"/a/./b/../c", URI{Path: "/a/c", PathDecodedOnce: "/a/./b/../c"}},
		{"/a/..", URI{Path: "/", PathDecodedOnce: "/a/.."}},
		{"/a/.", URI{Path: "/a/", PathDecodedOnce: "/a/."}},
		{"/a/../../etc/passwd", URI{Path: "/etc/passwd", PathDecodedOnce: "/a/../../etc/passwd", EscapesRoot: true}},
		{"/..", URI{Path: "/", PathDecodedOnce: "/..", EscapesRoot: true}},
		{"/a\\b\\..\\c", URI{Path: "/a/c", PathDecodedOnce: "/a\\b\\..\\c"}},
		{"/%41%42", URI{Path: "/AB", PathDecodedOnce: "/AB", DecodePasses: 1}},
		{"/.%2e/x", URI{Path: "/x", PathDecodedOnce: "/../x", DecodePasses: 1, EncodedDotSegment: true, EscapesRoot: true}},
		{"/a/%2e%2e/b", URI{Path: "/b", PathDecodedOnce: "/a/../b", DecodePasses: 1, EncodedDotSegment: true}},
		{"/a/.%%32%65/b", URI{Path: "/b", PathDecodedOnce: "/a/.%2e/b", DecodePasses: 2, EncodedDotSegment: true, DoubleEncodedDotSegment: true}},
		{"/a/%252e%252e/b", URI{Path: "/b", PathDecodedOnce: "/a/%2e%2e/b", DecodePasses: 2, EncodedDotSegment: true, DoubleEncodedDotSegment: true}},
		{"/a/%25252e%25252e/b", URI{Path: "/b", PathDecodedOnce: "/a/%252e%252e/b", DecodePasses: 3, EncodedDotSegment: true, DoubleEncodedDotSegment: true}},
		{"/a/%2525252e/b", URI{Path: "/a/%2e/b", PathDecodedOnce: "/a/%25252e/b", DecodePasses: 3}},
		{"/a/%u002e%u002e/b", URI{Path: "/b", PathDecodedOnce: "/a/../b", DecodePasses: 1, EncodedDotSegment: true}},
		{"/%u00e9t%C3%A9", URI{Path: "/été", PathDecodedOnce: "/été", DecodePasses: 1}},
		{"/..%5c..%5cwin.ini", URI{Path: "/win.ini", PathDecodedOnce: "/..\\..\\win.ini", DecodePasses: 1, EncodedDotSegment: true, EscapesRoot: true}},
		{"/a%zz%4", URI{Path: "/a%zz%4", PathDecodedOnce: "/a%zz%4"}},
		{"/A/B/", URI{Path: "/A/B/", PathDecodedOnce: "/A/B/"}},
		{"/p?x=1#frag", URI{Path: "/p", PathDecodedOnce: "/p", Query: "x=1"}},
		{"/p#frag", URI{Path: "/p", PathDecodedOnce: "/p"}},
		{"*", URI{Path: "*", PathDecodedOnce: "*"}},
		{"http://h", URI{Path: "/"}},
		{"HTTPS://h:8443/x/./y?z", URI{Path: "/x/y", PathDecodedOnce: "/x/./y", Query: "z"}},
		{"rel/../../x", URI{Path: "x", PathDecodedOnce: "rel/../../x", Invalid: true, EscapesRoot: true}},
	}
	var scratch []byte
	for _, tt := range tests {
		var u URI
		parseURI(&u, tt.target, false, &scratch)
		want := tt.want
		want.Raw = tt.target
		// PathRaw is the target up to '?' or '#' (after the authority).
		want.PathRaw = u.PathRaw
		if u != want {
			t.Errorf("%q:\n got %+v\nwant %+v", tt.target, u, want)
		}
	}
	var u URI
	if host := parseURI(&u, "example.com:443", true, &scratch); host != "example.com:443" || u.Invalid || u.Path != "" {
		t.Errorf("authority form: host %q uri %+v", host, u)
	}
}

func TestRange(t *testing.T) {
	const max = math.MaxInt64
	tests := []struct {
		v    string
		want Range
	}{
		{"bytes=0-99", Range{Unit: "bytes", Count: 1, Specs: ptrs([]RangeSpec{{0, 99, -1, false}})}},
		{"bytes=100-", Range{Unit: "bytes", Count: 1, Specs: ptrs([]RangeSpec{{100, -1, -1, false}})}},
		{"bytes=-500", Range{Unit: "bytes", Count: 1, Specs: ptrs([]RangeSpec{{-1, -1, 500, false}})}},
		{"Bytes = 0-1 , , 2-3", Range{Unit: "bytes", Count: 2, Specs: ptrs([]RangeSpec{{0, 1, -1, false}, {2, 3, -1, false}})}},
		{"bytes=0-18446744073709551614", Range{Unit: "bytes", Count: 1, Specs: ptrs([]RangeSpec{{0, max, -1, false}})}},
		{"bytes=0-18446744073709551615", Range{Unit: "bytes", Count: 1, Specs: ptrs([]RangeSpec{{0, max, -1, true}})}},
		{"bytes=0-0018446744073709551615", Range{Unit: "bytes", Count: 1, Specs: ptrs([]RangeSpec{{0, max, -1, true}})}},
		{"bytes=0-99999999999999999999999", Range{Unit: "bytes", Count: 1, Specs: ptrs([]RangeSpec{{0, max, -1, true}})}},
		{"bytes=0-9223372036854775807", Range{Unit: "bytes", Count: 1, Specs: ptrs([]RangeSpec{{0, max, -1, false}})}},
		{"bytes=99999999999999999999-", Range{Unit: "bytes", Count: 1, Specs: ptrs([]RangeSpec{{max, -1, -1, false}})}},
		{"bytes=0-10,5-20,30-40,-5,-10,50-", Range{Unit: "bytes", Count: 6, Overlaps: 3, Specs: ptrs([]RangeSpec{
			{0, 10, -1, false}, {5, 20, -1, false}, {30, 40, -1, false}, {-1, -1, 5, false}, {-1, -1, 10, false}, {50, -1, -1, false}})}},
		{"bytes=5-1", Range{Unit: "bytes", Count: 1, Invalid: true, Specs: ptrs([]RangeSpec{{5, 1, -1, false}})}},
		{"bytes=a-b", Range{Unit: "bytes", Count: 1, Invalid: true}},
		{"bytes=", Range{Unit: "bytes", Invalid: true}},
		{"bytes 0-1", Range{Invalid: true}},
		{"items=0-5", Range{Unit: "items"}},
	}
	for _, tt := range tests {
		var r Range
		r.Specs = ptrs(parseRange(tt.v, &r, nil))
		want := tt.want
		want.Present, want.Raw = true, tt.v
		if want.Specs == nil {
			want.Specs = r.Specs[:0]
		}
		if len(r.Specs) == 0 {
			r.Specs = want.Specs
		}
		if !reflect.DeepEqual(r, want) {
			t.Errorf("%q:\n got %+v\nwant %+v", tt.v, r, want)
		}
	}
	// Only MaxRangeSpecs ranges are kept; Count counts them all.
	var r Range
	r.Specs = ptrs(parseRange("bytes="+strings.Repeat("0-1,", MaxRangeSpecs+50), &r, nil))
	if r.Count != MaxRangeSpecs+50 || len(r.Specs) != MaxRangeSpecs || r.Overlaps != MaxRangeSpecs-1 {
		t.Errorf("many ranges: count %d kept %d overlaps %d", r.Count, len(r.Specs), r.Overlaps)
	}
	// Request-Range is used when Range is absent.
	reqs, _ := events(t, testConfig(), cs(">", "GET / HTTP/1.1\r\nRequest-Range: bytes=1-2\r\n\r\n"))
	if !reqs[0].Range.Present || reqs[0].Range.Raw != "bytes=1-2" {
		t.Errorf("Request-Range not used: %+v", reqs[0].Range)
	}
}

func TestAuth(t *testing.T) {
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	tests := []struct {
		v    string
		want Auth
	}{
		{"Basic " + b64("u:p"), Auth{Scheme: "basic", User: "u", Password: "p"}},
		{"basic " + strings.TrimRight(b64("user:pw"), "="), Auth{Scheme: "basic", User: "user", Password: "pw"}},
		{"BASIC " + b64("nocolon"), Auth{Scheme: "basic", User: "nocolon"}},
		{"Basic !!!", Auth{Scheme: "basic", Token: "!!!"}},
		{"Bearer abc.def", Auth{Scheme: "bearer", Token: "abc.def"}},
		{"Custom  x=y", Auth{Scheme: "custom", Token: "x=y"}},
	}
	for _, tt := range tests {
		var a Auth
		parseAuth(tt.v, &a)
		if a != tt.want {
			t.Errorf("%q: got %+v want %+v", tt.v, a, tt.want)
		}
	}
}

func TestCookiesAndForms(t *testing.T) {
	got := appendCookies(nil, " a=1 ;b = 2;; c;d=%41+")
	want := []Arg{{"a", "1", "cookie"}, {"b", "2", "cookie"}, {"c", "", "cookie"}, {"d", "A+", "cookie"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("cookies = %+v", got)
	}
	form := appendForm(nil, "&x=%3Cscript%3E&&y=1+2&z=%u0041", "body", true)
	wantForm := []Arg{{"x", "<script>", "body"}, {"y", "1 2", "body"}, {"z", "A", "body"}}
	if !reflect.DeepEqual(form, wantForm) {
		t.Errorf("form = %+v", form)
	}
	if n := len(appendForm(nil, strings.Repeat("a=1&", MaxArgs*2), "query", true)); n != MaxArgs {
		t.Errorf("form args not bounded: %d", n)
	}
}

func TestGapResynchronises(t *testing.T) {
	a := newAnalyzer(t, testConfig())
	var rec recorder
	feed := func(dir dataplane.Direction, s string) {
		if err := a.Feed(dir, []byte(s), &rec); err != nil {
			t.Fatalf("Feed(%q): %v", s, err)
		}
	}
	feed(dataplane.ToServer, "GET /first HTTP/1.1\r\nHo")
	a.Gap(dataplane.ToServer, 100, &rec)
	// The rest of a lost message, junk and a body line that looks like a request
	// without a version are skipped; the next full request line is parsed.
	feed(dataplane.ToServer, "st: x\r\n\r\nGET /x\r\n"+strings.Repeat("z", 300)+"\r\nGET /second HTTP/1.1\r\n\r\n")
	// Inside a Content-Length body a gap is skipped exactly.
	feed(dataplane.ToServer, "POST /p HTTP/1.1\r\nContent-Length: 10\r\n\r\nab")
	a.Gap(dataplane.ToServer, 5, &rec)
	feed(dataplane.ToServer, "cdeGET /third HTTP/1.1\r\n\r\n")
	// A new analyzer picked up mid-stream on the response side.
	a.Gap(dataplane.ToClient, 10, &rec)
	feed(dataplane.ToClient, "partial body\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
	want := []string{">H GET /second", `>R 0 ""`, ">|", ">H POST /p", `>R 2 "ab" trunc`, ">|",
		">H GET /third", `>R 0 ""`, ">|", "<H 200 GET", `<R 0 ""`, "<|"}
	if got := summary(rec.recs); !reflect.DeepEqual(got, want) {
		t.Errorf("after gaps:\n got %q\nwant %q", got, want)
	}
}

func TestFailedDirectionStaysStopped(t *testing.T) {
	a := newAnalyzer(t, testConfig())
	var rec recorder
	if err := a.Feed(dataplane.ToServer, []byte("BAD\r\n"), &rec); err == nil {
		t.Fatal("bad request line accepted")
	}
	if err := a.Feed(dataplane.ToServer, []byte(get), &rec); err == nil {
		t.Fatal("stopped direction parsed more data")
	}
	// The other direction goes on.
	if err := a.Feed(dataplane.ToClient, []byte("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"), &rec); err != nil {
		t.Fatalf("response after request failure: %v", err)
	}
	if err := a.Feed(2, []byte("x"), &rec); err == nil {
		t.Fatal("unknown direction accepted")
	}
}

func TestConfigValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatalf("default config invalid: %v", err)
	}
	c := DefaultConfig()
	c.MaxBodyInspect = 0
	err := c.Validate()
	if err == nil || !strings.Contains(err.Error(), "MaxBodyInspect") {
		t.Errorf("Validate = %v, want a MaxBodyInspect error", err)
	}
	if _, err := NewWithConfig(c); err == nil {
		t.Error("NewWithConfig accepted an invalid config")
	}
}

func TestGapInCloseDelimitedBody(t *testing.T) {
	a := newAnalyzer(t, testConfig())
	var rec recorder
	a.Feed(dataplane.ToServer, []byte(get), &rec)
	a.Feed(dataplane.ToClient, []byte("HTTP/1.0 200 OK\r\n\r\nhead"), &rec)
	a.Gap(dataplane.ToClient, 1000, &rec)
	a.Feed(dataplane.ToClient, []byte("tail"), &rec)
	a.End(dataplane.ToClient, &rec)
	want := join(reqOK("GET", "/"), []string{"<H 200 GET", `<R 4 "head" trunc`, "<|"})
	if got := summary(rec.recs); !reflect.DeepEqual(got, want) {
		t.Errorf("got %q\nwant %q", got, want)
	}
}
