package gen

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"

	"github.com/patchgate/patchgate/dataplane"
)

type packetReader interface {
	ReadPacketData() ([]byte, gopacket.CaptureInfo, error)
}

func readAll(t *testing.T, r packetReader) (data [][]byte, cis []gopacket.CaptureInfo) {
	t.Helper()
	for {
		d, ci, err := r.ReadPacketData()
		if errors.Is(err, io.EOF) {
			return data, cis
		}
		if err != nil {
			t.Fatal(err)
		}
		data, cis = append(data, d), append(cis, ci)
	}
}

func testCapture(t *testing.T, link layers.LinkType) *Capture {
	o := DefaultSessionOptions()
	o.LinkType = link
	o.Clock = Clock{Start: time.Date(2024, 2, 29, 12, 0, 0, 0, time.UTC), Step: 250 * time.Microsecond}
	s, _ := exchange(t, cli4, srv4, o)
	c, err := s.Capture(Fragment(Nth(0), Fragmentation{Size: 8}))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestPcapRoundTrip(t *testing.T) {
	for _, link := range []layers.LinkType{layers.LinkTypeEthernet, layers.LinkTypeRaw} {
		c := testCapture(t, link)
		var buf bytes.Buffer
		if err := c.WritePcap(&buf); err != nil {
			t.Fatal(err)
		}
		r, err := pcapgo.NewReader(&buf)
		if err != nil {
			t.Fatal(err)
		}
		if r.LinkType() != link {
			t.Fatalf("link type %v, want %v", r.LinkType(), link)
		}
		checkFrames(t, c, r)
	}
}

func TestPcapNGRoundTrip(t *testing.T) {
	for _, link := range []layers.LinkType{layers.LinkTypeEthernet, layers.LinkTypeRaw} {
		c := testCapture(t, link)
		var buf bytes.Buffer
		if err := c.WritePcapNG(&buf); err != nil {
			t.Fatal(err)
		}
		r, err := pcapgo.NewNgReader(&buf, pcapgo.DefaultNgReaderOptions)
		if err != nil {
			t.Fatal(err)
		}
		if r.LinkType() != link {
			t.Fatalf("link type %v, want %v", r.LinkType(), link)
		}
		checkFrames(t, c, r)
	}
}

func checkFrames(t *testing.T, c *Capture, r packetReader) {
	t.Helper()
	data, cis := readAll(t, r)
	if len(data) != len(c.Frames) {
		t.Fatalf("read %d frames, wrote %d", len(data), len(c.Frames))
	}
	for i := range data {
		if !bytes.Equal(data[i], c.Frames[i].Data) {
			t.Fatalf("frame %d bytes differ", i)
		}
		if !cis[i].Timestamp.Equal(c.Frames[i].CI.Timestamp) {
			t.Fatalf("frame %d timestamp %v, want %v", i, cis[i].Timestamp, c.Frames[i].CI.Timestamp)
		}
	}
	if want := time.Date(2024, 2, 29, 12, 0, 0, 0, time.UTC).Add(250 * time.Microsecond); !cis[1].Timestamp.Equal(want) {
		t.Fatalf("second frame at %v, want %v", cis[1].Timestamp, want)
	}
}

func TestClockDefaults(t *testing.T) {
	var zero Clock
	if !zero.At(3).Equal(DefaultClock().At(3)) {
		t.Fatal("zero clock is not the default clock")
	}
	s := mustSession(t, cli4, srv4, SessionOptions{})
	s.Send(dataplane.ToServer, []byte("x"))
	f := mustFrames(t, s)
	if !f[0].CI.Timestamp.Equal(DefaultClock().Start) || f[1].CI.Timestamp.Sub(f[0].CI.Timestamp) != DefaultClock().Step {
		t.Fatalf("timestamps %v %v", f[0].CI.Timestamp, f[1].CI.Timestamp)
	}
}
