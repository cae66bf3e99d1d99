package lookup

import (
	"strings"
	"testing"
)

func FuzzJNDI(f *testing.F) {
	for _, tc := range exploits {
		f.Add(tc.in)
	}
	for _, tc := range benign {
		f.Add(tc.in)
	}
	f.Add("${z:-${u:${z:-${u:${::-j}ndi}}}}")
	f.Add("$$${${${${")
	f.Add(`\u0024&#x24;%u0024%2524`)
	f.Fuzz(func(t *testing.T, s string) {
		got := JNDI(s)
		if got && !mayHoldLookup(s) {
			t.Fatalf("JNDI(%q) = true without any '$' or encoding", s)
		}
		// A lookup whose evaluated prefix is jndi matches whatever follows.
		if w := "${jndi:x" + s + "}"; !JNDI(w) {
			t.Fatalf("JNDI(%q) = false", w)
		}
		// The evaluator keeps to its work budget.
		if len(s) <= MaxLookupLength && !strings.Contains(s, "\x00\x00") {
			var e evaluator
			e.evaluate(s)
			if -e.budget > 2*len(s)+16 {
				t.Fatalf("evaluate(%q) overspent its budget by %d", s, -e.budget)
			}
		}
	})
}

// BenchmarkJNDI measures the common case: 1 KiB of benign text, without and
// with lookup-like syntax and encodings.
func BenchmarkJNDI(b *testing.B) {
	prose := "The quick brown fox jumps over the lazy dog; Jane and Dinah read the news. "
	inputs := []struct{ name, s string }{
		{"plain", prose},
		{"query", "q=caf%C3%A9+au+lait&page=2&sort=name%2Cdate&filter=kind%3Ddrink&"},
		{"template", "Join ${user.name} in ${room} at ${time:-noon}; $5 {tax} and dinner. "},
	}
	for _, in := range inputs {
		s := strings.Repeat(in.s, 1024/len(in.s)+1)[:1024]
		b.Run(in.name, func(b *testing.B) {
			b.SetBytes(int64(len(s)))
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				if JNDI(s) {
					b.Fatal("benign text matched")
				}
			}
		})
	}
}

// BenchmarkJNDIHostile measures the worst case the work budget allows: a
// string whose substitution is exponential and holds the letters of jndi, so
// the evaluator runs until the budget trips.
func BenchmarkJNDIHostile(b *testing.B) {
	x := "${::-j}ndi"
	for len(x) < 4<<10 {
		x = "${z:-${u:" + x + "}}"
	}
	b.SetBytes(int64(len(x)))
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if !JNDI(x) {
			b.Fatal("over-bound input with the letters of jndi passed")
		}
	}
}
