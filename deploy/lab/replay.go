package lab

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"
)

// Replay defaults and bounds.
const (
	// DefaultReplayPPS paces replays so that a flow's two directions, sent
	// from the tap's two sides, reach the node in capture order.
	DefaultReplayPPS = 1000
	// DefaultReplayTimeout bounds one tcpreplay run.
	DefaultReplayTimeout = 2 * time.Minute
	// replayQuiet is how long the receivers must stay quiet after tcpreplay
	// ends before the recording stops.
	replayQuiet = 300 * time.Millisecond
)

// ReplayOptions configure Replay.
type ReplayOptions struct {
	// PPS is tcpreplay's packets per second; 0 means DefaultReplayPPS.
	PPS int
	// TopSpeed sends as fast as possible (PPS is ignored); flows' two
	// directions may then overtake each other.
	TopSpeed bool
	// Timeout bounds the tcpreplay run; 0 means DefaultReplayTimeout.
	Timeout time.Duration
	// NoRecord skips recording the receivers (benchmarks).
	NoRecord bool
}

// ReplayResult is what a replay sent and what crossed the lab.
type ReplayResult struct {
	// Sent is the number of frames in the capture: ToServer of them from
	// the client side, the rest from the server side.
	Sent, ToServer int
	// AtServer are the frames that arrived on the tap's server side (they
	// crossed the lab from the client side), AtClient the reverse. They
	// include what the nodes sent themselves (resets).
	AtServer, AtClient []Frame
	// Dropped counts frames the recorder lost (0 for an exact count).
	Dropped uint64
	// Output is tcpreplay's report.
	Output string
	// Elapsed is the tcpreplay run time.
	Elapsed time.Duration
}

var replaySeq atomic.Uint64

// Replay plays an Ethernet pcap through the lab from the replay tap: frames
// whose source address is on the client LAN (ClientLAN4/6) leave the tap's
// client side toward R1, frames from the server LAN leave its server side
// toward R2, in capture order, each rewritten to the tap's and the router's
// MAC addresses. The routers learn permanent neighbour entries that send
// the capture's addresses back to the tap. Captures of dataplane/gen.Mix fit
// as they are; addresses must not be ones the lab's own hosts use.
// Needs tcpreplay and tcpprep (Debian package tcpreplay).
func (l *Lab) Replay(pcapPath string, o ReplayOptions) (*ReplayResult, error) {
	if o.PPS == 0 {
		o.PPS = DefaultReplayPPS
	}
	if o.Timeout == 0 {
		o.Timeout = DefaultReplayTimeout
	}
	for _, bin := range []string{"tcpreplay", "tcpprep"} {
		if _, err := exec.LookPath(bin); err != nil {
			return nil, fmt.Errorf("lab: replay: %s (Debian package tcpreplay): %w", bin, err)
		}
	}
	base := filepath.Join(l.Dir, "replay-"+strconv.FormatUint(replaySeq.Add(1), 10))
	res, clients, servers, err := l.rewriteCapture(pcapPath, base+".pcap")
	if err != nil {
		return nil, fmt.Errorf("lab: replay %s: %w", pcapPath, err)
	}
	defer os.Remove(base + ".pcap")
	defer os.Remove(base + ".cache")
	// tcpprep's MAC split sends frames from the listed source MACs out of
	// the primary interface (-i), the others out of the secondary (-I).
	if _, err := run("tcpprep", "--mac="+l.Tap.C.MAC.String(), "-i", base+".pcap", "-o", base+".cache"); err != nil {
		return nil, fmt.Errorf("lab: replay: %w", err)
	}
	if err := l.tapNeighbours(clients, servers); err != nil {
		return nil, fmt.Errorf("lab: replay: %w", err)
	}
	var rec *Recorder
	if !o.NoRecord {
		if rec, err = l.Record(l.Tap.NS, l.Tap.C.Name, l.Tap.S.Name); err != nil {
			return nil, err
		}
	}
	args := []string{"tcpreplay", "-q", "-i", l.Tap.C.Name, "-I", l.Tap.S.Name, "--cachefile=" + base + ".cache"}
	if o.TopSpeed {
		args = append(args, "--topspeed")
	} else {
		args = append(args, "--pps="+strconv.Itoa(o.PPS))
	}
	args = append(args, base+".pcap")
	ctx, cancel := context.WithTimeout(context.Background(), o.Timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", l.Tap.NS}, args...)...)
	start := time.Now()
	out, runErr := cmd.CombinedOutput()
	res.Elapsed = time.Since(start)
	res.Output = string(out)
	if rec != nil {
		if runErr == nil {
			rec.Settle(replayQuiet, 5*time.Second)
		}
		frames, drops, err := rec.Stop()
		if err != nil && runErr == nil {
			runErr = err
		}
		res.Dropped = drops
		for _, f := range frames {
			if f.Iface == l.Tap.S.Name {
				res.AtServer = append(res.AtServer, f)
			} else {
				res.AtClient = append(res.AtClient, f)
			}
		}
		sort.SliceStable(res.AtServer, func(i, j int) bool { return res.AtServer[i].Time.Before(res.AtServer[j].Time) })
		sort.SliceStable(res.AtClient, func(i, j int) bool { return res.AtClient[i].Time.Before(res.AtClient[j].Time) })
	}
	if runErr != nil {
		return res, fmt.Errorf("lab: replay: tcpreplay: %w: %s", runErr, out)
	}
	return res, nil
}

// frameAddrs returns an Ethernet frame's IPv4 or IPv6 source and
// destination addresses.
func frameAddrs(data []byte) (src, dst netip.Addr, ok bool) {
	if len(data) < 14 {
		return src, dst, false
	}
	switch layers.EthernetType(binary.BigEndian.Uint16(data[12:14])) {
	case layers.EthernetTypeIPv4:
		if len(data) >= 14+20 {
			return netip.AddrFrom4([4]byte(data[26:30])), netip.AddrFrom4([4]byte(data[30:34])), true
		}
	case layers.EthernetTypeIPv6:
		if len(data) >= 14+40 {
			return netip.AddrFrom16([16]byte(data[22:38])), netip.AddrFrom16([16]byte(data[38:54])), true
		}
	}
	return src, dst, false
}

// rewriteCapture copies a capture with the tap's and routers' MAC addresses
// and returns the client and server addresses it uses.
func (l *Lab) rewriteCapture(in, out string) (*ReplayResult, []netip.Addr, []netip.Addr, error) {
	f, err := os.Open(in)
	if err != nil {
		return nil, nil, nil, err
	}
	defer f.Close()
	r, err := pcapgo.NewReader(f)
	if err != nil {
		return nil, nil, nil, err
	}
	if r.LinkType() != layers.LinkTypeEthernet {
		return nil, nil, nil, fmt.Errorf("link type %v: only Ethernet captures can be replayed", r.LinkType())
	}
	w, err := os.Create(out)
	if err != nil {
		return nil, nil, nil, err
	}
	defer w.Close()
	pw := pcapgo.NewWriter(w)
	if err := pw.WriteFileHeader(65536, layers.LinkTypeEthernet); err != nil {
		return nil, nil, nil, err
	}
	reserved := map[netip.Addr]bool{R1LAN4: true, R1LAN6: true, R2LAN4: true, R2LAN6: true}
	for _, h := range append(append([]Host{}, l.Clients...), l.Servers...) {
		reserved[h.Addr4], reserved[h.Addr6] = true, true
	}
	clients, servers := map[netip.Addr]bool{}, map[netip.Addr]bool{}
	res := &ReplayResult{}
	for i := 0; ; i++ {
		data, ci, err := r.ReadPacketData()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, nil, nil, fmt.Errorf("frame %d: %w", i, err)
		}
		src, dst, ok := frameAddrs(data)
		if !ok {
			return nil, nil, nil, fmt.Errorf("frame %d: not IPv4 or IPv6 over Ethernet", i)
		}
		if reserved[src] || reserved[dst] {
			return nil, nil, nil, fmt.Errorf("frame %d: %s → %s: a lab host's address", i, src, dst)
		}
		switch {
		case ClientLAN4.Contains(src) || ClientLAN6.Contains(src):
			copy(data[0:6], l.R1.LAN.MAC)
			copy(data[6:12], l.Tap.C.MAC)
			clients[src], servers[dst] = true, true
			res.ToServer++
		case ServerLAN4.Contains(src) || ServerLAN6.Contains(src):
			copy(data[0:6], l.R2.LAN.MAC)
			copy(data[6:12], l.Tap.S.MAC)
			servers[src], clients[dst] = true, true
		default:
			return nil, nil, nil, fmt.Errorf("frame %d: source %s is on neither the client nor the server LAN", i, src)
		}
		ci.CaptureLength = len(data)
		if err := pw.WritePacket(ci, data); err != nil {
			return nil, nil, nil, err
		}
		res.Sent++
	}
	if res.Sent == 0 {
		return nil, nil, nil, fmt.Errorf("empty capture")
	}
	return res, keys(clients), keys(servers), w.Close()
}

func keys(m map[netip.Addr]bool) []netip.Addr {
	out := make([]netip.Addr, 0, len(m))
	for a := range m {
		out = append(out, a)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Less(out[j]) })
	return out
}

// tapNeighbours points the routers' neighbour entries for a capture's
// addresses at the tap: R1 reaches the clients through the tap's client
// side, R2 the servers through its server side.
func (l *Lab) tapNeighbours(clients, servers []netip.Addr) error {
	b1, b2 := &batch{ns: l.R1.NS}, &batch{ns: l.R2.NS}
	for _, a := range clients {
		neigh(b1, l.R1.LAN.Name, a, l.Tap.C.MAC)
	}
	for _, a := range servers {
		neigh(b2, l.R2.LAN.Name, a, l.Tap.S.MAC)
	}
	if err := b1.run(); err != nil {
		return err
	}
	return b2.run()
}
