package dns

import (
	"reflect"
	"strings"
	"testing"

	"github.com/patchgate/patchgate/dataplane"
)

// tcpStream is three messages on one TCP direction: a response with every
// typed record, a response with a SIG record, and a malformed message.
func tcpStream() []byte {
	sig := cat(hdr(2, flagsResponse, 1, 1, 0, 0), question(wname("example.com"), TypeSIG, 1),
		rr(ptr(12), TypeSIG, 1, 60, sigRdata(TypeA, ptr(12), 700)))
	bad := cat(hdr(3, flagsResponse, 1, 0, 0, 0), []byte{0xC0, 0x0C})
	return tcpFrame(fullResponse(), sig, bad)
}

func feedAll(a *Analyzer, dir dataplane.Direction, s *recSink, pieces ...[]byte) {
	for _, p := range pieces {
		if err := a.Feed(dir, p, s); err != nil {
			panic(err)
		}
	}
}

func TestTCPFraming(t *testing.T) {
	data := tcpStream()
	whole := &recSink{}
	feedAll(NewTCP(), dataplane.ToClient, whole, data)
	if len(whole.msgs) != 3 || whole.boundaries != 3 || len(whole.violations) != 1 || whole.violations[0] != "dns.name_pointer_forward" {
		t.Fatalf("whole stream: %d messages, %d boundaries, violations %v", len(whole.msgs), whole.boundaries, whole.violations)
	}
	for i, m := range whole.msgs {
		if m.Index != i || m.Transport != "tcp" || m.Length+2 > len(data) {
			t.Errorf("message %d: index %d transport %s", i, m.Index, m.Transport)
		}
	}
	if whole.msgs[1].SigMaxAllocSize != 13+20+700 {
		t.Errorf("sig alloc %d", whole.msgs[1].SigMaxAllocSize)
	}
	// Every split into two segments, and one byte per segment, give the same
	// events as the whole stream.
	for k := 0; k <= len(data); k++ {
		s := &recSink{}
		feedAll(NewTCP(), dataplane.ToClient, s, data[:k], data[k:])
		if !reflect.DeepEqual(s.log, whole.log) {
			t.Fatalf("split at %d differs:\n%s\nwant\n%s", k, strings.Join(s.log, "\n"), strings.Join(whole.log, "\n"))
		}
	}
	s := &recSink{}
	a := NewTCP()
	for i := range data {
		feedAll(a, dataplane.ToClient, s, data[i:i+1])
	}
	if !reflect.DeepEqual(s.log, whole.log) {
		t.Fatalf("byte-by-byte differs")
	}
}

// TestTCPStateEverySplit exports the state after data[:k] and continues in a
// fresh analyzer: together they must produce exactly the events of one
// analyzer fed the whole stream, in both directions.
func TestTCPStateEverySplit(t *testing.T) {
	query := tcpFrame(cat(hdr(9, flagsQuery, 1, 0, 0, 1), question(wname("example.com"), TypeSIG, 1),
		rr(wname("."), TypeOPT, 4096, 0x8000, nil)))
	resp := tcpStream()
	whole := &recSink{}
	one := NewTCP()
	feedAll(one, dataplane.ToServer, whole, query)
	feedAll(one, dataplane.ToClient, whole, resp)
	for k := 0; k <= len(query)+len(resp); k++ {
		s := &recSink{}
		a := NewTCP()
		feed := func(an *Analyzer, lo, hi int) {
			if lo < len(query) {
				feedAll(an, dataplane.ToServer, s, query[lo:min(hi, len(query))])
			}
			if hi > len(query) {
				feedAll(an, dataplane.ToClient, s, resp[max(lo-len(query), 0):hi-len(query)])
			}
		}
		feed(a, 0, k)
		state := a.MarshalState(nil)
		b := NewTCP()
		if err := b.UnmarshalState(state); err != nil {
			t.Fatalf("split %d: %v", k, err)
		}
		if again := b.MarshalState(nil); !reflect.DeepEqual(again, state) {
			t.Fatalf("split %d: state does not round-trip", k)
		}
		feed(b, k, len(query)+len(resp))
		if !reflect.DeepEqual(s.log, whole.log) {
			t.Fatalf("split %d differs:\n%s\nwant\n%s", k, strings.Join(s.log, "\n"), strings.Join(whole.log, "\n"))
		}
	}
}

func TestTCPZeroLengthMessage(t *testing.T) {
	s := &recSink{}
	query := cat(hdr(1, flagsQuery, 1, 0, 0, 0), question(wname("a"), TypeA, 1))
	feedAll(NewTCP(), dataplane.ToServer, s, cat([]byte{0, 0}, tcpFrame(query)))
	if len(s.msgs) != 2 || s.msgs[0].MalformedReason != reasonShortHeader || s.msgs[1].QName != "a" || s.msgs[1].Index != 1 {
		t.Fatalf("got %v", s.log)
	}
}

func TestTCPGap(t *testing.T) {
	q1 := cat(hdr(1, flagsQuery, 1, 0, 0, 0), question(wname("one.example"), TypeA, 1))
	q2 := cat(hdr(2, flagsQuery, 1, 0, 0, 0), question(wname("two.example"), TypeA, 1))
	q3 := cat(hdr(3, flagsQuery, 1, 0, 0, 0), question(wname("three.example"), TypeA, 1))
	names := func(s *recSink) []string {
		var out []string
		for _, m := range s.msgs {
			out = append(out, m.QName)
		}
		return out
	}
	dir := dataplane.ToServer

	t.Run("inside a message", func(t *testing.T) {
		a, s := NewTCP(), &recSink{}
		f := tcpFrame(q1)
		feedAll(a, dir, s, f[:5])
		a.Gap(dir, 4, s)
		feedAll(a, dir, s, f[9:], tcpFrame(q2))
		if got := names(s); !reflect.DeepEqual(got, []string{"two.example"}) {
			t.Errorf("got %v", got)
		}
	})
	t.Run("to the end of a message", func(t *testing.T) {
		a, s := NewTCP(), &recSink{}
		f := tcpFrame(q1)
		feedAll(a, dir, s, f[:5])
		a.Gap(dir, len(f)-5, s)
		feedAll(a, dir, s, tcpFrame(q2))
		if got := names(s); !reflect.DeepEqual(got, []string{"two.example"}) {
			t.Errorf("got %v", got)
		}
	})
	t.Run("past the message resynchronises", func(t *testing.T) {
		a, s := NewTCP(), &recSink{}
		f := tcpFrame(q1, q2)
		feedAll(a, dir, s, f[:5])
		a.Gap(dir, len(f)-5-3, s)
		// The tail of q2 is not a message start and is ignored; the next
		// segment starting with a whole message is parsed.
		feedAll(a, dir, s, f[len(f)-3:], tcpFrame(q3))
		if got := names(s); !reflect.DeepEqual(got, []string{"three.example"}) {
			t.Errorf("got %v", got)
		}
	})
	t.Run("at a boundary resynchronises", func(t *testing.T) {
		a, s := NewTCP(), &recSink{}
		a.Gap(dir, len(tcpFrame(q1)), s)
		feedAll(a, dir, s, tcpFrame(q2, q3))
		if got := names(s); !reflect.DeepEqual(got, []string{"two.example", "three.example"}) {
			t.Errorf("got %v", got)
		}
		if len(s.violations) != 0 {
			t.Errorf("violations %v", s.violations)
		}
	})
}

func TestTCPEnd(t *testing.T) {
	a, s := NewTCP(), &recSink{}
	q := tcpFrame(cat(hdr(1, flagsQuery, 1, 0, 0, 0), question(wname("a"), TypeA, 1)))
	feedAll(a, dataplane.ToServer, s, q[:6])
	a.End(dataplane.ToServer, s)
	feedAll(a, dataplane.ToServer, s, q)
	if len(s.log) != 0 {
		t.Errorf("events after end or for an incomplete message: %v", s.log)
	}
	feedAll(a, dataplane.ToClient, s, q)
	if len(s.msgs) != 1 {
		t.Errorf("other direction: %v", s.log)
	}
}

// TestTCPBufferBound checks that a direction never buffers more than one
// message, and releases a large buffer after its message.
func TestTCPBufferBound(t *testing.T) {
	a, s := NewTCP(), &recSink{}
	big := cat(hdr(1, flagsResponse, 1, 1, 0, 0), question(wname("a"), TypeTXT, 1))
	big = cat(big, rr(ptr(12), 10, 1, 0, make([]byte, MaxMessageSize-len(big)-12)))
	f := tcpFrame(big)
	if len(f) != MaxMessageSize+2 {
		t.Fatalf("frame %d", len(f))
	}
	f = append(f, 0) // one byte of the next message
	for i := 0; i < len(f); i += 1000 {
		feedAll(a, dataplane.ToClient, s, f[i:min(i+1000, len(f))])
		if n := cap(a.dirs[1].buf); n > MaxMessageSize {
			t.Fatalf("buffer capacity %d", n)
		}
	}
	if len(s.msgs) != 1 || s.msgs[0].Malformed || s.msgs[0].Length != MaxMessageSize {
		t.Fatalf("got %d messages", len(s.msgs))
	}
	if a.dirs[1].buf != nil || a.dirs[1].have != 1 {
		t.Errorf("buffer kept after a large message: cap %d", cap(a.dirs[1].buf))
	}
}

func TestUnmarshalStateRejects(t *testing.T) {
	tcp := NewTCP()
	s := &recSink{}
	feedAll(tcp, dataplane.ToClient, s, tcpStream()[:40])
	good := tcp.MarshalState(nil)
	if err := NewTCP().UnmarshalState(good); err != nil {
		t.Fatal(err)
	}
	tests := map[string][]byte{
		"empty":          nil,
		"version":        append([]byte{9}, good[1:]...),
		"transport":      append([]byte{stateVersion, stateUDP}, good[2:]...),
		"truncated":      good[:len(good)-1],
		"trailing":       append(append([]byte(nil), good...), 0),
		"phase":          {stateVersion, stateTCP, 0, byte(numPhases), 0, 0, 0},
		"prefix bytes":   {stateVersion, stateTCP, 0, byte(phaseLen), 2, 0, 0, 0},
		"zero need":      {stateVersion, stateTCP, 0, byte(phaseBody), 0, 0, 0, 0, 0},
		"need too big":   {stateVersion, stateTCP, 0, byte(phaseBody), 0x80, 0x80, 0x04, 0, 0, 0, 0},
		"buffer >= need": {stateVersion, stateTCP, 0, byte(phaseBody), 2, 2, 7, 7, 0, 0, 0},
		"skip zero":      {stateVersion, stateTCP, 0, byte(phaseSkip), 0, 0, 0, 0},
		"udp body":       {stateVersion, stateUDP, 0, byte(phaseBody), 5, 0, 0, 0, 0},
	}
	for name, st := range tests {
		a := NewTCP()
		if name == "udp body" {
			a = NewUDP()
		}
		before := a.MarshalState(nil)
		if err := a.UnmarshalState(st); err == nil {
			t.Errorf("%s: accepted", name)
		} else if !strings.HasPrefix(err.Error(), "dataplane/dns: ") {
			t.Errorf("%s: error %q lacks origin", name, err)
		}
		if after := a.MarshalState(nil); !reflect.DeepEqual(before, after) {
			t.Errorf("%s: state changed by a rejected record", name)
		}
	}
}

func TestUDPState(t *testing.T) {
	a, s := NewUDP(), &recSink{}
	q := cat(hdr(1, flagsQuery, 1, 0, 0, 0), question(wname("a"), TypeA, 1))
	feedAll(a, dataplane.ToServer, s, q, q)
	b := NewUDP()
	if err := b.UnmarshalState(a.MarshalState(nil)); err != nil {
		t.Fatal(err)
	}
	feedAll(b, dataplane.ToServer, s, q)
	if len(s.msgs) != 3 || s.msgs[2].Index != 2 {
		t.Errorf("message index not carried over: %v", s.log)
	}
	if err := NewTCP().UnmarshalState(a.MarshalState(nil)); err == nil {
		t.Error("TCP analyzer accepted UDP state")
	}
}
