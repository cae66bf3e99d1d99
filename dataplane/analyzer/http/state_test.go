package http

import (
	"errors"
	"testing"

	"github.com/patchgate/patchgate/dataplane"
	"github.com/patchgate/patchgate/dataplane/wire"
)

// statesOf returns the exported state after every byte of a conversation.
func statesOf(t *testing.T, tc testCase) [][]byte {
	a := newAnalyzer(t, tc.config())
	var rec recorder
	var out [][]byte
	for _, c := range tc.conv {
		for i := 0; i < len(c.data); i++ {
			if a.Feed(c.dir, []byte{c.data[i]}, &rec) != nil {
				return out
			}
			out = append(out, a.MarshalState(nil))
		}
	}
	return out
}

// TestUnmarshalTruncated checks that every strict prefix of every state
// record is refused with an error, and leaves the analyzer usable.
func TestUnmarshalTruncated(t *testing.T) {
	for _, tc := range cases()[:12] {
		states := statesOf(t, tc)
		for i := 0; i < len(states); i += 7 { // every 7th byte keeps the test quick
			st := states[i]
			for n := 0; n < len(st); n++ {
				a := newAnalyzer(t, tc.config())
				if err := a.UnmarshalState(st[:n]); err == nil {
					t.Fatalf("%s: prefix %d of %d bytes accepted", tc.name, n, len(st))
				}
				// A refused record leaves a fresh analyzer behind.
				var rec recorder
				if err := a.Feed(dataplane.ToServer, []byte(get), &rec); err != nil || len(rec.recs) != 3 {
					t.Fatalf("%s: analyzer unusable after a refused record: %v %q", tc.name, err, summary(rec.recs))
				}
			}
		}
	}
}

func TestUnmarshalCorrupt(t *testing.T) {
	a := New()
	good := a.MarshalState(nil)
	tests := []struct {
		name string
		rec  []byte
	}{
		{"empty", nil},
		{"unknown version", append([]byte{9}, good[1:]...)},
		{"trailing bytes", append(append([]byte{}, good...), 0)},
		{"unknown parser state", func() []byte {
			b := wire.AppendUvarint(nil, stateVersion)
			b = append(b, 0, 0, 0, 0) // pendingSwitch, overflowReported, overflow, fifo length
			return append(b, byte(numStates))
		}()},
	}
	for _, tt := range tests {
		if err := New().UnmarshalState(tt.rec); err == nil {
			t.Errorf("%s: accepted", tt.name)
		}
	}
	// A span pointing past the header block is refused.
	b := New()
	var rec recorder
	b.Feed(dataplane.ToServer, []byte("GET / HTTP/1.1\r\nA: b\r\n"), &rec)
	st := b.MarshalState(nil)
	bad := append([]byte{}, st...)
	// Find the fields count (1) followed by the first span and make the offset huge.
	corrupted := false
	for i := range bad {
		c := append([]byte{}, bad...)
		c[i] = 0x7f
		if err := New().UnmarshalState(c); err != nil && errors.Is(err, errCorrupt) {
			corrupted = true
			break
		}
	}
	if !corrupted {
		t.Error("no single-byte corruption was detected as inconsistent")
	}
	// The limits of the importing analyzer bound what it accepts.
	big := DefaultConfig()
	small := testConfig()
	src, _ := NewWithConfig(big)
	src.Feed(dataplane.ToServer, []byte("POST / HTTP/1.1\r\nContent-Length: 500\r\n\r\n"+string(make([]byte, 300))), &rec)
	dst, _ := NewWithConfig(small)
	if err := dst.UnmarshalState(src.MarshalState(nil)); err == nil {
		t.Error("state with a body larger than MaxBodyInspect accepted")
	}
}

// TestStateAtRestIsSmall checks that a checkpoint between messages is small,
// as the engine publishes one per message boundary.
func TestStateAtRestIsSmall(t *testing.T) {
	a := New()
	var rec recorder
	a.Feed(dataplane.ToServer, []byte(get), &rec)
	a.Feed(dataplane.ToClient, []byte("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"), &rec)
	if n := len(a.MarshalState(nil)); n > 48 {
		t.Errorf("state at rest is %d bytes", n)
	}
}
