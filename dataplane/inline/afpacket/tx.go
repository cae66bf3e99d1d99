package afpacket

import (
	"encoding/binary"
	"fmt"

	"golang.org/x/sys/unix"

	"github.com/patchgate/patchgate/dataplane/decode"
)

// virtio_net_hdr fields (little-endian, as the kernel writes them for
// packet sockets on little-endian hosts; vnet headers of packet sockets use
// host order).
const (
	vnetNeedsCsum  = 1 // VIRTIO_NET_HDR_F_NEEDS_CSUM
	vnetFlags      = 0
	vnetGSOType    = 1
	vnetHdrLenOff  = 2
	vnetCsumStart  = 6
	vnetCsumOffset = 8
)

// txSock transmits frames on one interface. It is safe for concurrent use
// (one write system call per frame).
type txSock struct {
	fd int
}

// openTx opens a transmit socket on ifindex and puts the interface in
// promiscuous mode for the socket's lifetime (a bridge port must receive
// frames addressed to the hosts behind the other port).
func openTx(ifindex int) (*txSock, error) {
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("afpacket: tx socket: %w", err)
	}
	t := &txSock{fd: fd}
	fail := func(what string, err error) (*txSock, error) {
		unix.Close(fd)
		return nil, fmt.Errorf("afpacket: tx %s: %w", what, err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_VNET_HDR, 1); err != nil {
		return fail("PACKET_VNET_HDR", err)
	}
	// Frames were queued by the sender's qdisc already; skip the node's.
	if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_QDISC_BYPASS, 1); err != nil {
		return fail("PACKET_QDISC_BYPASS", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Ifindex: ifindex}); err != nil {
		return fail("bind", err)
	}
	mreq := unix.PacketMreq{Ifindex: int32(ifindex), Type: unix.PACKET_MR_PROMISC}
	if err := unix.SetsockoptPacketMreq(fd, unix.SOL_PACKET, unix.PACKET_ADD_MEMBERSHIP, &mreq); err != nil {
		return fail("promiscuous mode", err)
	}
	return t, nil
}

// send transmits frame preceded by its virtio_net_hdr (checksum and
// segmentation offload requests are honoured by the kernel).
func (t *txSock) send(vnet, frame []byte) error {
	if _, err := unix.Writev(t.fd, [][]byte{vnet, frame}); err != nil {
		return fmt.Errorf("afpacket: send: %w", err)
	}
	return nil
}

func (t *txSock) close() { unix.Close(t.fd) }

// noVnet is the header of a frame that needs nothing from the kernel.
var noVnet = make([]byte, vnetHdrLen)

// completeChecksum fills in the transport checksum of a frame whose vnet
// header says it is still partial (the field holds the pseudo-header sum):
// the engine validates checksums, and must see what the receiver will. It
// returns the field's offset and old value so the caller can restore them
// before forwarding the frame with its header unchanged; at is -1 when there
// was nothing to do.
func completeChecksum(vnet, frame []byte) (at int, old uint16) {
	if vnet[vnetFlags]&vnetNeedsCsum == 0 {
		return -1, 0
	}
	start := int(native.Uint16(vnet[vnetCsumStart:]))
	at = start + int(native.Uint16(vnet[vnetCsumOffset:]))
	if start >= len(frame) || at+2 > len(frame) {
		return -1, 0
	}
	old = binary.BigEndian.Uint16(frame[at:])
	sum := decode.InternetChecksum(frame[start:])
	if sum == 0 {
		sum = 0xffff // a UDP checksum of 0 means "none"; for TCP both are the same sum
	}
	binary.BigEndian.PutUint16(frame[at:], sum)
	return at, old
}
