package decode

import (
	"encoding/binary"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

// Link-layer limits.
const (
	// MaxVLANTags is the deepest 802.1Q/802.1ad tag stack decoded. QinQ uses
	// two tags; two more leave room for provider stacking. A deeper stack is
	// reported as malformed rather than passed on uninspected, and the bound
	// keeps the parser's layer list (and so its memory) fixed.
	MaxVLANTags = 4

	sllHeaderLen  = 16 // Linux cooked capture v1 (LINKTYPE_LINUX_SLL)
	sll2HeaderLen = 20 // Linux cooked capture v2 (LINKTYPE_LINUX_SLL2)
	vlanTagLen    = 4
)

// LayerTypeLinuxSLL2 is the gopacket layer type of a Linux SLL2 header, which
// gopacket v1.1.19 lacks. It is registered so that gopacket.NewPacket can also
// decode SLL2 frames (first layer LayerTypeLinuxSLL2).
var LayerTypeLinuxSLL2 = gopacket.RegisterLayerType(1276, gopacket.LayerTypeMetadata{
	Name:    "LinuxSLL2",
	Decoder: gopacket.DecodeFunc(decodeSLL2Packet),
})

// vlanLayer decodes one 802.1Q or 802.1ad tag (the 4 bytes after the
// Ethernet type 0x8100/0x88a8) and counts the stack depth.
type vlanLayer struct {
	d       *Decoder
	next    gopacket.LayerType
	payload []byte
}

func (l *vlanLayer) CanDecode() gopacket.LayerClass    { return layers.LayerTypeDot1Q }
func (l *vlanLayer) NextLayerType() gopacket.LayerType { return l.next }
func (l *vlanLayer) LayerPayload() []byte              { return l.payload }

func (l *vlanLayer) DecodeFromBytes(data []byte, _ gopacket.DecodeFeedback) error {
	if len(data) < vlanTagLen {
		return errVLANShort
	}
	l.d.vlanDepth++
	if l.d.vlanDepth > MaxVLANTags {
		return errVLANDepth
	}
	l.next = layers.EthernetType(binary.BigEndian.Uint16(data[2:4])).LayerType()
	l.payload = data[vlanTagLen:]
	return nil
}

// sllLayer decodes a Linux SLL header: packet type (2), ARPHRD type (2),
// address length (2), address (8, zero padded), protocol (2). gopacket's own
// LinuxSLL slices the address by the untrusted length field, so it is not used.
type sllLayer struct {
	next    gopacket.LayerType
	payload []byte
}

func (l *sllLayer) CanDecode() gopacket.LayerClass    { return layers.LayerTypeLinuxSLL }
func (l *sllLayer) NextLayerType() gopacket.LayerType { return l.next }
func (l *sllLayer) LayerPayload() []byte              { return l.payload }

func (l *sllLayer) DecodeFromBytes(data []byte, _ gopacket.DecodeFeedback) error {
	if len(data) < sllHeaderLen {
		return errSLLShort
	}
	l.next = layers.EthernetType(binary.BigEndian.Uint16(data[14:16])).LayerType()
	l.payload = data[sllHeaderLen:]
	return nil
}

// sll2Layer decodes a Linux SLL2 header: protocol (2), reserved (2), interface
// index (4), ARPHRD type (2), packet type (1), address length (1), address (8).
type sll2Layer struct {
	next    gopacket.LayerType
	payload []byte
}

func (l *sll2Layer) CanDecode() gopacket.LayerClass    { return LayerTypeLinuxSLL2 }
func (l *sll2Layer) NextLayerType() gopacket.LayerType { return l.next }
func (l *sll2Layer) LayerPayload() []byte              { return l.payload }

func (l *sll2Layer) DecodeFromBytes(data []byte, _ gopacket.DecodeFeedback) error {
	if len(data) < sll2HeaderLen {
		return errSLL2Short
	}
	l.next = layers.EthernetType(binary.BigEndian.Uint16(data[0:2])).LayerType()
	l.payload = data[sll2HeaderLen:]
	return nil
}

// sll2Packet is the gopacket.Layer form of an SLL2 header, used only by the
// registered decoder for gopacket.NewPacket.
type sll2Packet struct {
	layers.BaseLayer
}

func (s *sll2Packet) LayerType() gopacket.LayerType { return LayerTypeLinuxSLL2 }

func decodeSLL2Packet(data []byte, p gopacket.PacketBuilder) error {
	if len(data) < sll2HeaderLen {
		p.SetTruncated()
		return errSLL2Short
	}
	s := &sll2Packet{BaseLayer: layers.BaseLayer{Contents: data[:sll2HeaderLen], Payload: data[sll2HeaderLen:]}}
	p.AddLayer(s)
	return p.NextDecoder(layers.EthernetType(binary.BigEndian.Uint16(data[0:2])))
}
