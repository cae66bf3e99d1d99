package tls

import (
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/patchgate/patchgate/dataplane"
	"github.com/patchgate/patchgate/dataplane/analyzer"
)

func TestRegistered(t *testing.T) {
	s, ok := analyzer.Lookup("tls")
	if !ok {
		t.Fatal("tls analyzer not registered")
	}
	if s.Transport != analyzer.TCP || !slices.Equal(s.Ports, []uint16{443, 8443, 465, 993, 995, 636, 989, 990, 5061}) {
		t.Errorf("transport %d ports %v", s.Transport, s.Ports)
	}
	for _, name := range []string{EventRecord, EventHandshake, EventClientHello, EventServerHello,
		EventCertificate, EventChangeCipherSpec, EventAlert, EventHeartbeat} {
		if _, owner, ok := analyzer.LookupEvent(name); !ok || owner != "tls" {
			t.Errorf("event %s: registered %v by %q", name, ok, owner)
		}
	}
}

func TestDetect(t *testing.T) {
	ch := rec(ContentHandshake, 0x0301, hsMsg(HandshakeClientHello, clientHelloBody(0x0303, []int{0x2f})))
	tests := []struct {
		name string
		dir  dataplane.Direction
		port uint16
		data []byte
		want analyzer.Confidence
	}{
		{"client hello on odd port", dataplane.ToServer, 12345, ch, analyzer.Yes},
		{"record header only", dataplane.ToServer, 1, ch[:5], analyzer.Yes},
		{"three bytes", dataplane.ToServer, 1, ch[:3], analyzer.NeedMore},
		{"server alert first", dataplane.ToClient, 1, rec(ContentAlert, 0x0303, []byte{2, 40}), analyzer.Yes},
		{"heartbeat record", dataplane.ToServer, 1, []byte{0x18, 3, 2, 0, 3, 1, 0x40, 0}, analyzer.Yes},
		{"SSL 3.0 record", dataplane.ToServer, 1, rec(ContentHandshake, 0x0300, []byte{1}), analyzer.Yes},
		{"http on 443", dataplane.ToServer, 443, []byte("GET / HTTP/1.1\r\n"), analyzer.No},
		{"bad version", dataplane.ToServer, 1, []byte{0x16, 3, 9, 0, 5}, analyzer.No},
		{"major version 2", dataplane.ToServer, 1, []byte{0x16, 2, 0, 0, 5}, analyzer.No},
		{"too long", dataplane.ToServer, 1, []byte{0x16, 3, 1, 0x48, 1}, analyzer.No},
		{"empty record", dataplane.ToServer, 1, []byte{0x16, 3, 1, 0, 0}, analyzer.No},
		{"sslv2 compat hello", dataplane.ToServer, 1, []byte{0x80, 0x2e, 1, 3, 1, 0, 0x15}, analyzer.Yes},
		{"pure sslv2 hello", dataplane.ToServer, 1, []byte{0x80, 0x2e, 1, 0, 2}, analyzer.Yes},
		{"sslv2 from server", dataplane.ToClient, 1, []byte{0x80, 0x2e, 1, 3, 1}, analyzer.No},
		{"sslv2 wrong type", dataplane.ToServer, 1, []byte{0x80, 0x2e, 4, 3, 1}, analyzer.No},
		{"sslv2 partial", dataplane.ToServer, 1, []byte{0x80, 0x2e}, analyzer.NeedMore},
		{"nothing yet on 443", dataplane.ToServer, 443, nil, analyzer.Maybe},
		{"nothing yet on 5061", dataplane.ToServer, 5061, nil, analyzer.Maybe},
		{"nothing yet on 80", dataplane.ToServer, 80, nil, analyzer.NeedMore},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := Detect(analyzer.Probe{Transport: analyzer.TCP, ServerPort: tc.port, Dir: tc.dir, Data: tc.data})
			if got != tc.want {
				t.Errorf("Detect = %d, want %d", got, tc.want)
			}
		})
	}
}

func TestClientHelloFields(t *testing.T) {
	r, err := run(tls13Handshake()[:1])
	if err != nil {
		t.Fatal(err)
	}
	chs := find[*ClientHello](r)
	if len(chs) != 1 {
		t.Fatalf("%d client hellos\n%s", len(chs), r)
	}
	ch := chs[0]
	want := &ClientHello{
		FromClient: true, Length: ch.Length, RecordVersion: 0x0301, Version: 0x0303,
		CipherSuites: []int{0x1301, 0x1302}, CipherSuiteCount: 2, CompressionMethods: []int{0},
		Extensions: []int{0, 16, 43, 10, 13}, ExtensionCount: 5,
		ServerName: "tls13.example", ServerNames: []string{"tls13.example"}, ALPN: []string{"h2", "http/1.1"},
		SupportedVersions: []int{0x0304, 0x0303}, SupportedGroups: []int{0x1d, 0x17},
		SignatureAlgorithms: []int{0x0403, 0x0804}, MaxVersion: 0x0304,
	}
	if !reflect.DeepEqual(ch, want) {
		t.Errorf("client hello\n got %+v\nwant %+v", ch, want)
	}
}

func TestClientHelloOddities(t *testing.T) {
	tests := []struct {
		name  string
		body  []byte
		check func(*ClientHello) bool
	}{
		{"no extensions block", clientHelloBody(0x0301, []int{0x2f}),
			func(c *ClientHello) bool { return !c.Malformed && c.ExtensionCount == 0 && c.MaxVersion == 0x0301 }},
		{"duplicate extension", clientHelloBody(0x0303, []int{0x2f}, sniExt("a"), sniExt("b")),
			func(c *ClientHello) bool {
				return c.DuplicateExtension && c.ServerName == "a" && slices.Equal(c.ServerNames, []string{"a", "b"})
			}},
		{"heartbeat not allowed", clientHelloBody(0x0302, []int{0x2f}, heartbeatExt(2)),
			func(c *ClientHello) bool { return c.Heartbeat && c.HeartbeatMode == 2 }},
		{"truncated cipher list", cat(u16(0x0303), random(1), vec8(nil), u16(6), u16(0x2f)),
			func(c *ClientHello) bool { return c.Malformed }},
		{"odd cipher list", cat(u16(0x0303), random(1), vec8(nil), vec16([]byte{0, 0x2f, 0}), vec8([]byte{0})),
			func(c *ClientHello) bool { return c.Malformed && slices.Equal(c.CipherSuites, []int{0x2f}) }},
		{"extension overruns block", cat(clientHelloBody(0x0303, []int{0x2f}), u16(8), u16(0), u16(40), []byte{1, 2, 3, 4}),
			func(c *ClientHello) bool { return c.Malformed }},
		{"trailing bytes", cat(clientHelloBody(0x0303, []int{0x2f}, sniExt("a")), []byte{0}),
			func(c *ClientHello) bool { return c.Malformed && c.ServerName == "a" }},
		{"long name cut", clientHelloBody(0x0303, []int{0x2f}, sniExt(strings.Repeat("x", 2000))),
			func(c *ClientHello) bool { return len(c.ServerName) == MaxNameLength && !c.Malformed }},
		{"many suites kept up to limit", clientHelloBody(0x0303, make([]int, 600)),
			func(c *ClientHello) bool { return len(c.CipherSuites) == MaxListItems && c.CipherSuiteCount == 600 }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := run([]chunk{toServer(rec(ContentHandshake, 0x0301, hsMsg(HandshakeClientHello, tc.body)))})
			if err != nil {
				t.Fatal(err)
			}
			chs := find[*ClientHello](r)
			if len(chs) != 1 || !tc.check(chs[0]) {
				t.Errorf("unexpected:\n%s", r)
			}
		})
	}
}

// A handshake message split over records, several messages in one record, and
// the same bytes fed in any segmentation all give the same events.
func TestReassembly(t *testing.T) {
	ch := hsMsg(HandshakeClientHello, clientHelloBody(0x0303, []int{0x2f}, sniExt("split.example"), heartbeatExt(1)))
	split := []chunk{toServer(
		rec(ContentHandshake, 0x0301, ch[:3]),
		rec(ContentHandshake, 0x0301, ch[3:20]),
		rec(ContentHandshake, 0x0301, ch[20:]))}
	r, err := run(split)
	if err != nil {
		t.Fatal(err)
	}
	chs := find[*ClientHello](r)
	if len(chs) != 1 || chs[0].ServerName != "split.example" || !chs[0].Heartbeat || chs[0].Malformed {
		t.Fatalf("client hello across records:\n%s", r)
	}
	if n := len(find[*Record](r)); n != 3 {
		t.Errorf("%d records, want 3", n)
	}

	r, err = run(tls12Handshake(0x0303, suiteAES128SHA)[:2])
	if err != nil {
		t.Fatal(err)
	}
	var types []int
	for _, h := range find[*Handshake](r) {
		types = append(types, h.MsgType)
	}
	if !slices.Equal(types, []int{1, 2, 11, 14}) {
		t.Errorf("handshake types %v, want [1 2 11 14]", types)
	}
	certs := find[*Certificate](r)
	if len(certs) != 1 || certs[0].Count != 2 || !slices.Equal(certs[0].Sizes, []int{700, 900}) ||
		certs[0].MaxSize != 900 || certs[0].Malformed || certs[0].Truncated {
		t.Errorf("certificate: %+v", certs)
	}

	for name, conv := range map[string][]chunk{"split": split, "tls12": tls12Handshake(0x0303, suiteAES128SHA), "tls13": tls13Handshake()} {
		whole, _ := run(conv)
		bytewise := &recorder{}
		a := New()
		for _, c := range conv {
			for i := range c.data {
				if err := a.Feed(c.dir, c.data[i:i+1], bytewise); err != nil {
					t.Fatal(err)
				}
			}
		}
		if whole.String() != bytewise.String() {
			t.Errorf("%s: byte-at-a-time differs:\n%s\n---\n%s", name, whole, bytewise)
		}
	}
}

func TestLargeCertificate(t *testing.T) {
	body := certificateBody(30000, 30000, 30000) // 90 KiB: beyond the reassembly limit
	msg := hsMsg(HandshakeCertificate, body)
	var recs []byte
	for len(msg) > 0 {
		n := min(len(msg), 1<<14)
		recs = cat(recs, rec(ContentHandshake, 0x0303, msg[:n]))
		msg = msg[n:]
	}
	r, err := run([]chunk{toClient(recs, rec(ContentHandshake, 0x0303, hsMsg(HandshakeServerHelloDone, nil)))})
	if err != nil {
		t.Fatal(err)
	}
	certs := find[*Certificate](r)
	if len(certs) != 1 || !certs[0].Truncated || certs[0].Count != 3 || certs[0].Malformed {
		t.Fatalf("certificate: %+v", certs)
	}
	if hs := find[*Handshake](r); len(hs) != 2 || hs[1].MsgType != HandshakeServerHelloDone {
		t.Errorf("stream lost after a large certificate: %+v", hs)
	}
}

func TestTLS12Progress(t *testing.T) {
	conv := concat(tls12Handshake(0x0303, suiteAES128SHA), []chunk{
		toServer(rec(ContentApplicationData, 0x0303, opaque(100))),
	})
	r, err := run(conv)
	if err != nil {
		t.Fatal(err)
	}
	type rs struct {
		client, enc, complete bool
		typ                   int
	}
	var got []rs
	for _, x := range find[*Record](r) {
		got = append(got, rs{x.FromClient, x.Encrypted, x.HandshakeComplete, x.ContentType})
	}
	want := []rs{
		{true, false, false, 22},  // ClientHello
		{false, false, false, 22}, // ServerHello, Certificate, ServerHelloDone
		{true, false, false, 22},  // ClientKeyExchange
		{true, false, false, 20},  // CCS
		{true, true, false, 22},   // Finished (encrypted)
		{false, false, false, 20}, // CCS
		{false, true, false, 22},  // Finished
		{true, true, true, 23},    // application data
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("records\n got %v\nwant %v", got, want)
	}
	ccs := find[*ChangeCipherSpec](r)
	if len(ccs) != 2 || !ccs[0].KeyExchangeSent || ccs[0].PeerChangeCipherSpec || !ccs[1].PeerChangeCipherSpec ||
		ccs[0].Value != 1 || ccs[0].ServerVersion != 0x0303 || !ccs[0].ServerHelloDone {
		t.Errorf("ccs events: %+v", ccs)
	}
	if n := strings.Count(r.String(), "boundary"); n != 8 {
		t.Errorf("%d boundaries, want one per record (8)", n)
	}
}

func TestTLS13Progress(t *testing.T) {
	conv := concat(tls13Handshake(), []chunk{toClient(rec(ContentApplicationData, 0x0303, opaque(30)))})
	r, err := run(conv)
	if err != nil {
		t.Fatal(err)
	}
	recs := find[*Record](r)
	var enc, complete []bool
	for _, x := range recs {
		enc = append(enc, x.Encrypted)
		complete = append(complete, x.HandshakeComplete)
	}
	if !slices.Equal(enc, []bool{false, false, false, true, false, true, true}) {
		t.Errorf("encrypted flags %v", enc)
	}
	if !slices.Equal(complete, []bool{false, false, false, false, false, false, true}) {
		t.Errorf("complete flags %v", complete)
	}
	sh := find[*ServerHello](r)
	if len(sh) != 1 || sh[0].SelectedVersion != 0x0304 || sh[0].Version != 0x0303 || sh[0].CipherSuite != 0x1301 {
		t.Errorf("server hello %+v", sh)
	}
	if len(find[*ChangeCipherSpec](r)) != 2 {
		t.Errorf("compat CCS records must still be reported:\n%s", r)
	}
}

func TestHelloRetryRequest(t *testing.T) {
	hrr := cat(u16(0x0303), helloRetryRandom, vec8(nil), u16(0x1301), []byte{0}, vec16(ext(ExtSupportedVersions, u16(0x0304))))
	ch := rec(ContentHandshake, 0x0301, hsMsg(HandshakeClientHello,
		clientHelloBody(0x0303, []int{0x1301}, ext(ExtSupportedVersions, vec8(u16list(0x0304))))))
	r, err := run([]chunk{toServer(ch), toClient(rec(ContentHandshake, 0x0303, hsMsg(HandshakeServerHello, hrr))), toServer(ch)})
	if err != nil {
		t.Fatal(err)
	}
	chs := find[*ClientHello](r)
	if sh := find[*ServerHello](r); len(sh) != 1 || !sh[0].HelloRetryRequest {
		t.Errorf("HRR not recognised: %+v", sh)
	}
	if len(chs) != 2 || chs[1].Index != 1 {
		t.Errorf("second ClientHello after HRR must be parsed:\n%s", r)
	}
}

func TestAlerts(t *testing.T) {
	r, err := run([]chunk{
		toClient(rec(ContentAlert, 0x0303, []byte{2})),     // alert split over records
		toClient(rec(ContentAlert, 0x0303, []byte{40, 1})), // ... and two in one record
		toClient(rec(ContentAlert, 0x0303, []byte{0})),
	})
	if err != nil {
		t.Fatal(err)
	}
	al := find[*Alert](r)
	if len(al) != 2 || al[0].Level != 2 || al[0].Description != 40 || !al[0].Fatal || al[1].Level != 1 || al[1].Description != 0 || al[1].FromClient {
		t.Errorf("alerts: %+v", al)
	}
	r, _ = run(concat(tls12Handshake(0x0303, suiteAES128SHA), []chunk{toServer(rec(ContentAlert, 0x0303, opaque(26)))}))
	if len(find[*Alert](r)) != 0 {
		t.Errorf("an encrypted alert has no readable fields:\n%s", r)
	}
}

func TestSSLv2ClientHello(t *testing.T) {
	specs := []byte{0, 0, 0x2f, 0, 0, 0x35, 0x07, 0x00, 0xc0}
	challenge := opaque(16)
	body := cat([]byte{1}, u16(0x0301), u16(len(specs)), u16(0), u16(len(challenge)), specs, challenge)
	v2 := cat([]byte{0x80 | byte(len(body)>>8), byte(len(body))}, body)
	conv := []chunk{toServer(v2), toClient(rec(ContentHandshake, 0x0301, hsMsg(HandshakeServerHello, serverHelloBody(0x0301, 0x2f))))}
	r, err := run(conv)
	if err != nil {
		t.Fatal(err)
	}
	chs := find[*ClientHello](r)
	if len(chs) != 1 || !chs[0].SSLv2 || chs[0].Version != 0x0301 || chs[0].Malformed ||
		!slices.Equal(chs[0].CipherSuites, []int{0x2f, 0x35, 0x0700c0}) {
		t.Fatalf("sslv2 hello:\n%s", r)
	}
	recs := find[*Record](r)
	if !recs[0].SSLv2 || recs[0].Length != len(body) || recs[0].ContentType != ContentHandshake {
		t.Errorf("sslv2 record %+v", recs[0])
	}
	if len(find[*ServerHello](r)) != 1 {
		t.Errorf("server side after an SSLv2-compatible hello must be parsed")
	}
	// pure SSLv2: nothing after the hello is followed
	pure := cat([]byte{0x80, byte(len(body))}, []byte{1, 0, 2}, body[3:])
	r, err = run([]chunk{toServer(pure), toClient([]byte{0x83, 0x00, 4, 0, 1, 0})})
	if err != nil || len(find[*ClientHello](r)) != 1 || len(find[*Record](r)) != 1 {
		t.Errorf("pure SSLv2 (err %v):\n%s", err, r)
	}
}

func TestViolations(t *testing.T) {
	tests := []struct {
		name string
		dir  dataplane.Direction
		data []byte
		code string
	}{
		{"content type", dataplane.ToServer, []byte{0x17, 3, 3, 0, 1, 0, 0x30, 3, 3, 0, 0}, "tls.bad_content_type"},
		{"version", dataplane.ToClient, []byte{0x16, 2, 0, 0, 1, 0}, "tls.bad_version"},
		{"record too long", dataplane.ToServer, []byte{0x17, 3, 3, 0x48, 0x01}, "tls.record_too_long"},
		{"handshake too long", dataplane.ToServer, rec(ContentHandshake, 0x0301, []byte{1, 1, 0, 1}), "tls.handshake_too_long"},
		{"sslv2 not a hello", dataplane.ToServer, []byte{0x80, 0x20, 4, 3, 1}, "tls.bad_sslv2_hello"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := New()
			r := &recorder{}
			err := a.Feed(tc.dir, tc.data, r)
			if err == nil || !strings.Contains(r.String(), "violation "+tc.dir.String()+" "+tc.code) {
				t.Fatalf("err %v\n%s", err, r)
			}
			if err := a.Feed(tc.dir, rec(ContentAlert, 0x0303, []byte{1, 0}), r); !errors.Is(err, errStopped) {
				t.Errorf("direction must stay stopped, got %v", err)
			}
			if err := a.Feed(tc.dir^1, rec(ContentAlert, 0x0303, []byte{1, 0}), r); err != nil {
				t.Errorf("other direction must go on: %v", err)
			}
		})
	}
}

func TestGapInsideRecordKeepsSync(t *testing.T) {
	a := New()
	r := &recorder{}
	app := rec(ContentApplicationData, 0x0303, opaque(100))
	must(t, a.Feed(dataplane.ToServer, app[:20], r))
	a.Gap(dataplane.ToServer, 50, r)
	must(t, a.Feed(dataplane.ToServer, cat(app[70:], []byte{0x18, 3, 3, 0, 3, 1, 0x40, 0}), r))
	hb := find[*Heartbeat](r)
	if len(hb) != 1 || hb[0].PayloadLength != 0x4000 || hb[0].Midstream {
		t.Errorf("heartbeat after in-record gap:\n%s", r)
	}
}

func TestGapResync(t *testing.T) {
	a := New()
	r := &recorder{}
	a.Gap(dataplane.ToServer, 1000, r) // picked up mid-stream
	stream := cat(opaque(37),          // tail of an unseen record
		rec(ContentApplicationData, 0x0303, opaque(40)), // candidate: skipped, confirms sync
		rec(ContentApplicationData, 0x0303, opaque(20)),
		rec(ContentHeartbeat, 0x0303, opaque(40)))
	must(t, a.Feed(dataplane.ToServer, stream, r))
	recs := find[*Record](r)
	if len(recs) != 2 || recs[0].Length != 20 || !recs[0].Midstream || !recs[0].Encrypted {
		t.Fatalf("records after resync:\n%s", r)
	}
	hb := find[*Heartbeat](r)
	if len(hb) != 1 || !hb[0].Encrypted || hb[0].PayloadLength != -1 {
		t.Errorf("after a gap the protection is unknown; heartbeat must be treated as encrypted: %+v", hb)
	}
	// a false candidate is dropped without a violation
	a = New()
	r = &recorder{}
	a.Gap(dataplane.ToClient, 10, r)
	must(t, a.Feed(dataplane.ToClient, cat([]byte{0x17, 3, 3, 0, 2, 0xaa, 0xbb, 0x99, 0x99, 0x99}, rec(ContentAlert, 0x0303, opaque(2)), rec(ContentAlert, 0x0303, opaque(2)), rec(ContentAlert, 0x0303, opaque(2))), r))
	if strings.Contains(r.String(), "violation") || len(find[*Record](r)) != 1 {
		t.Errorf("false candidate:\n%s", r)
	}
	// no header at all: give up
	a = New()
	r = &recorder{}
	a.Gap(dataplane.ToServer, 10, r)
	junk := make([]byte, MaxResyncScan+10)
	if err := a.Feed(dataplane.ToServer, junk, r); !errors.Is(err, errResync) {
		t.Errorf("want resync failure, got %v", err)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// A gap inside a ChangeCipherSpec body hides its value but not the switch: the
// records after it are still treated as encrypted.
func TestGapInChangeCipherSpec(t *testing.T) {
	conv := concat(tls12Handshake(0x0302, suiteAES128SHA)[:2], []chunk{
		toServer(rec(ContentHandshake, 0x0302, hsMsg(HandshakeClientKeyExchange, vec16(opaque(64)))), []byte{20, 3, 2, 0, 2}),
		gapOf(dataplane.ToServer, 2),
		toServer(rec(ContentHeartbeat, 0x0302, []byte{1, 0x40, 0})),
	})
	r, err := run(conv)
	if err != nil {
		t.Fatal(err)
	}
	if len(find[*ChangeCipherSpec](r)) != 0 {
		t.Errorf("a CCS whose body was lost has no value to report")
	}
	hb := find[*Heartbeat](r)
	if len(hb) != 1 || !hb[0].Encrypted {
		t.Errorf("heartbeat after a gapped CCS must be encrypted: %+v", hb)
	}
}

// After a gap hid handshake bytes, CCS events say so.
func TestHandshakeGapFlag(t *testing.T) {
	cke := rec(ContentHandshake, 0x0302, hsMsg(HandshakeClientKeyExchange, vec16(opaque(64))))
	conv := concat(tls12Handshake(0x0302, suiteAES128SHA)[:2], []chunk{
		toServer(cke[:10]), gapOf(dataplane.ToServer, len(cke)-10),
		toServer(rec(ContentChangeCipherSpec, 0x0302, []byte{1})),
	})
	r, err := run(conv)
	if err != nil {
		t.Fatal(err)
	}
	ccs := find[*ChangeCipherSpec](r)
	if len(ccs) != 1 || !ccs[0].HandshakeGap || ccs[0].KeyExchangeSent {
		t.Errorf("ccs after a handshake gap: %+v", ccs)
	}
}

// A gap of unknown size (a flow picked up mid-stream) inside a record loses
// the boundaries: the analyzer resynchronises instead of skipping 2 GiB.
func TestGapUnknown(t *testing.T) {
	a := New()
	r := &recorder{}
	app := rec(ContentApplicationData, 0x0303, opaque(100))
	must(t, a.Feed(dataplane.ToClient, app[:20], r))
	a.Gap(dataplane.ToClient, analyzer.GapUnknown, r)
	must(t, a.Feed(dataplane.ToClient, cat(app, app, rec(ContentAlert, 0x0303, opaque(2))), r))
	recs := find[*Record](r)
	if len(recs) != 3 || !recs[1].Midstream || recs[2].ContentType != ContentAlert || !recs[2].Encrypted {
		t.Errorf("resync after an unknown gap:\n%s", r)
	}
}
