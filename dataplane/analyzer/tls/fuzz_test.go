package tls

import (
	"testing"

	"github.com/patchgate/patchgate/dataplane"
)

// decodeOps turns fuzz input into a conversation. Each op byte: bit 7 the
// direction, bit 6 a gap instead of data, bits 0-5 a length n (0 means 64);
// a data op takes the next n input bytes.
func decodeOps(in []byte) []chunk {
	var conv []chunk
	for len(in) > 0 {
		op := in[0]
		in = in[1:]
		dir := dataplane.Direction(op >> 7)
		n := int(op & 0x3f)
		if n == 0 {
			n = 64
		}
		if op&0x40 != 0 {
			conv = append(conv, gapOf(dir, n))
			continue
		}
		n = min(n, len(in))
		conv = append(conv, chunk{dir: dir, data: in[:n]})
		in = in[n:]
	}
	return conv
}

// encodeOps is the inverse of decodeOps, for seeding.
func encodeOps(conv []chunk) []byte {
	var out []byte
	for _, c := range conv {
		if c.gap > 0 {
			for g := c.gap; g > 0; g -= 64 {
				out = append(out, byte(c.dir)<<7|0x40|byte(min(g, 64)&0x3f))
			}
			continue
		}
		for d := c.data; len(d) > 0; {
			n := min(len(d), 64)
			out = append(out, byte(c.dir)<<7|byte(n&0x3f))
			out = append(out, d[:n]...)
			d = d[n:]
		}
	}
	return out
}

// FuzzTLS feeds arbitrary conversations: the analyzer must not panic, and
// moving its state to a fresh analyzer at step split must not change what
// it reports.
func FuzzTLS(f *testing.F) {
	for _, conv := range corpus() {
		f.Add(encodeOps(conv), uint16(len(conv)*7))
	}
	f.Add([]byte{0x08, 0x18, 3, 2, 0, 3, 1, 0x40, 0}, uint16(3))
	f.Fuzz(func(t *testing.T, in []byte, split uint16) {
		conv := decodeOps(in)
		want, _ := run(conv)
		k := int(split) % (steps(conv) + 1)
		before, after := splitAt(conv, k)
		r := &recorder{}
		a := New()
		if err := play(a, before, r); err == nil {
			b := New()
			if err := b.UnmarshalState(a.MarshalState(nil)); err != nil {
				t.Fatalf("own state refused: %v", err)
			}
			_ = play(b, after, r)
		}
		if r.String() != want.String() {
			t.Fatalf("split at %d differs:\n%s\n--- want ---\n%s", k, r, want)
		}
	})
}

// FuzzUnmarshalState: arbitrary state records never panic, and an accepted one
// gives an analyzer that survives more traffic.
func FuzzUnmarshalState(f *testing.F) {
	for _, conv := range corpus() {
		before, _ := splitAt(conv, steps(conv)/2)
		a := New()
		_ = play(a, before, &recorder{})
		f.Add(a.MarshalState(nil))
	}
	more := encodeOps(corpus()["tls12"])
	f.Fuzz(func(t *testing.T, st []byte) {
		a := New()
		if a.UnmarshalState(st) != nil {
			return
		}
		_ = play(a, decodeOps(more), &recorder{})
		_ = play(a, decodeOps(st), &recorder{})
	})
}
