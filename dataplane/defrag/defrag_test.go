package defrag

import (
	"strings"
	"testing"
	"time"

	"github.com/google/gopacket/layers"

	"github.com/patchgate/patchgate/dataplane"
	"github.com/patchgate/patchgate/dataplane/decode"
)

// testConfig is the default configuration; tests shrink what they exercise.
func testConfig() Config { return DefaultConfig() }

// orders lists the delivery orders every reassembly test is run with.
var orders = map[string]func(n int) []int{
	"in order": func(n int) []int {
		o := make([]int, n)
		for i := range o {
			o[i] = i
		}
		return o
	},
	"reverse": func(n int) []int {
		o := make([]int, n)
		for i := range o {
			o[i] = n - 1 - i
		}
		return o
	},
	"last first, then odd, then even": func(n int) []int {
		o := []int{n - 1}
		for i := 1; i < n-1; i += 2 {
			o = append(o, i)
		}
		for i := 0; i < n-1; i += 2 {
			o = append(o, i)
		}
		return o
	},
}

func TestReassembleOrders(t *testing.T) {
	full4, l44 := datagram4(t, 77, pattern(300, 1))
	full6, l46 := datagram6(t, pattern(300, 2))
	for name, order := range orders {
		for _, v := range []struct {
			name string
			full []byte
			frag func(piece) []byte
			l4   []byte
		}{
			{"ipv4", full4, func(p piece) []byte { return frag4(t, 77, layers.IPProtocolTCP, p.off, p.more, l44[p.off:p.off+p.n]) }, l44},
			{"ipv6", full6, func(p piece) []byte { return frag6(t, 9, 6, p.off, p.more, l46[p.off:p.off+p.n]) }, l46},
		} {
			t.Run(v.name+"/"+name, func(t *testing.T) {
				h := newHarness(t, testConfig())
				pieces := split(v.l4, 96)
				idx := order(len(pieces))
				for i, k := range idx {
					res := h.feed(v.frag(pieces[k]), t0.Add(time.Duration(i)*time.Millisecond))
					if i < len(idx)-1 {
						if res.Action != Incomplete {
							t.Fatalf("fragment %d: %v %v, want incomplete", k, res.Action, res.Reason)
						}
						continue
					}
					h.checkDatagram(res, v.full)
				}
				if s := h.r.Stats(); s.Reassembled != 1 || s.Datagrams != 0 || s.Bytes != 0 {
					t.Fatalf("after completion: %+v", s)
				}
			})
		}
	}
}

func TestNotFragment(t *testing.T) {
	h := newHarness(t, testConfig())
	full, _ := datagram4(t, 1, []byte("whole"))
	if res := h.feed(full, t0); res.Action != NotFragment {
		t.Fatalf("whole datagram: %v", res.Action)
	}
	if s := h.r.Stats(); s.Fragments != 0 {
		t.Fatalf("counted a non-fragment: %+v", s)
	}
}

func TestDuplicatesAndIdenticalOverlapsAccepted(t *testing.T) {
	full, l4 := datagram4(t, 5, pattern(100, 3)) // 120 transport bytes
	h := newHarness(t, testConfig())
	steps := []piece{
		{0, 48, true},
		{0, 48, true},  // exact duplicate
		{40, 40, true}, // overlaps [40,48) with the same bytes
		{16, 16, true}, // entirely inside what was received
		{72, 48, false},
		{72, 48, false}, // duplicate last fragment, arriving after completion
	}
	var res Result
	for i, s := range steps[:5] {
		res = h.feed(frag4(t, 5, layers.IPProtocolTCP, s.off, s.more, l4[s.off:s.off+s.n]), t0)
		if i < 4 && res.Action != Incomplete {
			t.Fatalf("step %d: %v %v", i, res.Action, res.Reason)
		}
	}
	h.checkDatagram(res, full)
	if s := h.r.Stats(); s.Duplicates != 4 || s.Overlaps != 0 {
		t.Fatalf("stats %+v, want 4 duplicates and no overlap", s)
	}
}

func TestDifferentOverlapPoisons(t *testing.T) {
	_, l4 := datagram4(t, 6, pattern(100, 4))
	evil := append([]byte(nil), l4...)
	evil[44] ^= 0xff // inside [40,48)
	cases := []struct {
		name   string
		steps  []piece
		srcs   [][]byte // which bytes each step carries
		header bool
	}{
		// A later fragment overlaps an earlier one with different bytes.
		{"new overlaps old", []piece{{0, 48, true}, {40, 40, true}}, [][]byte{l4, evil}, false},
		// The fragment arriving first covers later offsets; the one arriving
		// second starts before it and disagrees in the overlap.
		{"old overlaps new", []piece{{40, 40, true}, {0, 48, true}}, [][]byte{l4, evil}, false},
		// RFC 1858: a fragment at offset 8 rewrites the TCP flags (byte 13).
		{"transport header rewritten", []piece{{0, 24, true}, {8, 16, true}}, [][]byte{l4, flipAt(l4, 13)}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, testConfig())
			first, second := tc.steps[0], tc.steps[1]
			if res := h.feed(frag4(t, 6, layers.IPProtocolTCP, first.off, first.more, tc.srcs[0][first.off:first.off+first.n]), t0); res.Action != Incomplete {
				t.Fatalf("first: %v", res.Action)
			}
			res := h.feed(frag4(t, 6, layers.IPProtocolTCP, second.off, second.more, tc.srcs[1][second.off:second.off+second.n]), t0)
			if res.Action != Drop || res.Reason != dataplane.ReasonFragOverlap {
				t.Fatalf("overlap: %v %v, want drop frag_overlap", res.Action, res.Reason)
			}
			// The datagram is poisoned: its remaining fragments are dropped
			// too, even ones that would complete it with consistent bytes.
			for _, p := range []piece{{48, 32, true}, {80, 40, false}, {0, 8, true}} {
				res := h.feed(frag4(t, 6, layers.IPProtocolTCP, p.off, p.more, l4[p.off:p.off+p.n]), t0.Add(time.Second))
				if res.Action != Drop || res.Reason != dataplane.ReasonFragOverlap {
					t.Fatalf("later fragment at %d: %v %v, want drop frag_overlap", p.off, res.Action, res.Reason)
				}
			}
			s := h.r.Stats()
			if s.Overlaps != 1 || s.DroppedOverlap != 4 || s.Datagrams != 0 || s.Tombstones != 1 {
				t.Fatalf("stats %+v", s)
			}
			if (s.HeaderOverlaps == 1) != tc.header {
				t.Fatalf("HeaderOverlaps = %d, want header overlap %v", s.HeaderOverlaps, tc.header)
			}
		})
	}
}

func flipAt(b []byte, i int) []byte {
	c := append([]byte(nil), b...)
	c[i] ^= 0x02 // SYN
	return c
}

func TestTinyFragments(t *testing.T) {
	full, l4 := datagram4(t, 8, []byte("tiny fragments evade naive inspection!!!"))
	h := newHarness(t, testConfig())
	pieces := split(l4, 8)
	if len(pieces) < 7 {
		t.Fatalf("only %d pieces", len(pieces))
	}
	var res Result
	for _, k := range orders["last first, then odd, then even"](len(pieces)) {
		res = h.feed(frag4(t, 8, layers.IPProtocolTCP, pieces[k].off, pieces[k].more, l4[pieces[k].off:pieces[k].off+pieces[k].n]), t0)
	}
	h.checkDatagram(res, full)
}

func TestTimeout(t *testing.T) {
	cfg := testConfig()
	cfg.Timeout = 30 * time.Second
	full, l4 := datagram4(t, 9, pattern(100, 5))
	frag := func(off, n int, more bool) []byte { return frag4(t, 9, layers.IPProtocolTCP, off, more, l4[off:off+n]) }

	t.Run("just before the deadline", func(t *testing.T) {
		h := newHarness(t, cfg)
		h.feed(frag(0, 40, true), t0)
		edge := t0.Add(cfg.Timeout - time.Nanosecond)
		if n := h.r.Expire(edge); n != 0 {
			t.Fatalf("Expire one nanosecond early removed %d datagrams", n)
		}
		h.feed(frag(40, 40, true), edge)
		h.checkDatagram(h.feed(frag(80, 40, false), edge), full)
	})
	t.Run("at the deadline", func(t *testing.T) {
		h := newHarness(t, cfg)
		h.feed(frag(0, 40, true), t0)
		h.feed(frag(40, 40, true), t0.Add(time.Second))
		if n := h.r.Expire(t0.Add(cfg.Timeout)); n != 1 {
			t.Fatalf("Expire at the deadline removed %d datagrams, want 1", n)
		}
		if s := h.r.Stats(); s.Timeouts != 1 || s.Datagrams != 0 || s.Bytes != 0 {
			t.Fatalf("stats %+v", s)
		}
		// The last fragment now starts a new partial datagram: no tombstone.
		if res := h.feed(frag(80, 40, false), t0.Add(cfg.Timeout)); res.Action != Incomplete {
			t.Fatalf("late fragment: %v %v", res.Action, res.Reason)
		}
	})
	t.Run("packet clock expires without Expire", func(t *testing.T) {
		h := newHarness(t, cfg)
		h.feed(frag(0, 40, true), t0)
		if res := h.feed(frag(40, 40, true), t0.Add(cfg.Timeout)); res.Action != Incomplete {
			t.Fatalf("%v", res.Action)
		}
		if res := h.feed(frag(80, 40, false), t0.Add(cfg.Timeout)); res.Action != Incomplete {
			t.Fatalf("the expired first fragment must not be used: %v", res.Action)
		}
		if s := h.r.Stats(); s.Timeouts != 1 || s.Datagrams != 1 {
			t.Fatalf("stats %+v", s)
		}
	})
}

func TestEvictionUnderCountLimit(t *testing.T) {
	cfg := testConfig()
	cfg.MaxDatagrams = 2
	h := newHarness(t, cfg)
	type dg struct {
		full, l4 []byte
	}
	var dgs []dg
	for id := uint16(1); id <= 3; id++ {
		full, l4 := datagram4(t, id, pattern(60, byte(id)))
		dgs = append(dgs, dg{full, l4})
		if res := h.feed(frag4(t, id, layers.IPProtocolTCP, 0, true, l4[:40]), t0.Add(time.Duration(id)*time.Second)); res.Action != Incomplete {
			t.Fatalf("datagram %d: %v", id, res.Action)
		}
	}
	if s := h.r.Stats(); s.Evicted != 1 || s.Datagrams != 2 || s.Tombstones != 1 {
		t.Fatalf("stats %+v, want the oldest evicted", s)
	}
	// The evicted datagram's last fragment is dropped, not forwarded.
	if res := h.feed(frag4(t, 1, layers.IPProtocolTCP, 40, false, dgs[0].l4[40:]), t0.Add(4*time.Second)); res.Action != Drop || res.Reason != dataplane.ReasonFragLimit {
		t.Fatalf("evicted datagram: %v %v, want drop frag_limit", res.Action, res.Reason)
	}
	for i := 1; i < 3; i++ {
		h.checkDatagram(h.feed(frag4(t, uint16(i+1), layers.IPProtocolTCP, 40, false, dgs[i].l4[40:]), t0.Add(5*time.Second)), dgs[i].full)
	}
}

func TestEvictionUnderMemoryLimit(t *testing.T) {
	cfg := testConfig()
	cfg.MaxBytes = minMaxBytes
	h := newHarness(t, cfg)
	// Each datagram's last fragment sits near 64 KiB, so each needs a
	// near-maximal buffer; the second cannot fit beside the first.
	high := 65000
	for id := uint16(1); id <= 2; id++ {
		res := h.feed(frag4(t, id, layers.IPProtocolUDP, high, false, pattern(40, byte(id))), t0.Add(time.Duration(id)*time.Second))
		if res.Action != Incomplete {
			t.Fatalf("datagram %d: %v %v", id, res.Action, res.Reason)
		}
		if s := h.r.Stats(); s.Bytes > cfg.MaxBytes {
			t.Fatalf("%d bytes buffered, limit %d", s.Bytes, cfg.MaxBytes)
		}
	}
	if s := h.r.Stats(); s.Evicted != 1 || s.Datagrams != 1 {
		t.Fatalf("stats %+v, want the first datagram evicted", s)
	}
	if res := h.feed(frag4(t, 1, layers.IPProtocolUDP, 0, true, pattern(64, 9)), t0.Add(3*time.Second)); res.Reason != dataplane.ReasonFragLimit {
		t.Fatalf("evicted datagram's fragment: %v %v", res.Action, res.Reason)
	}
}

func TestFragmentCountLimit(t *testing.T) {
	cfg := testConfig()
	cfg.MaxFragmentsPerDatagram = 4
	h := newHarness(t, cfg)
	_, l4 := datagram4(t, 3, pattern(100, 6))
	for i := 0; i < 4; i++ {
		if res := h.feed(frag4(t, 3, layers.IPProtocolTCP, i*8, true, l4[i*8:i*8+8]), t0); res.Action != Incomplete {
			t.Fatalf("fragment %d: %v", i, res.Action)
		}
	}
	for i := 4; i < 6; i++ {
		res := h.feed(frag4(t, 3, layers.IPProtocolTCP, i*8, true, l4[i*8:i*8+8]), t0)
		if res.Action != Drop || res.Reason != dataplane.ReasonFragLimit {
			t.Fatalf("fragment %d: %v %v, want drop frag_limit", i, res.Action, res.Reason)
		}
	}
}

func TestMalformedFragments(t *testing.T) {
	_, l4 := datagram4(t, 4, pattern(100, 7))
	f := func(off int, more bool, data []byte) []byte {
		return frag4(t, 4, layers.IPProtocolTCP, off, more, data)
	}
	cases := []struct {
		name  string
		setup [][]byte
		bad   []byte
	}{
		{"beyond 65535", nil, f(65528, false, make([]byte, 16))},
		{"ragged non-last fragment", nil, f(0, true, l4[:20])},
		{"empty fragment", nil, f(8, true, nil)},
		{"after the last fragment", [][]byte{f(64, false, l4[64:80])}, f(80, true, l4[80:88])},
		{"second, different end", [][]byte{f(64, false, l4[64:80])}, f(72, false, l4[72:96])},
		{"last before received data", [][]byte{f(64, true, l4[64:80])}, f(40, false, l4[40:48])},
	}
	for _, tc := range cases {
		h := newHarness(t, testConfig())
		for _, s := range tc.setup {
			if res := h.feed(s, t0); res.Action != Incomplete {
				t.Fatalf("%s: setup %v", tc.name, res.Action)
			}
		}
		if res := h.feed(tc.bad, t0); res.Action != Drop || res.Reason != dataplane.ReasonMalformed {
			t.Errorf("%s: %v %v, want drop malformed", tc.name, res.Action, res.Reason)
		}
	}
	// A truncated capture of a fragment cannot be reassembled faithfully.
	h := newHarness(t, testConfig())
	pkt := f(0, true, l4[:48])
	var p decode.Packet
	if err := decode.NewDecoder().DecodeIP(pkt[:50], t0, &p); err != nil || !p.Truncated {
		t.Fatalf("setup: %v truncated %v", err, p.Truncated)
	}
	if res := h.r.Process(&p); res.Reason != dataplane.ReasonMalformed {
		t.Fatalf("truncated fragment: %v %v", res.Action, res.Reason)
	}
}

func TestIPv6ExtensionChains(t *testing.T) {
	exts := []ext6{{0, 8}, {60, 16}, {43, 8}}
	full, l4 := datagram6(t, pattern(200, 8), exts...)
	h := newHarness(t, testConfig())
	pieces := split(l4, 80)
	var res Result
	for i, k := range orders["reverse"](len(pieces)) {
		p := pieces[k]
		res = h.feed(frag6(t, 0xdead, 6, p.off, p.more, l4[p.off:p.off+p.n], exts...), t0)
		if i < len(pieces)-1 && res.Action != Incomplete {
			t.Fatalf("piece %d: %v %v", k, res.Action, res.Reason)
		}
	}
	h.checkDatagram(res, full)

	// An atomic fragment completes at once, without touching queued state.
	h.feed(frag6(t, 0xbeef, 6, 0, true, l4[:80], exts...), t0) // a queued datagram with the same id
	res = h.feed(frag6(t, 0xbeef, 6, 0, false, l4, exts...), t0)
	h.checkDatagram(res, full)
	if s := h.r.Stats(); s.Atomic != 1 || s.Datagrams != 1 {
		t.Fatalf("stats %+v", s)
	}
}

func TestKeysSeparateDatagrams(t *testing.T) {
	h := newHarness(t, testConfig())
	full, l4 := datagram4(t, 42, pattern(50, 9))
	// Same identifier but another protocol: a different datagram.
	if res := h.feed(frag4(t, 42, layers.IPProtocolUDP, 0, true, pattern(64, 1)), t0); res.Action != Incomplete {
		t.Fatal(res.Action)
	}
	h.feed(frag4(t, 42, layers.IPProtocolTCP, 0, true, l4[:32]), t0)
	h.checkDatagram(h.feed(frag4(t, 42, layers.IPProtocolTCP, 32, false, l4[32:]), t0), full)
	if s := h.r.Stats(); s.Datagrams != 1 {
		t.Fatalf("stats %+v", s)
	}
}

func TestConfigValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatalf("default config invalid: %v", err)
	}
	for field, mut := range map[string]func(*Config){
		"MaxDatagrams":            func(c *Config) { c.MaxDatagrams = 0 },
		"MaxBytes":                func(c *Config) { c.MaxBytes = 1000 },
		"Timeout":                 func(c *Config) { c.Timeout = 0 },
		"MaxFragmentsPerDatagram": func(c *Config) { c.MaxFragmentsPerDatagram = 9000 },
	} {
		c := DefaultConfig()
		mut(&c)
		err := c.Validate()
		if err == nil || !strings.Contains(err.Error(), field) {
			t.Errorf("%s: err = %v, want one naming the field", field, err)
		}
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: New accepted an invalid config", field)
				}
			}()
			New(c)
		}()
	}
}
