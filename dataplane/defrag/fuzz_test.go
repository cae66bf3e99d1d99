package defrag

import (
	"testing"
	"time"

	"github.com/google/gopacket/layers"

	"github.com/patchgate/patchgate/dataplane/decode"
)

// expProto is an experimental protocol number (RFC 3692), so the decoder
// does not interpret the random payload of reassembled datagrams.
const expProto = layers.IPProtocol(253)

// FuzzReassemble drives a small Reassembler with fragment sequences decoded
// from the input (6 bytes per fragment: datagram and version, offset, length,
// flags, clock step). It must never panic, must stay within its limits, and
// every completed datagram must decode as one unfragmented packet of the
// length its fragments described.
func FuzzReassemble(f *testing.F) {
	f.Add([]byte{0, 0, 0, 40, 1, 0, 0, 0, 40, 40, 0, 1})
	f.Add([]byte{4, 0, 0, 64, 1, 0, 4, 0, 56, 64, 0x81, 0, 4, 0, 120, 8, 0, 30})
	f.Add([]byte{1, 0xff, 0xf0, 200, 0, 0, 2, 0, 0, 16, 1, 0, 3, 0, 8, 8, 1, 0, 1, 0, 8, 16, 0x80, 0})
	cfg := Config{MaxDatagrams: 4, MaxBytes: 2 * minMaxBytes, Timeout: 10 * time.Second, MaxFragmentsPerDatagram: 16}
	f.Fuzz(func(t *testing.T, in []byte) {
		h := newHarness(t, cfg)
		now := t0
		for len(in) >= 6 {
			sel, off, n, flags, step := in[0], (int(in[1])<<8|int(in[2]))&^7, int(in[3]), in[4], in[5]
			in = in[6:]
			now = now.Add(time.Duration(step) * 500 * time.Millisecond)
			id := uint16(sel & 3)
			more := flags&1 != 0
			data := make([]byte, n)
			for i := range data {
				data[i] = byte(off+i) ^ byte(id) // consistent across fragments...
			}
			if flags&0x80 != 0 && n > 0 {
				data[0] ^= 0x55 // ...unless this one disagrees
			}
			var pkt []byte
			if sel&4 == 0 {
				pkt = frag4(t, id, expProto, off, more, data)
			} else {
				pkt = frag6(t, uint32(id), byte(expProto), off, more, data)
			}
			var p decode.Packet
			if err := h.dec.DecodeIP(pkt, now, &p); err != nil {
				continue // e.g. an IPv4 total length past 65535
			}
			res := h.r.Process(&p)
			s := h.r.Stats()
			if s.Bytes > cfg.MaxBytes || s.Datagrams > cfg.MaxDatagrams || s.Tombstones > cfg.MaxDatagrams {
				t.Fatalf("limits exceeded: %+v", s)
			}
			if (s.Datagrams == 0) != (s.Bytes == 0) {
				t.Fatalf("memory accounting drifted: %+v", s)
			}
			if res.Action != Complete {
				continue
			}
			var d decode.Packet
			if err := decode.NewDecoder().DecodeIP(res.Datagram, now, &d); err != nil {
				t.Fatalf("reassembled datagram does not decode: %v", err)
			}
			if d.IsFragment || d.IPVersion == 0 || len(d.IP) != len(res.Datagram) {
				t.Fatalf("reassembled datagram: fragment %v version %d length %d of %d", d.IsFragment, d.IPVersion, len(d.IP), len(res.Datagram))
			}
		}
	})
}
