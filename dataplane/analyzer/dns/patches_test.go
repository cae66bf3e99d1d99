package dns_test

import (
	"testing"

	"github.com/patchgate/patchgate/dataplane"
	"github.com/patchgate/patchgate/dataplane/analyzer"
	"github.com/patchgate/patchgate/dataplane/analyzer/dns"
	"github.com/patchgate/patchgate/dataplane/patch"
)

// patchDir holds the shipped DNS patches.
const patchDir = "../../../patches/dns"

// evalSink evaluates a compiled patch set on every event.
type evalSink struct {
	prog    *patch.Program
	runner  patch.Runner
	matched map[string]bool
}

func (s *evalSink) Event(ev analyzer.Event) {
	s.runner.Eval(s.prog, ev, func(c *patch.Compiled) { s.matched[c.ID] = true })
}
func (s *evalSink) Boundary(dataplane.Direction)                  {}
func (s *evalSink) Violation(dataplane.Direction, string, string) {}

// TestShippedPatches runs the test vectors of patches/dns through the analyzer
// directly (without TCP/IP framing): each patch must match exactly the tests
// marked match: true. This keeps the patches and the event schema in step.
func TestShippedPatches(t *testing.T) {
	patches, err := patch.LoadDir(patchDir)
	if err != nil {
		t.Fatal(err)
	}
	if len(patches) < 2 {
		t.Fatalf("found %d patches in %s", len(patches), patchDir)
	}
	prog, err := patch.Compile(1, patches)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range patches {
		for _, tc := range p.Tests {
			t.Run(p.ID+"/"+tc.Name, func(t *testing.T) {
				var a analyzer.Analyzer = dns.NewTCP()
				if tc.Transport == "udp" {
					a = dns.NewUDP()
				}
				s := &evalSink{prog: prog, matched: map[string]bool{}, runner: patch.Runner{}}
				for _, st := range tc.Steps {
					if err := a.Feed(st.Dir, st.Data, s); err != nil {
						t.Fatal(err)
					}
				}
				if s.runner.Errors != 0 {
					t.Errorf("%d predicate errors", s.runner.Errors)
				}
				if s.matched[p.ID] != tc.Match {
					t.Errorf("matched %v, want %v (line %d)", s.matched[p.ID], tc.Match, tc.Line)
				}
			})
		}
	}
}

// TestPredicatesOverEvents compiles predicates naming the documented fields of
// each event, as patch authors write them, and evaluates them on real events.
func TestPredicatesOverEvents(t *testing.T) {
	preds := []struct {
		event, when string
	}{
		{dns.EventResponse, `transport == "tcp" && qr && !tc && rcode == 0 && opcode == 0 && aa && ra && rd && !z && !ad && !cd &&
			qdcount == 1 && ancount == 1 && nscount == 0 && arcount == 1 && qname == "example.com" && qtype_name == "SIG" &&
			questions[0].class == 1 && len(rrs) == 2 && len(answers) == 1 && len(authority) == 0 && len(additional) == 1 &&
			rr_count == 2 && !rrs_truncated && sig_count == 1 && sig_max_rdlength == 18+2+500 && sig_max_alloc_size == 13+20+500 &&
			max_rdlength == 520 && max_name_length == 13 && max_name_jumps == 1 && trailing_bytes == 0 && !truncated &&
			!malformed && malformed_reason == "" && edns.present && edns.udp_size == 1232 && edns.do && len(edns.options) == 0 &&
			index == 0 && length > 500 && id == 77`},
		{dns.EventResponse, `any(answers, .sig.signer == "example.com" && .sig.signer_wire_length == 2 && .sig.signer_length == 13 &&
			.sig.signature_length == 500 && .sig.alloc_size == 533 && .sig.type_covered == 1 && .sig.algorithm == 8 &&
			.sig.labels == 2 && .sig.original_ttl == 3600 && .sig.key_tag == 12345 && .sig.expiration > .sig.inception)`},
		{dns.EventRR, `section == "answer" && name == "example.com" && type == 24 && type_name == "SIG" && class == 1 &&
			ttl == 60 && rdlength == 520 && offset == 29 && sig.alloc_size == 533 && transport == "tcp" && qr &&
			message_index == 0 && message_length > 500 && id == 77 && opcode == 0 && index == 0 && !malformed`},
	}
	var patches []*patch.Patch
	for i, p := range preds {
		patches = append(patches, &patch.Patch{ID: "T-" + string(rune('A'+i)), SID: i + 1, Protocol: "dns", Event: p.event,
			When: p.when, File: "test.yaml"})
	}
	prog, err := patch.Compile(1, patches)
	if err != nil {
		t.Fatal(err)
	}
	msg := []byte{0, 77, 0x85, 0x80, 0, 1, 0, 1, 0, 0, 0, 1,
		7, 'e', 'x', 'a', 'm', 'p', 'l', 'e', 3, 'c', 'o', 'm', 0, 0, 24, 0, 1,
		0xC0, 12, 0, 24, 0, 1, 0, 0, 0, 60, 0x02, 0x08, // SIG, rdlength 520
		0, 1, 8, 2, 0, 0, 0x0e, 0x10, 0x70, 0, 0, 0, 0x60, 0, 0, 0, 0x30, 0x39, 0xC0, 12}
	msg = append(msg, make([]byte, 500)...)
	msg = append(msg, 0, 0, 41, 0x04, 0xd0, 0, 0, 0x80, 0, 0, 0)
	stream := append([]byte{byte(len(msg) >> 8), byte(len(msg))}, msg...)
	s := &evalSink{prog: prog, matched: map[string]bool{}}
	if err := dns.NewTCP().Feed(dataplane.ToClient, stream, s); err != nil {
		t.Fatal(err)
	}
	for _, p := range patches {
		if !s.matched[p.ID] {
			t.Errorf("%s did not match: %s", p.Event, p.When)
		}
	}
	if s.runner.Errors != 0 {
		t.Errorf("%d evaluation errors", s.runner.Errors)
	}
}
