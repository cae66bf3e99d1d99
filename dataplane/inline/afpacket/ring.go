package afpacket

import (
	"encoding/binary"
	"fmt"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Layout of the kernel's TPACKET_V3 structures (linux/if_packet.h), offsets
// within a block and within a packet header.
const (
	blkStatus     = 8  // tpacket_block_desc.hdr.bh1.block_status
	blkNumPkts    = 12 // .num_pkts
	blkFirstPkt   = 16 // .offset_to_first_pkt
	pktNextOffset = 0  // tpacket3_hdr.tp_next_offset
	pktSec        = 4
	pktNsec       = 8
	pktSnaplen    = 12
	pktLen        = 16
	pktStatus     = 20
	pktMac        = 24
	pktVlanTCI    = 32
	pktVlanTPID   = 36
	pktSllPkttype = 48 + 10 // sockaddr_ll follows the 48-byte header; sll_pkttype at +10

	statusUser          = 1 << 0 // TP_STATUS_USER: block/packet owned by user space
	statusVlanValid     = 1 << 4 // TP_STATUS_VLAN_VALID
	statusVlanTPIDValid = 1 << 6 // TP_STATUS_VLAN_TPID_VALID

	packetOutgoing = 4 // PACKET_OUTGOING

	// vnetHdrLen is sizeof(struct virtio_net_hdr), placed before each frame
	// because the socket sets PACKET_VNET_HDR.
	vnetHdrLen = 10
	// frameSize is the nominal TPACKET_V3 frame size; V3 packs packets of any
	// length into blocks, the kernel only checks the arithmetic.
	frameSize = 2048
	// blockTimeout is how long (ms) the kernel fills a block before handing it
	// over anyway: the latency bound at low rates.
	blockTimeout = 1
)

var native = binary.NativeEndian

// ring is one TPACKET_V3 receive ring bound to an interface. It is used by
// one goroutine.
type ring struct {
	fd        int
	mem       []byte
	blockSize int
	numBlocks int
	cur       int
	wake      int // eventfd that interrupts the poll on stop
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// openRing opens a receive ring on ifindex; fanoutID >= 0 joins the
// PACKET_FANOUT_HASH group of that id (the kernel's flow hash is symmetric,
// so both directions of a flow meet in the same member).
func openRing(ifindex, blockSize, numBlocks, fanoutID, wake int) (*ring, error) {
	// Protocol 0: the socket receives nothing until bound below, after the
	// ring is set up, so it never sees another interface's frames.
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("afpacket: socket: %w", err)
	}
	r := &ring{fd: fd, blockSize: blockSize, numBlocks: numBlocks, wake: wake}
	fail := func(what string, err error) (*ring, error) {
		r.close()
		return nil, fmt.Errorf("afpacket: %s: %w", what, err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_VERSION, unix.TPACKET_V3); err != nil {
		return fail("TPACKET_V3", err)
	}
	// A virtio_net_hdr before each frame says whether the checksum is still
	// to be computed (frames from a local stack or a veth) and whether the
	// frame is a GSO super-packet; both are passed on when forwarding.
	if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_VNET_HDR, 1); err != nil {
		return fail("PACKET_VNET_HDR", err)
	}
	// Frames the node transmits itself must not come back (bridge loops).
	if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_IGNORE_OUTGOING, 1); err != nil {
		return fail("PACKET_IGNORE_OUTGOING", err)
	}
	req := unix.TpacketReq3{
		Block_size: uint32(blockSize), Block_nr: uint32(numBlocks),
		Frame_size: frameSize, Frame_nr: uint32(blockSize / frameSize * numBlocks),
		Retire_blk_tov: blockTimeout,
	}
	if err := unix.SetsockoptTpacketReq3(fd, unix.SOL_PACKET, unix.PACKET_RX_RING, &req); err != nil {
		return fail("PACKET_RX_RING", err)
	}
	r.mem, err = unix.Mmap(fd, 0, blockSize*numBlocks, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return fail("mmap", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifindex}); err != nil {
		return fail("bind", err)
	}
	if fanoutID >= 0 {
		arg := fanoutID | unix.PACKET_FANOUT_HASH<<16
		if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_FANOUT, arg); err != nil {
			return fail("PACKET_FANOUT", err)
		}
	}
	return r, nil
}

func (r *ring) close() {
	if r.mem != nil {
		_ = unix.Munmap(r.mem)
		r.mem = nil
	}
	if r.fd >= 0 {
		unix.Close(r.fd)
		r.fd = -1
	}
}

func (r *ring) block(i int) []byte { return r.mem[i*r.blockSize : (i+1)*r.blockSize] }

func blockStatus(b []byte) *uint32 { return (*uint32)(unsafe.Pointer(&b[blkStatus])) }

// next waits for the next block the kernel handed over and returns it, or
// nil when the wake eventfd fired.
func (r *ring) next() ([]byte, error) {
	b := r.block(r.cur)
	fds := []unix.PollFd{{Fd: int32(r.fd), Events: unix.POLLIN | unix.POLLERR}, {Fd: int32(r.wake), Events: unix.POLLIN}}
	for atomic.LoadUint32(blockStatus(b))&statusUser == 0 {
		fds[0].Revents, fds[1].Revents = 0, 0
		if _, err := unix.Poll(fds, -1); err != nil && err != unix.EINTR {
			return nil, fmt.Errorf("afpacket: poll: %w", err)
		}
		if fds[1].Revents != 0 {
			return nil, nil
		}
	}
	return b, nil
}

// release gives the current block back to the kernel and moves on.
func (r *ring) release(b []byte) {
	atomic.StoreUint32(blockStatus(b), 0)
	r.cur = (r.cur + 1) % r.numBlocks
}

// backlog counts the blocks ready for user space from the current one on:
// how far the worker is behind the kernel.
func (r *ring) backlog() int {
	n := 0
	for i := 0; i < r.numBlocks; i++ {
		if atomic.LoadUint32(blockStatus(r.block((r.cur+i)%r.numBlocks)))&statusUser == 0 {
			break
		}
		n++
	}
	return n
}

// stats reads and resets the kernel's counters for this socket.
func (r *ring) stats() (packets, drops uint64, err error) {
	st, err := unix.GetsockoptTpacketStatsV3(r.fd, unix.SOL_PACKET, unix.PACKET_STATISTICS)
	if err != nil {
		return 0, 0, fmt.Errorf("afpacket: PACKET_STATISTICS: %w", err)
	}
	return uint64(st.Packets), uint64(st.Drops), nil
}

// packet is one received frame within a block.
type packet struct {
	frame             []byte // the frame as received (VLAN tag possibly removed by the NIC)
	vnet              []byte // the virtio_net_hdr before it
	ts                time.Time
	pkttype           uint8
	status            uint32
	vlanTCI, vlanTPID uint16
	truncated         bool
}

// packets calls fn for every packet of block b.
func packets(b []byte, fn func(p *packet)) {
	n := int(native.Uint32(b[blkNumPkts:]))
	off := int(native.Uint32(b[blkFirstPkt:]))
	var p packet
	for i := 0; i < n && off > 0 && off+pktSllPkttype < len(b); i++ {
		h := b[off:]
		snap := int(native.Uint32(h[pktSnaplen:]))
		mac := int(native.Uint16(h[pktMac:]))
		if mac < vnetHdrLen || mac+snap > len(h) {
			break
		}
		p = packet{
			frame:     h[mac : mac+snap],
			vnet:      h[mac-vnetHdrLen : mac],
			ts:        time.Unix(int64(native.Uint32(h[pktSec:])), int64(native.Uint32(h[pktNsec:]))),
			pkttype:   h[pktSllPkttype],
			status:    native.Uint32(h[pktStatus:]),
			truncated: snap < int(native.Uint32(h[pktLen:])),
		}
		if p.status&statusVlanValid != 0 {
			p.vlanTCI = uint16(native.Uint32(h[pktVlanTCI:]))
			p.vlanTPID = 0x8100
			if p.status&statusVlanTPIDValid != 0 {
				p.vlanTPID = native.Uint16(h[pktVlanTPID:])
			}
		}
		fn(&p)
		next := int(native.Uint32(h[pktNextOffset:]))
		if next == 0 {
			break
		}
		off += next
	}
}
