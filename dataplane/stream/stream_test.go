package stream

import (
	"bytes"
	"testing"

	"github.com/patchgate/patchgate/dataplane"
	"github.com/patchgate/patchgate/dataplane/decode"
)

const (
	cISN = 1000
	sISN = 5000
	c2s  = dataplane.ToServer
	s2c  = dataplane.ToClient
)

// seg describes one segment of a test scenario.
type seg struct {
	dir   dataplane.Direction
	flags uint8
	seq   uint32
	ack   uint32
	win   uint16
	data  string
	ts    uint32 // timestamp value; 0: no timestamp option
	wsOpt int    // window scale option in SYN/SYN-ACK; -1 none
}

func (s seg) packet() *decode.Packet {
	p := &decode.Packet{Seq: s.seq, Ack: s.ack, Flags: s.flags, Window: s.win, Payload: []byte(s.data)}
	if p.Window == 0 {
		p.Window = 65535
	}
	if s.ts != 0 {
		p.Opts.HasTimestamp, p.Opts.TSVal = true, s.ts
	}
	if s.wsOpt >= 0 && s.flags&decode.FlagSYN != 0 {
		p.Opts.HasWScale, p.Opts.WScale = true, uint8(s.wsOpt)
	}
	return p
}

const (
	A  = decode.FlagACK
	PA = decode.FlagACK | decode.FlagPSH
)

func handshake() []seg {
	return []seg{
		{dir: c2s, flags: decode.FlagSYN, seq: cISN, wsOpt: -1},
		{dir: s2c, flags: decode.FlagSYN | decode.FlagACK, seq: sISN, ack: cISN + 1, wsOpt: -1},
		{dir: c2s, flags: A, seq: cISN + 1, ack: sISN + 1},
	}
}

type recorder struct {
	got  [2]bytes.Buffer
	gaps [2]int
}

func (r *recorder) Data(dir dataplane.Direction, b []byte) { r.got[dir].Write(b) }
func (r *recorder) Gap(dir dataplane.Direction, n int)     { r.gaps[dir] += n }

func run(t *testing.T, c *Conn, r *recorder, segs []seg) []Result {
	t.Helper()
	var out []Result
	for _, s := range segs {
		out = append(out, c.Segment(s.dir, s.packet(), r))
	}
	return out
}

func TestInOrderAndRetransmission(t *testing.T) {
	c, r := New(DefaultConfig()), &recorder{}
	res := run(t, c, r, append(handshake(),
		seg{dir: c2s, flags: PA, seq: cISN + 1, ack: sISN + 1, data: "GET / HTTP/1.1\r\n"},
		seg{dir: c2s, flags: PA, seq: cISN + 1, ack: sISN + 1, data: "GET / HTTP/1.1\r\n"}, // identical retransmission
		seg{dir: s2c, flags: PA, seq: sISN + 1, ack: cISN + 17, data: "HTTP/1.1 200 OK\r\n"},
	))
	for i, x := range res {
		if x.Verdict != dataplane.Pass {
			t.Fatalf("segment %d: %v %v", i, x.Verdict, x.Reason)
		}
	}
	if c.State != StateEstablished {
		t.Fatalf("state %v", c.State)
	}
	if got := r.got[c2s].String(); got != "GET / HTTP/1.1\r\n" {
		t.Fatalf("client stream %q (retransmission delivered twice?)", got)
	}
	if got := r.got[s2c].String(); got != "HTTP/1.1 200 OK\r\n" {
		t.Fatalf("server stream %q", got)
	}
}

func TestFirstCopyWins(t *testing.T) {
	cases := []struct {
		name string
		segs []seg
	}{
		{"retransmission with different bytes", []seg{
			{dir: c2s, flags: PA, seq: cISN + 1, ack: sISN + 1, data: "GET /aaaa"},
			{dir: c2s, flags: PA, seq: cISN + 1, ack: sISN + 1, data: "GET /bbbb"},
		}},
		{"partial overlap with different bytes", []seg{
			{dir: c2s, flags: PA, seq: cISN + 1, ack: sISN + 1, data: "GET /aaaa"},
			{dir: c2s, flags: PA, seq: cISN + 6, ack: sISN + 1, data: "XXXX HTTP/1.1"},
		}},
		{"out-of-order segments overlapping with different bytes", []seg{
			{dir: c2s, flags: PA, seq: cISN + 5, ack: sISN + 1, data: "aaaa"},
			{dir: c2s, flags: PA, seq: cISN + 7, ack: sISN + 1, data: "bbbb"},
		}},
		{"gap filler overlapping buffered bytes differently", []seg{
			{dir: c2s, flags: PA, seq: cISN + 5, ack: sISN + 1, data: "aaaa"},
			{dir: c2s, flags: PA, seq: cISN + 1, ack: sISN + 1, data: "GET bbbb"},
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, r := New(DefaultConfig()), &recorder{}
			res := run(t, c, r, append(handshake(), tc.segs...))
			last := res[len(res)-1]
			if last.Verdict != dataplane.Drop || last.Reason != dataplane.ReasonTCPOverlap || !last.Evasion {
				t.Fatalf("conflicting copy: %+v, want drop tcp_overlap evasion", last)
			}
		})
	}
}

func TestOutOfOrderReleasedByGapFiller(t *testing.T) {
	c, r := New(DefaultConfig()), &recorder{}
	res := run(t, c, r, append(handshake(),
		seg{dir: c2s, flags: PA, seq: cISN + 5, ack: sISN + 1, data: "/x HTTP/1.1\r\n"},
		seg{dir: c2s, flags: PA, seq: cISN + 8, ack: sISN + 1, data: "HTTP/1.1\r\n"}, // overlaps the buffered segment, same bytes
	))
	if res[3].Verdict != dataplane.Pass || res[4].Verdict != dataplane.Pass || r.got[c2s].Len() != 0 {
		t.Fatalf("out-of-order segments must pass and wait: %+v delivered %q", res, r.got[c2s].String())
	}
	x := c.Segment(c2s, seg{dir: c2s, flags: PA, seq: cISN + 1, ack: sISN + 1, data: "GET "}.packet(), r)
	if x.Verdict != dataplane.Pass {
		t.Fatalf("gap filler: %+v", x)
	}
	if got := r.got[c2s].String(); got != "GET /x HTTP/1.1\r\n" {
		t.Fatalf("stream %q", got)
	}
	if c.Half[c2s].oooBytes != 0 || len(c.Half[c2s].ooo) != 0 {
		t.Fatalf("out-of-order buffer not drained: %d bytes", c.Half[c2s].oooBytes)
	}
}

func TestReceiverWouldDiscard(t *testing.T) {
	cases := []struct {
		name   string
		seg    seg
		reason dataplane.Reason
	}{
		{"data without ACK", seg{dir: c2s, flags: decode.FlagPSH, seq: cISN + 1, data: "GET /"}, dataplane.ReasonTCPState},
		{"data beyond the window", seg{dir: c2s, flags: PA, seq: cISN + 1 + 70000, ack: sISN + 1, data: "GET /"}, dataplane.ReasonTCPWindow},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, r := New(DefaultConfig()), &recorder{}
			run(t, c, r, handshake())
			x := c.Segment(tc.seg.dir, tc.seg.packet(), r)
			if x.Verdict != dataplane.Drop || x.Reason != tc.reason {
				t.Fatalf("got %v/%v, want drop/%v", x.Verdict, x.Reason, tc.reason)
			}
			if r.got[c2s].Len() != 0 {
				t.Fatalf("discarded data delivered: %q", r.got[c2s].String())
			}
		})
	}
}

func TestDataBeforeSynAckDropped(t *testing.T) {
	c, r := New(DefaultConfig()), &recorder{}
	res := run(t, c, r, []seg{
		{dir: c2s, flags: decode.FlagSYN, seq: cISN, wsOpt: -1},
		{dir: c2s, flags: PA, seq: cISN + 1, ack: 1, data: "GET /evil"},
	})
	if res[1].Verdict != dataplane.Drop || res[1].Reason != dataplane.ReasonTCPState {
		t.Fatalf("data before the handshake: %+v", res[1])
	}
}

func TestDataAfterFINDropped(t *testing.T) {
	c, r := New(DefaultConfig()), &recorder{}
	res := run(t, c, r, append(handshake(),
		seg{dir: c2s, flags: PA | decode.FlagFIN, seq: cISN + 1, ack: sISN + 1, data: "bye"},
		seg{dir: c2s, flags: PA, seq: cISN + 5, ack: sISN + 1, data: "more"},
	))
	if !res[3].Ended[c2s] {
		t.Fatalf("FIN in order must end the client stream: %+v", res[3])
	}
	if res[4].Verdict != dataplane.Drop || res[4].Reason != dataplane.ReasonTCPState {
		t.Fatalf("data after FIN: %+v", res[4])
	}
}

func TestRSTMustHitNextSequence(t *testing.T) {
	c, r := New(DefaultConfig()), &recorder{}
	run(t, c, r, handshake())
	// An off-by-some RST (desync attempt) changes nothing.
	x := c.Segment(c2s, seg{dir: c2s, flags: decode.FlagRST, seq: cISN + 100}.packet(), r)
	if x.Reset || c.State != StateEstablished {
		t.Fatalf("in-window RST with wrong sequence accepted: %+v state %v", x, c.State)
	}
	x = c.Segment(c2s, seg{dir: c2s, flags: PA, seq: cISN + 1, ack: sISN + 1, data: "still inspected"}.packet(), r)
	if x.Verdict != dataplane.Pass || r.got[c2s].String() != "still inspected" {
		t.Fatalf("stream lost after a bogus RST: %+v %q", x, r.got[c2s].String())
	}
	x = c.Segment(c2s, seg{dir: c2s, flags: decode.FlagRST, seq: cISN + 16}.packet(), r)
	if !x.Reset || c.State != StateClosed {
		t.Fatalf("exact RST not accepted: %+v", x)
	}
}

func TestPAWS(t *testing.T) {
	c, r := New(DefaultConfig()), &recorder{}
	run(t, c, r, []seg{
		{dir: c2s, flags: decode.FlagSYN, seq: cISN, ts: 100, wsOpt: -1},
		{dir: s2c, flags: decode.FlagSYN | decode.FlagACK, seq: sISN, ack: cISN + 1, ts: 9000, wsOpt: -1},
		{dir: c2s, flags: A, seq: cISN + 1, ack: sISN + 1, ts: 101},
		{dir: c2s, flags: PA, seq: cISN + 1, ack: sISN + 1, ts: 105, data: "GET"},
	})
	x := c.Segment(c2s, seg{dir: c2s, flags: PA, seq: cISN + 4, ack: sISN + 1, ts: 50, data: " /evil"}.packet(), r)
	if x.Verdict != dataplane.Drop || x.Reason != dataplane.ReasonTCPState {
		t.Fatalf("stale timestamp: %+v", x)
	}
	if r.got[c2s].String() != "GET" {
		t.Fatalf("stream %q", r.got[c2s].String())
	}
}

func TestSecondSYNServerDecides(t *testing.T) {
	c, r := New(DefaultConfig()), &recorder{}
	res := run(t, c, r, []seg{
		{dir: c2s, flags: decode.FlagSYN, seq: cISN, wsOpt: -1},
		{dir: c2s, flags: decode.FlagSYN, seq: 777777, wsOpt: -1},
		// The server answered the first SYN.
		{dir: s2c, flags: decode.FlagSYN | decode.FlagACK, seq: sISN, ack: cISN + 1, wsOpt: -1},
		{dir: c2s, flags: A, seq: cISN + 1, ack: sISN + 1},
		{dir: c2s, flags: PA, seq: cISN + 1, ack: sISN + 1, data: "real"},
	})
	for i, x := range res {
		if x.Verdict != dataplane.Pass {
			t.Fatalf("segment %d: %+v", i, x)
		}
	}
	if r.got[c2s].String() != "real" {
		t.Fatalf("stream %q: the server's acknowledgement must pick the ISN", r.got[c2s].String())
	}
}

func TestRetainedLimitFailsClosed(t *testing.T) {
	cfg := DefaultConfig()
	cfg.MaxRetained = 8
	c, r := New(cfg), &recorder{}
	run(t, c, r, handshake())
	x := c.Segment(c2s, seg{dir: c2s, flags: PA, seq: cISN + 1, ack: sISN + 1, data: "12345678"}.packet(), r)
	if x.Verdict != dataplane.Pass {
		t.Fatal(x)
	}
	x = c.Segment(c2s, seg{dir: c2s, flags: PA, seq: cISN + 9, ack: sISN + 1, data: "9"}.packet(), r)
	if x.Verdict != dataplane.Drop || x.Reason != dataplane.ReasonTCPBuffer {
		t.Fatalf("over the retained limit: %+v", x)
	}
	// The server acknowledges: room again, the retransmission goes through.
	c.Segment(s2c, seg{dir: s2c, flags: A, seq: sISN + 1, ack: cISN + 9}.packet(), r)
	x = c.Segment(c2s, seg{dir: c2s, flags: PA, seq: cISN + 9, ack: sISN + 1, data: "9"}.packet(), r)
	if x.Verdict != dataplane.Pass || r.got[c2s].String() != "123456789" {
		t.Fatalf("after ACK: %+v %q", x, r.got[c2s].String())
	}
}

// TestStateRoundTripAtEveryPacket cuts a scenario after every segment, moves
// the connection to a fresh Conn through MarshalState/UnmarshalState and checks
// the rest behaves exactly as without the move.
func TestStateRoundTripAtEveryPacket(t *testing.T) {
	scenario := append(handshake(),
		seg{dir: c2s, flags: PA, seq: cISN + 9, ack: sISN + 1, data: "/x HTTP/1.1\r\n"},
		seg{dir: c2s, flags: PA, seq: cISN + 1, ack: sISN + 1, data: "GET "},
		seg{dir: c2s, flags: PA, seq: cISN + 5, ack: sISN + 1, data: "DIFF"},
		seg{dir: c2s, flags: PA, seq: cISN + 5, ack: sISN + 1, data: "/y /"},
		seg{dir: s2c, flags: PA, seq: sISN + 1, ack: cISN + 12, data: "HTTP/1.1 200 OK\r\n"},
		seg{dir: c2s, flags: PA, seq: cISN + 1, ack: sISN + 1, data: "GET /y /x"},
		seg{dir: c2s, flags: PA | decode.FlagFIN, seq: cISN + 22, ack: sISN + 18, data: "end"},
		seg{dir: s2c, flags: A | decode.FlagFIN, seq: sISN + 18, ack: cISN + 26},
		seg{dir: c2s, flags: PA, seq: cISN + 26, ack: sISN + 19, data: "late"},
	)
	ref, rr := New(DefaultConfig()), &recorder{}
	want := run(t, ref, rr, scenario)
	for cut := 0; cut <= len(scenario); cut++ {
		a, ra := New(DefaultConfig()), &recorder{}
		got := run(t, a, ra, scenario[:cut])
		state := a.MarshalState(nil)
		b := New(DefaultConfig())
		if err := b.UnmarshalState(state); err != nil {
			t.Fatalf("cut %d: %v", cut, err)
		}
		got = append(got, run(t, b, ra, scenario[cut:])...)
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("cut %d segment %d: %+v, want %+v", cut, i, got[i], want[i])
			}
		}
		for d := 0; d < 2; d++ {
			if ra.got[d].String() != rr.got[d].String() {
				t.Fatalf("cut %d dir %d: stream %q, want %q", cut, d, ra.got[d].String(), rr.got[d].String())
			}
		}
		if !bytes.Equal(b.MarshalState(nil), ref.MarshalState(nil)) {
			t.Fatalf("cut %d: final state differs", cut)
		}
	}
}

func FuzzUnmarshalState(f *testing.F) {
	c, r := New(DefaultConfig()), &recorder{}
	run(&testing.T{}, c, r, append(handshake(), seg{dir: c2s, flags: PA, seq: cISN + 5, ack: sISN + 1, data: "abc"}))
	f.Add(c.MarshalState(nil))
	f.Fuzz(func(t *testing.T, b []byte) {
		n := New(DefaultConfig())
		if err := n.UnmarshalState(b); err != nil {
			return
		}
		// A state that loads must survive traffic.
		n.Segment(c2s, seg{dir: c2s, flags: PA, seq: cISN + 1, ack: sISN + 1, data: "GET /"}.packet(), r)
	})
}

// FuzzSegments feeds arbitrary segment sequences: the normaliser must never
// panic and never deliver more bytes than it was given.
func FuzzSegments(f *testing.F) {
	f.Add([]byte{0x02, 0, 0, 0, 0, 0x12, 0, 0, 0, 5, 0x10, 0, 0, 0, 1, 'a'})
	f.Fuzz(func(t *testing.T, b []byte) {
		c, r := New(Config{MaxRetained: 4096, MaxOutOfOrder: 4096, MaxSegments: 16}), &recorder{}
		total := 0
		for len(b) >= 6 {
			flags, seq, n := b[0], uint32(b[1])<<8|uint32(b[2]), int(b[3]%32)
			dir := dataplane.Direction(b[4] & 1)
			ack := uint32(b[5]) << 4
			b = b[6:]
			if n > len(b) {
				n = len(b)
			}
			p := &decode.Packet{Flags: flags, Seq: seq, Ack: ack, Window: 1024, Payload: b[:n]}
			b = b[n:]
			total += n
			c.Segment(dir, p, r)
		}
		if got := r.got[0].Len() + r.got[1].Len(); got > total {
			t.Fatalf("delivered %d bytes, only %d sent", got, total)
		}
		if err := New(DefaultConfig()).UnmarshalState(c.MarshalState(nil)); err != nil {
			t.Fatalf("exported state does not load: %v", err)
		}
	})
}

// TestPAWSToleratesReordering: a later segment arriving early carries a newer
// timestamp; the earlier segments arriving after it are not stale.
func TestPAWSToleratesReordering(t *testing.T) {
	c, r := New(DefaultConfig()), &recorder{}
	res := run(t, c, r, []seg{
		{dir: c2s, flags: decode.FlagSYN, seq: cISN, ts: 100, wsOpt: -1},
		{dir: s2c, flags: decode.FlagSYN | decode.FlagACK, seq: sISN, ack: cISN + 1, ts: 9000, wsOpt: -1},
		{dir: c2s, flags: A, seq: cISN + 1, ack: sISN + 1, ts: 101},
		{dir: c2s, flags: PA, seq: cISN + 4, ack: sISN + 1, ts: 103, data: "def"},
		{dir: c2s, flags: PA, seq: cISN + 1, ack: sISN + 1, ts: 102, data: "abc"},
	})
	for i, x := range res {
		if x.Verdict != dataplane.Pass {
			t.Fatalf("segment %d: %+v", i, x)
		}
	}
	if r.got[c2s].String() != "abcdef" {
		t.Fatalf("stream %q", r.got[c2s].String())
	}
}

// TestLowTTLDecoyDropped: a decoy that would expire before the server is
// dropped instead of being inspected in place of the real bytes, which then
// pass and are inspected.
func TestLowTTLDecoyDropped(t *testing.T) {
	c, r := New(DefaultConfig()), &recorder{}
	hs := handshake()
	var res []Result
	for _, s := range hs {
		p := s.packet()
		p.TTL = 64
		res = append(res, c.Segment(s.dir, p, r))
	}
	decoy := seg{dir: c2s, flags: PA, seq: cISN + 1, ack: sISN + 1, data: "GET /harmless"}.packet()
	decoy.TTL = 2
	x := c.Segment(c2s, decoy, r)
	if x.Verdict != dataplane.Drop || x.Reason != dataplane.ReasonLowTTL || !x.Evasion {
		t.Fatalf("decoy: %+v", x)
	}
	real := seg{dir: c2s, flags: PA, seq: cISN + 1, ack: sISN + 1, data: "GET /etc/pass"}.packet()
	real.TTL = 63 // one hop fewer after a route change: still fine
	if x := c.Segment(c2s, real, r); x.Verdict != dataplane.Pass || r.got[c2s].String() != "GET /etc/pass" {
		t.Fatalf("real segment: %+v, stream %q", x, r.got[c2s].String())
	}
}

// TestUrgentDataDropped: the receiver would pull the urgent byte out of the
// stream, so the segment cannot be inspected as the server will see it.
func TestUrgentDataDropped(t *testing.T) {
	c, r := New(DefaultConfig()), &recorder{}
	run(t, c, r, handshake())
	p := seg{dir: c2s, flags: PA | decode.FlagURG, seq: cISN + 1, ack: sISN + 1, data: "GET /etc/pXasswd"}.packet()
	p.Urgent = 11
	if x := c.Segment(c2s, p, r); x.Verdict != dataplane.Drop || x.Reason != dataplane.ReasonTCPUrgent {
		t.Fatalf("urgent data: %+v", x)
	}
	if r.got[c2s].Len() != 0 {
		t.Fatalf("urgent segment delivered: %q", r.got[c2s].String())
	}
}

// TestGapOnAck: a capture that lost a segment the server received shows the
// server acknowledging past it; the stream skips the gap (reported) and goes on
// delivering what follows instead of stalling.
func TestGapOnAck(t *testing.T) {
	c, r := New(DefaultConfig()), &recorder{}
	res := run(t, c, r, append(handshake(),
		seg{dir: c2s, flags: PA, seq: cISN + 1, ack: sISN + 1, data: "GET /a HTTP/1.1\r\n\r\n"},
		// lost in the capture: 22 bytes at cISN+20
		seg{dir: c2s, flags: PA, seq: cISN + 42, ack: sISN + 1, data: "GET /c"},
		seg{dir: s2c, flags: A, seq: sISN + 1, ack: cISN + 48},
		seg{dir: c2s, flags: PA, seq: cISN + 48, ack: sISN + 1, data: " HTTP/1.1\r\n\r\n"},
	))
	for i, x := range res {
		if x.Verdict != dataplane.Pass {
			t.Fatalf("segment %d: %+v", i, x)
		}
	}
	if r.gaps[c2s] != 22 {
		t.Fatalf("gap %d, want 22", r.gaps[c2s])
	}
	if got := r.got[c2s].String(); got != "GET /a HTTP/1.1\r\n\r\nGET /c HTTP/1.1\r\n\r\n" {
		t.Fatalf("stream %q", got)
	}
	// Inline (GapOnAck off) the acknowledgement is clamped and nothing is skipped.
	cfg := DefaultConfig()
	cfg.GapOnAck = false
	c2, r2 := New(cfg), &recorder{}
	run(t, c2, r2, append(handshake(),
		seg{dir: c2s, flags: PA, seq: cISN + 42, ack: sISN + 1, data: "GET /c"},
		seg{dir: s2c, flags: A, seq: sISN + 1, ack: cISN + 48},
	))
	if r2.gaps[c2s] != 0 || r2.got[c2s].Len() != 0 {
		t.Fatalf("inline: gap %d, stream %q", r2.gaps[c2s], r2.got[c2s].String())
	}
}

// TestGapOnAckMoved: inline (GapOnAck off), a connection resumed from
// another node's checkpoint that is behind what that node forwarded sees
// the receiver acknowledge the bytes it missed: it skips them as a gap
// instead of stalling the connection.
func TestGapOnAckMoved(t *testing.T) {
	cfg := DefaultConfig()
	cfg.GapOnAck = false
	c, r := New(cfg), &recorder{}
	run(t, c, r, append(handshake(),
		seg{dir: c2s, flags: PA, seq: cISN + 1, ack: sISN + 1, data: "GET /a HTTP/1.1\r\n\r\n"},
	))
	c.MarkMoved() // as the engine does on import
	run(t, c, r, []seg{
		// forwarded by the old node after its checkpoint: 22 bytes at cISN+20
		{dir: c2s, flags: PA, seq: cISN + 42, ack: sISN + 1, data: "GET /c"},
		{dir: s2c, flags: A, seq: sISN + 1, ack: cISN + 48},
		{dir: c2s, flags: PA, seq: cISN + 48, ack: sISN + 1, data: " HTTP/1.1\r\n\r\n"},
	})
	if r.gaps[c2s] != 22 {
		t.Fatalf("gap %d, want 22", r.gaps[c2s])
	}
	if got := r.got[c2s].String(); got != "GET /a HTTP/1.1\r\n\r\nGET /c HTTP/1.1\r\n\r\n" {
		t.Fatalf("stream %q", got)
	}
}

// TestMovedStaleWindow: a bulk transfer resumed from a checkpoint far behind
// the sender (beyond the window the checkpoint recorded) is not dropped as
// out of window; the receiver's acknowledgement closes the hole and the
// stream goes on. Without MarkMoved the same segment is dropped.
func TestMovedStaleWindow(t *testing.T) {
	cfg := DefaultConfig()
	cfg.GapOnAck = false
	for _, moved := range []bool{false, true} {
		c, r := New(cfg), &recorder{}
		run(t, c, r, append(handshake(),
			seg{dir: c2s, flags: PA, seq: cISN + 1, ack: sISN + 1, data: "GET /big HTTP/1.1\r\n\r\n"},
			seg{dir: s2c, flags: A, seq: sISN + 1, ack: cISN + 23},
		))
		if moved {
			c.MarkMoved()
		}
		ahead := uint32(sISN + 1 + 200000) // far beyond the 65535-byte window recorded
		res := run(t, c, r, []seg{
			{dir: s2c, flags: PA, seq: ahead, ack: cISN + 23, data: "body bytes"},
			{dir: c2s, flags: A, seq: cISN + 23, ack: ahead + 10},
		})
		if !moved {
			if res[0].Verdict != dataplane.Drop || res[0].Reason != dataplane.ReasonTCPWindow {
				t.Fatalf("not moved: segment beyond the window: %+v", res[0])
			}
			continue
		}
		if res[0].Verdict != dataplane.Pass {
			t.Fatalf("moved: segment beyond the stale window: %+v", res[0])
		}
		if r.gaps[s2c] != 200000 || r.got[s2c].String() != "body bytes" {
			t.Fatalf("moved: gap %d, stream %q", r.gaps[s2c], r.got[s2c].String())
		}
	}
}
