package http

import (
	"os"
	"strings"
	"testing"

	"github.com/expr-lang/expr"
)

// readmePredicates returns the `when:` predicates of README.md keyed by the
// CVE named in the comment above them.
func readmePredicates(t *testing.T) map[string]string {
	t.Helper()
	b, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	cve := ""
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "# CVE-") {
			cve = strings.Fields(line)[1]
		}
		if w, ok := strings.CutPrefix(line, "when: "); ok && cve != "" {
			out[cve] = w
		}
	}
	return out
}

// TestReadmeExamples compiles every example predicate of the README against
// the event schema and checks it matches an exploit of its CVE and not a
// harmless request.
func TestReadmeExamples(t *testing.T) {
	preds := readmePredicates(t)
	tests := []struct {
		cve, attack, benign string
	}{
		{"CVE-2021-41773", "GET /cgi-bin/.%2e/.%2e/.%2e/.%2e/etc/passwd HTTP/1.1\r\n\r\n", "GET /icons/a.png HTTP/1.1\r\n\r\n"},
		{"CVE-2021-41773", "GET /cgi-bin/.%%32%65/.%%32%65/.%%32%65/.%%32%65/etc/passwd HTTP/1.1\r\n\r\n", "GET /a/%2e%2e/b HTTP/1.1\r\n\r\n"},
		{"CVE-2015-1635", "GET / HTTP/1.1\r\nRange: bytes=0-18446744073709551615\r\n\r\n", "GET / HTTP/1.1\r\nRange: bytes=0-1000\r\n\r\n"},
		{"CVE-2011-3192", "GET / HTTP/1.1\r\nRange: bytes=0-,5-0,5-1,5-2,5-3,5-4,5-5,5-6\r\n\r\n", "GET / HTTP/1.1\r\nRange: bytes=0-99,200-299\r\n\r\n"},
		{"CVE-2017-5638", "GET / HTTP/1.1\r\nContent-Type: %{(#_='multipart/form-data')}\r\n\r\n", "GET / HTTP/1.1\r\nContent-Type: text/plain\r\n\r\n"},
		{"CVE-2014-6271", "GET / HTTP/1.1\r\nUser-Agent: () { :; }; /bin/id\r\n\r\n", "GET / HTTP/1.1\r\nUser-Agent: curl/8\r\n\r\n"},
		{"CVE-2022-22965", "GET /?class.module.classLoader.resources.context.parent.pipeline.first.pattern=x HTTP/1.1\r\n\r\n", "GET /?class=1 HTTP/1.1\r\n\r\n"},
	}
	for _, tt := range tests {
		pred, ok := preds[tt.cve]
		if !ok {
			t.Errorf("README has no example for %s", tt.cve)
			continue
		}
		prog, err := expr.Compile(pred, expr.Env(Request{}), expr.AsBool())
		if err != nil {
			t.Errorf("%s: %q does not compile: %v", tt.cve, pred, err)
			continue
		}
		for _, c := range []struct {
			req  string
			want bool
		}{{tt.attack, true}, {tt.benign, false}} {
			reqs, _ := events(t, DefaultConfig(), cs(">", c.req))
			got, err := expr.Run(prog, reqs[len(reqs)-1])
			if err != nil || got != c.want {
				t.Errorf("%s on %q: got %v (%v), want %v", tt.cve, c.req, got, err, c.want)
			}
		}
	}
}
