package waf

import (
	"bufio"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestPercentiles(t *testing.T) {
	var s []float64
	for i := 1000; i >= 1; i-- {
		s = append(s, float64(i))
	}
	got := percentiles(s)
	want := Percentiles{P50: 500, P90: 900, P99: 990, P999: 999}
	if got != want {
		t.Fatalf("percentiles = %+v, want %+v", got, want)
	}
	if (percentiles(nil) != Percentiles{}) {
		t.Fatal("percentiles of nothing must be zero")
	}
}

func TestConfigValidate(t *testing.T) {
	good := DefaultConfig()
	good.Patches, good.Binary = "/p", "/b"
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	for field, mut := range map[string]func(*Config){
		"patches":     func(c *Config) { c.Patches = "rel" },
		"binary":      func(c *Config) { c.Binary = "" },
		"duration":    func(c *Config) { c.Duration = time.Millisecond },
		"connections": func(c *Config) { c.Connections = 0 },
		"threads":     func(c *Config) { c.Threads = 99 },
		"pings":       func(c *Config) { c.Pings = 0 },
		"unloaded":    func(c *Config) { c.UnloadedDuration = time.Millisecond },
		"nginx":       func(c *Config) { c.Nginx = []string{"apache"} },
	} {
		c := good
		mut(&c)
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), field) {
			t.Errorf("%s: Validate() = %v, want an error naming the field", field, err)
		}
	}
}

// TestBackend checks that the backend accepts what net/http refuses, reads
// bodies, keeps connections alive and counts each request once.
func TestBackend(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	be := serveBackend(ln)
	defer be.close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	reqs := "GET /icons/.%%32%65/etc/passwd HTTP/1.1\r\nHost: a\r\n\r\n" +
		"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello" +
		"GET / HTTP/1.1\r\nHost: a\r\nX-F: ()\r\n { :;}\r\n\r\n"
	if _, err := io.WriteString(c, reqs); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(c)
	for i := 0; i < 3; i++ {
		line, err := r.ReadString('\n')
		if err != nil || !strings.HasPrefix(line, "HTTP/1.1 200") {
			t.Fatalf("answer %d: %q, %v", i, line, err)
		}
		for line != "\r\n" {
			if line, err = r.ReadString('\n'); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := io.ReadFull(r, make([]byte, len(backendBody))); err != nil {
			t.Fatal(err)
		}
	}
	if n := be.received.Load(); n != 3 {
		t.Fatalf("backend counted %d requests, want 3", n)
	}
}

func TestCorpusAndRules(t *testing.T) {
	dir, err := CatalogDir()
	if err != nil {
		t.Fatal(err)
	}
	reqs, err := Corpus(dir)
	if err != nil {
		t.Fatal(err)
	}
	cves := map[string]bool{}
	for _, r := range reqs {
		cves[r.CVE] = true
		if !strings.Contains(CVERules, "tag:'"+r.CVE+"'") {
			t.Errorf("CVERules has no rule tagged %s", r.CVE)
		}
	}
	if len(cves) < 8 {
		t.Errorf("corpus covers %d CVEs, want every HTTP patch", len(cves))
	}
	if b := Benign(7); len(b) != 7 || string(b[3].Raw) != string(Benign(7)[3].Raw) {
		t.Error("Benign is not deterministic")
	}
}

func TestParseStatCPU(t *testing.T) {
	// utime 250 and stime 50 ticks; the command name holds ") (".
	stat := "4242 (nginx: a) (b) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 1 0 100 1000 10"
	got, err := parseStatCPU(stat)
	if err != nil || got != 3.0 {
		t.Fatalf("parseStatCPU = %v, %v; want 3 s", got, err)
	}
	if _, err := parseStatCPU("4242 (x) S 1"); err == nil {
		t.Fatal("short stat: no error")
	}
	if secs, err := treeCPU(os.Getpid()); err != nil || secs < 0 {
		t.Fatalf("treeCPU(self) = %v, %v", secs, err)
	}
}

// TestNginxModes checks the generated configurations: the proxy mode has
// ModSecurity off, the CVE mode loads CVERules without CRS, the CRS mode
// both, and every mode keeps the operator settings (keep-alive, no access
// log, audit log of relevant requests only).
func TestNginxModes(t *testing.T) {
	cfg := DefaultConfig()
	for _, mode := range []string{ModeProxy, ModeCVE, ModeCRS} {
		dir := t.TempDir()
		path, err := writeNginx(cfg, dir, mode)
		if err != nil {
			t.Fatal(err)
		}
		conf, _ := os.ReadFile(path)
		for _, want := range []string{"keepalive 64;", "access_log off;", "proxy_http_version 1.1;"} {
			if !strings.Contains(string(conf), want) {
				t.Errorf("%s: nginx.conf lacks %q", mode, want)
			}
		}
		if got := strings.Contains(string(conf), "modsecurity off;"); got != (mode == ModeProxy) {
			t.Errorf("%s: modsecurity off = %v", mode, got)
		}
		crs, _ := os.ReadFile(filepath.Join(dir, "modsecurity-crs.conf"))
		cve, _ := os.ReadFile(filepath.Join(dir, "modsecurity-cverules.conf"))
		if !strings.Contains(string(crs), cfg.CRSRules) || strings.Contains(string(cve), cfg.CRSRules) {
			t.Errorf("%s: CRS included in the wrong rule file", mode)
		}
		for _, f := range [][]byte{crs, cve} {
			if !strings.Contains(string(f), "cverules.conf") || !strings.Contains(string(f), "SecAuditEngine RelevantOnly") {
				t.Errorf("%s: rule file lacks the CVE rules or the audit setting", mode)
			}
		}
	}
	if _, err := writeNginx(cfg, t.TempDir(), "bogus"); err == nil {
		t.Error("unknown mode: no error")
	}
}
