package dns

import (
	"reflect"
	"strings"
	"testing"

	"github.com/patchgate/patchgate/dataplane"
	"github.com/patchgate/patchgate/dataplane/analyzer"
)

func TestQuery(t *testing.T) {
	msg := cat(hdr(0xBEEF, flagsQuery, 1, 0, 0, 0), question(wname("WWW.Example.com"), TypeA, 1))
	s := parseUDP(dataplane.ToServer, msg)
	if len(s.msgs) != 1 || len(s.recs) != 0 || len(s.violations) != 0 || s.boundaries != 1 {
		t.Fatalf("got %v", s.log)
	}
	m := s.msgs[0]
	if m.name != EventQuery || m.Transport != "udp" || m.ID != 0xBEEF || m.QR || !m.RD || m.Opcode != 0 {
		t.Errorf("header: %+v", m)
	}
	if m.QName != "www.example.com" || m.QType != TypeA || m.QTypeName != "A" || m.QClass != 1 || m.QDCount != 1 {
		t.Errorf("question: %q %d %q %d", m.QName, m.QType, m.QTypeName, m.QClass)
	}
	if m.Length != len(msg) || m.Malformed || m.Truncated || m.TrailingBytes != 0 || m.MaxNameLength != 17 {
		t.Errorf("stats: %+v", m)
	}
}

// fullResponse is a response using every typed record, names compressed
// against the question ("www.example.com" at 12, "example.com" at 16).
func fullResponse() []byte {
	return cat(
		hdr(7, flagsResponse|0x0400, 1, 5, 2, 1),
		question(wname("www.example.com"), TypeA, 1),
		rr(ptr(12), TypeCNAME, 1, 300, cat([]byte{3, 'w', 'e', 'b'}, ptr(16))),
		rr(ptr(12), TypeA, 1, 300, []byte{192, 0, 2, 1}),
		rr(ptr(12), TypeAAAA, 1, 300, cat([]byte{0x20, 0x01, 0x0d, 0xb8}, make([]byte, 11), []byte{1})),
		rr(ptr(16), TypeMX, 1, 300, cat(u16(10), []byte{4, 'm', 'a', 'i', 'l'}, ptr(16))),
		rr(ptr(16), TypeTXT, 1, 300, cat([]byte{11}, []byte("v=spf1 -all"), []byte{1, 'X'})),
		rr(ptr(16), TypeNS, 1, 86400, cat([]byte{3, 'n', 's', '1'}, ptr(16))),
		rr(ptr(16), TypeSOA, 1, 3600, cat([]byte{3, 'n', 's', '1'}, ptr(16), []byte{10}, []byte("hostmaster"), ptr(16),
			u32(2024010101), u32(7200), u32(900), u32(1209600), u32(300))),
		rr(wname("."), TypeOPT, 1232, 0x01008000, cat(u16(10), u16(8), make([]byte, 8), u16(12), u16(0))),
	)
}

func TestResponseRecords(t *testing.T) {
	s := parseUDP(dataplane.ToClient, fullResponse())
	if len(s.msgs) != 1 || len(s.violations) != 0 {
		t.Fatalf("got %v", s.log)
	}
	m := s.msgs[0]
	if m.name != EventResponse || !m.QR || !m.AA || !m.RA || m.ANCount != 5 || m.NSCount != 2 || m.ARCount != 1 {
		t.Errorf("header: %+v", m)
	}
	if m.RRCount != 8 || len(m.RRs) != 8 || len(s.recs) != 8 || m.Malformed {
		t.Fatalf("records: %d %d %d %v", m.RRCount, len(m.RRs), len(s.recs), m.MalformedReason)
	}
	type want struct {
		section, name, typeName, address, target string
		pref                                     int
		txt                                      []string
	}
	wants := []want{
		{SectionAnswer, "www.example.com", "CNAME", "", "web.example.com", 0, nil},
		{SectionAnswer, "www.example.com", "A", "192.0.2.1", "", 0, nil},
		{SectionAnswer, "www.example.com", "AAAA", "2001:db8::1", "", 0, nil},
		{SectionAnswer, "example.com", "MX", "", "mail.example.com", 10, nil},
		{SectionAnswer, "example.com", "TXT", "", "", 0, []string{"v=spf1 -all", "X"}},
		{SectionAuthority, "example.com", "NS", "", "ns1.example.com", 0, nil},
		{SectionAuthority, "example.com", "SOA", "", "", 0, nil},
		{SectionAdditional, ".", "OPT", "", "", 0, nil},
	}
	for i, w := range wants {
		r := m.RRs[i]
		got := want{r.Section, r.Name, r.TypeName, r.Address, r.Target, r.Preference, r.TXT}
		if !reflect.DeepEqual(got, w) || r.Malformed {
			t.Errorf("rr %d: got %+v, want %+v", i, got, w)
		}
		ev := s.recs[i]
		if ev.Index != i || ev.Transport != "udp" || !ev.QR || ev.ID != 7 || ev.MessageLength != m.Length || ev.Name != r.Name {
			t.Errorf("dns.rr %d context: %+v", i, ev)
		}
	}
	soa := m.RRs[6].SOA
	if soa.MName != "ns1.example.com" || soa.RName != "hostmaster.example.com" || soa.Serial != 2024010101 || soa.Minimum != 300 {
		t.Errorf("soa: %+v", soa)
	}
	e := m.EDNS
	if !e.Present || e.Count != 1 || e.UDPSize != 1232 || !e.DO || e.Version != 0 || e.ExtendedRcode != 1 || e.Flags != 0x8000 ||
		!reflect.DeepEqual(e.Options, []EDNSOption{{Code: 10, Length: 8}, {Code: 12, Length: 0}}) {
		t.Errorf("edns: %+v", e)
	}
	if len(m.Answers) != 5 || len(m.Authority) != 2 || len(m.Additional) != 1 {
		t.Errorf("sections: %d %d %d", len(m.Answers), len(m.Authority), len(m.Additional))
	}
	if m.MaxNameJumps != 1 || m.MaxRDLength != 39 {
		t.Errorf("stats: jumps %d rdlength %d", m.MaxNameJumps, m.MaxRDLength)
	}
	for _, k := range []string{"edns", "type:soa", "type:a", "type:opt", "type:type16"} {
		if !s.msgs[0].Has(k) {
			t.Errorf("Has(%q) = false", k)
		}
	}
	for _, k := range []string{"sig", "tc", "malformed", "type:rrsig", "type:nosuch", "header:x"} {
		if s.msgs[0].Has(k) {
			t.Errorf("Has(%q) = true", k)
		}
	}
}

func TestSIGRecords(t *testing.T) {
	long := strings.Repeat("a", 63) + "." + strings.Repeat("b", 63) + "." + strings.Repeat("c", 63) + ".example"
	// The question name (wire length 3*64+8+1 = 201) is at 12.
	msg := cat(
		hdr(1, flagsResponse, 1, 2, 0, 1),
		question(wname(long), TypeSIG, 1),
		// RRSIG with an uncompressed signer.
		rr(ptr(12), TypeRRSIG, 1, 60, sigRdata(TypeA, wname("example"), 256)),
		// SIG whose signer is a pointer to the long question name.
		rr(ptr(12), TypeSIG, 1, 60, sigRdata(TypeTXT, ptr(12), 1000)),
		// Too short to hold the fixed fields.
		rr(ptr(12), TypeSIG, 1, 60, make([]byte, 10)),
	)
	s := parseUDP(dataplane.ToClient, msg)
	m := s.msgs[0]
	if m.SigCount != 3 || m.SigMaxRDLength != 18+2+1000 {
		t.Errorf("sig stats: count %d max rdlength %d", m.SigCount, m.SigMaxRDLength)
	}
	rrsig := m.RRs[0].SIG
	if rrsig.TypeCovered != TypeA || rrsig.Algorithm != 8 || rrsig.Labels != 2 || rrsig.OriginalTTL != 3600 ||
		rrsig.Expiration != 1700000000 || rrsig.Inception != 1690000000 || rrsig.KeyTag != 12345 ||
		rrsig.Signer != "example" || rrsig.SignerWireLength != 9 || rrsig.SignerLength != 9 ||
		rrsig.SignatureLength != 256 || rrsig.AllocSize != 9+20+256 {
		t.Errorf("rrsig: %+v", rrsig)
	}
	sig := m.RRs[1].SIG
	if sig.Signer != long || sig.SignerWireLength != 2 || sig.SignerLength != 201 || sig.SignatureLength != 1000 ||
		sig.AllocSize != 201+20+1000 || m.SigMaxAllocSize != sig.AllocSize {
		t.Errorf("sig: %+v (max alloc %d)", sig, m.SigMaxAllocSize)
	}
	if !m.RRs[2].Malformed || m.MalformedReason != "bad_rdata" || len(s.violations) != 1 || s.violations[0] != "dns.bad_rdata" {
		t.Errorf("short sig: malformed %v reason %q violations %v", m.RRs[2].Malformed, m.MalformedReason, s.violations)
	}
	if !m.Has("sig") || !s.recs[1].Has("sig") || !s.recs[1].Has("type:sig") || s.recs[1].Has("type:rrsig") {
		t.Error("prefilter keys for SIG")
	}
}

func TestNames(t *testing.T) {
	tests := []struct {
		name  string
		wire  []byte
		want  string
		wlen  int
		fails string
	}{
		{"root", []byte{0}, ".", 1, ""},
		{"case folded", wname("MiXeD.Case"), "mixed.case", 12, ""},
		{"escapes", []byte{3, 'a', '.', 'b', 2, '\\', 0x00, 1, 0xFF, 0}, `a\.b.\\\000.\255`, 10, ""},
		{"max length", cat(bytesRepeat(cat([]byte{63}, []byte(strings.Repeat("x", 63))), 3), []byte{61}, []byte(strings.Repeat("y", 61)), []byte{0}), "", 255, ""},
		{"one byte too long", cat(bytesRepeat(cat([]byte{63}, []byte(strings.Repeat("x", 63))), 3), []byte{62}, []byte(strings.Repeat("y", 62)), []byte{0}), "", 0, reasonNameTooLong},
		{"too long", cat(bytesRepeat(cat([]byte{63}, []byte(strings.Repeat("x", 63))), 4), []byte{0}), "", 0, reasonNameTooLong},
		{"127 labels", cat(bytesRepeat([]byte{1, 'a'}, 127), []byte{0}), "", 255, ""},
		{"bad label type", []byte{0x40, 0}, "", 0, reasonBadLabelType},
		{"reserved label type", []byte{0x80, 0}, "", 0, reasonBadLabelType},
		{"no terminator", []byte{3, 'a', 'b', 'c'}, "", 0, reasonTruncated},
		{"label past end", []byte{9, 'a'}, "", 0, reasonTruncated},
		{"self pointer", ptr(12), "", 0, reasonPointerForward},
		{"forward pointer", cat(ptr(14), []byte{0}), "", 0, reasonPointerForward},
		{"pointer into own labels", cat([]byte{1, 'a'}, ptr(12)), "", 0, reasonPointerForward},
		{"half pointer", []byte{0xC0}, "", 0, reasonTruncated},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			msg := cat(hdr(1, 0, 0, 0, 0, 0), tc.wire)
			var m Message
			d := decoder{m: &m, build: true, msg: msg}
			next, sp, wlen, reason := d.readName(HeaderSize, len(msg))
			if reason != tc.fails {
				t.Fatalf("reason %q, want %q", reason, tc.fails)
			}
			if reason != "" {
				if len(d.arena) != 0 {
					t.Errorf("arena not rolled back: %q", d.arena)
				}
				return
			}
			if next != len(msg) || wlen != tc.wlen {
				t.Errorf("next %d wire length %d, want %d %d", next, wlen, len(msg), tc.wlen)
			}
			if got := sub(string(d.arena), sp); tc.want != "" && got != tc.want {
				t.Errorf("name %q, want %q", got, tc.want)
			}
		})
	}
}

func bytesRepeat(b []byte, n int) []byte {
	var out []byte
	for range n {
		out = append(out, b...)
	}
	return out
}

// TestPointerChain builds a chain of compression pointers, each pointing at the
// previous one, ending at the question name: a chain within MaxNameJumps
// decodes, a longer one is malformed.
func TestPointerChain(t *testing.T) {
	for _, tc := range []struct {
		hops   int
		reason string
	}{{MaxNameJumps - 1, ""}, {MaxNameJumps, ""}, {MaxNameJumps + 1, reasonTooManyJumps}} {
		// Question "a" at 12 (3 bytes + 4). The NULL record's rdata holds the
		// chain: its first pointer targets 12, each next one the previous.
		qEnd := HeaderSize + 3 + 4
		rdStart := qEnd + 1 + 10 // root owner name + fixed fields
		var chain []byte
		for i := 0; i < tc.hops-1; i++ {
			if i == 0 {
				chain = append(chain, ptr(12)...)
			} else {
				chain = append(chain, ptr(rdStart+2*(i-1))...)
			}
		}
		last := rdStart + 2*(tc.hops-2)
		msg := cat(hdr(1, flagsResponse, 1, 2, 0, 0), question(wname("a"), TypeA, 1),
			rr(wname("."), 10, 1, 0, chain),
			rr(ptr(last), TypeA, 1, 0, []byte{1, 2, 3, 4}))
		s := parseUDP(dataplane.ToClient, msg)
		m := s.msgs[0]
		if m.MalformedReason != tc.reason {
			t.Errorf("%d hops: reason %q, want %q", tc.hops, m.MalformedReason, tc.reason)
		}
		if tc.reason == "" && (m.MaxNameJumps != tc.hops || m.RRs[1].Name != "a") {
			t.Errorf("%d hops: jumps %d name %q", tc.hops, m.MaxNameJumps, m.RRs[1].Name)
		}
	}
}

func TestMalformed(t *testing.T) {
	q := question(wname("example.com"), TypeA, 1)
	tests := []struct {
		name      string
		msg       []byte
		reason    string
		truncated bool
		violation bool
		rrs       int
	}{
		{"empty", nil, reasonShortHeader, false, true, 0},
		{"short header", []byte{1, 2, 0x81, 0x80, 0}, reasonShortHeader, false, true, 0},
		{"missing question", hdr(1, flagsQuery, 1, 0, 0, 0), reasonTruncated, true, true, 0},
		{"missing answer", cat(hdr(1, flagsResponse, 1, 2, 0, 0), q, rr(ptr(12), TypeA, 1, 1, []byte{1, 2, 3, 4})), reasonTruncated, true, true, 1},
		{"truncated with TC", cat(hdr(1, flagsResponse|0x0200, 1, 2, 0, 0), q, rr(ptr(12), TypeA, 1, 1, []byte{1, 2, 3, 4})), "", true, false, 1},
		{"rdata overrun", cat(hdr(1, flagsResponse, 1, 1, 0, 0), q, ptr(12), u16(TypeA), u16(1), u32(1), u16(50), []byte{1, 2, 3, 4}), reasonRdataOverrun, false, true, 0},
		{"A rdlength 5", cat(hdr(1, flagsResponse, 1, 1, 0, 0), q, rr(ptr(12), TypeA, 1, 1, []byte{1, 2, 3, 4, 5})), reasonBadRdata, false, true, 1},
		{"CNAME past rdata", cat(hdr(1, flagsResponse, 1, 1, 0, 0), q, rr(ptr(12), TypeCNAME, 1, 1, []byte{5, 'a'}), []byte{'b', 'c', 'd', 'e', 0}), reasonTruncated, false, true, 1},
		{"CNAME short of rdata", cat(hdr(1, flagsResponse, 1, 1, 0, 0), q, rr(ptr(12), TypeCNAME, 1, 1, cat(ptr(12), []byte{0}))), reasonBadRdata, false, true, 1},
		{"TXT string overrun", cat(hdr(1, flagsResponse, 1, 1, 0, 0), q, rr(ptr(12), TypeTXT, 1, 1, []byte{5, 'a'})), reasonBadRdata, false, true, 1},
		{"OPT option overrun", cat(hdr(1, flagsQuery, 1, 0, 0, 1), q, rr(wname("."), TypeOPT, 512, 0, cat(u16(10), u16(9), []byte{1}))), reasonBadRdata, false, true, 1},
		{"signer loops", cat(hdr(1, flagsResponse, 1, 1, 0, 0), q, ptr(12), u16(TypeSIG), u16(1), u32(1), u16(20), make([]byte, 18), ptr(len(q)+12+12+18)), reasonPointerForward, false, true, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := parseUDP(dataplane.ToClient, tc.msg)
			if len(s.msgs) != 1 {
				t.Fatalf("events: %v", s.log)
			}
			m := s.msgs[0]
			if m.MalformedReason != tc.reason || m.Malformed != (tc.reason != "") || m.Truncated != tc.truncated {
				t.Errorf("reason %q malformed %v truncated %v, want %q %v", m.MalformedReason, m.Malformed, m.Truncated, tc.reason, tc.truncated)
			}
			if (len(s.violations) == 1) != tc.violation || (tc.violation && s.violations[0] != violationCode(tc.reason)) {
				t.Errorf("violations %v", s.violations)
			}
			if len(m.RRs) != tc.rrs || len(s.recs) != tc.rrs {
				t.Errorf("records %d events %d, want %d", len(m.RRs), len(s.recs), tc.rrs)
			}
		})
	}
}

func TestTrailingAndUnknown(t *testing.T) {
	msg := cat(hdr(1, flagsResponse, 1, 1, 0, 0), question(wname("x"), 65280, 1),
		rr(ptr(12), 65280, 3, 5, []byte{9, 9, 9}), []byte{0xAA, 0xBB})
	s := parseUDP(dataplane.ToClient, msg)
	m := s.msgs[0]
	if m.Malformed || m.TrailingBytes != 2 || m.QTypeName != "TYPE65280" || m.RRs[0].TypeName != "TYPE65280" ||
		m.RRs[0].RDLength != 3 || m.RRs[0].Class != 3 || !m.Has("type:type65280") || m.Has("type:type65281") {
		t.Errorf("got %+v", m)
	}
}

// TestRRLimit checks that records beyond MaxRRs are not kept or emitted but
// still count, including for the SIG statistics.
func TestRRLimit(t *testing.T) {
	n := MaxRRs + 100
	parts := [][]byte{hdr(1, flagsResponse, 1, n, 0, 0), question(wname("big.example"), TypeA, 1)}
	for i := 0; i < n-1; i++ {
		parts = append(parts, rr(ptr(12), TypeA, 1, 1, []byte{10, 0, byte(i >> 8), byte(i)}))
	}
	parts = append(parts, rr(ptr(12), TypeRRSIG, 1, 1, sigRdata(TypeA, ptr(12), 300)))
	s := parseUDP(dataplane.ToClient, cat(parts...))
	m := s.msgs[0]
	if len(m.RRs) != MaxRRs || len(s.recs) != MaxRRs || m.RRCount != n || !m.RRsTruncated || m.ANCount != n {
		t.Errorf("kept %d emitted %d count %d truncated %v", len(m.RRs), len(s.recs), m.RRCount, m.RRsTruncated)
	}
	if m.SigCount != 1 || m.SigMaxAllocSize != 13+20+300 || !m.Has("type:rrsig") || m.Malformed {
		t.Errorf("sig beyond the limit: count %d alloc %d", m.SigCount, m.SigMaxAllocSize)
	}
}

func TestDetect(t *testing.T) {
	query := cat(hdr(1, flagsQuery, 1, 0, 0, 0), question(wname("example.com"), TypeA, 1))
	garbage := []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	framed := tcpFrame(query)
	tests := []struct {
		name string
		tcp  bool
		port uint16
		data []byte
		want analyzer.Confidence
	}{
		{"udp query on 53", false, 53, query, analyzer.Yes},
		{"udp query on 5353", false, 5353, query, analyzer.Yes},
		{"udp garbage on 53", false, 53, garbage, analyzer.Maybe},
		{"udp query elsewhere", false, 8080, query, analyzer.Maybe},
		{"udp garbage elsewhere", false, 8080, garbage, analyzer.No},
		{"tcp query on 53", true, 53, framed, analyzer.Yes},
		{"tcp header only on 53", true, 53, framed[:16], analyzer.Yes},
		{"tcp too short", true, 53, framed[:5], analyzer.NeedMore},
		{"tcp garbage on 53", true, 53, garbage, analyzer.Maybe},
		{"tcp query elsewhere", true, 9000, framed, analyzer.Maybe},
		{"tcp garbage elsewhere", true, 9000, garbage, analyzer.No},
	}
	for _, tc := range tests {
		detect := DetectUDP
		if tc.tcp {
			detect = DetectTCP
		}
		if got := detect(probe(tc.port, tc.data)); got != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, got, tc.want)
		}
	}
}

// TestStringBound checks that a message naming one long, fully escaped name
// thousands of times through compression stops keeping records once their
// strings reach MaxStringBytes, while its statistics still cover everything.
func TestStringBound(t *testing.T) {
	label := cat([]byte{63}, bytes63(0x01))
	long := cat(label, label, label, []byte{61}, bytes63(0x01)[:61], []byte{0})
	n := 3000
	parts := [][]byte{hdr(1, flagsResponse, 1, n, 0, 0), question(long, 10, 1)}
	for range n {
		parts = append(parts, rr(ptr(12), TypeCNAME, 1, 0, ptr(12)))
	}
	s := parseUDP(dataplane.ToClient, cat(parts...))
	m := s.msgs[0]
	if m.Malformed || m.RRCount != n || !m.RRsTruncated || len(m.RRs) >= MaxRRs {
		t.Fatalf("count %d kept %d truncated %v malformed %q", m.RRCount, len(m.RRs), m.RRsTruncated, m.MalformedReason)
	}
	total := 0
	for _, r := range m.RRs {
		total += len(r.Name) + len(r.Target)
	}
	if total > MaxStringBytes+2*4*MaxNameLength {
		t.Errorf("%d string bytes kept", total)
	}
	if m.MaxNameLength != 255 || len(m.RRs[0].Name) != 4*63*3+4*61+3 {
		t.Errorf("name length %d presentation %d", m.MaxNameLength, len(m.RRs[0].Name))
	}
}

func bytes63(b byte) []byte {
	out := make([]byte, 63)
	for i := range out {
		out[i] = b
	}
	return out
}
