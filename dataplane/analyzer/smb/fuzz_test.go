package smb

import (
	"bytes"
	"testing"

	"github.com/patchgate/patchgate/dataplane"
)

// FuzzSMB feeds arbitrary bytes as both directions of a connection, in
// chunks chosen by the input, and checks that the analyzer never panics, that
// segmentation does not change its events, and that moving its state half
// way changes nothing either.
func FuzzSMB(f *testing.F) {
	for _, s := range streams() {
		var server, client []byte
		for _, fd := range s {
			if fd.dir == dataplane.ToServer {
				server = append(server, fd.data...)
			} else {
				client = append(client, fd.data...)
			}
		}
		f.Add(server, client, uint8(5))
	}
	f.Add(nb(compUnchained(0xffffffff, 1, 16, make([]byte, 80))), []byte{}, uint8(1))
	f.Add([]byte{0x85, 0, 0, 0, 0, 0, 0, 70, 0xfe, 'S', 'M', 'B'}, []byte{0x82, 0, 0, 0}, uint8(2))
	f.Fuzz(func(t *testing.T, server, client []byte, chunk uint8) {
		c := int(chunk%32) + 1
		whole := fuzzRun(server, client, c, 0, -1)
		if got := fuzzRun(server, client, c, int(chunk>>5)+1, -1); got != whole {
			t.Fatalf("chunked run differs:\n%s\nwant:\n%s", got, whole)
		}
		if got := fuzzRun(server, client, c, 0, len(server)/2); got != whole {
			t.Fatalf("state move differs:\n%s\nwant:\n%s", got, whole)
		}
	})
}

// fuzzRun alternates server and client chunks of chunk bytes, each fed in
// pieces of sub bytes (0: whole); moveAt >= 0 moves the state to a fresh
// analyzer once that many server bytes were fed.
func fuzzRun(server, client []byte, chunk, sub, moveAt int) string {
	a, r := New(), &recorder{}
	fed := 0
	var errS, errC error
	for len(server) > 0 || len(client) > 0 {
		n := len(server)
		if chunk > 0 && n > chunk {
			n = chunk
		}
		if moveAt >= 0 && fed <= moveAt && fed+n > moveAt {
			n = moveAt - fed
		}
		if n > 0 && errS == nil {
			errS = feedPieces(a, dataplane.ToServer, server[:n], sub, r)
		}
		server = server[n:]
		fed += n
		if moveAt >= 0 && fed == moveAt {
			b := New()
			if err := b.UnmarshalState(a.MarshalState(nil)); err != nil {
				panic(err)
			}
			a, moveAt = b, -1
		}
		m := len(client)
		if chunk > 0 && m > chunk {
			m = chunk
		}
		if m > 0 && errC == nil {
			errC = feedPieces(a, dataplane.ToClient, client[:m], sub, r)
		}
		client = client[m:]
	}
	a.End(dataplane.ToServer, r)
	a.End(dataplane.ToClient, r)
	for i := range a.dir {
		if cap(a.dir[i].buf) > 2*MaxBuffered {
			panic("buffer above limit")
		}
	}
	return r.String()
}

func feedPieces(a *Analyzer, dir dataplane.Direction, b []byte, sub int, r *recorder) error {
	for len(b) > 0 {
		n := len(b)
		if sub > 0 && n > sub {
			n = sub
		}
		if err := a.Feed(dir, b[:n], r); err != nil {
			return err
		}
		b = b[n:]
	}
	return nil
}

// FuzzUnmarshalState imports arbitrary state records; an accepted one must
// leave an analyzer that survives any traffic.
func FuzzUnmarshalState(f *testing.F) {
	for _, s := range streams() {
		a, r := New(), &recorder{}
		for i, fd := range s {
			d := fd.data
			if i == len(s)-1 {
				d = d[:len(d)/2]
			}
			_ = a.Feed(fd.dir, d, r)
		}
		f.Add(a.MarshalState(nil), s[len(s)-1].data)
	}
	f.Fuzz(func(t *testing.T, state, data []byte) {
		a := New()
		if a.UnmarshalState(state) != nil {
			return
		}
		again := a.MarshalState(nil)
		if !bytes.Equal(again, state) {
			b := New()
			if err := b.UnmarshalState(again); err != nil {
				t.Fatalf("re-exported state rejected: %v", err)
			}
		}
		r := &recorder{}
		_ = a.Feed(dataplane.ToServer, data, r)
		_ = a.Feed(dataplane.ToClient, data, r)
		a.Gap(dataplane.ToServer, 3, r)
		_ = a.Feed(dataplane.ToServer, data, r)
		a.End(dataplane.ToServer, r)
	})
}
