package waf

import (
	"fmt"
	"path/filepath"
	"sort"
	"strings"

	"github.com/patchgate/patchgate/dataplane"
	"github.com/patchgate/patchgate/dataplane/patch"
)

// Request is one HTTP request of the comparison corpus, as raw bytes.
type Request struct {
	// Name identifies the request: "CVE-2014-6271/classic User-Agent payload"
	// for a patch test, "benign/3" for the benign mix.
	Name string `json:"name"`
	// CVE is the patch the request comes from ("" for the benign mix).
	CVE string `json:"cve,omitempty"`
	// Exploit is true for a patch test that must match (an exploit variant),
	// false for look-alikes and the benign mix.
	Exploit bool `json:"exploit"`
	// Raw is the request as sent on the wire (request line, headers, body).
	Raw []byte `json:"-"`
}

// Corpus returns every HTTP request of the HTTP patches in dir (the shipped
// catalog: patches/http): each patch test that sends exactly one request to
// the server, exploits (match: true) and look-alikes (match: false), sorted
// by patch id in file order. Tests with server answers or several requests
// are skipped (the shipped HTTP patches have none).
func Corpus(dir string) ([]Request, error) {
	ps, err := patch.LoadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("bench/waf: corpus: %w", err)
	}
	sort.SliceStable(ps, func(i, j int) bool { return ps[i].ID < ps[j].ID })
	var out []Request
	for _, p := range ps {
		if p.Protocol != "http" {
			continue
		}
		for _, t := range p.Tests {
			if len(t.Steps) != 1 || t.Steps[0].Dir != dataplane.ToServer {
				continue
			}
			out = append(out, Request{
				Name:    p.ID + "/" + t.Name,
				CVE:     p.ID,
				Exploit: t.Match,
				Raw:     append([]byte(nil), t.Steps[0].Data...),
			})
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("bench/waf: corpus: no HTTP patch tests in %s", dir)
	}
	return out, nil
}

// CatalogDir finds the shipped catalog's HTTP patches (patches/http) from
// the current directory or one of its parents, for tests and tools run
// anywhere inside the repository.
func CatalogDir() (string, error) {
	dir, err := filepath.Abs(".")
	if err != nil {
		return "", fmt.Errorf("bench/waf: catalog: %w", err)
	}
	for {
		cand := filepath.Join(dir, "patches", "http")
		if ok, _ := filepath.Glob(filepath.Join(cand, "*.yaml")); len(ok) > 0 {
			return cand, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("bench/waf: catalog: no patches/http above the current directory")
		}
		dir = parent
	}
}

// benignPaths, benignAgents and benignTypes vary the benign mix.
var (
	benignPaths = []string{
		"/", "/index.html", "/products/list?category=books&page=2", "/api/v1/items/42",
		"/static/app.3f9a1c.js", "/search?q=network+gateway&lang=en", "/images/logo.png",
		"/docs/guide/install.html", "/account/orders?sort=date&dir=desc", "/feed.xml",
	}
	benignAgents = []string{
		"Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36",
		"curl/8.5.0",
		"okhttp/4.12.0",
	}
	benignForms = []string{
		"user=alice&remember=on",
		"q=quarterly+report&from=2026-01-01&to=2026-03-31",
		"item=book&qty=2&coupon=SPRING",
	}
	benignJSON = []string{
		`{"name":"alice","email":"alice@example.test","tags":["a","b"]}`,
		`{"order":{"id":42,"items":[{"sku":"X-1","qty":1}]},"note":"leave at door"}`,
	}
)

// Benign returns n legitimate requests: browser and API GETs with cookies and
// query strings, urlencoded form posts and JSON posts, in a fixed,
// deterministic order (the same n gives the same requests).
func Benign(n int) []Request {
	out := make([]Request, 0, n)
	for i := 0; i < n; i++ {
		var b strings.Builder
		agent := benignAgents[i%len(benignAgents)]
		switch i % 5 {
		case 3:
			body := benignForms[i%len(benignForms)]
			fmt.Fprintf(&b, "POST /account/login HTTP/1.1\r\nHost: shop.example.test\r\nUser-Agent: %s\r\n"+
				"Accept: text/html,application/xhtml+xml\r\nContent-Type: application/x-www-form-urlencoded\r\n"+
				"Cookie: session=4f9a2c1e8b7d%02d; theme=dark\r\nContent-Length: %d\r\n\r\n%s", agent, i%100, len(body), body)
		case 4:
			body := benignJSON[i%len(benignJSON)]
			fmt.Fprintf(&b, "POST /api/v1/orders HTTP/1.1\r\nHost: api.example.test\r\nUser-Agent: %s\r\n"+
				"Accept: application/json\r\nContent-Type: application/json\r\nAuthorization: Bearer eyJhbGciOiJIUzI1NiJ9.e30.c2lnbmF0dXJl\r\n"+
				"Content-Length: %d\r\n\r\n%s", agent, len(body), body)
		default:
			path := benignPaths[i%len(benignPaths)]
			fmt.Fprintf(&b, "GET %s HTTP/1.1\r\nHost: shop.example.test\r\nUser-Agent: %s\r\n"+
				"Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n"+
				"Accept-Language: en-US,en;q=0.5\r\nAccept-Encoding: gzip, deflate, br\r\n"+
				"Cookie: session=4f9a2c1e8b7d%02d; theme=dark\r\nConnection: keep-alive\r\n\r\n", path, agent, i%100)
		}
		out = append(out, Request{Name: fmt.Sprintf("benign/%d", i), Raw: []byte(b.String())})
	}
	return out
}
