package http

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"compress/zlib"
	"fmt"
	"slices"
	"strings"
	"testing"
)

// testConfig has small limits so that every limit is reachable with inputs
// short enough to test at every split point.
func testConfig() Config {
	return Config{
		MaxLineLength:   200,
		MaxHeaders:      10,
		MaxHeaderBytes:  1024,
		MaxBodyInspect:  64,
		MaxDecompressed: 256,
		MaxPipelined:    4,
	}
}

func gz(s string) string {
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	w.Write([]byte(s))
	w.Close()
	return b.String()
}

func zl(s string) string {
	var b bytes.Buffer
	w := zlib.NewWriter(&b)
	w.Write([]byte(s))
	w.Close()
	return b.String()
}

func rawDeflate(s string) string {
	var b bytes.Buffer
	w, _ := flate.NewWriter(&b, flate.DefaultCompression)
	w.Write([]byte(s))
	w.Close()
	return b.String()
}

type testCase struct {
	name string
	cfg  *Config // nil: testConfig()
	conv []chunk
	want []string
}

func (tc testCase) config() Config {
	if tc.cfg != nil {
		return *tc.cfg
	}
	return testConfig()
}

const get = "GET / HTTP/1.1\r\nHost: h\r\n\r\n"

// reqOK is the summary of a body-less request.
func reqOK(method, target string) []string {
	return []string{">H " + method + " " + target, `>R 0 ""`, ">|"}
}

func join(parts ...[]string) []string { return slices.Concat(parts...) }

// numbers is text that compresses poorly enough for its gzip form to exceed
// testConfig's MaxBodyInspect; numbersPrefix is what the first 64 compressed
// bytes decode to.
var numbers = func() string {
	var b strings.Builder
	for i := 0; i < 200; i++ {
		fmt.Fprintf(&b, "%d,", i*7919%1000)
	}
	return b.String()
}()

var numbersGz = gz(numbers)

var numbersPrefix = func() string {
	r, err := gzip.NewReader(strings.NewReader(numbersGz[:64]))
	if err != nil {
		panic(err)
	}
	var out bytes.Buffer
	out.ReadFrom(r) // ends with io.ErrUnexpectedEOF
	return out.String()
}()

func cases() []testCase {
	cfgLimit := func(f func(*Config)) *Config { c := testConfig(); f(&c); return &c }
	gzBody := gz("hello gzip world")
	zlBody := zl("a=1&b=2")
	bomb := gz(strings.Repeat("A", 1000))
	long := strings.Repeat("a", 300)
	multipart := "--XyZ\r\nContent-Disposition: form-data; name=\"user\"\r\n\r\nbob\r\n" +
		"--XyZ\r\nContent-Disposition: form-data; name=\"f\"; filename=\"a.txt\"\r\nContent-Type: text/plain\r\n\r\nhi\r\n--XyZ--\r\n"
	return []testCase{
		{name: "keep-alive", conv: cs(
			">", "GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b?q=1 HTTP/1.1\r\nHost: x\r\n\r\n",
			"<", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhiHTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"),
			want: join(reqOK("GET", "/a"), reqOK("GET", "/b?q=1"),
				[]string{"<H 200 GET", `<R 2 "hi"`, "<|", "<H 404 GET", `<R 0 ""`, "<|"})},
		{name: "post content-length", conv: cs(
			">", "POST /login HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 13\r\n\r\nuser=a&pw=b+c"),
			want: []string{">H POST /login", `>R 13 "user=a&pw=b+c"`, ">|"}},
		{name: "chunked request with extensions and trailers", conv: cs(
			">", "POST /u HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n6 ; x=\"y\"\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n"),
			want: []string{">H POST /u", `>R 11 "hello world"`, ">|"}},
		{name: "chunked response", conv: cs(">", get,
			"<", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"),
			want: join(reqOK("GET", "/"), []string{"<H 200 GET", `<R 3 "abc"`, "<|"})},
		{name: "head response has no body", conv: cs(
			">", "HEAD /f HTTP/1.1\r\n\r\nGET /g HTTP/1.1\r\n\r\n",
			"<", "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc"),
			want: join(reqOK("HEAD", "/f"), reqOK("GET", "/g"),
				[]string{"<H 200 HEAD", `<R 0 ""`, "<|", "<H 200 GET", `<R 3 "abc"`, "<|"})},
		{name: "interim and bodiless statuses", conv: cs(
			">", "POST /p HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nokGET /n HTTP/1.1\r\n\r\nGET /m HTTP/1.1\r\n\r\n",
			"<", "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\nHTTP/1.1 304 Not Modified\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nz"),
			want: join([]string{">H POST /p", `>R 2 "ok"`, ">|"}, reqOK("GET", "/n"), reqOK("GET", "/m"),
				[]string{"<H 100 POST", `<R 0 ""`, "<|", "<H 204 POST", `<R 0 ""`, "<|",
					"<H 304 GET", `<R 0 ""`, "<|", "<H 200 GET", `<R 1 "z"`, "<|"})},
		{name: "http/0.9", conv: cs(">", "GET /old\r\nGET /ignored HTTP/1.1\r\n\r\n", "<", "<html>old</html>"),
			want: join(reqOK("GET", "/old"), []string{"<H 0 GET", `<R 16 "<html>old</html>"`, "<|"})},
		{name: "http/0.9 answered with a status line", conv: cs(">", "GET /x\r\n", "<", "HTTP/1.1 400 Bad\r\nContent-Length: 0\r\n\r\n"),
			want: join(reqOK("GET", "/x"), []string{"<H 400 GET", `<R 0 ""`, "<|"})},
		{name: "http/0.9 response with a long first line", conv: cs(">", "GET /x\r\n", "<", long+"\r\nmore"),
			want: join(reqOK("GET", "/x"), []string{"<H 0 GET", fmt.Sprintf("<R 64 %q trunc", long[:64]), "<|"})},
		{name: "close-delimited response", conv: cs(">", "GET / HTTP/1.0\r\n\r\n",
			"<", "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil close"),
			want: join(reqOK("GET", "/"), []string{"<H 200 GET", `<R 11 "until close"`, "<|"})},
		{name: "obs-fold joined", conv: cs(">", "GET / HTTP/1.1\r\nX-Long: a\r\n  b\r\n\tc\r\nHost: h\r\n\r\n"),
			want: join([]string{">! http.obs_fold"}, reqOK("GET", "/"))},
		{name: "bare LF", conv: cs(">", "GET / HTTP/1.1\nHost: h\n\n"),
			want: join([]string{">! http.bare_lf"}, reqOK("GET", "/"))},
		{name: "bare LF in chunked body", conv: cs(">", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1\nx\n0\n\n"),
			want: []string{">H POST /", ">! http.bare_lf", `>R 1 "x"`, ">|"}},
		{name: "empty lines before request", conv: cs(">", "\r\n\r\n"+get),
			want: reqOK("GET", "/")},
		{name: "cl te conflict", conv: cs(">", "POST / HTTP/1.1\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
			want: []string{">! http.cl_te_conflict", ">H POST /", ">X"}},
		{name: "cl duplicate", conv: cs(">", "POST / HTTP/1.1\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\nabcde"),
			want: []string{">! http.cl_duplicate", ">H POST /", ">X"}},
		{name: "cl list differing", conv: cs(">", "POST / HTTP/1.1\r\nContent-Length: 4, 5\r\n\r\nabcde"),
			want: []string{">! http.cl_duplicate", ">H POST /", ">X"}},
		{name: "cl list identical", conv: cs(">", "POST / HTTP/1.1\r\nContent-Length: 3, 3\r\n\r\nabcGET / HTTP/1.1\r\n\r\n"),
			want: join([]string{">H POST /", `>R 3 "abc"`, ">|"}, reqOK("GET", "/"))},
		{name: "cl malformed", conv: cs(">", "POST / HTTP/1.1\r\nContent-Length: +3\r\n\r\nabc"),
			want: []string{">! http.bad_content_length", ">H POST /", ">X"}},
		{name: "te list", conv: cs(">", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n"),
			want: []string{">! http.te_obfuscated", ">H POST /", ">X"}},
		{name: "te xchunked", conv: cs(">", "POST / HTTP/1.1\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n"),
			want: []string{">! http.te_obfuscated", ">H POST /", ">X"}},
		{name: "te case", conv: cs(">", "POST / HTTP/1.1\r\nTransfer-Encoding: Chunked\r\n\r\n0\r\n\r\n"),
			want: []string{">! http.te_obfuscated", ">H POST /", ">X"}},
		{name: "te vertical tab", conv: cs(">", "POST / HTTP/1.1\r\nTransfer-Encoding: \x0bchunked\r\n\r\n0\r\n\r\n"),
			want: []string{">! http.te_obfuscated", ">H POST /", ">X"}},
		{name: "te repeated", conv: cs(">", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
			want: []string{">! http.te_obfuscated", ">H POST /", ">X"}},
		{name: "te in http/1.0", conv: cs(">", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
			want: []string{">! http.te_obfuscated", ">H POST /", ">X"}},
		{name: "te and cl both bad", conv: cs(">", "POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\nContent-Length: 3\r\n\r\n"),
			want: []string{">! http.te_obfuscated", ">! http.cl_te_conflict", ">H POST /", ">X"}},
		{name: "response te obfuscated", conv: cs(">", get, "<", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked;q=1\r\n\r\n"),
			want: join(reqOK("GET", "/"), []string{"<! http.te_obfuscated", "<H 200 GET", "<X"})},
		{name: "bad chunk size", conv: cs(">", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"),
			want: []string{">H POST /", ">! http.bad_chunk_size", ">X"}},
		{name: "chunk size with 0x", conv: cs(">", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0x5\r\nhello\r\n0\r\n\r\n"),
			want: []string{">H POST /", ">! http.bad_chunk_size", ">X"}},
		{name: "chunk size overflow", conv: cs(">", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n10000000000000000\r\n"),
			want: []string{">H POST /", ">! http.bad_chunk_size", ">X"}},
		{name: "chunk size with leading zeros", conv: cs(">", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n00000000000000000000002\r\nab\r\n0\r\n\r\n"),
			want: []string{">H POST /", `>R 2 "ab"`, ">|"}},
		{name: "chunk data too long", conv: cs(">", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX\r\n0\r\n\r\n"),
			want: []string{">H POST /", ">! http.bad_chunk_data", ">X"}},
		{name: "line too long", conv: cs(">", "GET /"+long+" HTTP/1.1\r\n\r\n"),
			want: []string{">! http.line_too_long", ">X"}},
		{name: "line too long at end", conv: cs(">", "GET /"+long),
			want: []string{">! http.line_too_long", ">X"}},
		{name: "too many headers", conv: cs(">", "GET / HTTP/1.1\r\n"+strings.Repeat("A: b\r\n", 11)+"\r\n"),
			want: []string{">! http.too_many_headers", ">X"}},
		{name: "headers too large", conv: cs(">", "GET / HTTP/1.1\r\n"+strings.Repeat("A: "+strings.Repeat("b", 150)+"\r\n", 8)+"\r\n"),
			want: []string{">! http.headers_too_large", ">X"}},
		{name: "too many trailers", conv: cs(">", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n"+strings.Repeat("T: x\r\n", 11)+"\r\n"),
			want: []string{">H POST /", ">! http.too_many_headers", ">X"}},
		{name: "space before colon", conv: cs(">", "GET / HTTP/1.1\r\nFoo : bar\r\nBar\t: baz\r\n\r\n"),
			want: join([]string{">! http.header_space_before_colon"}, reqOK("GET", "/"))},
		{name: "space before colon in content-length", conv: cs(">", "POST / HTTP/1.1\r\nContent-Length : 3\r\n\r\nabc"),
			want: []string{">! http.header_space_before_colon", ">X"}},
		{name: "fold before first header", conv: cs(">", "GET / HTTP/1.1\r\n folded\r\n\r\n"),
			want: []string{">! http.obs_fold", ">X"}},
		{name: "folded transfer-encoding", conv: cs(">", "POST / HTTP/1.1\r\nTransfer-Encoding:\r\n chunked\r\n\r\n"),
			want: []string{">! http.obs_fold", ">X"}},
		{name: "header without colon", conv: cs(">", "GET / HTTP/1.1\r\nNoColon\r\n\r\n"),
			want: []string{">! http.bad_header", ">X"}},
		{name: "NUL in header value", conv: cs(">", "GET / HTTP/1.1\r\nX: a\x00b\r\n\r\n"),
			want: []string{">! http.bad_header", ">X"}},
		{name: "bare CR in header value", conv: cs(">", "GET / HTTP/1.1\r\nX: a\rb\r\n\r\n"),
			want: []string{">! http.bad_header", ">X"}},
		{name: "bad request line", conv: cs(">", "GET/ HTTP/1.1\r\n\r\n"),
			want: []string{">! http.bad_request_line", ">X"}},
		{name: "http/2 preface is not http/1", conv: cs(">", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"),
			want: []string{">! http.bad_request_line", ">X"}},
		{name: "bad status line", conv: cs(">", get, "<", "HTTP/2 200\r\n\r\n"),
			want: join(reqOK("GET", "/"), []string{"<! http.bad_status_line", "<X"})},
		{name: "gzip response", conv: cs(">", get,
			"<", fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n\r\n%s", len(gzBody), gzBody)),
			want: join(reqOK("GET", "/"), []string{"<H 200 GET", fmt.Sprintf(`<R %d "hello gzip world"`, len(gzBody)), "<|"})},
		{name: "gzip chunked response", conv: cs(">", get,
			"<", fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n%x\r\n%s\r\n0\r\n\r\n", 10, gzBody[:10], len(gzBody)-10, gzBody[10:])),
			want: join(reqOK("GET", "/"), []string{"<H 200 GET", fmt.Sprintf(`<R %d "hello gzip world"`, len(gzBody)), "<|"})},
		{name: "deflate form request", conv: cs(">",
			fmt.Sprintf("POST /f HTTP/1.1\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Encoding: deflate\r\nContent-Length: %d\r\n\r\n%s", len(zlBody), zlBody)),
			want: []string{">H POST /f", fmt.Sprintf(`>R %d "a=1&b=2"`, len(zlBody)), ">|"}},
		{name: "raw deflate request", conv: cs(">",
			fmt.Sprintf("POST /f HTTP/1.1\r\nContent-Encoding: deflate\r\nContent-Length: %d\r\n\r\n%s", len(rawDeflate("raw deflate")), rawDeflate("raw deflate"))),
			want: []string{">H POST /f", fmt.Sprintf(`>R %d "raw deflate"`, len(rawDeflate("raw deflate"))), ">|"}},
		{name: "corrupt gzip keeps raw bytes", conv: cs(">", get, "<", "HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 8\r\n\r\nnot gzip"),
			want: join(reqOK("GET", "/"), []string{"<H 200 GET", `<R 8 "not gzip"`, "<|"})},
		{name: "gzip bomb bounded", cfg: cfgLimit(func(c *Config) { c.MaxBodyInspect = 1024 }), conv: cs(">", get,
			"<", fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n\r\n%s", len(bomb), bomb)),
			want: join(reqOK("GET", "/"), []string{"<H 200 GET", fmt.Sprintf("<R %d %q trunc", len(bomb), strings.Repeat("A", 256)), "<|"})},
		{name: "gzip body cut by the inspection limit", conv: cs(">", get,
			"<", fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n\r\n%s", len(numbersGz), numbersGz)),
			want: join(reqOK("GET", "/"), []string{"<H 200 GET", fmt.Sprintf("<R 64 %q trunc", numbersPrefix), "<|"})},
		{name: "body truncated", conv: cs(">", "POST / HTTP/1.1\r\nContent-Length: 100\r\n\r\n"+strings.Repeat("x", 100)+get),
			want: join([]string{">H POST /", fmt.Sprintf(">R 64 %q trunc", strings.Repeat("x", 64)), ">|"}, reqOK("GET", "/"))},
		{name: "chunked body exactly at the limit", conv: cs(">", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n40\r\n"+strings.Repeat("y", 64)+"\r\n0\r\n\r\n"),
			want: []string{">H POST /", fmt.Sprintf(">R 64 %q", strings.Repeat("y", 64)), ">|"}},
		{name: "chunked body over the limit", conv: cs(">", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n28\r\n"+strings.Repeat("y", 40)+"\r\n28\r\n"+strings.Repeat("z", 40)+"\r\n0\r\n\r\n"),
			want: []string{">H POST /", fmt.Sprintf(">R 64 %q trunc", strings.Repeat("y", 40)+strings.Repeat("z", 24)), ">|"}},
		{name: "chunked body over the limit at a chunk boundary", conv: cs(">", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n40\r\n"+strings.Repeat("y", 64)+"\r\n1\r\nz\r\n0\r\n\r\n"),
			want: []string{">H POST /", fmt.Sprintf(">R 64 %q trunc", strings.Repeat("y", 64)), ">|"}},
		{name: "multipart form", cfg: cfgLimit(func(c *Config) { c.MaxBodyInspect = 1024 }), conv: cs(">",
			fmt.Sprintf("POST /up HTTP/1.1\r\nContent-Type: multipart/form-data; boundary=XyZ\r\nContent-Length: %d\r\n\r\n%s", len(multipart), multipart)),
			want: []string{">H POST /up", fmt.Sprintf(">R %d %q", len(multipart), multipart), ">|"}},
		{name: "websocket upgrade", conv: cs(
			">", "GET /ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
			"<", "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n\x81\x05hello",
			">", "\x81\x85garbage\r\nnot http\r\n"),
			want: join(reqOK("GET", "/ws"), []string{"<H 101 GET", `<R 0 ""`, "<|"})},
		{name: "upgrade refused", conv: cs(
			">", "GET /ws HTTP/1.1\r\nUpgrade: websocket\r\n\r\nGET /next HTTP/1.1\r\n\r\n",
			"<", "HTTP/1.1 400 Bad\r\nContent-Length: 0\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"),
			want: join(reqOK("GET", "/ws"), reqOK("GET", "/next"),
				[]string{"<H 400 GET", `<R 0 ""`, "<|", "<H 200 GET", `<R 0 ""`, "<|"})},
		{name: "client speaks the new protocol early", conv: cs(
			">", "GET /ws HTTP/1.1\r\nUpgrade: websocket\r\n\r\n\x81\x05hello\r\n",
			"<", "HTTP/1.1 101 Switching Protocols\r\n\r\n"),
			want: join(reqOK("GET", "/ws"), []string{"<H 101 GET", `<R 0 ""`, "<|"})},
		{name: "connect tunnel", conv: cs(
			">", "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n",
			"<", "HTTP/1.1 200 Connection established\r\n\r\n",
			">", "\x16\x03\x01\x00\x05hello",
			"<", "\x16\x03\x03\x00\x02hi"),
			want: join(reqOK("CONNECT", "example.com:443"), []string{"<H 200 CONNECT", `<R 0 ""`, "<|"})},
		{name: "pipeline overflow", cfg: cfgLimit(func(c *Config) { c.MaxPipelined = 2 }), conv: cs(
			">", "GET /1 HTTP/1.1\r\n\r\nHEAD /2 HTTP/1.1\r\n\r\nGET /3 HTTP/1.1\r\n\r\nGET /4 HTTP/1.1\r\n\r\n",
			"<", strings.Repeat("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", 4)),
			want: join(reqOK("GET", "/1"), reqOK("HEAD", "/2"), []string{">! http.pipeline_overflow"}, reqOK("GET", "/3"), reqOK("GET", "/4"),
				[]string{"<H 200 GET", `<R 0 ""`, "<|", "<H 200 HEAD", `<R 0 ""`, "<|", "<H 200 ", `<R 0 ""`, "<|", "<H 200 ", `<R 0 ""`, "<|"})},
		{name: "response without request", conv: cs("<", "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx"),
			want: []string{"<H 200 ", `<R 1 "x"`, "<|"}},
		{name: "end inside a body", conv: cs(">", "POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc"),
			want: []string{">H POST /", `>R 3 "abc" trunc`}},
		{name: "end inside headers", conv: cs(">", "GET / HTTP/1.1\r\nHost: h\r\n"),
			want: nil},
	}
}

func TestTable(t *testing.T) {
	for _, tc := range cases() {
		t.Run(tc.name, func(t *testing.T) {
			got := summary(playWhole(t, tc.config(), tc.conv))
			if !slices.Equal(got, tc.want) {
				t.Errorf("events:\n got %q\nwant %q", got, tc.want)
			}
		})
	}
}
