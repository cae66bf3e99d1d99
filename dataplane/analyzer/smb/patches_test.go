package smb

import (
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/vm"
	"gopkg.in/yaml.v3"

	"github.com/patchgate/patchgate/dataplane"
	"github.com/patchgate/patchgate/dataplane/analyzer"
)

// patchFile is the part of a patch file this test needs.
type patchFile struct {
	ID       string `yaml:"id"`
	Protocol string `yaml:"protocol"`
	Event    string `yaml:"event"`
	When     string `yaml:"when"`
	Tests    []struct {
		Name        string              `yaml:"name"`
		Match       bool                `yaml:"match"`
		ToServerHex string              `yaml:"to_server_hex"`
		ToClientHex string              `yaml:"to_client_hex"`
		Steps       []map[string]string `yaml:"steps"`
	} `yaml:"tests"`
}

// predicateSink evaluates one patch's predicate on the events it subscribes to.
type predicateSink struct {
	t       *testing.T
	event   string
	prog    *vm.Program
	matched bool
	seen    int
}

func (s *predicateSink) Event(ev analyzer.Event) {
	if ev.EventName() != s.event {
		return
	}
	s.seen++
	out, err := expr.Run(s.prog, ev)
	if err != nil {
		s.t.Fatalf("evaluating predicate: %v", err)
	}
	if out.(bool) {
		s.matched = true
	}
}
func (s *predicateSink) Boundary(dataplane.Direction)                  {}
func (s *predicateSink) Violation(dataplane.Direction, string, string) {}

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestShippedPatches runs the test vectors of the SMB patches in
// patches/smb through this analyzer and the patch predicates, so the events
// stay able to express them whatever the state of the engine.
func TestShippedPatches(t *testing.T) {
	files, _ := filepath.Glob("../../../patches/smb/*.yaml")
	if len(files) == 0 {
		t.Skip("no patches/smb in this tree")
	}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var p patchFile
		if err := yaml.Unmarshal(raw, &p); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		spec, owner, ok := analyzer.LookupEvent(p.Event)
		if !ok || owner != Name || p.Protocol != Name {
			t.Fatalf("%s: event %q is not an smb event", f, p.Event)
		}
		prog, err := expr.Compile(p.When, expr.Env(spec.Schema), expr.AsBool())
		if err != nil {
			t.Fatalf("%s: when: %v", f, err)
		}
		matches, benign := 0, 0
		for _, tc := range p.Tests {
			t.Run(p.ID+"/"+tc.Name, func(t *testing.T) {
				var steps []feed
				if tc.ToServerHex != "" {
					steps = append(steps, toServer(unhex(t, tc.ToServerHex)))
				}
				if tc.ToClientHex != "" {
					steps = append(steps, toClient(unhex(t, tc.ToClientHex)))
				}
				for _, st := range tc.Steps {
					for k, v := range st {
						switch k {
						case "to_server_hex":
							steps = append(steps, toServer(unhex(t, v)))
						case "to_client_hex":
							steps = append(steps, toClient(unhex(t, v)))
						default:
							t.Fatalf("step field %s", k)
						}
					}
				}
				for _, chunk := range []int{0, 1460, 7} {
					s := &predicateSink{t: t, event: p.Event, prog: prog}
					a := New()
					for _, st := range steps {
						for b := st.data; len(b) > 0; {
							n := len(b)
							if chunk > 0 && n > chunk {
								n = chunk
							}
							if err := a.Feed(st.dir, b[:n], s); err != nil {
								t.Fatal(err)
							}
							b = b[n:]
						}
					}
					a.End(dataplane.ToServer, s)
					a.End(dataplane.ToClient, s)
					if !tc.Match && s.seen == 0 && chunk == 0 {
						t.Logf("look-alike produces no %s event", p.Event)
					}
					if s.matched != tc.Match {
						t.Fatalf("chunk %d: matched = %v, want %v", chunk, s.matched, tc.Match)
					}
				}
			})
			if tc.Match {
				matches++
			} else {
				benign++
			}
		}
		if matches < 3 || benign < 3 {
			t.Errorf("%s: %d exploit and %d benign tests, want at least 3 of each", f, matches, benign)
		}
	}
}
