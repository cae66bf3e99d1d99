// Package afpacket is the L2 inline backend: the node is a bump in the wire
// between two interfaces. Each interface has Fanout TPACKET_V3 receive rings
// in a PACKET_FANOUT_HASH group (the kernel's flow hash is symmetric, so both
// directions of a flow meet in the same member index); one worker per ring
// inspects the frames and writes those that pass to the other interface.
// Frames the node transmits itself are ignored (PACKET_IGNORE_OUTGOING), so
// the bridge never loops.
//
// Checksums and offloads: the rings and transmit sockets carry a
// virtio_net_hdr per frame. A frame whose checksum is still partial (from a
// local stack or a veth) is completed for inspection, and forwarded with its
// header, so GSO super-frames and checksum offload survive the bridge.
//
// What the backend leaves in the kernel:
//
//   - While running: the two interfaces up and in promiscuous mode, the
//     sockets; nothing else.
//   - Fail-open stop: a kernel bridge BridgeName(name) (STP off, forward delay
//     0) with both interfaces as ports, so traffic keeps flowing uninspected.
//     The next start of the node deletes it once its rings are open;
//     Cleanup deletes it too.
//   - Fail-closed stop: nothing; with no one forwarding between the
//     interfaces, traffic stops.
//   - A crashed node forwards nothing (there is no kernel bypass for a
//     user-space bridge): run Fallback, for example from the service
//     manager's stop hook, to install what a clean stop would leave.
//
// Overload: a full ring drops in the kernel (counted from PACKET_STATISTICS).
// With fail-open a worker that finds at least half of its ring waiting
// forwards that block uninspected (counted as bypassed) to catch up.
package afpacket

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"net"
	"regexp"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/gopacket/layers"
	"golang.org/x/sys/unix"

	"github.com/patchgate/patchgate/dataplane"
	"github.com/patchgate/patchgate/dataplane/inline"
)

// Defaults.
const (
	DefaultFanout    = 2
	DefaultBlockSize = 1 << 20
	DefaultNumBlocks = 64
	// MinBlockSize holds a 64 KiB GSO super-frame with its headers.
	MinBlockSize = 128 << 10
	// statsEvery is how often the kernel's ring counters are read.
	statsEvery = time.Second
)

var (
	nameRe  = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$`)
	ifaceRe = regexp.MustCompile(`^[^/\s:]{1,15}$`)
)

// Config configures the backend.
type Config struct {
	// Name is the node name (it names the fallback bridge).
	Name string
	// Interfaces are the two bridged interfaces.
	Interfaces [2]string
	// Fanout is the number of rings (and workers) per interface.
	Fanout int
	// BlockSize and NumBlocks size each ring.
	BlockSize, NumBlocks int
	// Fail is the overload and shutdown policy.
	Fail inline.FailPolicy
	// Netns, if set, is the path of the network namespace the interfaces
	// live in; empty means the process's own.
	Netns string
	// Logger receives operational messages; nil discards them.
	Logger *slog.Logger
}

// DefaultConfig returns the defaults for node name bridging a and b.
func DefaultConfig(name, a, b string) Config {
	return Config{Name: name, Interfaces: [2]string{a, b}, Fanout: DefaultFanout,
		BlockSize: DefaultBlockSize, NumBlocks: DefaultNumBlocks}
}

// Validate says which field is wrong and why.
func (c Config) Validate() error {
	var errs []error
	if !nameRe.MatchString(c.Name) {
		errs = append(errs, fmt.Errorf("afpacket: Name %q must be 1-63 letters, digits, '.', '_' or '-'", c.Name))
	}
	for i, ifc := range c.Interfaces {
		if !ifaceRe.MatchString(ifc) {
			errs = append(errs, fmt.Errorf("afpacket: Interfaces[%d] %q is not an interface name", i, ifc))
		}
	}
	if c.Interfaces[0] == c.Interfaces[1] {
		errs = append(errs, fmt.Errorf("afpacket: Interfaces must be two different interfaces, got %q twice", c.Interfaces[0]))
	}
	if c.Fanout < 1 || c.Fanout > 64 {
		errs = append(errs, fmt.Errorf("afpacket: Fanout must be 1..64, got %d", c.Fanout))
	}
	if err := ValidateRing(c.BlockSize, c.NumBlocks); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// ValidateRing checks a ring geometry.
func ValidateRing(blockSize, numBlocks int) error {
	var errs []error
	if blockSize < MinBlockSize || blockSize > 64<<20 || blockSize%unix.Getpagesize() != 0 {
		errs = append(errs, fmt.Errorf("afpacket: BlockSize must be a multiple of %d in %d..%d, got %d",
			unix.Getpagesize(), MinBlockSize, 64<<20, blockSize))
	}
	if numBlocks < 2 || numBlocks > 4096 {
		errs = append(errs, fmt.Errorf("afpacket: NumBlocks must be 2..4096, got %d", numBlocks))
	}
	return errors.Join(errs...)
}

// Backend is the AF_PACKET bridge backend.
type Backend struct {
	cfg    Config
	newIns func() inline.Inspector
	log    *slog.Logger

	ready    atomic.Bool
	counters inline.Counters

	mu      sync.Mutex // guards workers against Stats while opening
	workers []*worker
	tx      [2]*txSock
	wake    int
}

var _ inline.Backend = (*Backend)(nil)

// New returns a backend; newInspector is called once per worker (2 × Fanout).
func New(cfg Config, newInspector func() inline.Inspector) (*Backend, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Backend{cfg: cfg, newIns: newInspector, log: log.With("backend", "afpacket"), wake: -1}, nil
}

// Ready implements inline.Backend.
func (b *Backend) Ready() bool { return b.ready.Load() }

// Run implements inline.Backend.
func (b *Backend) Run(ctx context.Context) error {
	defer b.close()
	if err := inline.InNetns(b.cfg.Netns, b.open); err != nil {
		return err
	}
	// The rings are open: take over from a fallback bridge a previous run left.
	if err := inline.InNetns(b.cfg.Netns, func() error { return removeBridge(BridgeName(b.cfg.Name)) }); err != nil {
		return err
	}
	var wg sync.WaitGroup
	for _, w := range b.workers {
		wg.Add(1)
		go func() { defer wg.Done(); w.run() }()
	}
	b.ready.Store(true)
	b.log.Info("attached", "interfaces", b.cfg.Interfaces, "fanout", b.cfg.Fanout, "fail", b.cfg.Fail.String())
	t := time.NewTicker(statsEvery)
	defer t.Stop()
	for done := false; !done; {
		select {
		case <-ctx.Done():
			done = true
		case <-t.C:
			b.readKernelStats()
		}
	}
	b.ready.Store(false)
	var stopErr error
	if b.cfg.Fail == inline.FailOpen {
		// Bridge first, then stop the workers: a few frames may be
		// forwarded twice, none is lost.
		stopErr = inline.InNetns(b.cfg.Netns, func() error { return addBridge(BridgeName(b.cfg.Name), b.cfg.Interfaces) })
		b.log.Info("kernel bridge installed; traffic bypasses the node (fail-open)", "bridge", BridgeName(b.cfg.Name))
	} else {
		b.log.Info("stopped forwarding; traffic between the interfaces is blocked (fail-closed)")
	}
	var one [8]byte
	native.PutUint64(one[:], 1)
	_, _ = unix.Write(b.wake, one[:])
	wg.Wait()
	b.readKernelStats()
	return stopErr
}

// open prepares interfaces, transmit sockets and rings in the node's namespace.
func (b *Backend) open() error {
	var idx [2]int
	for i, name := range b.cfg.Interfaces {
		ifc, err := net.InterfaceByName(name)
		if err != nil {
			return fmt.Errorf("afpacket: interface %s: %w", name, err)
		}
		idx[i] = ifc.Index
		if _, err := inline.Command("ip", "link", "set", name, "up"); err != nil {
			return fmt.Errorf("afpacket: %w", err)
		}
		if b.tx[i], err = openTx(ifc.Index); err != nil {
			return fmt.Errorf("%w (interface %s)", err, name)
		}
	}
	var err error
	if b.wake, err = unix.Eventfd(0, unix.EFD_CLOEXEC); err != nil {
		return fmt.Errorf("afpacket: eventfd: %w", err)
	}
	for f := 0; f < b.cfg.Fanout; f++ {
		for i, name := range b.cfg.Interfaces {
			group := -1
			if b.cfg.Fanout > 1 {
				group = fanoutID(b.cfg.Name, name)
			}
			r, err := openRing(idx[i], b.cfg.BlockSize, b.cfg.NumBlocks, group, b.wake)
			if err != nil {
				return fmt.Errorf("%w (interface %s)", err, name)
			}
			w := &worker{b: b, name: fmt.Sprintf("%s-%d", name, f), ring: r, out: b.tx[1-i], back: b.tx[i], ins: b.newIns()}
			b.mu.Lock()
			b.workers = append(b.workers, w)
			b.mu.Unlock()
		}
	}
	return nil
}

func (b *Backend) close() {
	for _, w := range b.workers {
		w.ring.close()
	}
	for _, t := range b.tx {
		if t != nil {
			t.close()
		}
	}
	if b.wake >= 0 {
		unix.Close(b.wake)
	}
}

// fanoutID derives a fanout group id per node and interface (ids are shared
// by the whole namespace).
func fanoutID(node, ifc string) int {
	h := fnv.New32a()
	h.Write([]byte(node + "/" + ifc))
	return int(h.Sum32() & 0xffff)
}

func (b *Backend) readKernelStats() {
	for _, w := range b.workers {
		if _, drops, err := w.ring.stats(); err == nil {
			w.kernelDrops.Add(drops)
		}
	}
}

// Stats implements inline.Backend. Ring drops are the kernel's
// PACKET_STATISTICS, read every second.
func (b *Backend) Stats() inline.Stats {
	s := b.counters.Snapshot()
	b.mu.Lock()
	ws := b.workers
	b.mu.Unlock()
	for _, w := range ws {
		u := inline.UnitStats{Name: w.name, Packets: w.packets.Load(), KernelDropped: w.kernelDrops.Load(), Bypassed: w.bypassed.Load()}
		s.Bypassed += u.Bypassed
		s.Units = append(s.Units, u)
	}
	return s
}

// worker inspects the frames of one ring and forwards them.
type worker struct {
	b         *Backend
	name      string
	ring      *ring
	out, back *txSock // the other interface, and the one frames came from
	ins       inline.Inspector
	scratch   []byte
	vnet      [vnetHdrLen]byte

	packets, bypassed, kernelDrops atomic.Uint64
}

func (w *worker) run() {
	for {
		blk, err := w.ring.next()
		if err != nil {
			w.b.counters.Error()
			w.b.log.Error("ring failed", "ring", w.name, "err", err)
			return
		}
		if blk == nil {
			return
		}
		bypass := w.b.cfg.Fail == inline.FailOpen && w.ring.backlog() >= w.ring.numBlocks/2
		packets(blk, func(p *packet) { w.handle(p, bypass) })
		w.ring.release(blk)
	}
}

// handle inspects one frame and applies the verdict.
func (w *worker) handle(p *packet, bypass bool) {
	if p.pkttype == packetOutgoing {
		return
	}
	w.packets.Add(1)
	w.b.counters.Received(len(p.frame))
	if p.truncated {
		// Larger than a ring block: it cannot be forwarded whole.
		w.b.counters.Error()
		w.b.counters.Applied(dataplane.Drop)
		return
	}
	frame, vnet := p.frame, p.vnet
	if p.status&statusVlanValid != 0 {
		frame, vnet = w.withVLAN(p)
	}
	if bypass {
		w.bypassed.Add(1)
		w.forward(vnet, frame)
		return
	}
	at, old := completeChecksum(vnet, frame)
	res := w.ins.Process(layers.LinkTypeEthernet, frame, p.ts)
	w.b.counters.Applied(res.Verdict)
	switch res.Verdict {
	case dataplane.Pass:
		if at >= 0 {
			binary.BigEndian.PutUint16(frame[at:], old)
		}
		w.forward(vnet, frame)
	case dataplane.Reset:
		toDst, toSrc, err := inline.ResetFrames(frame)
		if err != nil {
			return
		}
		for _, s := range []struct {
			tx *txSock
			f  []byte
		}{{w.out, toDst}, {w.back, toSrc}} {
			if err := s.tx.send(noVnet, s.f); err != nil {
				w.b.counters.Error()
				continue
			}
			w.b.counters.ResetSent(1)
		}
	}
}

func (w *worker) forward(vnet, frame []byte) {
	if err := w.out.send(vnet, frame); err != nil {
		w.b.counters.Error()
	}
}

// withVLAN puts back the 802.1Q tag the receiving NIC took off, and shifts
// the vnet header's offsets accordingly.
func (w *worker) withVLAN(p *packet) (frame, vnet []byte) {
	if len(p.frame) < 12 {
		return p.frame, p.vnet
	}
	w.scratch = append(w.scratch[:0], p.frame[:12]...)
	w.scratch = binary.BigEndian.AppendUint16(w.scratch, p.vlanTPID)
	w.scratch = binary.BigEndian.AppendUint16(w.scratch, p.vlanTCI)
	w.scratch = append(w.scratch, p.frame[12:]...)
	copy(w.vnet[:], p.vnet)
	if w.vnet[vnetFlags]&vnetNeedsCsum != 0 {
		native.PutUint16(w.vnet[vnetCsumStart:], native.Uint16(w.vnet[vnetCsumStart:])+4)
	}
	if w.vnet[vnetGSOType] != 0 {
		native.PutUint16(w.vnet[vnetHdrLenOff:], native.Uint16(w.vnet[vnetHdrLenOff:])+4)
	}
	return w.scratch, w.vnet[:]
}
