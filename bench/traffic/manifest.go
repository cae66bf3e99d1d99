package traffic

import (
	"encoding/json"
	"fmt"
	"os"
	"time"
)

// ManifestVersion is the manifest format version (README.md describes it).
const ManifestVersion = 1

// Flow kinds, as named in the manifest.
const (
	KindHTTP      = "http"
	KindTLS       = "tls"
	KindDNSUDP    = "dns_udp"
	KindDNSTCP    = "dns_tcp"
	KindExploit   = "exploit"
	KindLookAlike = "lookalike"
)

// benignKinds are indexed like Weights.slice.
var benignKinds = [...]string{KindHTTP, KindTLS, KindDNSUDP, KindDNSTCP}

// Manifest describes a generated capture: what it holds and where every
// exploit and look-alike is. It is written as JSON beside the capture.
type Manifest struct {
	Version int    `json:"version"`
	Capture string `json:"capture,omitempty"`
	Format  string `json:"format"`
	// LinkType is the capture's link type (Ethernet).
	LinkType string  `json:"link_type"`
	Seed     uint64  `json:"seed"`
	Options  Options `json:"options"`
	// Flows counts flows per kind (KindHTTP …); FlowsTotal all of them.
	FlowsTotal int            `json:"flows_total"`
	Flows      map[string]int `json:"flows"`
	// Packets and Bytes (frame bytes, no FCS) in total and per kind.
	Packets       int64            `json:"packets"`
	Bytes         int64            `json:"bytes"`
	PacketsByKind map[string]int64 `json:"packets_by_kind"`
	BytesByKind   map[string]int64 `json:"bytes_by_kind"`
	IPv6Flows     int              `json:"ipv6_flows"`
	// First and Last are the first and last frame timestamps.
	First time.Time `json:"first"`
	Last  time.Time `json:"last"`
	// FrameSizes is the frame-size histogram.
	FrameSizes Histogram `json:"frame_sizes"`
	HTTP       struct {
		// Requests per object class (api, page, download).
		Requests map[string]int `json:"requests"`
	} `json:"http"`
	TLS struct {
		Versions map[string]int `json:"versions"`
		// Requests are application-data exchanges per object class.
		Requests map[string]int `json:"requests"`
	} `json:"tls"`
	DNS struct {
		// Queries per query type (A, AAAA, TXT), UDP and TCP together.
		Queries map[string]int `json:"queries"`
	} `json:"dns"`
	// Exploits and LookAlikes, in capture order.
	Exploits   []Placement `json:"exploits"`
	LookAlikes []Placement `json:"lookalikes"`
}

// Placement is where one patch test's conversation sits in the capture.
type Placement struct {
	Patch string   `json:"patch"`
	CVE   []string `json:"cve"`
	// File is the patch file; Test the test's name in it.
	File string `json:"file"`
	Test string `json:"test"`
	// Action is the patch's action; Expected the verdict a gateway
	// enforcing the catalog must give the flow: "drop" or "reset" for
	// exploits of enforced patches, "pass" for look-alikes and detect-mode
	// patches, unless another patch matches the look-alike (OtherPatches).
	Action   string `json:"action"`
	Expected string `json:"expected"`
	// OtherPatches are other patches of the catalog that match a
	// look-alike (it is their exploit); Expected is then their verdict.
	OtherPatches []string `json:"other_patches,omitempty"`
	// Flow is the flow's number in start order (0-based).
	Flow int `json:"flow"`
	// Proto is "tcp" or "udp"; Client and Server are "addr:port".
	Proto  string `json:"proto"`
	Client string `json:"client"`
	Server string `json:"server"`
	// FirstPacket is the capture index (0-based) of the flow's first frame
	// (the SYN); CompletePacket of the frame that completes the test's last
	// message (the exploit message: after it the vulnerable condition is
	// complete); LastPacket of the flow's last frame.
	FirstPacket    int64 `json:"first_packet"`
	CompletePacket int64 `json:"complete_packet"`
	LastPacket     int64 `json:"last_packet"`
	Packets        int   `json:"packets"`
}

// Histogram counts frames by size (frame bytes without the FCS). Bins
// follow RFC 2819's etherStatsPkts*Octets buckets, with one more for frames
// above a standard Ethernet frame.
type Histogram struct {
	Bins []Bin   `json:"bins"`
	Mean float64 `json:"mean"`
}

// Bin is one histogram bucket: frames of Min..Max bytes (Max 0: no limit).
type Bin struct {
	Min   int     `json:"min"`
	Max   int     `json:"max"`
	Count int64   `json:"count"`
	Share float64 `json:"share"`
}

var binBounds = [...][2]int{{0, 64}, {65, 127}, {128, 255}, {256, 511}, {512, 1023}, {1024, 1518}, {1519, 0}}

func newHistogram() Histogram {
	h := Histogram{Bins: make([]Bin, len(binBounds))}
	for i, b := range binBounds {
		h.Bins[i].Min, h.Bins[i].Max = b[0], b[1]
	}
	return h
}

func (h *Histogram) add(size int) {
	for i := range h.Bins {
		if h.Bins[i].Max == 0 || size <= h.Bins[i].Max {
			h.Bins[i].Count++
			return
		}
	}
}

func (h *Histogram) finish(packets, bytes int64) {
	if packets == 0 {
		return
	}
	for i := range h.Bins {
		h.Bins[i].Share = float64(h.Bins[i].Count) / float64(packets)
	}
	h.Mean = float64(bytes) / float64(packets)
}

func newManifest(o Options) *Manifest {
	m := &Manifest{
		Version: ManifestVersion, Format: o.Format, LinkType: "Ethernet", Seed: o.Seed, Options: o,
		Flows: map[string]int{}, PacketsByKind: map[string]int64{}, BytesByKind: map[string]int64{},
		FrameSizes: newHistogram(), Exploits: []Placement{}, LookAlikes: []Placement{},
	}
	m.HTTP.Requests = map[string]int{}
	m.TLS.Versions = map[string]int{}
	m.TLS.Requests = map[string]int{}
	m.DNS.Queries = map[string]int{}
	return m
}

// ReadManifest reads a manifest file.
func ReadManifest(path string) (*Manifest, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("traffic: manifest: %w", err)
	}
	m := &Manifest{}
	if err := json.Unmarshal(data, m); err != nil {
		return nil, fmt.Errorf("traffic: manifest %s: %w", path, err)
	}
	return m, nil
}

// write stores the manifest as indented JSON.
func (m *Manifest) write(path string) error {
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return fmt.Errorf("traffic: manifest: %w", err)
	}
	if err := os.WriteFile(path, append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("traffic: manifest: %w", err)
	}
	return nil
}
