package traffic

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

func TestDeterministic(t *testing.T) {
	catalog := loadCatalog(t)
	run := func(dir string, seed uint64) (capture, manifest []byte) {
		o := DefaultOptions()
		o.Flows, o.Seed, o.Patches = 600, seed, catalog
		o.Out = filepath.Join(dir, "x.pcap")
		res := generate(t, o)
		c, err := os.ReadFile(o.Out)
		if err != nil {
			t.Fatal(err)
		}
		m, err := os.ReadFile(res.ManifestPath)
		if err != nil {
			t.Fatal(err)
		}
		return c, m
	}
	c1, m1 := run(t.TempDir(), 42)
	c2, m2 := run(t.TempDir(), 42)
	if !bytes.Equal(c1, c2) {
		t.Errorf("same seed: captures differ (%d and %d bytes)", len(c1), len(c2))
	}
	if !bytes.Equal(m1, m2) {
		t.Errorf("same seed: manifests differ")
	}
	c3, _ := run(t.TempDir(), 43)
	if bytes.Equal(c1, c3) {
		t.Errorf("seeds 42 and 43 gave the same capture")
	}
}

func TestFlowCountsAndManifest(t *testing.T) {
	catalog := loadCatalog(t)
	o := DefaultOptions()
	o.Flows, o.Patches, o.Seed = 2000, catalog, 7
	res := generate(t, o)

	exploits, lookalikes, err := catalogTests(catalog)
	if err != nil {
		t.Fatal(err)
	}
	if res.FlowsTotal != o.Flows {
		t.Errorf("FlowsTotal = %d, want %d", res.FlowsTotal, o.Flows)
	}
	sum := 0
	for _, n := range res.Flows {
		sum += n
	}
	if sum != o.Flows {
		t.Errorf("flows by kind %v sum to %d, want %d", res.Flows, sum, o.Flows)
	}
	if got := res.Flows[KindExploit]; got != len(exploits) || len(res.Exploits) != len(exploits) {
		t.Errorf("exploit flows = %d (%d placed), want one per exploit test (%d)", got, len(res.Exploits), len(exploits))
	}
	if got := res.Flows[KindLookAlike]; got != len(lookalikes) || len(res.LookAlikes) != len(lookalikes) {
		t.Errorf("look-alike flows = %d (%d placed), want %d", got, len(res.LookAlikes), len(lookalikes))
	}
	// Benign kinds follow the weights (40/30/25/5) within a loose margin.
	benign := float64(o.Flows - len(exploits) - len(lookalikes))
	// 2000 flows: a share of 0.40 has a standard deviation of about 0.011.
	for kind, want := range map[string]float64{KindHTTP: 0.40, KindTLS: 0.30, KindDNSUDP: 0.25, KindDNSTCP: 0.05} {
		if got := float64(res.Flows[kind]) / benign; got < want-0.04 || got > want+0.04 {
			t.Errorf("%s share %.3f, want %.2f±0.04", kind, got, want)
		}
	}
	if v6 := float64(res.IPv6Flows) / float64(o.Flows); v6 < 0.16 || v6 > 0.24 {
		t.Errorf("IPv6 share %.3f, want 0.20±0.04", v6)
	}

	// Every test of the catalog is placed once, with positions in order.
	seen := map[string]bool{}
	for _, p := range append(append([]Placement{}, res.Exploits...), res.LookAlikes...) {
		seen[p.Patch+"/"+p.Test] = true
		if !(p.FirstPacket >= 0 && p.FirstPacket <= p.CompletePacket && p.CompletePacket <= p.LastPacket && p.LastPacket < res.Packets) {
			t.Errorf("%s %q: positions first %d complete %d last %d of %d", p.Patch, p.Test, p.FirstPacket, p.CompletePacket, p.LastPacket, res.Packets)
		}
	}
	if len(seen) != len(exploits)+len(lookalikes) {
		t.Errorf("%d distinct tests placed, want %d", len(seen), len(exploits)+len(lookalikes))
	}
	for _, p := range res.Exploits {
		if p.Expected != "drop" && p.Expected != "reset" {
			t.Errorf("exploit %s %q expects %q", p.Patch, p.Test, p.Expected)
		}
	}

	// The manifest on disk says the same, and the capture has its packets.
	m, err := ReadManifest(res.ManifestPath)
	if err != nil {
		t.Fatal(err)
	}
	if m.Packets != res.Packets || m.Bytes != res.Bytes || len(m.Exploits) != len(res.Exploits) || m.Capture != "traffic.pcap" {
		t.Errorf("manifest file disagrees: packets %d/%d bytes %d/%d exploits %d/%d capture %q",
			m.Packets, res.Packets, m.Bytes, res.Bytes, len(m.Exploits), len(res.Exploits), m.Capture)
	}
	var hist int64
	for _, b := range m.FrameSizes.Bins {
		hist += b.Count
	}
	if hist != m.Packets {
		t.Errorf("histogram holds %d frames, capture %d", hist, m.Packets)
	}
	if res.HTTP.Requests["api"] == 0 || res.HTTP.Requests["page"] == 0 || res.TLS.Versions["1.3"] == 0 ||
		res.TLS.Versions["1.2"] == 0 || res.DNS.Queries["A"] == 0 || res.DNS.Queries["TXT"] == 0 {
		t.Errorf("content counters incomplete: http %v tls %v %v dns %v", res.HTTP.Requests, res.TLS.Versions, res.TLS.Requests, res.DNS.Queries)
	}
	t.Logf("flows %v, packets %d, bytes %d, mean frame %.0f B, histogram %+v", res.Flows, res.Packets, res.Bytes, m.FrameSizes.Mean, m.FrameSizes.Bins)
}

// TestFramesAreWellFormed decodes every frame: Ethernet, IPv4/IPv6, TCP/UDP
// with valid checksums, nothing above a 1500-byte MTU, addresses only from
// the replay plan, every flow opened by a SYN without payload.
func TestFramesAreWellFormed(t *testing.T) {
	o := DefaultOptions()
	o.Flows, o.Patches = 800, loadCatalog(t)
	o.Format = FormatPcapNG
	res := generate(t, o)
	path := res.Path
	var (
		eth     layers.Ethernet
		ip4     layers.IPv4
		ip6     layers.IPv6
		tcp     layers.TCP
		udp     layers.UDP
		payload gopacket.Payload
	)
	parser := gopacket.NewDecodingLayerParser(layers.LayerTypeEthernet, &eth, &ip4, &ip6, &tcp, &udp, &payload)
	decoded := []gopacket.LayerType{}
	oversize, n := 0, 0
	readFrames(t, path, func(i int, lt layers.LinkType, data []byte, ci gopacket.CaptureInfo) {
		n++
		if lt != layers.LinkTypeEthernet {
			t.Fatalf("link type %v", lt)
		}
		if len(data) > 1514 {
			oversize++
		}
		if err := parser.DecodeLayers(data, &decoded); err != nil && !strings.Contains(err.Error(), "No decoder") {
			t.Fatalf("frame %d: %v", i, err)
		}
		var nl gopacket.NetworkLayer
		var src, dst string
		for _, l := range decoded {
			switch l {
			case layers.LayerTypeIPv4:
				nl, src, dst = &ip4, ip4.SrcIP.String(), ip4.DstIP.String()
			case layers.LayerTypeIPv6:
				nl, src, dst = &ip6, ip6.SrcIP.String(), ip6.DstIP.String()
			}
		}
		if nl == nil {
			t.Fatalf("frame %d: no IP layer", i)
		}
		for _, a := range []string{src, dst} {
			if !strings.HasPrefix(a, "198.51.100.") && !strings.HasPrefix(a, "203.0.113.") &&
				!strings.HasPrefix(a, "2001:db8:1::") && !strings.HasPrefix(a, "2001:db8:2::") {
				t.Fatalf("frame %d: address %s outside the replay plan", i, a)
			}
		}
		if len(decoded) > 0 && decoded[len(decoded)-1] == gopacket.LayerTypePayload {
			decoded = decoded[:len(decoded)-1]
		}
		switch decoded[len(decoded)-1] {
		case layers.LayerTypeTCP:
			_ = tcp.SetNetworkLayerForChecksum(nl)
			if !validChecksum(t, &tcp, nl, tcp.Checksum) {
				t.Fatalf("frame %d: bad TCP checksum", i)
			}
		case layers.LayerTypeUDP:
			_ = udp.SetNetworkLayerForChecksum(nl)
			if !validChecksum(t, &udp, nl, udp.Checksum) {
				t.Fatalf("frame %d: bad UDP checksum", i)
			}
		default:
			t.Fatalf("frame %d: layers %v", i, decoded)
		}
	})
	if int64(n) != res.Packets {
		t.Errorf("read %d frames, manifest says %d", n, res.Packets)
	}
	// Only the catalog's own conversations may carry datagrams above the MTU.
	if oversize > 0 {
		t.Logf("%d frames above 1514 bytes (patch test datagrams)", oversize)
	}
	if res.FrameSizes.Bins[len(res.FrameSizes.Bins)-1].Count != int64(oversize) {
		t.Errorf("histogram's last bin %d, frames above 1518: %d", res.FrameSizes.Bins[len(res.FrameSizes.Bins)-1].Count, oversize)
	}
}

// validChecksum re-serialises the transport layer with a computed checksum
// and compares it with the one on the wire.
func validChecksum(t *testing.T, l gopacket.SerializableLayer, nl gopacket.NetworkLayer, got uint16) bool {
	t.Helper()
	buf := gopacket.NewSerializeBuffer()
	var pl []byte
	switch v := l.(type) {
	case *layers.TCP:
		pl = v.Payload
	case *layers.UDP:
		pl = v.Payload
	}
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{ComputeChecksums: true, FixLengths: true}, l, gopacket.Payload(pl)); err != nil {
		t.Fatal(err)
	}
	b := buf.Bytes()
	off := 16
	if _, ok := l.(*layers.UDP); ok {
		off = 6
	}
	return uint16(b[off])<<8|uint16(b[off+1]) == got
}

func TestValidate(t *testing.T) {
	base := DefaultOptions()
	base.Out = "x.pcap"
	if err := base.Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	cases := map[string]func(*Options){
		"Flows":       func(o *Options) { o.Flows = 0 },
		"Weights":     func(o *Options) { o.Weights = Weights{} },
		"IPv6Share":   func(o *Options) { o.IPv6Share = 1.5 },
		"Concurrency": func(o *Options) { o.Concurrency = 0 },
		"Format":      func(o *Options) { o.Format = "erf" },
		"Out":         func(o *Options) { o.Out = "" },
		"Exploits":    func(o *Options) { o.Exploits = -2 },
		"ExploitRate": func(o *Options) { o.ExploitRate = 2 },
	}
	for field, mod := range cases {
		o := base
		mod(&o)
		err := o.Validate()
		if err == nil || !strings.Contains(err.Error(), field) {
			t.Errorf("%s: error %v does not name the field", field, err)
		}
	}
	// Exploits without a catalog, and more specials than flows.
	o := base
	o.Out = filepath.Join(t.TempDir(), "x.pcap")
	o.Exploits = 3
	if _, err := Generate(o); err == nil || !strings.Contains(err.Error(), "Exploits") {
		t.Errorf("no catalog: %v", err)
	}
	o.Patches, o.Flows = loadCatalog(t), 5
	if _, err := Generate(o); err == nil || !strings.Contains(err.Error(), "Flows") {
		t.Errorf("too few flows: %v", err)
	}
}

func TestExploitRate(t *testing.T) {
	o := DefaultOptions()
	o.Flows, o.Patches, o.ExploitRate, o.LookAlikes = 2000, loadCatalog(t), 0.05, 0
	o.Writer = &bytes.Buffer{}
	res := generate(t, o)
	if res.Flows[KindExploit] != 100 || len(res.Exploits) != 100 || len(res.LookAlikes) != 0 {
		t.Errorf("rate 0.05 of 2000: %d exploit flows (%d placed), %d look-alikes", res.Flows[KindExploit], len(res.Exploits), len(res.LookAlikes))
	}
	if res.ManifestPath != "" {
		t.Errorf("Writer output wrote a manifest file %s", res.ManifestPath)
	}
	if int64(o.Writer.(*bytes.Buffer).Len()) < res.Bytes {
		t.Errorf("writer got %d bytes, frames hold %d", o.Writer.(*bytes.Buffer).Len(), res.Bytes)
	}
}
