package tls

import (
	"bytes"
	"testing"

	"github.com/patchgate/patchgate/dataplane"
)

// corpus is the set of conversations the state tests cut at every point.
func corpus() map[string][]chunk {
	v2body := cat([]byte{1}, u16(0x0301), u16(6), u16(0), u16(16), []byte{0, 0, 0x2f, 0, 0, 0x35}, opaque(16))
	ch := hsMsg(HandshakeClientHello, clientHelloBody(0x0303, []int{0x2f}, sniExt("split.example"), heartbeatExt(1)))
	return map[string][]chunk{
		"tls12": concat(tls12Handshake(0x0302, suiteAES128SHA), []chunk{
			toServer(rec(ContentApplicationData, 0x0302, opaque(80))),
			toServer(rec(ContentHeartbeat, 0x0302, opaque(48))),
			toClient(rec(ContentHeartbeat, 0x0302, opaque(400))),
			toClient(rec(ContentAlert, 0x0302, opaque(32))),
		}),
		"tls13": concat(tls13Handshake(), []chunk{toClient(rec(ContentApplicationData, 0x0303, opaque(30)))}),
		"heartbleed": concat(tls12Handshake(0x0302, suiteAES128SHA)[:2], []chunk{
			toServer(rec(ContentHeartbeat, 0x0302, heartbeatMsg(1, 0x4000, 0, 0))),
			toServer(rec(ContentHeartbeat, 0x0302, []byte{1})),
			toServer(rec(ContentHeartbeat, 0x0302, heartbeatMsg(1, 4, 4, 16))),
			toClient(rec(ContentHeartbeat, 0x0302, heartbeatMsg(2, 4, 4, 16))),
		}),
		"split handshake": {toServer(
			rec(ContentHandshake, 0x0301, ch[:3]),
			rec(ContentHandshake, 0x0301, ch[3:20]),
			rec(ContentHandshake, 0x0301, cat(ch[20:], hsMsg(HandshakeClientKeyExchange, opaque(5)))),
			rec(ContentAlert, 0x0301, []byte{1}),
			rec(ContentAlert, 0x0301, []byte{0, 2, 10}))},
		"sslv2 compat": {
			toServer(cat([]byte{0x80, byte(len(v2body))}, v2body)),
			toClient(rec(ContentHandshake, 0x0301, hsMsg(HandshakeServerHello, serverHelloBody(0x0301, 0x2f)))),
		},
		"sslv2 pure": {
			toServer(cat([]byte{0x80, byte(len(v2body)), 1, 0, 2}, v2body[3:])),
			toClient([]byte{0x83, 0, 4, 0, 1, 0, 0, 0}),
		},
		"violation": {
			toClient(rec(ContentAlert, 0x0303, []byte{1, 0})),
			toServer(rec(ContentApplicationData, 0x0303, opaque(3)), []byte{0x30, 3, 3, 0, 1, 0}),
		},
		"handshake too long": {toServer(rec(ContentHandshake, 0x0301, []byte{2, 1, 0, 1, 0}))},
		"gaps": {
			toServer(rec(ContentApplicationData, 0x0303, opaque(30))[:12]),
			gapOf(dataplane.ToServer, 10),
			toServer(rec(ContentApplicationData, 0x0303, opaque(30))[22:]),
			gapOf(dataplane.ToClient, 500),
			toClient(opaque(20), []byte{0x17, 3, 3, 0, 2, 0xaa, 0xbb, 0x99, 0x99, 0x99},
				rec(ContentAlert, 0x0303, opaque(2)), rec(ContentAlert, 0x0303, opaque(2)), rec(ContentHeartbeat, 0x0303, opaque(7))),
			toServer(rec(ContentHandshake, 0x0303, hsMsg(HandshakeCertificate, certificateBody(40)))[:20]),
			gapOf(dataplane.ToServer, 5),
			toServer(rec(ContentHandshake, 0x0303, hsMsg(HandshakeCertificate, certificateBody(40)))[25:]),
		},
	}
}

type step struct {
	chunk int
	off   int // byte offset within the chunk (0 for a gap)
}

// splitAt returns the conversation before and after step k.
func splitAt(conv []chunk, k int) (before, after []chunk) {
	pos := 0
	for i, c := range conv {
		n := len(c.data)
		if c.gap > 0 {
			n = 1
		}
		if k < pos+n {
			j := k - pos
			if c.gap > 0 || j == 0 {
				return conv[:i:i], conv[i:]
			}
			before = append(conv[:i:i], chunk{dir: c.dir, data: c.data[:j]})
			after = append([]chunk{{dir: c.dir, data: c.data[j:]}}, conv[i+1:]...)
			return before, after
		}
		pos += n
	}
	return conv, nil
}

func steps(conv []chunk) int {
	n := 0
	for _, c := range conv {
		if c.gap > 0 {
			n++
		} else {
			n += len(c.data)
		}
	}
	return n
}

// resumeAt runs conv[:k] on one analyzer, moves its state to a fresh one
// and runs the rest there, returning the combined log.
func resumeAt(t *testing.T, conv []chunk, k int) string {
	before, after := splitAt(conv, k)
	r := &recorder{}
	a := New()
	if err := play(a, before, r); err != nil {
		return r.String()
	}
	prefix := []byte("prefix")
	st := a.MarshalState(prefix)
	if !bytes.HasPrefix(st, prefix) {
		t.Fatalf("MarshalState must append to dst")
	}
	b := New()
	if err := b.UnmarshalState(st[len(prefix):]); err != nil {
		t.Fatalf("split %d: UnmarshalState: %v", k, err)
	}
	if again := b.MarshalState(nil); !bytes.Equal(again, st[len(prefix):]) {
		t.Fatalf("split %d: state changed by a round trip", k)
	}
	_ = play(b, after, r)
	return r.String()
}

// Moving the state to a fresh analyzer at any point gives the same events,
// boundaries, violations and errors as one analyzer.
func TestStateEverySplitPoint(t *testing.T) {
	for name, conv := range corpus() {
		t.Run(name, func(t *testing.T) {
			want, _ := run(conv)
			n := steps(conv)
			for k := 0; k <= n; k++ {
				if got := resumeAt(t, conv, k); got != want.String() {
					t.Fatalf("split at %d of %d differs:\n%s\n--- want ---\n%s", k, n, got, want)
				}
			}
		})
	}
}

// The large inputs are cut at a stride (every point would take minutes).
func TestStateLargeInputs(t *testing.T) {
	msg := hsMsg(HandshakeCertificate, certificateBody(30000, 30000, 30000))
	var recs []byte
	for len(msg) > 0 {
		n := min(len(msg), 1<<14)
		recs = cat(recs, rec(ContentHandshake, 0x0303, msg[:n]))
		msg = msg[n:]
	}
	convs := map[string][]chunk{
		"large certificate": {toClient(recs, rec(ContentHandshake, 0x0303, hsMsg(HandshakeServerHelloDone, nil)))},
		"resync failure":    {gapOf(dataplane.ToServer, 3), toServer(make([]byte, MaxResyncScan+10))},
	}
	for name, conv := range convs {
		t.Run(name, func(t *testing.T) {
			want, _ := run(conv)
			n := steps(conv)
			for k := 0; k <= n; k += 997 {
				for _, kk := range []int{k, k + 1, k + 4} {
					if kk <= n {
						if got := resumeAt(t, conv, kk); got != want.String() {
							t.Fatalf("split at %d differs:\n%s\n--- want ---\n%s", kk, got, want)
						}
					}
				}
			}
		})
	}
}

// Corrupt states are refused with an error or, when they happen to be valid,
// give an analyzer that keeps working; nothing panics.
func TestStateCorrupt(t *testing.T) {
	if err := New().UnmarshalState(nil); err == nil {
		t.Error("empty state accepted")
	}
	if err := New().UnmarshalState([]byte{99}); err == nil {
		t.Error("unknown state version accepted")
	}
	all := corpus()
	for name, conv := range all {
		n := steps(conv)
		for _, k := range []int{n / 3, n / 2, n - 1} {
			before, after := splitAt(conv, k)
			a := New()
			_ = play(a, before, &recorder{})
			st := a.MarshalState(nil)
			for i := 0; i < len(st); i++ {
				if err := New().UnmarshalState(st[:i]); err == nil {
					t.Errorf("%s: state truncated to %d of %d bytes accepted", name, i, len(st))
				}
			}
			if err := New().UnmarshalState(append(st[:len(st):len(st)], 0)); err == nil {
				t.Errorf("%s: trailing byte accepted", name)
			}
			for i := 0; i < len(st); i++ {
				for _, mut := range []func(byte) byte{func(b byte) byte { return b ^ 0xff }, func(b byte) byte { return b + 1 }, func(byte) byte { return 0x80 }} {
					bad := bytes.Clone(st)
					bad[i] = mut(bad[i])
					b := New()
					if b.UnmarshalState(bad) == nil {
						feedAll(b, after)
						feedAll(b, all["tls12"])
					}
				}
			}
		}
	}
}

// feedAll feeds chunks to a without recording anything, ignoring errors.
func feedAll(a *Analyzer, chunks []chunk) {
	for _, c := range chunks {
		if c.gap > 0 {
			a.Gap(c.dir, c.gap, nopSink{})
		} else {
			_ = a.Feed(c.dir, c.data, nopSink{})
		}
	}
}
