package flow

import (
	"net/netip"
	"strings"
	"testing"
	"time"
)

func key(i int) Key {
	k, _ := NewKey(netip.AddrFrom4([4]byte{192, 0, 2, byte(i >> 8)}), netip.AddrFrom4([4]byte{198, 51, 100, 1}),
		uint16(10000+i), 80, 6)
	return k
}

func TestKeyIsDirectionless(t *testing.T) {
	a, b := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("198.51.100.2")
	k1, s1 := NewKey(a, b, 40000, 80, 6)
	k2, s2 := NewKey(b, a, 80, 40000, 6)
	if k1 != k2 || k1.Hash() != k2.Hash() {
		t.Fatalf("keys differ by direction: %v %v", k1, k2)
	}
	if s1 == s2 {
		t.Fatalf("exactly one direction must be swapped")
	}
	// Same address on both sides: the port decides.
	k3, _ := NewKey(a, a, 5, 4, 17)
	k4, _ := NewKey(a, a, 4, 5, 17)
	if k3 != k4 {
		t.Fatalf("same-address keys differ: %v %v", k3, k4)
	}
}

func TestEvictionProtectsEstablished(t *testing.T) {
	cfg := DefaultConfig()
	cfg.MaxFlows = 10
	var evicted []Key
	tb, err := New[int](cfg, func(e *Entry[int], why EvictReason) {
		if why == Pressure {
			evicted = append(evicted, e.Key)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1000, 0)
	for i := 0; i < 5; i++ {
		if tb.Insert(key(i), Established, now) == nil {
			t.Fatalf("insert %d refused", i)
		}
	}
	// A SYN flood: 1000 half-open flows.
	for i := 5; i < 1005; i++ {
		if tb.Insert(key(i), Embryonic, now.Add(time.Duration(i))) == nil {
			t.Fatalf("embryonic insert %d refused although older embryonic flows exist", i)
		}
	}
	if tb.Len() != 10 {
		t.Fatalf("table holds %d flows, limit 10", tb.Len())
	}
	for i := 0; i < 5; i++ {
		if tb.Get(key(i)) == nil {
			t.Fatalf("established flow %d evicted by a SYN flood", i)
		}
	}
	// Once only established flows remain, an embryonic flow is refused rather
	// than evicting one.
	tb2, _ := New[int](Config{MaxFlows: 2, MaxBytes: 1 << 20, Timeouts: cfg.Timeouts}, nil)
	tb2.Insert(key(1), Established, now)
	tb2.Insert(key(2), Established, now)
	if tb2.Insert(key(3), Embryonic, now) != nil {
		t.Fatalf("embryonic flow evicted an established one")
	}
	if st := tb2.Stats(); st.Refused != 1 {
		t.Fatalf("refused = %d, want 1", st.Refused)
	}
	if len(evicted) != 995 {
		t.Fatalf("evicted %d, want 995", len(evicted))
	}
}

func TestExpiryPerClass(t *testing.T) {
	cfg := DefaultConfig()
	tb, _ := New[int](cfg, nil)
	now := time.Unix(1000, 0)
	tb.Insert(key(1), Embryonic, now)
	tb.Insert(key(2), Established, now)
	tb.Insert(key(3), Closing, now)
	if n := tb.Expire(now.Add(cfg.Timeouts[Closing]), 0); n != 0 {
		t.Fatalf("expired %d at exactly the timeout, want 0", n)
	}
	if n := tb.Expire(now.Add(cfg.Timeouts[Embryonic]+time.Second), 0); n != 2 {
		t.Fatalf("expired %d, want 2 (embryonic and closing)", n)
	}
	if tb.Get(key(2)) == nil {
		t.Fatal("established flow expired early")
	}
	e := tb.Get(key(2))
	tb.Touch(e, Established, now.Add(cfg.Timeouts[Established]))
	if n := tb.Expire(now.Add(cfg.Timeouts[Established]+time.Second), 0); n != 0 {
		t.Fatalf("touched flow expired")
	}
}

func TestMemoryAccounting(t *testing.T) {
	cfg := DefaultConfig()
	cfg.MaxBytes = 10 * EntryOverhead
	tb, _ := New[int](cfg, nil)
	now := time.Unix(1000, 0)
	a := tb.Insert(key(1), Established, now)
	b := tb.Insert(key(2), Established, now.Add(1))
	if !tb.Account(b, 4*EntryOverhead) {
		t.Fatal("accounting within the cap refused")
	}
	// Growing a beyond the cap evicts b (the other flow), never a itself.
	if !tb.Account(a, 7*EntryOverhead) {
		t.Fatal("cap could be met by evicting b")
	}
	if tb.Get(key(2)) != nil {
		t.Fatal("b not evicted under memory pressure")
	}
	if tb.Account(a, 10*EntryOverhead) {
		t.Fatal("a alone exceeds the cap: Account must report false")
	}
	if got := tb.Stats().Bytes; got != EntryOverhead+17*EntryOverhead {
		t.Fatalf("bytes = %d", got)
	}
	tb.Remove(a)
	if got := tb.Stats().Bytes; got != 0 {
		t.Fatalf("bytes after remove = %d, want 0", got)
	}
}

func TestConfigValidate(t *testing.T) {
	c := DefaultConfig()
	c.MaxFlows = 0
	c.Timeouts[Established] = 0
	err := c.Validate()
	if err == nil {
		t.Fatal("invalid config accepted")
	}
	for _, want := range []string{"MaxFlows", "Timeouts[established]"} {
		if !contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }
func BenchmarkInsertGet(b *testing.B) {
	tb, _ := New[int](DefaultConfig(), nil)
	now := time.Unix(1000, 0)
	keys := make([]Key, 4096)
	for i := range keys {
		keys[i] = key(i)
		tb.Insert(keys[i], Established, now)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		e := tb.Get(keys[i&4095])
		tb.Touch(e, Established, now)
	}
}
