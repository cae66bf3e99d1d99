package tls

import (
	"testing"
)

// heartbleed is the vulnerable condition the CVE-2014-0160 patch states.
func heartbleed(h *Heartbeat) bool {
	return !h.Encrypted && h.PayloadLength+3+16 > h.RecordLength
}

func TestPlaintextHeartbeat(t *testing.T) {
	hello := tls12Handshake(0x0302, suiteAES128SHA)[:2]
	tests := []struct {
		name   string
		record []byte
		want   Heartbeat // the fields compared
		bleeds bool
	}{
		{"classic heartbleed", rec(ContentHeartbeat, 0x0302, heartbeatMsg(1, 0x4000, 0, 0)),
			Heartbeat{MessageType: 1, PayloadLength: 0x4000, PayloadSize: 0, PaddingLength: 0, RecordLength: 3}, true},
		{"overstated with some payload", rec(ContentHeartbeat, 0x0302, heartbeatMsg(1, 0x100, 32, 16)),
			Heartbeat{MessageType: 1, PayloadLength: 0x100, PayloadSize: 48, PaddingLength: 0, RecordLength: 51}, true},
		{"padding too short", rec(ContentHeartbeat, 0x0302, heartbeatMsg(1, 5, 5, 4)),
			Heartbeat{MessageType: 1, PayloadLength: 5, PayloadSize: 5, PaddingLength: 4, RecordLength: 12}, true},
		{"truncated record", rec(ContentHeartbeat, 0x0302, []byte{1}),
			Heartbeat{MessageType: 1, PayloadLength: -1, PayloadSize: -1, PaddingLength: -1, RecordLength: 1, Truncated: true}, true},
		{"empty record", rec(ContentHeartbeat, 0x0302, nil),
			Heartbeat{MessageType: -1, PayloadLength: -1, PayloadSize: -1, PaddingLength: -1, RecordLength: 0, Truncated: true}, true},
		{"conforming request", rec(ContentHeartbeat, 0x0302, heartbeatMsg(1, 5, 5, 16)),
			Heartbeat{MessageType: 1, PayloadLength: 5, PayloadSize: 5, PaddingLength: 16, RecordLength: 24}, false},
		{"conforming response, big padding", rec(ContentHeartbeat, 0x0302, heartbeatMsg(2, 100, 100, 300)),
			Heartbeat{MessageType: 2, PayloadLength: 100, PayloadSize: 100, PaddingLength: 300, RecordLength: 403}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// split the heartbeat record after its first two bytes: the event
			// must wait for the payload_length
			cut := min(7, len(tc.record))
			r, err := run(append(hello[:2:2], toServer(tc.record[:cut]), toServer(tc.record[cut:])))
			if err != nil {
				t.Fatal(err)
			}
			hb := find[*Heartbeat](r)
			if len(hb) != 1 {
				t.Fatalf("%d heartbeat events\n%s", len(hb), r)
			}
			h := hb[0]
			got := Heartbeat{MessageType: h.MessageType, PayloadLength: h.PayloadLength, PayloadSize: h.PayloadSize,
				PaddingLength: h.PaddingLength, RecordLength: h.RecordLength, Truncated: h.Truncated}
			if got != tc.want {
				t.Errorf("got  %+v\nwant %+v", got, tc.want)
			}
			if !h.FromClient || h.Encrypted || h.HandshakeComplete || !h.Negotiated || h.MinRecordLength != MinHeartbeatLength {
				t.Errorf("context fields: %+v", h)
			}
			if heartbleed(h) != tc.bleeds {
				t.Errorf("heartbleed condition = %v, want %v", heartbleed(h), tc.bleeds)
			}
		})
	}
}

// The plaintext event fires as soon as type and payload_length are known, so
// the packet carrying them can be dropped before the rest of the record.
func TestHeartbeatFiresEarly(t *testing.T) {
	a := New()
	r := &recorder{}
	record := rec(ContentHeartbeat, 0x0301, heartbeatMsg(1, 0x4000, 16000, 0))
	must(t, a.Feed(0, record[:8], r))
	if hb := find[*Heartbeat](r); len(hb) != 1 || hb[0].PayloadLength != 0x4000 || hb[0].RecordLength != 16003 {
		t.Fatalf("no early heartbeat event:\n%s", r)
	}
	must(t, a.Feed(0, record[8:], r))
	if len(find[*Heartbeat](r)) != 1 {
		t.Errorf("one event per record")
	}
}

func TestEncryptedHeartbeat(t *testing.T) {
	tests := []struct {
		name    string
		version int
		suite   int
		exts    [][]byte // extra ServerHello extensions
		min     int
	}{
		{"AES-CBC-SHA TLS 1.1", 0x0302, suiteAES128SHA, nil, 16 + 48},
		{"AES-CBC-SHA TLS 1.0", 0x0301, suiteAES128SHA, nil, 48},
		{"AES-CBC-SHA encrypt-then-MAC", 0x0303, suiteAES128SHA, [][]byte{ext(ExtEncryptThenMAC, nil)}, 16 + 32 + 20},
		{"AES-CBC-SHA truncated HMAC", 0x0303, suiteAES128SHA, [][]byte{ext(ExtTruncatedHMAC, nil)}, 16 + 32},
		{"AES-GCM", 0x0303, suiteECDHEAES128GCM, nil, 8 + 19 + 16},
		{"ChaCha20-Poly1305", 0x0303, suiteChaCha, nil, 19 + 16},
		{"RC4-SHA", 0x0301, suiteRC4SHA, nil, 19 + 20},
		{"3DES TLS 1.2", 0x0303, 0x000a, nil, 8 + 40},
		{"unknown suite", 0x0303, suiteUnknownForTests, nil, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := tc.version
			conv := []chunk{
				toServer(rec(ContentHandshake, 0x0301, hsMsg(HandshakeClientHello,
					clientHelloBody(v, []int{tc.suite}, heartbeatExt(1))))),
				toClient(rec(ContentHandshake, v, cat(
					hsMsg(HandshakeServerHello, serverHelloBody(v, tc.suite, append([][]byte{heartbeatExt(1)}, tc.exts...)...)),
					hsMsg(HandshakeServerHelloDone, nil)))),
				toServer(
					rec(ContentHandshake, v, hsMsg(HandshakeClientKeyExchange, vec16(opaque(128)))),
					rec(ContentChangeCipherSpec, v, []byte{1}),
					rec(ContentHandshake, v, opaque(64))),
				// before the server finished: the heartbleed-encrypted pattern
				toServer(rec(ContentHeartbeat, v, opaque(29))),
				toClient(rec(ContentChangeCipherSpec, v, []byte{1}), rec(ContentHandshake, v, opaque(64))),
				toServer(rec(ContentHeartbeat, v, opaque(64))),
				toClient(rec(ContentHeartbeat, v, opaque(16400))),
			}
			r, err := run(conv)
			if err != nil {
				t.Fatal(err)
			}
			hb := find[*Heartbeat](r)
			if len(hb) != 3 {
				t.Fatalf("%d heartbeats\n%s", len(hb), r)
			}
			early, req, resp := hb[0], hb[1], hb[2]
			if !early.Encrypted || early.HandshakeComplete || !early.FromClient || early.RecordLength != 29 ||
				early.PayloadLength != -1 || early.MessageType != -1 || early.Truncated {
				t.Errorf("early heartbeat %+v", early)
			}
			if !req.HandshakeComplete || req.Index != 1 || req.PeerRecordLength != -1 {
				t.Errorf("request %+v", req)
			}
			if resp.FromClient || resp.PeerRecordLength != 64 || resp.RecordLength != 16400 || !resp.Encrypted {
				t.Errorf("response %+v", resp)
			}
			for _, h := range hb {
				if h.MinRecordLength != tc.min {
					t.Errorf("min_record_length = %d, want %d", h.MinRecordLength, tc.min)
				}
			}
		})
	}
}

func TestHeartbeatMinUnknownWithCompression(t *testing.T) {
	sh := cat(u16(0x0303), random(2), vec8(nil), u16(suiteAES128SHA), []byte{1}) // DEFLATE
	conv := []chunk{
		toClient(rec(ContentHandshake, 0x0303, hsMsg(HandshakeServerHello, sh))),
		toClient(rec(ContentChangeCipherSpec, 0x0303, []byte{1})),
		toClient(rec(ContentHeartbeat, 0x0303, opaque(40))),
	}
	r, err := run(conv)
	if err != nil {
		t.Fatal(err)
	}
	if hb := find[*Heartbeat](r); len(hb) != 1 || hb[0].MinRecordLength != 0 {
		t.Errorf("compressed records have no known minimum: %+v", hb)
	}
}
