package gen

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/patchgate/patchgate/dataplane"
)

// serialize is how every frame is built: lengths and checksums computed by
// gopacket, then corrupted on purpose where a segment asks for it.
var serialize = gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}

// Checksum field offsets within the transport headers.
const (
	tcpChecksumOffset = 16
	udpChecksumOffset = 6
)

// Initial IPv4 identification / IPv6 fragment identification per direction.
var ipIDBase = [2]uint16{0x1000, 0x8000}

// encoder serialises the segments of one flow. It holds scratch space reused
// across segments; one encoder serves one encode call.
type encoder struct {
	opts   SessionOptions
	tcp    bool
	v6     bool
	ip     [2]net.IP // source address by direction
	port   [2]uint16 // source port by direction
	mac    [2]net.HardwareAddr
	ipID   [2]uint16
	fragID [2]uint32
	buf    gopacket.SerializeBuffer

	tcpOpts [5]layers.TCPOption
	mss     [2]byte
	ws      [1]byte
	tsOpt   [8]byte
}

func newEncoder(client, server Endpoint, opts SessionOptions, tcp bool) *encoder {
	c, s := client.Addr.Unmap(), server.Addr.Unmap()
	e := &encoder{
		opts: opts.withDefaults(),
		tcp:  tcp,
		v6:   c.Is6(),
		ip:   [2]net.IP{c.AsSlice(), s.AsSlice()},
		port: [2]uint16{client.Port, server.Port},
		mac:  [2]net.HardwareAddr{macFor(c.AsSlice()), macFor(s.AsSlice())},
		buf:  gopacket.NewSerializeBuffer(),
	}
	e.ipID = ipIDBase
	e.fragID = [2]uint32{uint32(ipIDBase[0]) << 8, uint32(ipIDBase[1]) << 8}
	return e
}

// macFor derives a locally administered MAC address from the last four bytes
// of an IP address, so every host in a generated capture has its own.
func macFor(ip []byte) net.HardwareAddr {
	n := len(ip)
	return net.HardwareAddr{0x02, 0x00, ip[n-4], ip[n-3], ip[n-2], ip[n-1]}
}

// encode serialises segs (a private copy is modified) into stamped frames.
func (e *encoder) encode(segs []Segment) ([]Frame, error) {
	segs = append([]Segment(nil), segs...)
	if e.tcp {
		fixAcks(segs, e.opts.ClientISN, e.opts.ServerISN)
	}
	frames := make([]Frame, 0, len(segs))
	for i := range segs {
		var err error
		frames, err = e.appendSegment(frames, i, &segs[i])
		if err != nil {
			return nil, fmt.Errorf("dataplane/gen: segment %d: %w", i, err)
		}
	}
	markLast(frames)
	e.opts.Clock.Stamp(frames)
	return frames, nil
}

// rcvState is what one receiver has accepted of one direction.
type rcvState struct {
	next    uint32      // next sequence number expected
	pending [][2]uint32 // accepted out-of-order ranges [seq, end)
}

func seqLE(a, b uint32) bool { return int32(a-b) <= 0 }

func (r *rcvState) add(seq, end uint32) {
	if !seqLE(seq, r.next) {
		r.pending = append(r.pending, [2]uint32{seq, end})
		return
	}
	if seqLE(end, r.next) {
		return
	}
	r.next = end
	for moved := true; moved; {
		moved = false
		for i := 0; i < len(r.pending); i++ {
			p := r.pending[i]
			if seqLE(p[0], r.next) {
				if !seqLE(p[1], r.next) {
					r.next = p[1]
				}
				r.pending = append(r.pending[:i], r.pending[i+1:]...)
				i--
				moved = true
			}
		}
	}
}

// fixAcks sets every ACK number to what the sender has received in order
// from the other side at that point of the emission order, as a receiver's
// cumulative ACK does: reordered, lost or rejected segments produce
// duplicate ACKs instead of ACKs for data that never arrived.
func fixAcks(segs []Segment, clientISN, serverISN uint32) {
	var rcv [2]rcvState
	rcv[dataplane.ToServer].next = clientISN + 1
	rcv[dataplane.ToClient].next = serverISN + 1
	for i := range segs {
		s := &segs[i]
		if s.Flags&ACK != 0 && !s.KeepAck {
			s.Ack = rcv[s.Dir.Reverse()].next
		}
		if s.accepted() {
			rcv[s.Dir].add(s.Seq, s.end())
		}
	}
}

// markLast flags the last frame of each (direction, message).
func markLast(frames []Frame) {
	seen := make(map[[2]int]bool)
	for i := len(frames) - 1; i >= 0; i-- {
		m := &frames[i].Meta
		if m.Msg < 0 {
			continue
		}
		k := [2]int{int(m.Dir), m.Msg}
		if !seen[k] {
			m.Last = true
			seen[k] = true
		}
	}
}

// layersFor returns the network and transport layers of seg.
func (e *encoder) layersFor(seg *Segment) (network, transport gopacket.SerializableLayer, err error) {
	d, r := seg.Dir, seg.Dir.Reverse()
	ttl := e.opts.TTL
	if seg.TTL != 0 {
		ttl = seg.TTL
	}
	proto := layers.IPProtocolUDP
	if e.tcp {
		proto = layers.IPProtocolTCP
	}
	var nl gopacket.NetworkLayer
	if e.v6 {
		ip6 := &layers.IPv6{Version: 6, HopLimit: ttl, NextHeader: proto, SrcIP: e.ip[d], DstIP: e.ip[r]}
		nl, network = ip6, ip6
	} else {
		ip4 := &layers.IPv4{Version: 4, TTL: ttl, Id: e.ipID[d], Protocol: proto, SrcIP: e.ip[d], DstIP: e.ip[r]}
		if e.tcp && seg.Frag == nil {
			ip4.Flags = layers.IPv4DontFragment
		}
		nl, network = ip4, ip4
	}
	e.ipID[d]++
	if !e.tcp {
		if len(seg.Payload) > MaxDatagramSize {
			return nil, nil, fmt.Errorf("datagram of %d bytes exceeds MaxDatagramSize %d", len(seg.Payload), MaxDatagramSize)
		}
		u := &layers.UDP{SrcPort: layers.UDPPort(e.port[d]), DstPort: layers.UDPPort(e.port[r])}
		if err := u.SetNetworkLayerForChecksum(nl); err != nil {
			return nil, nil, err
		}
		return network, u, nil
	}
	if len(seg.Payload) > MaxSegmentSize {
		return nil, nil, fmt.Errorf("payload of %d bytes exceeds MaxSegmentSize %d", len(seg.Payload), MaxSegmentSize)
	}
	t := &layers.TCP{
		SrcPort: layers.TCPPort(e.port[d]), DstPort: layers.TCPPort(e.port[r]),
		Seq: seg.Seq, Ack: seg.Ack, Window: seg.Window,
		FIN: seg.Flags&FIN != 0, SYN: seg.Flags&SYN != 0, RST: seg.Flags&RST != 0,
		PSH: seg.Flags&PSH != 0, ACK: seg.Flags&ACK != 0, URG: seg.Flags&URG != 0,
		Options: e.tcpOptions(seg),
	}
	if err := t.SetNetworkLayerForChecksum(nl); err != nil {
		return nil, nil, err
	}
	return network, t, nil
}

// tcpOptions builds the options of seg in Linux's order, in scratch space.
func (e *encoder) tcpOptions(seg *Segment) []layers.TCPOption {
	o := e.tcpOpts[:0]
	nop := layers.TCPOption{OptionType: layers.TCPOptionKindNop}
	ts := func() layers.TCPOption {
		binary.BigEndian.PutUint32(e.tsOpt[0:], seg.TSVal)
		binary.BigEndian.PutUint32(e.tsOpt[4:], seg.TSEcr)
		return layers.TCPOption{OptionType: layers.TCPOptionKindTimestamps, OptionData: e.tsOpt[:]}
	}
	if seg.Flags&SYN != 0 {
		if e.opts.MSS > 0 {
			binary.BigEndian.PutUint16(e.mss[:], e.opts.MSS)
			o = append(o, layers.TCPOption{OptionType: layers.TCPOptionKindMSS, OptionData: e.mss[:]})
		}
		if e.opts.SACKPermitted {
			o = append(o, layers.TCPOption{OptionType: layers.TCPOptionKindSACKPermitted})
		}
		if e.opts.Timestamps {
			o = append(o, ts())
		}
		if e.opts.WindowScale >= 0 {
			e.ws[0] = byte(e.opts.WindowScale)
			o = append(o, nop, layers.TCPOption{OptionType: layers.TCPOptionKindWindowScale, OptionData: e.ws[:]})
		}
	} else if e.opts.Timestamps && seg.Flags&RST == 0 {
		o = append(o, nop, nop, ts())
	}
	return o
}

// linkLayer returns the Ethernet header for dir, or nil for raw IP.
func (e *encoder) linkLayer(dir dataplane.Direction) gopacket.SerializableLayer {
	if e.opts.LinkType != layers.LinkTypeEthernet {
		return nil
	}
	et := layers.EthernetTypeIPv4
	if e.v6 {
		et = layers.EthernetTypeIPv6
	}
	return &layers.Ethernet{SrcMAC: e.mac[dir], DstMAC: e.mac[dir.Reverse()], EthernetType: et}
}

// build serialises ls (a nil link layer is skipped) and returns a copy.
func (e *encoder) build(ls ...gopacket.SerializableLayer) ([]byte, error) {
	if ls[0] == nil {
		ls = ls[1:]
	}
	if err := gopacket.SerializeLayers(e.buf, serialize, ls...); err != nil {
		return nil, err
	}
	return append([]byte(nil), e.buf.Bytes()...), nil
}

func (e *encoder) ipHeaderLen() int {
	if e.v6 {
		return 40
	}
	return 20
}

func (e *encoder) checksumOffset() int {
	if e.tcp {
		return tcpChecksumOffset
	}
	return udpChecksumOffset
}

// corrupt changes a transport checksum to a value that is wrong in ones'
// complement arithmetic and, for UDP over IPv4, not the "no checksum" zero.
func corrupt(b []byte) {
	v := binary.BigEndian.Uint16(b)
	bad := v ^ 0x5555
	if bad == 0 {
		bad = v ^ 0x0f0f
	}
	binary.BigEndian.PutUint16(b, bad)
}

// appendSegment serialises one segment into one frame, or several when it is
// fragmented.
func (e *encoder) appendSegment(frames []Frame, idx int, seg *Segment) ([]Frame, error) {
	network, transport, err := e.layersFor(seg)
	if err != nil {
		return nil, err
	}
	meta := FrameMeta{Dir: seg.Dir, Msg: seg.Msg, Segment: idx, Fragment: -1, Decoy: seg.Decoy}
	if len(seg.Payload) == 0 {
		meta.Msg = -1
	}
	link := e.linkLayer(seg.Dir)
	if seg.Frag == nil {
		data, err := e.build(link, network, transport, gopacket.Payload(seg.Payload))
		if err != nil {
			return nil, err
		}
		if seg.BadChecksum {
			off := e.ipHeaderLen() + e.checksumOffset()
			if link != nil {
				off += 14
			}
			corrupt(data[off:])
		}
		return append(frames, newFrame(data, meta)), nil
	}
	if err := seg.Frag.validate(e.v6); err != nil {
		return nil, err
	}
	pkt, err := e.build(nil, network, transport, gopacket.Payload(seg.Payload))
	if err != nil {
		return nil, err
	}
	l4 := pkt[e.ipHeaderLen():]
	if seg.BadChecksum {
		corrupt(l4[e.checksumOffset():])
	}
	return e.appendFragments(frames, meta, seg, network, l4, len(l4)-len(seg.Payload))
}

func newFrame(data []byte, meta FrameMeta) Frame {
	return Frame{Data: data, CI: gopacket.CaptureInfo{CaptureLength: len(data), Length: len(data)}, Meta: meta}
}

var errNoPayloadToAlter = errors.New("overlapping fragment covers no payload bytes to alter")
