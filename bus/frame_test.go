package bus

import (
	"bytes"
	"net/netip"
	"testing"

	"github.com/patchgate/patchgate/dataplane/flow"
)

func TestBatchRoundTrip(t *testing.T) {
	k4 := testKey(1)
	k6, _ := flow.NewKey(netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("2001:db8::2"), 443, 50000, 6)
	rec := testRecord(k4, 10, 2, 200)
	b := appendBatchHeader(nil, "node-a")
	b = appendEntry(b, entryRecord, rec)
	b = appendEntry(b, entryTombstone, appendKey(nil, k6))
	if want := 5 + len("node-a") + entrySize(len(rec)) + entrySize(len(appendKey(nil, k6))); len(b) != want {
		t.Fatalf("batch is %d bytes, entrySize predicts %d", len(b), want)
	}
	var got []batchEntry
	node, err := decodeBatch(b, func(_ string, e batchEntry) { got = append(got, e) })
	if err != nil || node != "node-a" || len(got) != 2 {
		t.Fatalf("decodeBatch = %q, %d entries, %v", node, len(got), err)
	}
	if got[0].kind != entryRecord || !bytes.Equal(got[0].payload, rec) {
		t.Error("record entry changed")
	}
	if k, err := decodeKey(got[1].payload); err != nil || k != k6 {
		t.Errorf("tombstone key = %v, %v; want %v", k, err, k6)
	}
	if _, err := decodeBatch(b[:len(b)-1], func(string, batchEntry) {}); err == nil {
		t.Error("truncated batch accepted")
	}

	q, err := decodeRequest(encodeRequest(k6))
	if err != nil || q != k6 {
		t.Errorf("request round trip = %v, %v", q, err)
	}
	swapped := k4
	swapped.A, swapped.B, swapped.APort, swapped.BPort = k4.B, k4.A, k4.BPort, k4.APort
	if _, err := decodeRequest(encodeRequest(swapped)); err == nil {
		t.Error("non-canonical key accepted")
	}
	st, r, err := decodeReply(encodeReply(replyCached, rec))
	if err != nil || st != replyCached || !bytes.Equal(r, rec) {
		t.Errorf("reply round trip = %d, %d bytes, %v", st, len(r), err)
	}
	for _, bad := range [][]byte{encodeReply(replyMiss, rec), encodeReply(replyLive, nil), encodeReply(7, rec), []byte("PGR")} {
		if _, _, err := decodeReply(bad); err == nil {
			t.Errorf("bad reply %x accepted", bad[:min(len(bad), 6)])
		}
	}
}

// The decoders take bytes from the network: they must never panic and never
// return an entry outside the frame.
func FuzzDecodeBatch(f *testing.F) {
	k := testKey(3)
	f.Add(appendEntry(appendBatchHeader(nil, "n"), entryRecord, testRecord(k, 1, 1, 100)))
	f.Add(appendEntry(appendBatchHeader(nil, ""), entryTombstone, appendKey(nil, k)))
	f.Add([]byte("PGB\x01\xff"))
	f.Fuzz(func(t *testing.T, b []byte) {
		total := 0
		_, _ = decodeBatch(b, func(_ string, e batchEntry) {
			total += len(e.payload)
			if e.kind == entryTombstone {
				_, _ = decodeKey(e.payload)
			}
		})
		if total > len(b) {
			t.Fatalf("entries total %d bytes from a %d-byte frame", total, len(b))
		}
		_, _ = decodeRequest(b)
		_, _, _ = decodeReply(b)
	})
}
