package decode

import (
	"errors"
	"fmt"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

// ethernetHeaderLen is the length of an untagged Ethernet II header.
const ethernetHeaderLen = 14

// maxLayers is the capacity of the decoded-layer list: link, MaxVLANTags tags,
// IP and transport. It never grows, so decoding never allocates.
const maxLayers = 2 + MaxVLANTags + 2

// first-layer parsers, one per kind of link layer.
const (
	parseEthernet = iota
	parseSLL
	parseSLL2
	parseIPv4
	parseIPv6
	numParsers
)

// Decoder decodes frames into Packet values. It is built on gopacket's
// DecodingLayerParser with the project's own layers for SLL, SLL2, 802.1Q,
// IPv4, IPv6, TCP and UDP, and allocates nothing per packet.
//
// A Decoder is not safe for concurrent use; use one per goroutine.
type Decoder struct {
	// VerifyChecksums makes Decode verify TCP and UDP checksums of whole
	// (non-fragment, untruncated) datagrams and report the result in
	// Packet.L4ChecksumOK. When false, L4ChecksumOK is always true.
	VerifyChecksums bool

	eth  layers.Ethernet
	vlan vlanLayer
	sll  sllLayer
	sll2 sll2Layer
	ip4  ipv4Layer
	ip6  ipv6Layer
	tcp  tcpLayer
	udp  udpLayer

	parsers [numParsers]*gopacket.DecodingLayerParser
	decoded []gopacket.LayerType

	// Per-call state read by the layers.
	p         *Packet
	vlanDepth int
	wantL4    bool // the IP layer handed the payload to TCP or UDP
	l4Done    bool // the transport layer finished (or was skipped in a fragment)
}

// NewDecoder returns a Decoder with checksum verification off.
func NewDecoder() *Decoder {
	d := &Decoder{decoded: make([]gopacket.LayerType, 0, maxLayers)}
	d.vlan.d = d
	d.ip4.d = d
	d.ip6.d = d
	d.tcp.d = d
	d.udp.d = d
	all := []gopacket.DecodingLayer{&d.eth, &d.vlan, &d.sll, &d.sll2, &d.ip4, &d.ip6, &d.tcp, &d.udp}
	firsts := [numParsers]gopacket.LayerType{
		parseEthernet: layers.LayerTypeEthernet,
		parseSLL:      layers.LayerTypeLinuxSLL,
		parseSLL2:     LayerTypeLinuxSLL2,
		parseIPv4:     layers.LayerTypeIPv4,
		parseIPv6:     layers.LayerTypeIPv6,
	}
	for i, first := range firsts {
		dlp := gopacket.NewDecodingLayerParser(first)
		var dlc gopacket.DecodingLayerContainer = gopacket.DecodingLayerArray(nil)
		for _, l := range all {
			dlc = dlc.Put(l)
		}
		dlp.SetDecodingLayerContainer(dlc)
		// Layers we do not decode (ARP, ICMP, ...) end decoding without error.
		dlp.IgnoreUnsupported = true
		d.parsers[i] = dlp
	}
	return d
}

// Decode decodes frame, captured with link type lt at time ts, into p. Every
// field of p is overwritten; its slices alias frame.
//
// A frame that carries no IP packet (ARP, LLC, ...) yields p.IPVersion == 0
// and a nil error: it passes untouched. A truncated or invalid link, IP or
// transport header yields an error wrapping ErrMalformed. A frame shorter than
// its IP total length but with complete headers is not an error: p.Truncated
// is set and the slices hold what the frame has.
//
// For a fragment, IsFragment and Frag are set, IPHeaderLen is the offset of the
// fragment data (after the fragment header for IPv6) and L3Payload is the
// fragment data. Transport fields are filled only for a first fragment whose
// data holds the whole transport header; the checksum is not verified.
func (d *Decoder) Decode(lt layers.LinkType, frame []byte, ts time.Time, p *Packet) error {
	*p = Packet{Timestamp: ts, IPChecksumOK: true, L4ChecksumOK: true}
	if len(frame) == 0 {
		return errEmptyFrame
	}
	var which int
	switch lt {
	case layers.LinkTypeEthernet:
		if len(frame) < ethernetHeaderLen {
			return errEthernetShort
		}
		which = parseEthernet
	case layers.LinkTypeLinuxSLL:
		which = parseSLL
	case LinkTypeLinuxSLL2:
		which = parseSLL2
	case layers.LinkTypeIPv4:
		which = parseIPv4
	case layers.LinkTypeIPv6:
		which = parseIPv6
	case layers.LinkTypeRaw:
		return d.decodeIP(frame, p)
	default:
		if lt == LinkTypeRawAlt && rawAltIsRaw {
			return d.decodeIP(frame, p)
		}
		return fmt.Errorf("dataplane/decode: link type %d: %w", lt, ErrUnsupportedLinkType)
	}
	return d.run(which, frame, p)
}

// DecodeIP decodes an IP packet that starts at its IP header (a raw-IP frame
// or a datagram rebuilt by dataplane/defrag) into p, like Decode.
func (d *Decoder) DecodeIP(ipPacket []byte, ts time.Time, p *Packet) error {
	*p = Packet{Timestamp: ts, IPChecksumOK: true, L4ChecksumOK: true}
	return d.decodeIP(ipPacket, p)
}

func (d *Decoder) decodeIP(b []byte, p *Packet) error {
	if len(b) == 0 {
		return errEmptyFrame
	}
	switch b[0] >> 4 {
	case 4:
		return d.run(parseIPv4, b, p)
	case 6:
		return d.run(parseIPv6, b, p)
	}
	return errIPVersion
}

func (d *Decoder) run(which int, b []byte, p *Packet) error {
	d.p = p
	d.vlanDepth = 0
	d.wantL4, d.l4Done = false, false
	err := d.parsers[which].DecodeLayers(b, &d.decoded)
	d.p = nil
	if err != nil {
		if errors.Is(err, ErrMalformed) {
			return err
		}
		// A gopacket layer's own error, or a recovered panic.
		return fmt.Errorf("dataplane/decode: %v: %w", err, ErrMalformed)
	}
	if p.IPVersion == 0 {
		// Decoding stopped in the link layer. If it stopped because an
		// IP ethertype had no bytes behind it, the IP header is missing.
		if n := len(d.decoded); n > 0 && isIPLayer(d.linkNext(d.decoded[n-1])) {
			return errIPMissing
		}
		return nil
	}
	if d.wantL4 && !d.l4Done && !p.IsFragment {
		return errTransportAbsent
	}
	return nil
}

// transportLayer returns the layer type that decodes proto and notes that a
// transport header is expected.
func (d *Decoder) transportLayer(proto uint8) gopacket.LayerType {
	switch proto {
	case ProtoTCP:
		d.wantL4 = true
		return layers.LayerTypeTCP
	case ProtoUDP:
		d.wantL4 = true
		return layers.LayerTypeUDP
	}
	return gopacket.LayerTypeZero
}

// l4Fail reports a transport header problem: an error for a whole datagram;
// for a first fragment the transport fields are left empty, since the header
// may continue in the next fragment and is decoded after reassembly.
func (d *Decoder) l4Fail(err error) error {
	if d.p.IsFragment {
		d.l4Done = true
		return nil
	}
	return err
}

// linkNext returns the layer type a decoded link layer announced.
func (d *Decoder) linkNext(t gopacket.LayerType) gopacket.LayerType {
	switch t {
	case layers.LayerTypeEthernet:
		return d.eth.NextLayerType()
	case layers.LayerTypeDot1Q:
		return d.vlan.next
	case layers.LayerTypeLinuxSLL:
		return d.sll.next
	case LayerTypeLinuxSLL2:
		return d.sll2.next
	}
	return gopacket.LayerTypeZero
}

func isIPLayer(t gopacket.LayerType) bool {
	return t == layers.LayerTypeIPv4 || t == layers.LayerTypeIPv6
}
