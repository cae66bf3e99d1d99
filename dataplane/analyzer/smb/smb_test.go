package smb

import (
	"bytes"
	"errors"
	"reflect"
	"slices"
	"testing"

	"github.com/patchgate/patchgate/dataplane"
	"github.com/patchgate/patchgate/dataplane/analyzer"
)

var dialectsAll = []uint16{0x0202, 0x0210, 0x0300, 0x0302, 0x0311}

// negotiation is a 3.1.1 exchange that agrees on LZNT1 + Pattern_V1, chained.
func negotiation() []feed {
	return []feed{
		toServer(nb(negReq(0, dialectsAll, preauthCtx(), encryptionCtx(1, 2),
			compressionCtx(1, algLZNT1, algLZ77, algPatternV1)))),
		toClient(nb(negResp(0, 0x0311, 8<<20, 8<<20, 8<<20, preauthCtx(), encryptionCtx(2),
			compressionCtx(1, algLZNT1, algPatternV1)))),
	}
}

func with(a []feed, b ...feed) []feed { return append(slices.Clone(a), b...) }

func TestNegotiate(t *testing.T) {
	r, a, err := run(negotiation(), 0)
	if err != nil {
		t.Fatal(err)
	}
	negs := of[*Negotiate](r)
	if len(negs) != 2 {
		t.Fatalf("want 2 negotiate events, got:\n%s", r)
	}
	req, resp := negs[0], negs[1]
	if req.IsResponse || req.Direction != "to_server" || req.DialectCount != 5 ||
		!reflect.DeepEqual(req.Dialects, []int{0x0202, 0x0210, 0x0300, 0x0302, 0x0311}) {
		t.Errorf("request: %+v", req)
	}
	if req.ContextCount != 3 || len(req.Contexts) != 3 || !req.Compression || !req.CompressionChained ||
		!reflect.DeepEqual(req.CompressionAlgorithms, []int{1, 2, 4}) || !reflect.DeepEqual(req.Ciphers, []int{1, 2}) ||
		!reflect.DeepEqual(req.HashAlgorithms, []int{1}) || req.Malformed || req.Truncated {
		t.Errorf("request contexts: %+v", req)
	}
	if !resp.IsResponse || resp.Dialect != 0x0311 || resp.MaxWriteSize != 8<<20 || resp.MaxReadSize != 8<<20 ||
		resp.MaxTransactSize != 8<<20 || !reflect.DeepEqual(resp.CompressionAlgorithms, []int{1, 4}) ||
		resp.SecurityBufferLength != 16 || resp.Malformed || resp.Truncated {
		t.Errorf("response: %+v", resp)
	}
	c := a.conn
	if !c.negotiated || c.dialect != 0x0311 || c.maxWrite != 8<<20 || !c.compChained ||
		!reflect.DeepEqual(c.compAlgs, []uint16{1, 4}) {
		t.Errorf("connection state: %+v", c)
	}
	if r.boundaries != [2]int{1, 1} || len(r.violations) != 0 {
		t.Errorf("boundaries %v violations %v", r.boundaries, r.violations)
	}
}

func TestNegotiateMalformedContexts(t *testing.T) {
	req := negReq(0, []uint16{0x0311}, compressionCtx(0, algLZNT1))
	// NegotiateContextOffset far beyond the message.
	copy(req[64+28:], u32(0x10000))
	r, _, err := run([]feed{toServer(nb(req))}, 0)
	if err != nil {
		t.Fatal(err)
	}
	n := of[*Negotiate](r)
	if len(n) != 1 || !n[0].Malformed || n[0].Compression {
		t.Fatalf("got %s", r)
	}
}

func TestMessages(t *testing.T) {
	tests := []struct {
		name   string
		stream []feed
		check  func(t *testing.T, m []*Message)
	}{{
		name:   "tree connect path",
		stream: []feed{toServer(nb(treeConnect(3, `\\fs01\IPC$`)))},
		check: func(t *testing.T, m []*Message) {
			tc := m[0].TreeConnect
			if m[0].CommandName != "TREE_CONNECT" || tc.Path != `\\fs01\IPC$` || tc.PathLength != 22 || tc.PathTruncated {
				t.Errorf("%+v", m[0])
			}
		},
	}, {
		name:   "read request",
		stream: []feed{toServer(nb(readReq(h2{mid: 9, tid: 5, sid: 77}, 1<<20, 4096)))},
		check: func(t *testing.T, m []*Message) {
			if m[0].Read.Length != 1<<20 || m[0].Read.Offset != 4096 || m[0].Read.MinimumCount != 1 ||
				m[0].TreeID != 5 || m[0].SessionID != 77 || m[0].MessageID != 9 || m[0].StructureSize != 49 {
				t.Errorf("%+v", m[0])
			}
		},
	}, {
		name:   "write request streams its data",
		stream: []feed{toServer(nb(writeReq(h2{mid: 4}, 1<<30, bytes.Repeat([]byte{'A'}, 200000))))},
		check: func(t *testing.T, m []*Message) {
			w := m[0].Write
			if w.Length != 200000 || w.Offset != 1<<30 || w.DataOffset != 0x70 || m[0].Length != 64+48+200000 {
				t.Errorf("%+v", m[0])
			}
		},
	}, {
		name:   "ioctl request",
		stream: []feed{toServer(nb(ioctlReq(h2{mid: 7}, 0x0011C017, []byte("hello"), 1024)))},
		check: func(t *testing.T, m []*Message) {
			c := m[0].IOCTL
			if c.CtlCode != 0x0011C017 || !c.IsFSCTL || c.InputCount != 5 || c.InputOffset != 0x78 || c.MaxOutputResponse != 1024 {
				t.Errorf("%+v", c)
			}
		},
	}, {
		name: "compound of three",
		stream: []feed{toServer(nb(compound(
			h2{cmd: 5, mid: 10}.bytes(),
			readReq(h2{mid: 11, flags: smb2FlagRelated}, 512, 0),
			h2{cmd: 6, mid: 12, flags: smb2FlagRelated}.bytes())))},
		check: func(t *testing.T, m []*Message) {
			if len(m) != 3 {
				t.Fatalf("want 3 messages, got %d", len(m))
			}
			for i, want := range []string{"CREATE", "READ", "CLOSE"} {
				if m[i].CommandName != want || m[i].CompoundIndex != i || m[i].MessageID != 10+i {
					t.Errorf("member %d: %+v", i, m[i])
				}
			}
			if m[0].NextCommand != 64 || m[1].NextCommand != 120 || m[2].NextCommand != 0 ||
				!m[1].Related || m[1].Read.Length != 512 || m[1].Length != 120 {
				t.Errorf("compound fields: %+v / %+v", m[0], m[1])
			}
		},
	}, {
		name:   "response flag and status",
		stream: []feed{toClient(nb(h2{cmd: 1, flags: smb2FlagResponse | smb2FlagSigned, status: 0xC0000016, sid: 1 << 63}.bytes()))},
		check: func(t *testing.T, m []*Message) {
			if !m[0].IsResponse || !m[0].Signed || m[0].Status != 0xC0000016 || m[0].SessionID != -1<<63 || m[0].Direction != "to_client" {
				t.Errorf("%+v", m[0])
			}
		},
	}, {
		name:   "async header",
		stream: []feed{toClient(nb(h2{cmd: 0xF, flags: smb2FlagResponse | smb2FlagAsync, tid: 0x55}.bytes()))},
		check: func(t *testing.T, m []*Message) {
			if !m[0].Async || m[0].AsyncID != 0x55_0000FEFF || m[0].TreeID != 0 {
				t.Errorf("%+v", m[0])
			}
		},
	}, {
		name:   "encrypted message",
		stream: []feed{toServer(nb(cat([]byte("\xfdSMB"), make([]byte, 32), u32(200), u16(0), u16(1), u64(42), make([]byte, 200))))},
		check: func(t *testing.T, m []*Message) {
			if !m[0].Encrypted || m[0].Command != -1 || m[0].SessionID != 42 || m[0].Length != 200 {
				t.Errorf("%+v", m[0])
			}
		},
	}, {
		name: "smb1 header",
		stream: []feed{toServer(nb(cat(smb1Hdr(0x72, 0x18, k1{tid: 0xffff, pid: 0xfeff, uid: 0, mid: 1}),
			[]byte{0}, u16(12), []byte("\x02NT LM 0.12\x00"))))},
		check: func(t *testing.T, m []*Message) {
			if m[0].Version != 1 || m[0].CommandName != "NEGOTIATE" || m[0].WordCount != 0 || m[0].ByteCount != 12 ||
				m[0].TreeID != 0xffff || m[0].ProcessID != 0xfeff || m[0].IsResponse || m[0].Flags2 != 0xc807 {
				t.Errorf("%+v", m[0])
			}
		},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, a, err := run(tc.stream, 0)
			if err != nil {
				t.Fatal(err)
			}
			m := of[*Message](r)
			if len(m) == 0 {
				t.Fatalf("no smb.message:\n%s", r)
			}
			tc.check(t, m)
			if len(r.violations) != 0 {
				t.Errorf("violations: %v", r.violations)
			}
			for i := range a.dir {
				if cap(a.dir[i].buf) > MaxBuffered {
					t.Errorf("direction %d buffered %d bytes", i, cap(a.dir[i].buf))
				}
			}
		})
	}
}

func TestCompressionTransform(t *testing.T) {
	write := writeReq(h2{mid: 20}, 0, nil) // 112 bytes: header + fixed WRITE part
	tests := []struct {
		name   string
		stream []feed
		check  func(t *testing.T, c *CompressionTransform, r *recorder)
	}{{
		name:   "legitimate unchained LZNT1 write",
		stream: with(negotiation(), toServer(nb(compUnchained(112+4096, algLZNT1, 112, cat(write, make([]byte, 300)))))),
		check: func(t *testing.T, c *CompressionTransform, r *recorder) {
			if c.Chained || c.OriginalSize != 4208 || c.Offset != 112 || c.Sum != 4320 || c.Overflow ||
				c.OffsetBeyondMessage || c.CompressedLength != 300 || c.AlgorithmName != "LZNT1" ||
				!c.Negotiated || !c.CompressionNegotiated || !c.AlgorithmNegotiated || c.MaxSize != 8<<20 ||
				c.Dialect != 0x0311 || !reflect.DeepEqual(c.NegotiatedAlgorithms, []int{1, 4}) {
				t.Errorf("%+v", c)
			}
			m := of[*Message](r)
			last := m[len(m)-1]
			if !last.Compressed || last.CommandName != "WRITE" || last.MessageID != 20 || last.Length != 112 {
				t.Errorf("inner header: %+v", last)
			}
		},
	}, {
		name:   "SMBGhost 32-bit overflow without negotiation",
		stream: []feed{toServer(nb(compUnchained(0xFFFFFFFF, algLZNT1, 0x10, make([]byte, 64))))},
		check: func(t *testing.T, c *CompressionTransform, r *recorder) {
			if !c.Overflow || c.Sum != 0xFFFFFFFF+0x10 || c.Negotiated || c.CompressionNegotiated || c.AlgorithmNegotiated {
				t.Errorf("%+v", c)
			}
		},
	}, {
		name:   "offset beyond the message",
		stream: []feed{toServer(nb(compUnchained(0x100, algLZ77, 0x1000, make([]byte, 40))))},
		check: func(t *testing.T, c *CompressionTransform, r *recorder) {
			if c.Overflow || !c.OffsetBeyondMessage || c.CompressedLength != 40-0x1000 {
				t.Errorf("%+v", c)
			}
		},
	}, {
		name: "chained NONE + Pattern_V1 + LZNT1",
		stream: with(negotiation(), toClient(nb(compChained(64+16+4096+200,
			chainPayload(algNone, 0, -1, cat(h2{cmd: smb2Read, flags: 1}.bytes(), make([]byte, 16))),
			patternPayload(0, 4096),
			chainPayload(algLZNT1, 0, 200, make([]byte, 50)))))),
		check: func(t *testing.T, c *CompressionTransform, r *recorder) {
			want := []ChainPayload{
				{Algorithm: 0, Flags: 1, Length: 80, OriginalSize: 80},
				{Algorithm: 4, Length: 8, OriginalSize: 4096},
				{Algorithm: 1, Length: 54, OriginalSize: 200},
			}
			if !c.Chained || c.PayloadCount != 3 || !reflect.DeepEqual(c.Payloads, want) ||
				c.ChainOriginalTotal != c.OriginalSize || c.ChainMalformed || !c.AlgorithmNegotiated ||
				c.Direction != "to_client" || c.Overflow || !c.ChainedNegotiated {
				t.Errorf("%+v", c)
			}
		},
	}, {
		name: "chained payload overrunning the message",
		stream: []feed{toServer(nb(cat(compChained(100,
			chainPayload(algNone, 0, -1, make([]byte, 8))), u16(algLZ77), u16(0), u32(5000), u32(100))))},
		check: func(t *testing.T, c *CompressionTransform, r *recorder) {
			if !c.ChainMalformed || c.PayloadCount != 2 || c.AlgorithmNegotiated {
				t.Errorf("%+v", c)
			}
		},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, _, err := run(tc.stream, 0)
			if err != nil {
				t.Fatal(err)
			}
			c := of[*CompressionTransform](r)
			if len(c) != 1 {
				t.Fatalf("want 1 compression event:\n%s", r)
			}
			tc.check(t, c[0], r)
		})
	}
}

func TestTrans(t *testing.T) {
	k := k1{tid: 2048, pid: 65279, uid: 2048, mid: 64}
	big := bytes.Repeat(fea("", nil), 200) // 200 empty FEAs of 5 bytes
	tests := []struct {
		name   string
		stream []feed
		check  func(t *testing.T, tr []*Trans)
	}{{
		name: "single TRANS2_OPEN2 with a consistent FEA list",
		stream: []feed{toServer(nb(trans2Primary(k, 30, 38, []uint16{trans2Open2}, make([]byte, 30),
			feaList(-1, fea("user.a", []byte("12345")), fea("b", []byte("xyzxyzxyzxyz"))))))},
		check: func(t *testing.T, tr []*Trans) {
			e := tr[0]
			if len(tr) != 1 || e.State != "complete" || !e.Final || !e.FEAList || e.FEAListSize != 38 ||
				e.FEABytesSent != 38 || e.FEAValidSize != 38 || e.FEACount != 2 || e.FEAEntryOverruns ||
				e.EffectiveName != "TRANSACTION2" || e.Subcommand != 0 || e.SecondaryMismatch {
				t.Errorf("%+v", e)
			}
		},
	}, {
		name: "EternalBlue shape: NT_TRANSACT continued by TRANS2_SECONDARY",
		stream: []feed{
			toServer(nb(ntTransPrimary(k, 30, 0x10000+200, 0, []uint16{0}, make([]byte, 30),
				cat(u32(0x10000), big[:496])))),
			toServer(nb(trans2Secondary(k, 30, 0xffff, 0, 500, nil, big[496:]))),
		},
		check: func(t *testing.T, tr []*Trans) {
			if len(tr) != 3 {
				t.Fatalf("want partial, partial, end; got %d", len(tr))
			}
			p, s, end := tr[0], tr[1], tr[2]
			if p.State != "partial" || p.FEAList || p.FEAListSize != 0x10000 || p.EffectiveName != "NT_TRANSACT" {
				t.Errorf("primary: %+v", p)
			}
			if s.State != "partial" || !s.SecondaryMismatch || !s.FEAList || s.EffectiveSubcommand != trans2Open2 ||
				s.TotalDataCount != 0x10000+200 || s.SecondaryTotalDataCount != 0xffff || s.DataDisplacement != 500 ||
				s.FEABytesSent != 1004 || s.FEACount != 200 || s.FEAValidSize != 1004 || s.SecondaryCount != 1 {
				t.Errorf("secondary: %+v", s)
			}
			if end.State != "end" || !end.Final || end.Complete {
				t.Errorf("end: %+v", end)
			}
		},
	}, {
		name: "FEA list size larger than the data sent",
		stream: []feed{toServer(nb(trans2Primary(k, 6, 21, []uint16{trans2SetPathInfo},
			cat(u16(infoSetEAs), u32(0)), feaList(0x8000, fea("ab", []byte("0123456789"))))))},
		check: func(t *testing.T, tr []*Trans) {
			e := tr[0]
			if e.State != "complete" || !e.FEAList || e.InfoLevel != 2 || e.FEAListSize != 0x8000 || e.FEABytesSent != 21 ||
				e.FEAValidSize != 21 || e.ParameterBytesSent != 6 {
				t.Errorf("%+v", e)
			}
		},
	}, {
		name: "entry overrunning the declared size",
		stream: []feed{toServer(nb(trans2Primary(k, 0, 30, []uint16{trans2Mkdir}, nil,
			feaList(12, fea("a", []byte("1")), fea("bbbb", []byte("0123456789"))))))},
		check: func(t *testing.T, tr []*Trans) {
			e := tr[0]
			if !e.FEAList || !e.FEAEntryOverruns || e.FEAValidSize != 11 || e.FEACount != 1 {
				t.Errorf("%+v", e)
			}
		},
	}, {
		name: "data beyond the declared totals",
		stream: []feed{
			toServer(nb(trans2Primary(k, 0, 100, []uint16{1}, nil, make([]byte, 60)))),
			toServer(nb(trans2Secondary(k, 0, 100, 0, 60, nil, make([]byte, 60)))),
		},
		check: func(t *testing.T, tr []*Trans) {
			if len(tr) != 2 || tr[1].State != "overflow" || !tr[1].Overflow || tr[1].DataBytesSent != 120 {
				t.Errorf("%+v", tr)
			}
		},
	}, {
		name: "legitimate large NT_TRANSACT with NT secondaries",
		stream: []feed{
			toServer(nb(ntTransPrimary(k, 4, 40000, 3, nil, u32(4), make([]byte, 20000)))),
			toServer(nb(ntTransSecondary(k, 4, 40000, 4, 20000, nil, make([]byte, 20000)))),
		},
		check: func(t *testing.T, tr []*Trans) {
			e := tr[1]
			if len(tr) != 2 || e.State != "complete" || e.SecondaryMismatch || e.FEAList || e.Subcommand != 3 ||
				e.DataBytesSent != 40000 || e.CommandName != "NT_TRANSACT" {
				t.Errorf("%+v", tr)
			}
		},
	}, {
		name: "out of order secondaries",
		stream: []feed{
			toServer(nb(trans2Primary(k, 0, 30, []uint16{trans2Open2}, nil, feaList(30, fea("a", nil))))),
			toServer(nb(trans2Secondary(k, 0, 30, 0, 20, nil, make([]byte, 10)))),
			toServer(nb(trans2Secondary(k, 0, 30, 0, 10, nil, make([]byte, 10)))),
		},
		check: func(t *testing.T, tr []*Trans) {
			e := tr[len(tr)-1]
			if e.State != "complete" || !e.OutOfOrder || e.FEABytesSent != 20 || e.DataBytesSent != 30 {
				t.Errorf("%+v", e)
			}
		},
	}, {
		name: "secondary without primary is ignored",
		stream: []feed{
			toServer(nb(trans2Secondary(k, 0, 30, 0, 20, nil, make([]byte, 10)))),
		},
		check: func(t *testing.T, tr []*Trans) {
			if len(tr) != 0 {
				t.Errorf("%+v", tr)
			}
		},
	}, {
		name: "responses are not aggregated",
		stream: []feed{
			toClient(nb(cat(smb1Hdr(smb1Trans2, 0x98, k), []byte{0}, u16(0)))),
		},
		check: func(t *testing.T, tr []*Trans) {
			if len(tr) != 0 {
				t.Errorf("%+v", tr)
			}
		},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, _, err := run(tc.stream, 0)
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, of[*Trans](r))
		})
	}
}

func TestTransTableBound(t *testing.T) {
	var stream []feed
	for i := 0; i < MaxPendingTrans+3; i++ {
		stream = append(stream, toServer(nb(trans2Primary(k1{mid: uint16(i)}, 0, 100, []uint16{1}, nil, make([]byte, 10)))))
	}
	r, a, err := run(stream[:len(stream)-1], 0)
	if err != nil {
		t.Fatal(err)
	}
	_ = a
	evicted := 0
	for _, e := range of[*Trans](r) {
		if e.State == "evicted" {
			evicted++
		}
	}
	if evicted != 2 || len(r.violations) != 2 || r.violations[0] != "smb1.trans_table_full" {
		t.Errorf("evicted %d, violations %v", evicted, r.violations)
	}
	a2 := New()
	r2 := &recorder{}
	for _, f := range stream {
		_ = a2.Feed(f.dir, f.data, r2)
	}
	if len(a2.trans) != MaxPendingTrans {
		t.Errorf("table holds %d", len(a2.trans))
	}
}

func TestFraming(t *testing.T) {
	msg := nb(h2{cmd: 0xD, mid: 1}.bytes())
	tests := []struct {
		name       string
		stream     []feed
		messages   int
		boundaries int
		violations []string
		err        bool
	}{
		{name: "several per segment", stream: []feed{toServer(msg, msg, msg)}, messages: 3, boundaries: 3},
		{name: "keepalives", stream: []feed{toServer([]byte{0x85, 0, 0, 0}, msg, []byte{0x85, 0, 0, 0})}, messages: 1, boundaries: 3},
		{name: "port 139 session request", stream: []feed{
			toServer(cat([]byte{0x81, 0, 0, 68}, make([]byte, 68)), msg),
			toClient([]byte{0x82, 0, 0, 0}),
		}, messages: 1, boundaries: 3},
		{name: "empty session message", stream: []feed{toServer([]byte{0, 0, 0, 0}, msg)}, messages: 1, boundaries: 2},
		{name: "unknown protocol", stream: []feed{toServer(nb([]byte("\xfeXYZ1234")), msg)}, messages: 1, boundaries: 2,
			violations: []string{"smb.unknown_protocol"}},
		{name: "truncated smb2 header", stream: []feed{toServer(nb([]byte("\xfeSMB1234")), msg)}, messages: 1, boundaries: 2,
			violations: []string{"smb2.truncated_header"}},
		{name: "bad next command", stream: []feed{toServer(nb(h2{cmd: 0xD, next: 13}.bytes()))}, messages: 1, boundaries: 1,
			violations: []string{"smb2.bad_next_command"}},
		{name: "oversized control message", stream: []feed{toServer(cat([]byte{0x81, 0, 4, 0}, make([]byte, 1024)), msg)},
			messages: 1, boundaries: 2, violations: []string{"smb.netbios_control_length"}},
		{name: "bad NetBIOS type", stream: []feed{toServer(msg, []byte("GET / HTTP/1.1\r\n"))}, messages: 1, boundaries: 1,
			violations: []string{"smb.netbios_bad_type"}, err: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, _, err := run(tc.stream, 0)
			if (err != nil) != tc.err || (err != nil && !errors.Is(err, ErrNotSMB)) {
				t.Fatalf("err = %v", err)
			}
			if n := len(of[*Message](r)); n != tc.messages {
				t.Errorf("messages %d want %d", n, tc.messages)
			}
			if b := r.boundaries[0] + r.boundaries[1]; b != tc.boundaries {
				t.Errorf("boundaries %d want %d", b, tc.boundaries)
			}
			if !slices.Equal(r.violations, tc.violations) {
				t.Errorf("violations %v want %v", r.violations, tc.violations)
			}
		})
	}
}

func TestGap(t *testing.T) {
	w := nb(writeReq(h2{mid: 1}, 0, make([]byte, 1000)))
	echo := nb(h2{cmd: 0xD, mid: 2}.bytes())
	t.Run("inside a message", func(t *testing.T) {
		a, r := New(), &recorder{}
		_ = a.Feed(dataplane.ToServer, w[:500], r)
		a.Gap(dataplane.ToServer, 200, r)
		_ = a.Feed(dataplane.ToServer, w[700:], r)
		_ = a.Feed(dataplane.ToServer, echo, r)
		m := of[*Message](r)
		if len(m) != 2 || m[1].MessageID != 2 || r.boundaries[0] != 2 {
			t.Errorf("%s", r)
		}
	})
	t.Run("across messages resynchronises", func(t *testing.T) {
		a, r := New(), &recorder{}
		_ = a.Feed(dataplane.ToServer, w[:500], r)
		a.Gap(dataplane.ToServer, 5000, r)
		_ = a.Feed(dataplane.ToServer, cat(make([]byte, 37), echo[:5]), r)
		_ = a.Feed(dataplane.ToServer, echo[5:], r)
		m := of[*Message](r)
		if len(m) != 2 || m[1].MessageID != 2 {
			t.Errorf("%s", r)
		}
	})
	t.Run("mid-stream pickup", func(t *testing.T) {
		a, r := New(), &recorder{}
		a.Gap(dataplane.ToServer, 1, r)
		_ = a.Feed(dataplane.ToServer, cat(w[300:], echo), r)
		m := of[*Message](r)
		if len(m) != 1 || m[0].MessageID != 2 {
			t.Errorf("%s", r)
		}
	})
}

// streams are the test conversations reused by the split and state tests.
func streams() map[string][]feed {
	k := k1{tid: 1, pid: 2, uid: 3, mid: 4}
	return map[string][]feed{
		"negotiate+compressed": with(negotiation(),
			toServer(nb(compUnchained(4208, algLZNT1, 112, cat(writeReq(h2{mid: 2}, 0, nil), make([]byte, 90))))),
			toClient(nb(compChained(4096+80, chainPayload(algNone, 0, -1, make([]byte, 80)), patternPayload(7, 4096)))),
			toServer(nb(compound(treeConnect(3, `\\srv\share`), readReq(h2{mid: 4}, 100, 0)))),
			toServer([]byte{0x85, 0, 0, 0}, nb(writeReq(h2{mid: 5}, 9, make([]byte, 3000))))),
		"eternalblue": {
			toServer(nb(ntTransPrimary(k, 30, 0x10000+100, 0, []uint16{0}, make([]byte, 30),
				cat(u32(0x10000), bytes.Repeat(fea("", nil), 80))))),
			toServer(nb(trans2Secondary(k, 30, 0xffff, 0, 404, nil, bytes.Repeat(fea("x", []byte("y")), 30)))),
			toServer(nb(ntTransSecondary(k, 30, 0x10000+100, 0, 614, nil, make([]byte, 100)))),
		},
		"smb1 set eas": {
			toServer(nb(trans2Primary(k, 6, 40, []uint16{trans2SetPathInfo}, cat(u16(2), u32(0)), feaList(40, fea("abc", []byte("0123")))[:14]))),
			toServer(nb(trans2Secondary(k, 6, 40, 0, 14, nil, make([]byte, 26)))),
		},
	}
}

// TestSplitAnywhere feeds every stream byte by byte and in odd chunks: the
// events must not depend on segmentation.
func TestSplitAnywhere(t *testing.T) {
	for name, s := range streams() {
		want, _, err := run(s, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, chunk := range []int{1, 3, 7, 64, 1000} {
			got, _, err := run(s, chunk)
			if err != nil {
				t.Fatal(err)
			}
			if got.String() != want.String() {
				t.Errorf("%s chunk %d:\n%s\nwant:\n%s", name, chunk, got, want)
			}
		}
	}
}

func TestDetect(t *testing.T) {
	tests := []struct {
		name string
		port uint16
		data []byte
		want analyzer.Confidence
	}{
		{"smb2", 445, nb(h2{}.bytes())[:12], analyzer.Yes},
		{"smb1", 445, nb(make([]byte, 40))[:4], analyzer.NeedMore},
		{"smb1 header", 12345, nb(append([]byte("\xffSMB"), make([]byte, 40)...))[:8], analyzer.Yes},
		{"compression", 445, nb(compUnchained(1, 1, 0, nil)), analyzer.Yes},
		{"encrypted", 445, nb(cat([]byte("\xfdSMB"), make([]byte, 60))), analyzer.Maybe},
		{"keepalive then smb2", 445, cat([]byte{0x85, 0, 0, 0}, nb(h2{}.bytes())), analyzer.Yes},
		{"session request", 139, cat([]byte{0x81, 0, 0, 68}, make([]byte, 68)), analyzer.Maybe},
		{"partial", 445, []byte{0, 0}, analyzer.NeedMore},
		{"http", 445, []byte("GET / HTTP/1.1\r\n"), analyzer.No},
		{"tls", 445, []byte{0x16, 3, 1, 0, 0x50}, analyzer.No},
		{"zero prefix other protocol", 445, []byte{0, 0, 0, 9, 'x', 'S', 'M', 'B'}, analyzer.No},
		{"too short for smb2", 445, []byte{0, 0, 0, 9, 0xfe, 'S', 'M', 'B'}, analyzer.No},
	}
	for _, tc := range tests {
		got := Detect(analyzer.Probe{Transport: analyzer.TCP, ServerPort: tc.port, Data: tc.data})
		if got != tc.want {
			t.Errorf("%s: got %d want %d", tc.name, got, tc.want)
		}
	}
	if Detect(analyzer.Probe{Transport: analyzer.UDP, Data: nb(h2{}.bytes())}) != analyzer.No {
		t.Error("UDP accepted")
	}
	spec, ok := analyzer.Lookup(Name)
	if !ok || spec.Transport != analyzer.TCP || !slices.Equal(spec.Ports, []uint16{445, 139}) || len(spec.Events) != 4 {
		t.Errorf("registration: %+v", spec)
	}
}
