package patch

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/patchgate/patchgate/dataplane"
)

// MaxFileSize bounds a patch file; a real patch is a few KiB, so anything larger
// is a mistake (or an attempt to exhaust the loader).
const MaxFileSize = 1 << 20

var (
	cveRe = regexp.MustCompile(`^CVE-(\d{4})-(\d{4,7})$`)
	idRe  = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)
)

// LoadDir loads every *.yaml / *.yml file below dir (recursively, sorted by
// path). It returns all problems found, joined, each naming file, line and field.
func LoadDir(dir string) ([]*Patch, error) {
	st, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("patch: %w", err)
	}
	if !st.IsDir() {
		p, err := LoadFile(dir)
		if err != nil {
			return nil, err
		}
		return []*Patch{p}, nil
	}
	var files []string
	err = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		if ext := filepath.Ext(path); ext == ".yaml" || ext == ".yml" {
			files = append(files, path)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("patch: %w", err)
	}
	sort.Strings(files)
	if len(files) == 0 {
		return nil, fmt.Errorf("patch: %s: no patch files (*.yaml)", dir)
	}
	var (
		out  []*Patch
		errs []error
	)
	for _, f := range files {
		p, err := LoadFile(f)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, p)
	}
	if err := CheckUnique(out); err != nil {
		errs = append(errs, err)
	}
	return out, errors.Join(errs...)
}

// CheckUnique reports duplicate ids or signature ids in a set of patches.
func CheckUnique(ps []*Patch) error {
	var errs []error
	ids := map[string]*Patch{}
	sids := map[int]*Patch{}
	for _, p := range ps {
		if o, dup := ids[p.ID]; dup {
			errs = append(errs, &Error{File: p.File, Line: p.Line, Field: "id",
				Msg: fmt.Sprintf("duplicate id %q (also in %s)", p.ID, o.File)})
		}
		ids[p.ID] = p
		if o, dup := sids[p.SID]; dup {
			errs = append(errs, &Error{File: p.File, Line: p.Line, Field: "sid",
				Msg: fmt.Sprintf("duplicate signature id %d (also in %s)", p.SID, o.File)})
		}
		sids[p.SID] = p
	}
	return errors.Join(errs...)
}

// LoadFile reads and parses one patch file.
func LoadFile(path string) (*Patch, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("patch: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("patch: %s: %w", path, err)
	}
	if len(data) > MaxFileSize {
		return nil, &Error{File: path, Msg: fmt.Sprintf("file larger than %d bytes", MaxFileSize)}
	}
	return Parse(path, data)
}

// Parse parses one patch document. name is used in error messages.
// Parse checks structure and values; Compile checks the predicate.
func Parse(name string, data []byte) (*Patch, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, yamlError(name, err)
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 {
		return nil, &Error{File: name, Msg: "empty patch file"}
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return nil, &Error{File: name, Line: root.Line, Msg: "a patch must be a YAML mapping"}
	}
	p := &Patch{File: name, Line: root.Line, lines: map[string]int{}}
	ps := &parser{file: name}
	seen := map[string]bool{}
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		key := k.Value
		if seen[key] {
			ps.fail(k, key, "duplicate field")
			continue
		}
		seen[key] = true
		p.lines[key] = k.Line
		switch key {
		case "id":
			p.ID = ps.str(v, key)
			p.Line = k.Line
		case "title":
			p.Title = ps.str(v, key)
		case "severity":
			p.Severity = ps.oneOf(v, key, Severities)
		case "category":
			p.Category = ps.str(v, key)
		case "references":
			p.References = ps.strs(v, key)
		case "cve":
			p.CVE = ps.strs(v, key)
			for _, c := range p.CVE {
				if !cveRe.MatchString(c) {
					ps.fail(v, key, fmt.Sprintf("%q is not a CVE id (CVE-YYYY-NNNN)", c))
				}
			}
		case "sid":
			p.SID = ps.int(v, key, 1, 1<<31-1)
		case "protocol":
			p.Protocol = ps.str(v, key)
		case "event":
			p.Event = ps.str(v, key)
		case "prefilter":
			p.Prefilter = ps.strs(v, key)
			for i, k := range p.Prefilter {
				p.Prefilter[i] = strings.ToLower(k)
			}
		case "when":
			p.When = ps.str(v, key)
			p.whenLine = v.Line
			p.whenBlock = v.Style&(yaml.LiteralStyle|yaml.FoldedStyle) != 0
		case "action":
			switch ps.oneOf(v, key, actionNames) {
			case "alert":
				p.Action = ActionAlert
			case "drop":
				p.Action = ActionDrop
			case "reset":
				p.Action = ActionReset
			}
		case "mode":
			if ps.oneOf(v, key, []string{"enforce", "detect"}) == "detect" {
				p.Mode = Detect
			}
		case "description":
			p.Description = ps.str(v, key)
		case "tests":
			p.Tests = ps.tests(v)
		default:
			ps.fail(k, key, "unknown field")
		}
	}
	for _, req := range []struct {
		field string
		val   string
	}{{"id", p.ID}, {"title", p.Title}, {"severity", p.Severity}, {"category", p.Category},
		{"protocol", p.Protocol}, {"event", p.Event}, {"when", p.When}} {
		if !seen[req.field] {
			ps.errs = append(ps.errs, &Error{File: name, Line: root.Line, Field: req.field, Msg: "required field missing"})
		}
	}
	if !seen["action"] {
		ps.errs = append(ps.errs, &Error{File: name, Line: root.Line, Field: "action", Msg: "required field missing (drop, reset or alert)"})
	}
	if p.ID != "" && !idRe.MatchString(p.ID) {
		ps.errs = append(ps.errs, &Error{File: name, Line: p.Line, Field: "id", Msg: fmt.Sprintf("%q is not a valid id (letters, digits, . _ -; at most 64)", p.ID)})
	}
	if m := cveRe.FindStringSubmatch(p.ID); m != nil {
		if len(p.CVE) == 0 {
			p.CVE = []string{p.ID}
		}
		if p.SID == 0 {
			year, _ := strconv.Atoi(m[1])
			num, _ := strconv.Atoi(m[2])
			if num < 1000000 && year < 2148 {
				p.SID = year*1000000 + num
			}
		}
	}
	if p.SID == 0 && p.ID != "" {
		ps.errs = append(ps.errs, &Error{File: name, Line: p.Line, Field: "sid", Msg: "required when id is not a CVE id"})
	}
	if len(p.Tests) == 0 && seen["id"] {
		ps.errs = append(ps.errs, &Error{File: name, Line: p.Line, Field: "tests", Msg: "a patch must prove itself: add tests that match and tests that must not"})
	}
	if err := errors.Join(ps.errs...); err != nil {
		return nil, err
	}
	return p, nil
}

var yamlLineRe = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

func yamlError(file string, err error) error {
	msg := err.Error()
	if m := yamlLineRe.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		return &Error{File: file, Line: line, Msg: "YAML: " + m[2]}
	}
	return &Error{File: file, Msg: "YAML: " + strings.TrimPrefix(msg, "yaml: ")}
}

type parser struct {
	file string
	errs []error
}

func (ps *parser) fail(n *yaml.Node, field, msg string) {
	ps.errs = append(ps.errs, &Error{File: ps.file, Line: n.Line, Field: field, Msg: msg})
}

func (ps *parser) str(n *yaml.Node, field string) string {
	if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		ps.fail(n, field, "must be a string")
		return ""
	}
	return n.Value
}

func (ps *parser) strs(n *yaml.Node, field string) []string {
	if n.Kind == yaml.ScalarNode && n.Tag != "!!null" {
		return []string{n.Value}
	}
	if n.Kind != yaml.SequenceNode {
		ps.fail(n, field, "must be a list of strings")
		return nil
	}
	out := make([]string, 0, len(n.Content))
	for _, c := range n.Content {
		if c.Kind != yaml.ScalarNode {
			ps.fail(c, field, "must be a list of strings")
			continue
		}
		out = append(out, c.Value)
	}
	return out
}

func (ps *parser) oneOf(n *yaml.Node, field string, allowed []string) string {
	s := ps.str(n, field)
	for _, a := range allowed {
		if s == a {
			return s
		}
	}
	if s != "" || n.Kind == yaml.ScalarNode {
		ps.fail(n, field, fmt.Sprintf("%q is not one of %s", s, strings.Join(allowed, ", ")))
	}
	return ""
}

func (ps *parser) int(n *yaml.Node, field string, lo, hi int) int {
	s := ps.str(n, field)
	v, err := strconv.Atoi(s)
	if err != nil || v < lo || v > hi {
		ps.fail(n, field, fmt.Sprintf("%q is not an integer in [%d, %d]", s, lo, hi))
		return 0
	}
	return v
}

func (ps *parser) bool(n *yaml.Node, field string) bool {
	s := ps.str(n, field)
	switch s {
	case "true", "yes", "on":
		return true
	case "false", "no", "off":
		return false
	}
	ps.fail(n, field, fmt.Sprintf("%q is not a boolean (true/false)", s))
	return false
}

func (ps *parser) tests(n *yaml.Node) []Test {
	if n.Kind != yaml.SequenceNode {
		ps.fail(n, "tests", "must be a list of tests")
		return nil
	}
	var out []Test
	for i, tn := range n.Content {
		field := fmt.Sprintf("tests[%d]", i)
		if tn.Kind != yaml.MappingNode {
			ps.fail(tn, field, "must be a mapping")
			continue
		}
		t := Test{Line: tn.Line, Transport: "tcp", Name: field}
		crlf := true
		var (
			matchSet bool
			stepsN   *yaml.Node
			direct   []*yaml.Node // to_server/to_client keys and values, in order
		)
		for j := 0; j+1 < len(tn.Content); j += 2 {
			k, v := tn.Content[j], tn.Content[j+1]
			f := field + "." + k.Value
			switch k.Value {
			case "name":
				t.Name = ps.str(v, f)
			case "match":
				t.Match = ps.bool(v, f)
				matchSet = true
			case "crlf":
				crlf = ps.bool(v, f)
			case "server_port":
				t.ServerPort = uint16(ps.int(v, f, 1, 65535))
			case "transport":
				t.Transport = ps.oneOf(v, f, []string{"tcp", "udp"})
			case "to_server", "to_client", "to_server_hex", "to_client_hex":
				direct = append(direct, k, v)
			case "steps":
				stepsN = v
			default:
				ps.fail(k, f, "unknown field")
			}
		}
		if !matchSet {
			ps.fail(tn, field+".match", "required (true: must match, false: must not)")
		}
		if stepsN != nil && len(direct) > 0 {
			ps.fail(tn, field, "use either steps or to_server/to_client, not both")
		}
		if stepsN != nil {
			if stepsN.Kind != yaml.SequenceNode {
				ps.fail(stepsN, field+".steps", "must be a list")
			} else {
				for si, sn := range stepsN.Content {
					sf := fmt.Sprintf("%s.steps[%d]", field, si)
					if sn.Kind != yaml.MappingNode || len(sn.Content) != 2 {
						ps.fail(sn, sf, "must be a mapping with one of to_server, to_client, to_server_hex, to_client_hex")
						continue
					}
					if st, ok := ps.step(sn.Content[0], sn.Content[1], sf, crlf); ok {
						t.Steps = append(t.Steps, st)
					}
				}
			}
		} else {
			// to_server is always sent before to_client.
			for _, want := range []string{"to_server", "to_client"} {
				for j := 0; j+1 < len(direct); j += 2 {
					if strings.TrimSuffix(direct[j].Value, "_hex") == want {
						if st, ok := ps.step(direct[j], direct[j+1], field, crlf); ok {
							t.Steps = append(t.Steps, st)
						}
					}
				}
			}
		}
		if len(t.Steps) == 0 {
			ps.fail(tn, field, "has no traffic (to_server, to_client or steps)")
		}
		out = append(out, t)
	}
	return out
}

func (ps *parser) step(k, v *yaml.Node, field string, crlf bool) (Step, bool) {
	f := field + "." + k.Value
	var st Step
	switch k.Value {
	case "to_server", "to_server_hex":
		st.Dir = dataplane.ToServer
	case "to_client", "to_client_hex":
		st.Dir = dataplane.ToClient
	default:
		ps.fail(k, f, "unknown field (want to_server, to_client, to_server_hex or to_client_hex)")
		return st, false
	}
	s := ps.str(v, f)
	if strings.HasSuffix(k.Value, "_hex") {
		clean := strings.Map(func(r rune) rune {
			if r == ' ' || r == '\n' || r == '\r' || r == '\t' {
				return -1
			}
			return r
		}, s)
		b, err := hex.DecodeString(clean)
		if err != nil {
			ps.fail(v, f, "bad hex: "+err.Error())
			return st, false
		}
		st.Data = b
	} else if crlf {
		st.Data = toCRLF(s)
	} else {
		st.Data = []byte(s)
	}
	if len(st.Data) == 0 {
		ps.fail(v, f, "empty")
		return st, false
	}
	return st, true
}

// toCRLF turns every LF not preceded by CR into CRLF.
func toCRLF(s string) []byte {
	out := make([]byte, 0, len(s)+16)
	for i := 0; i < len(s); i++ {
		if s[i] == '\n' && (i == 0 || s[i-1] != '\r') {
			out = append(out, '\r')
		}
		out = append(out, s[i])
	}
	return out
}
