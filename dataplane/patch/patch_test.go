package patch

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/patchgate/patchgate/dataplane"
	"github.com/patchgate/patchgate/dataplane/analyzer"
)

// A tiny protocol registered only for these tests, so the loader is tested
// without depending on any real analyzer.
type testEvent struct {
	Path   string            `expr:"path"`
	Size   int               `expr:"size"`
	Header map[string]string `expr:"header"`
}

func (*testEvent) EventName() string { return "ptest.message" }
func (e *testEvent) Has(k string) bool {
	_, ok := e.Header[strings.TrimPrefix(k, "header:")]
	return ok
}

func init() {
	analyzer.Register(analyzer.Spec{
		Name: "ptest", Transport: analyzer.TCP, Ports: []uint16{9},
		Detect: func(analyzer.Probe) analyzer.Confidence { return analyzer.No },
		New:    func() analyzer.Analyzer { return nil },
		Events: []analyzer.EventSpec{{Name: "ptest.message", Schema: testEvent{}, Prefilter: []string{"header:*"}}},
	})
}

const good = `id: CVE-2099-1234
title: test patch
severity: high
category: dos
protocol: ptest
event: ptest.message
prefilter: [header:x-test]
when: |
  size > 10 &&
  path contains ".."
action: reset
tests:
  - name: exploit
    match: true
    to_server: |
      hello
  - name: benign
    match: false
    to_server_hex: "68 65 6c 6c 6f"
`

func TestParseGood(t *testing.T) {
	p, err := Parse("good.yaml", []byte(good))
	if err != nil {
		t.Fatal(err)
	}
	if p.SID != 2099001234 || p.CVE[0] != "CVE-2099-1234" || p.Action != ActionReset || p.Mode != Enforce {
		t.Fatalf("parsed %+v", p)
	}
	if string(p.Tests[0].Steps[0].Data) != "hello\r\n" {
		t.Fatalf("crlf conversion: %q", p.Tests[0].Steps[0].Data)
	}
	if string(p.Tests[1].Steps[0].Data) != "hello" || p.Tests[1].Steps[0].Dir != dataplane.ToServer {
		t.Fatalf("hex step: %+v", p.Tests[1].Steps[0])
	}
	prog, err := Compile(7, []*Patch{p})
	if err != nil {
		t.Fatal(err)
	}
	var r Runner
	var hits []string
	ev := &testEvent{Path: "/a/../b", Size: 11, Header: map[string]string{"x-test": "1"}}
	r.Eval(prog, ev, func(c *Compiled) { hits = append(hits, c.ID) })
	if len(hits) != 1 {
		t.Fatalf("predicate did not match: %v", hits)
	}
	// The prefilter skips the predicate when the header is absent.
	hits = nil
	ev.Header = nil
	r.Eval(prog, ev, func(c *Compiled) { hits = append(hits, c.ID) })
	if len(hits) != 0 || r.Skipped != 1 {
		t.Fatalf("prefilter did not skip: hits %v skipped %d", hits, r.Skipped)
	}
}

// TestErrorsNameFileLineField checks that every kind of mistake is reported
// with the file, the line and the field.
func TestErrorsNameFileLineField(t *testing.T) {
	cases := []struct {
		name, edit, want string
	}{
		{"unknown field", "title: test patch\ncolour: red", "bad.yaml:3: colour: unknown field"},
		{"bad severity", "severity: high", ""},
		{"severity value", "severity: extreme", `bad.yaml:3: severity: "extreme" is not one of low, medium, high, critical`},
		{"bad action", "action: reset", ""},
		{"action value", "action: explode", `bad.yaml:11: action: "explode" is not one of alert, drop, reset`},
		{"yaml syntax", "title: test patch\n  bad: [", "bad.yaml:3: YAML:"},
		{"unknown name in predicate", "  path contains \"..\"", ""},
	}
	for _, tc := range cases {
		if tc.want == "" {
			continue
		}
		t.Run(tc.name, func(t *testing.T) {
			old := strings.SplitN(tc.edit, ":", 2)[0] + ":"
			doc := replaceLine(good, old, tc.edit)
			_, err := Parse("bad.yaml", []byte(doc))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want it to contain %q", err, tc.want)
			}
		})
	}
	// Predicate errors are found at compile time and located in the file.
	doc := strings.Replace(good, `path contains ".."`, `pth contains ".."`, 1)
	p, err := Parse("bad.yaml", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	_, err = Compile(1, []*Patch{p})
	if err == nil || !strings.Contains(err.Error(), "bad.yaml:10: when: unknown name pth") {
		t.Fatalf("unknown field error: %v", err)
	}
	doc = strings.Replace(good, `size > 10`, `size > "10"`, 1)
	p, _ = Parse("bad.yaml", []byte(doc))
	if _, err = Compile(1, []*Patch{p}); err == nil || !strings.Contains(err.Error(), "bad.yaml:9: when: invalid operation") {
		t.Fatalf("type error: %v", err)
	}
	doc = strings.Replace(good, "event: ptest.message", "event: ptest.nothing", 1)
	p, _ = Parse("bad.yaml", []byte(doc))
	if _, err = Compile(1, []*Patch{p}); err == nil || !strings.Contains(err.Error(), `event: unknown event "ptest.nothing"`) {
		t.Fatalf("unknown event: %v", err)
	}
	doc = strings.Replace(good, "[header:x-test]", "[cookie:x]", 1)
	p, _ = Parse("bad.yaml", []byte(doc))
	if _, err = Compile(1, []*Patch{p}); err == nil || !strings.Contains(err.Error(), `prefilter`) {
		t.Fatalf("unknown prefilter key: %v", err)
	}
}

func replaceLine(doc, prefix, with string) string {
	lines := strings.Split(doc, "\n")
	for i, l := range lines {
		if strings.HasPrefix(l, prefix) {
			lines[i] = with
			break
		}
	}
	return strings.Join(lines, "\n")
}

func TestMissingFieldsAndTests(t *testing.T) {
	_, err := Parse("m.yaml", []byte("id: X-1\ntitle: t\n"))
	if err == nil {
		t.Fatal("incomplete patch accepted")
	}
	for _, want := range []string{"m.yaml:1: severity: required", "m.yaml:1: when: required", "m.yaml:1: action: required", "m.yaml:1: sid: required when id is not a CVE id", "m.yaml:1: tests:"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
}

func TestLoadDirReportsEveryFileAndDuplicates(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("a.yaml", good)
	write("b.yaml", good) // duplicate id
	write("c.yaml", "id: [")
	write("notes.txt", "ignored")
	_, err := LoadDir(dir)
	if err == nil {
		t.Fatal("problems not reported")
	}
	for _, want := range []string{"c.yaml:1: YAML", `duplicate id "CVE-2099-1234"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	if _, err := LoadDir(filepath.Join(dir, "missing")); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Fatalf("missing dir: %v", err)
	}
}

func TestURLDecode(t *testing.T) {
	for in, want := range map[string]string{
		"%2e%2E/":      "../",
		"%u002e%u002E": "..",
		"100%":         "100%",
		"%zz%4":        "%zz%4",
		"a+b":          "a+b",
		"%%32%65":      "%2e",
	} {
		if got := URLDecode(in); got != want {
			t.Errorf("URLDecode(%q) = %q, want %q", in, got, want)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(good))
	f.Add([]byte("id: x\ntests: [{}]"))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := Parse("fuzz.yaml", b)
		if err != nil {
			return
		}
		Compile(1, []*Patch{p})
	})
}

func BenchmarkEval(b *testing.B) {
	p, _ := Parse("good.yaml", []byte(good))
	prog, _ := Compile(1, []*Patch{p})
	ev := &testEvent{Path: "/a/b/c", Size: 100, Header: map[string]string{"x-test": "1"}}
	var r Runner
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		r.Eval(prog, ev, func(*Compiled) {})
	}
}
