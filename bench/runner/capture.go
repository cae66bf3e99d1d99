package runner

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"

	"github.com/patchgate/patchgate/dataplane"
	"github.com/patchgate/patchgate/dataplane/gen"
	"github.com/patchgate/patchgate/dataplane/patch"
	"github.com/patchgate/patchgate/deploy/lab"
)

// Exploit is one exploit in the capture: the patch it should trip and its
// flow's endpoints.
type Exploit struct {
	Patch  string         `json:"patch"`
	Client netip.AddrPort `json:"client"`
	Server netip.AddrPort `json:"server"`
}

// benchCapture is the replayed capture and what is in it.
type benchCapture struct {
	Info     CaptureInfo
	Exploits []Exploit
}

// catalogExploits returns the to-server bytes of every HTTP patch test that
// must match, with the patch id: exploits a TCP mix can carry.
func catalogExploits(dir string) ([][]byte, []string, error) {
	ps, err := patch.LoadDir(dir)
	if err != nil {
		return nil, nil, fmt.Errorf("runner: catalog: %w", err)
	}
	var reqs [][]byte
	var ids []string
	for _, p := range ps {
		if p.Protocol != "http" {
			continue
		}
		for _, t := range p.Tests {
			if !t.Match || (t.Transport != "" && t.Transport != "tcp") {
				continue
			}
			var b []byte
			for _, s := range t.Steps {
				if s.Dir == dataplane.ToServer {
					b = append(b, s.Data...)
				}
			}
			if len(b) > 0 {
				reqs, ids = append(reqs, b), append(ids, p.ID)
			}
		}
	}
	return reqs, ids, nil
}

// generateMix writes a dataplane/gen.Mix capture with the catalog's HTTP
// exploits placed in it: the fallback when bench/traffic's generator is
// not available.
func generateMix(path, patches string, sessions int, seed uint64) (*benchCapture, error) {
	reqs, ids, err := catalogExploits(patches)
	if err != nil {
		return nil, err
	}
	if len(reqs) > sessions {
		reqs, ids = reqs[:sessions], ids[:sessions]
	}
	c, places, err := gen.Mix(gen.MixOptions{Seed: seed, Sessions: sessions, Concurrency: 64, Exploits: reqs})
	if err != nil {
		return nil, fmt.Errorf("runner: capture: %w", err)
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("runner: capture: %w", err)
	}
	if err := c.WritePcap(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("runner: capture: %w", err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("runner: capture: %w", err)
	}
	bc := &benchCapture{Info: CaptureInfo{Source: "dataplane/gen.Mix", Path: path, Seed: seed}}
	for _, p := range places {
		bc.Exploits = append(bc.Exploits, Exploit{Patch: ids[p.Exploit],
			Client: netip.AddrPortFrom(p.Client.Addr, p.Client.Port),
			Server: netip.AddrPortFrom(p.Server.Addr, p.Server.Port)})
	}
	return bc, nil
}

// manifestExploits reads the exploit list of a bench/traffic manifest
// (<capture>.manifest.json). It accepts an "exploits" array whose entries
// name the patch ("patch", "id" or "cve") and the flow ("client"/"server"
// as "addr:port", or "src_ip"/"src_port"/"dest_ip"/"dest_port").
func manifestExploits(path string) ([]Exploit, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("runner: manifest: %w", err)
	}
	var m struct {
		Exploits []map[string]any `json:"exploits"`
	}
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("runner: manifest %s: %w", path, err)
	}
	str := func(e map[string]any, keys ...string) string {
		for _, k := range keys {
			switch v := e[k].(type) {
			case string:
				if v != "" {
					return v
				}
			case float64:
				return fmt.Sprint(v)
			}
		}
		return ""
	}
	var out []Exploit
	for i, e := range m.Exploits {
		x := Exploit{Patch: str(e, "patch", "id", "patch_id", "cve")}
		c, s := str(e, "client"), str(e, "server")
		if c == "" {
			c = net.JoinHostPort(str(e, "src_ip", "client_ip"), str(e, "src_port", "client_port"))
			s = net.JoinHostPort(str(e, "dest_ip", "server_ip"), str(e, "dest_port", "server_port"))
		}
		if x.Client, err = parseAddrPort(c); err != nil {
			return nil, fmt.Errorf("runner: manifest %s: exploit %d: client: %w", path, i, err)
		}
		if x.Server, err = parseAddrPort(s); err != nil {
			return nil, fmt.Errorf("runner: manifest %s: exploit %d: server: %w", path, i, err)
		}
		out = append(out, x)
	}
	return out, nil
}

// parseAddrPort parses "addr:port" ("[v6]:port" for IPv6).
func parseAddrPort(s string) (netip.AddrPort, error) { return netip.ParseAddrPort(s) }

// prepared is a capture rewritten for one lab: every frame addressed from
// the tap to the right router, a tcpprep cache that sends each out of the
// right tap port, and the addresses the routers must point at the tap.
type prepared struct {
	Pcap, Cache      string
	Clients, Servers []netip.Addr
	// Spacing is what the turn spacing did to the capture.
	Spacing spacing
}

// flowKey is a direction-independent 5-tuple.
type flowKey struct {
	a, b  netip.AddrPort
	proto byte
}

// frameTuple returns an Ethernet frame's addresses, ports and protocol.
func frameTuple(d []byte) (src, dst netip.AddrPort, proto byte, ok bool) {
	if len(d) < 14 {
		return
	}
	et := uint16(d[12])<<8 | uint16(d[13])
	var l4 []byte
	var s, t netip.Addr
	switch layers.EthernetType(et) {
	case layers.EthernetTypeIPv4:
		if len(d) < 34 {
			return
		}
		ihl := int(d[14]&0x0f) * 4
		s, t, proto = netip.AddrFrom4([4]byte(d[26:30])), netip.AddrFrom4([4]byte(d[30:34])), d[23]
		if len(d) >= 14+ihl {
			l4 = d[14+ihl:]
		}
	case layers.EthernetTypeIPv6:
		if len(d) < 54 {
			return
		}
		s, t, proto = netip.AddrFrom16([16]byte(d[22:38])), netip.AddrFrom16([16]byte(d[38:54])), d[20]
		l4 = d[54:]
	default:
		return
	}
	var sp, dp uint16
	if (proto == 6 || proto == 17) && len(l4) >= 4 {
		sp, dp = uint16(l4[0])<<8|uint16(l4[1]), uint16(l4[2])<<8|uint16(l4[3])
	}
	return netip.AddrPortFrom(s, sp), netip.AddrPortFrom(t, dp), proto, true
}

func keyOf(src, dst netip.AddrPort, proto byte) flowKey {
	if dst.Addr().Less(src.Addr()) || (dst.Addr() == src.Addr() && dst.Port() < src.Port()) {
		src, dst = dst, src
	}
	return flowKey{src, dst, proto}
}

// describeCapture counts a capture's frames, bytes and flows and writes
// its first prefix frames to prefixPath (for callgrind; 0: no prefix).
func describeCapture(path, prefixPath string, prefix int) (frames int, size int64, flows int, prefixFlows int, err error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, 0, 0, 0, fmt.Errorf("runner: capture: %w", err)
	}
	defer f.Close()
	r, err := pcapgo.NewReader(f)
	if err != nil {
		return 0, 0, 0, 0, fmt.Errorf("runner: capture %s: %w", path, err)
	}
	var pw *pcapgo.Writer
	var pf *os.File
	if prefix > 0 {
		if pf, err = os.Create(prefixPath); err != nil {
			return 0, 0, 0, 0, fmt.Errorf("runner: capture prefix: %w", err)
		}
		defer pf.Close()
		pw = pcapgo.NewWriter(pf)
		if err := pw.WriteFileHeader(65536, r.LinkType()); err != nil {
			return 0, 0, 0, 0, fmt.Errorf("runner: capture prefix: %w", err)
		}
	}
	seen := map[flowKey]bool{}
	for {
		data, ci, err := r.ReadPacketData()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return 0, 0, 0, 0, fmt.Errorf("runner: capture %s: frame %d: %w", path, frames, err)
		}
		if s, d, p, ok := frameTuple(data); ok {
			seen[keyOf(s, d, p)] = true
		}
		if pw != nil && frames < prefix {
			if err := pw.WritePacket(ci, data); err != nil {
				return 0, 0, 0, 0, fmt.Errorf("runner: capture prefix: %w", err)
			}
			if frames == prefix-1 {
				prefixFlows = len(seen)
			}
		}
		frames++
		size += int64(len(data))
	}
	if frames < prefix || prefix == 0 {
		prefixFlows = len(seen)
	}
	return frames, size, len(seen), prefixFlows, nil
}

// prepare rewrites a capture for lab l into dir (see prepared).
func prepare(l *lab.Lab, in, dir string, turnGap int) (*prepared, error) {
	f, err := os.Open(in)
	if err != nil {
		return nil, fmt.Errorf("runner: prepare: %w", err)
	}
	defer f.Close()
	r, err := pcapgo.NewReader(f)
	if err != nil {
		return nil, fmt.Errorf("runner: prepare %s: %w", in, err)
	}
	if r.LinkType() != layers.LinkTypeEthernet {
		return nil, fmt.Errorf("runner: prepare %s: link type %v, want Ethernet", in, r.LinkType())
	}
	p := &prepared{Pcap: filepath.Join(dir, "replay.pcap"), Cache: filepath.Join(dir, "replay.cache")}
	out, err := os.Create(p.Pcap)
	if err != nil {
		return nil, fmt.Errorf("runner: prepare: %w", err)
	}
	defer out.Close()
	w := pcapgo.NewWriter(out)
	if err := w.WriteFileHeader(65536, layers.LinkTypeEthernet); err != nil {
		return nil, fmt.Errorf("runner: prepare: %w", err)
	}
	clients, servers := map[netip.Addr]bool{}, map[netip.Addr]bool{}
	var datas [][]byte
	var cis []gopacket.CaptureInfo
	var keys []spacedFrame
	for i := 0; ; i++ {
		data, ci, err := r.ReadPacketData()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("runner: prepare %s: frame %d: %w", in, i, err)
		}
		k, ok := spacedKey(data)
		if !ok {
			return nil, fmt.Errorf("runner: prepare %s: frame %d: not IPv4 or IPv6 over Ethernet", in, i)
		}
		datas, cis, keys = append(datas, data), append(cis, ci), append(keys, k)
	}
	// Space the turns of every flow (see DefaultTurnGap); the timestamps
	// stay in their original sequence.
	order, sp := spaceTurns(keys, max(turnGap, 1))
	p.Spacing = sp
	for slot, i := range order {
		data, ci := datas[i], cis[i]
		ci.Timestamp = cis[slot].Timestamp
		src, dst, _, ok := frameTuple(data)
		if !ok {
			return nil, fmt.Errorf("runner: prepare %s: frame %d: not IPv4 or IPv6 over Ethernet", in, i)
		}
		switch s := src.Addr(); {
		case lab.ClientLAN4.Contains(s) || lab.ClientLAN6.Contains(s):
			copy(data[0:6], l.R1.LAN.MAC)
			copy(data[6:12], l.Tap.C.MAC)
			clients[s], servers[dst.Addr()] = true, true
		case lab.ServerLAN4.Contains(s) || lab.ServerLAN6.Contains(s):
			copy(data[0:6], l.R2.LAN.MAC)
			copy(data[6:12], l.Tap.S.MAC)
			servers[s], clients[dst.Addr()] = true, true
		default:
			return nil, fmt.Errorf("runner: prepare %s: frame %d: source %s is on neither LAN of the lab", in, i, s)
		}
		ci.CaptureLength = len(data)
		if err := w.WritePacket(ci, data); err != nil {
			return nil, fmt.Errorf("runner: prepare: %w", err)
		}
	}
	if err := out.Close(); err != nil {
		return nil, fmt.Errorf("runner: prepare: %w", err)
	}
	for a := range clients {
		p.Clients = append(p.Clients, a)
	}
	for a := range servers {
		p.Servers = append(p.Servers, a)
	}
	// tcpprep's MAC split: frames from the tap's client port leave through
	// tcpreplay's primary interface, the rest through the secondary.
	if out, err := lab.Command(l.Tap.NS, "tcpprep", "--mac="+l.Tap.C.MAC.String(), "-i", p.Pcap, "-o", p.Cache).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("runner: prepare: tcpprep: %w: %s", err, out)
	}
	// The routers send the capture's addresses back to the tap.
	var b1, b2 bytes.Buffer
	for _, a := range p.Clients {
		fmt.Fprintf(&b1, "neigh replace %s lladdr %s dev %s nud permanent\n", a, l.Tap.C.MAC, l.R1.LAN.Name)
	}
	for _, a := range p.Servers {
		fmt.Fprintf(&b2, "neigh replace %s lladdr %s dev %s nud permanent\n", a, l.Tap.S.MAC, l.R2.LAN.Name)
	}
	for _, x := range []struct {
		ns string
		b  *bytes.Buffer
	}{{l.R1.NS, &b1}, {l.R2.NS, &b2}} {
		cmd := lab.Command(x.ns, "ip", "-batch", "-")
		cmd.Stdin = x.b
		if out, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("runner: prepare: neighbours in %s: %w: %s", x.ns, err, out)
		}
	}
	return p, nil
}
