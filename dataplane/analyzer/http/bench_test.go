package http

import (
	"testing"

	"github.com/patchgate/patchgate/dataplane"
	"github.com/patchgate/patchgate/dataplane/analyzer"
)

// discard is a Sink that drops everything.
type discard struct{}

func (discard) Event(analyzer.Event)                          {}
func (discard) Boundary(dataplane.Direction)                  {}
func (discard) Violation(dataplane.Direction, string, string) {}

// typicalGET is a browser-like request of about 400 bytes.
const typicalGET = "GET /products/list?category=books&page=2 HTTP/1.1\r\n" +
	"Host: shop.example.com\r\n" +
	"User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0\r\n" +
	"Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n" +
	"Accept-Language: en-US,en;q=0.5\r\n" +
	"Accept-Encoding: gzip, deflate, br\r\n" +
	"Connection: keep-alive\r\n" +
	"Cookie: session=4f9a2c1e8b7d; theme=dark\r\n" +
	"Upgrade-Insecure-Requests: 1\r\n\r\n"

// BenchmarkRequest parses a typical GET on a keep-alive connection (request
// and events, no response).
func BenchmarkRequest(b *testing.B) {
	a := New()
	data := []byte(typicalGET)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if err := a.Feed(dataplane.ToServer, data, discard{}); err != nil {
			b.Fatal(err)
		}
		a.pop() // keep the pipeline queue from filling
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/request")
}

// BenchmarkRequestSegmented feeds the same request in 16-byte segments.
func BenchmarkRequestSegmented(b *testing.B) {
	a := New()
	data := []byte(typicalGET)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		for p := data; len(p) > 0; {
			n := min(16, len(p))
			if err := a.Feed(dataplane.ToServer, p[:n], discard{}); err != nil {
				b.Fatal(err)
			}
			p = p[n:]
		}
		a.pop()
	}
}

// BenchmarkMarshalState measures a checkpoint taken inside a request body.
func BenchmarkMarshalState(b *testing.B) {
	a := New()
	a.Feed(dataplane.ToServer, []byte("POST /upload HTTP/1.1\r\nHost: h\r\nContent-Length: 100000\r\n\r\n"+string(make([]byte, 1000))), discard{})
	var buf []byte
	b.ReportAllocs()
	for b.Loop() {
		buf = a.MarshalState(buf[:0])
	}
	b.SetBytes(int64(len(buf)))
}
