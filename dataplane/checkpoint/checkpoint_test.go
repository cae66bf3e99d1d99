package checkpoint

import (
	"bytes"
	"errors"
	"net/netip"
	"reflect"
	"testing"
	"time"

	"github.com/patchgate/patchgate/dataplane"
	"github.com/patchgate/patchgate/dataplane/flow"
)

func sample() *Record {
	k, _ := flow.NewKey(netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("2001:db8::1"), 40000, 443, 6)
	return &Record{
		Key: k, FlowID: 1<<62 + 5, ClientIsA: true, Created: time.Unix(1700000000, 123),
		LastSeen: time.Unix(1700000100, 456), PatchSet: 42, Blocked: true, BlockVerdict: dataplane.Reset,
		BlockedBy: "CVE-2014-0160", Packets: [2]uint64{10, 12}, Bytes: [2]uint64{1000, 20000}, Alerts: 3,
		Stream: []byte{1, 2, 3}, Detected: true, FirstSet: true, FirstDir: dataplane.ToServer,
		Detect: [2][]byte{nil, []byte("x")}, Analyzer: "tls", AnalyzerState: []byte("state"),
	}
}

func TestRoundTrip(t *testing.T) {
	r := sample()
	b := r.Marshal(nil)
	got, err := Unmarshal(b)
	if err != nil {
		t.Fatal(err)
	}
	r.Created, r.LastSeen = time.Unix(0, r.Created.UnixNano()), time.Unix(0, r.LastSeen.UnixNano())
	if !reflect.DeepEqual(got, r) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", got, r)
	}
	if !bytes.Equal(got.Marshal(nil), b) {
		t.Fatal("re-marshal differs")
	}
}

func TestRejectsDamage(t *testing.T) {
	b := sample().Marshal(nil)
	if _, err := Unmarshal(b[:len(b)-1]); err == nil {
		t.Fatal("truncated record accepted")
	}
	for i := range b {
		c := append([]byte(nil), b...)
		c[i] ^= 0x40
		if _, err := Unmarshal(c); err == nil {
			t.Fatalf("record with byte %d flipped accepted", i)
		}
	}
	c := append([]byte(nil), b...)
	c[4] = 99
	if _, err := Unmarshal(c); !errors.Is(err, ErrVersion) {
		t.Fatalf("future version: %v", err)
	}
	if _, err := Unmarshal([]byte("GET / HTTP/1.1\r\n")); !errors.Is(err, ErrMagic) {
		t.Fatalf("not a record: %v", err)
	}
}

func FuzzUnmarshal(f *testing.F) {
	f.Add(sample().Marshal(nil))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := Unmarshal(b)
		if err != nil {
			return
		}
		if _, err := Unmarshal(r.Marshal(nil)); err != nil {
			t.Fatalf("accepted record does not re-marshal: %v", err)
		}
	})
}
