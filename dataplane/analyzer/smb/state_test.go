package smb

import (
	"bytes"
	"sort"
	"testing"

	"github.com/patchgate/patchgate/dataplane"
)

// runSplit feeds stream to analyzer A up to byte k (counted over the whole
// stream), moves A's state to a fresh analyzer B, and lets B finish. Both
// halves record into the same recorder.
func runSplit(t *testing.T, stream []feed, k int) *recorder {
	t.Helper()
	r := &recorder{}
	cur := New()
	off := 0
	moved := false
	move := func() {
		st := cur.MarshalState(nil)
		b := New()
		if err := b.UnmarshalState(st); err != nil {
			t.Fatalf("split %d: %v", k, err)
		}
		if again := b.MarshalState(nil); !bytes.Equal(again, st) {
			t.Fatalf("split %d: state does not round-trip", k)
		}
		cur, moved = b, true
	}
	for _, f := range stream {
		data := f.data
		if !moved && off+len(data) >= k {
			n := k - off
			if err := cur.Feed(f.dir, data[:n], r); err != nil {
				t.Fatal(err)
			}
			data = data[n:]
			move()
		}
		off += len(f.data)
		if len(data) > 0 {
			if err := cur.Feed(f.dir, data, r); err != nil {
				t.Fatal(err)
			}
		}
	}
	if !moved {
		move()
	}
	cur.End(dataplane.ToServer, r)
	cur.End(dataplane.ToClient, r)
	return r
}

// TestStateEverySplit moves the analyzer's state at every byte of every test
// stream: the events must equal those of a single analyzer.
func TestStateEverySplit(t *testing.T) {
	all := streams()
	names := make([]string, 0, len(all))
	for n := range all {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		s := all[name]
		want, _, err := run(s, 0)
		if err != nil {
			t.Fatal(err)
		}
		total := 0
		for _, f := range s {
			total += len(f.data)
		}
		step := 1
		if testing.Short() {
			step = 7
		}
		for k := 0; k <= total; k += step {
			got := runSplit(t, s, k)
			if got.String() != want.String() {
				t.Fatalf("%s split at %d:\n%s\nwant:\n%s", name, k, got, want)
			}
		}
	}
}

// TestStateGapAndResync carries the resynchronisation window across a move.
func TestStateGapAndResync(t *testing.T) {
	echo := nb(h2{cmd: 0xD, mid: 2}.bytes())
	a, r := New(), &recorder{}
	a.Gap(dataplane.ToServer, 10, r)
	_ = a.Feed(dataplane.ToServer, cat([]byte("junk"), echo[:6]), r)
	b := New()
	if err := b.UnmarshalState(a.MarshalState(nil)); err != nil {
		t.Fatal(err)
	}
	_ = b.Feed(dataplane.ToServer, echo[6:], r)
	if m := of[*Message](r); len(m) != 1 || m[0].MessageID != 2 {
		t.Fatalf("%s", r)
	}
}

func TestStateCorrupt(t *testing.T) {
	s := streams()["eternalblue"]
	a, r := New(), &recorder{}
	_ = a.Feed(s[0].dir, s[0].data, r)
	_ = a.Feed(s[1].dir, s[1].data[:70], r)
	st := a.MarshalState(nil)
	if len(a.trans) != 1 || !a.dir[0].rt.active {
		t.Fatalf("test state lacks a transaction in progress")
	}
	for n := 0; n < len(st); n++ {
		if err := New().UnmarshalState(st[:n]); err == nil {
			t.Errorf("truncated state of %d/%d bytes accepted", n, len(st))
		}
	}
	if err := New().UnmarshalState(append(st[:len(st):len(st)], 0)); err == nil {
		t.Error("trailing byte accepted")
	}
	bad := bytes.Clone(st)
	bad[0] = 99
	if err := New().UnmarshalState(bad); err == nil {
		t.Error("unknown version accepted")
	}
	// Every single-byte corruption either fails or yields an analyzer that
	// keeps working without panicking.
	for i := 1; i < len(st); i++ {
		for _, v := range []byte{0, 1, 0x7f, 0xff} {
			bad := bytes.Clone(st)
			bad[i] = v
			b := New()
			if b.UnmarshalState(bad) != nil {
				continue
			}
			rr := &recorder{}
			_ = b.Feed(dataplane.ToServer, s[1].data[70:], rr)
			_ = b.Feed(dataplane.ToServer, s[2].data, rr)
			_ = b.Feed(dataplane.ToClient, s[0].data, rr)
			b.End(dataplane.ToServer, rr)
		}
	}
	// A failed import leaves the analyzer as it was.
	b := New()
	_ = b.UnmarshalState(st)
	before := b.MarshalState(nil)
	_ = b.UnmarshalState(st[:10])
	if !bytes.Equal(before, b.MarshalState(nil)) {
		t.Error("failed import changed the analyzer")
	}
}
