package evasion

import (
	"encoding/binary"
	"fmt"
	"testing"

	"github.com/patchgate/patchgate/dataplane/gen"
	"github.com/patchgate/patchgate/dataplane/patch"
)

// Splits at every byte: TLS records and handshakes, and DNS messages over
// TCP, cut into two TCP segments at each offset; TLS handshake messages
// also cut into two records at each offset.

// splitAt cuts every message at offset k into two segments (messages
// shorter than k are unchanged).
func splitAt(k int) gen.Transform {
	return func(segs []gen.Segment) []gen.Segment {
		off := map[[2]int]int{}
		out := make([]gen.Segment, 0, len(segs)+4)
		for _, s := range segs {
			if len(s.Payload) == 0 || s.Decoy {
				out = append(out, s)
				continue
			}
			key := [2]int{int(s.Dir), s.Msg}
			start := off[key]
			off[key] += len(s.Payload)
			if start < k && k < start+len(s.Payload) {
				a, b := s, s
				cut := k - start
				a.Payload, a.Flags = s.Payload[:cut:cut], s.Flags&^gen.PSH
				b.Seq, b.Payload = s.Seq+uint32(cut), s.Payload[cut:]
				out = append(out, a, b)
				continue
			}
			out = append(out, s)
		}
		return out
	}
}

// splitOffsets returns the offsets to cut traffic whose longest message is
// n bytes: every offset up to 2048 bytes; for longer messages every offset
// of the first and last 64 bytes and every 997th in between. With -short,
// every 7th offset (every 997th beyond 2048 bytes) and the first 8.
func splitOffsets(n int) []int {
	var ks []int
	for k := 1; k < n; k++ {
		every := n <= 2048 || k <= 64 || k >= n-64 || k%997 == 0
		if testing.Short() {
			every = k <= 8 || (n <= 2048 && k%7 == 0) || k%997 == 0
		}
		if every {
			ks = append(ks, k)
		}
	}
	return ks
}

func longestMessage(steps []patch.Step) int {
	n := 0
	for _, s := range steps {
		n = max(n, len(s.Data))
	}
	return n
}

// runSplits replays each traffic cut at every offset.
func runSplits(t *testing.T, trs []traffic) {
	prog := catalog(t)
	for _, tr := range trs {
		t.Run(tr.patchID+"/"+tr.name, func(t *testing.T) {
			for _, k := range splitOffsets(longestMessage(tr.steps)) {
				c := &class{name: fmt.Sprintf("split at %d", k), segs: []gen.Transform{splitAt(k)}}
				r := execute(t, prog, build(t, tr, c))
				if r.stats.Panics != 0 {
					t.Fatalf("split at %d: %d panics recovered", k, r.stats.Panics)
				}
				var failed bool
				t.Run(c.name, func(t *testing.T) {
					if tr.match {
						checkExploit(t, prog, r)
					} else {
						checkBenign(t, prog, r)
					}
					failed = t.Failed()
				})
				if failed {
					return // one offset is enough to report
				}
			}
		})
	}
}

func trafficOf(t testing.TB, proto string, tcpOnly bool) []traffic {
	var out []traffic
	for _, tr := range catalogTraffic(t) {
		if protocolOf(t, tr.patchID) == proto && (!tcpOnly || !tr.udp) {
			out = append(out, tr)
		}
	}
	return out
}

// TestTLSSplitAtEveryByte cuts every TLS test's messages at every offset.
func TestTLSSplitAtEveryByte(t *testing.T) {
	t.Parallel()
	runSplits(t, trafficOf(t, "tls", true))
}

// TestDNSOverTCPSplitAtEveryByte cuts every DNS-over-TCP test's messages
// (length prefix included) at every offset.
func TestDNSOverTCPSplitAtEveryByte(t *testing.T) {
	t.Parallel()
	runSplits(t, trafficOf(t, "dns", true))
}

// TestSMBSplitAtEveryByte does the same for SMB (NetBIOS length prefix and
// SMB headers cut anywhere).
func TestSMBSplitAtEveryByte(t *testing.T) {
	t.Parallel()
	runSplits(t, trafficOf(t, "smb", true))
}

// tlsRecord is one parsed TLS record.
type tlsRecord struct {
	typ     byte
	version uint16
	body    []byte
}

// parseRecords parses b as whole TLS records; ok is false for anything else
// (SSLv2 hellos, partial records).
func parseRecords(b []byte) (recs []tlsRecord, ok bool) {
	for len(b) > 0 {
		if len(b) < 5 || b[0] < 20 || b[0] > 24 {
			return nil, false
		}
		n := int(binary.BigEndian.Uint16(b[3:5]))
		if len(b) < 5+n {
			return nil, false
		}
		recs = append(recs, tlsRecord{typ: b[0], version: binary.BigEndian.Uint16(b[1:3]), body: b[5 : 5+n]})
		b = b[5+n:]
	}
	return recs, true
}

func appendRecord(out []byte, typ byte, version uint16, body []byte) []byte {
	out = append(out, typ, byte(version>>8), byte(version), byte(len(body)>>8), byte(len(body)))
	return append(out, body...)
}

// splitHandshakeRecords rewrites every plaintext handshake record (type 22
// before its direction's ChangeCipherSpec) longer than k into two records
// cut at body offset k. It reports whether any record was cut.
func splitHandshakeRecords(steps []patch.Step, k int) ([]patch.Step, bool) {
	var ccs [2]bool
	cut := false
	out := make([]patch.Step, len(steps))
	for i, st := range steps {
		out[i] = st
		recs, ok := parseRecords(st.Data)
		if !ok {
			continue
		}
		var b []byte
		for _, r := range recs {
			switch {
			case r.typ == 20:
				ccs[st.Dir] = true
				b = appendRecord(b, r.typ, r.version, r.body)
			case r.typ == 22 && !ccs[st.Dir] && len(r.body) > k:
				b = appendRecord(b, r.typ, r.version, r.body[:k])
				b = appendRecord(b, r.typ, r.version, r.body[k:])
				cut = true
			default:
				b = appendRecord(b, r.typ, r.version, r.body)
			}
		}
		out[i] = patch.Step{Dir: st.Dir, Data: b}
	}
	return out, cut
}

// TestTLSHandshakeSplitAcrossRecords cuts every plaintext handshake record
// of every TLS test into two records at every offset: the handshake layer
// must reassemble its messages across records, and the patches keep their
// verdicts.
func TestTLSHandshakeSplitAcrossRecords(t *testing.T) {
	t.Parallel()
	prog := catalog(t)
	plain := &class{name: "plain"}
	for _, tr := range trafficOf(t, "tls", true) {
		t.Run(tr.patchID+"/"+tr.name, func(t *testing.T) {
			n := 0
			for k := 1; ; k++ {
				steps, cut := splitHandshakeRecords(tr.steps, k)
				if !cut {
					break
				}
				if testing.Short() && k > 8 && k%5 != 0 {
					continue
				}
				n++
				v := tr
				v.name = fmt.Sprintf("%s, handshake records cut at %d", tr.name, k)
				v.steps = steps
				r := execute(t, prog, build(t, v, plain))
				if tr.match {
					checkExploit(t, prog, r)
				} else {
					checkBenign(t, prog, r)
				}
				if t.Failed() {
					t.Fatalf("handshake records cut at %d", k)
				}
			}
			if n == 0 {
				t.Skip("no plaintext handshake record to cut")
			}
		})
	}
}
