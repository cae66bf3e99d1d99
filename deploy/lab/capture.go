package lab

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"syscall"
	"time"
	"unsafe"
)

// Frame is one frame a Recorder received.
type Frame struct {
	// Iface is the interface it arrived on.
	Iface string
	// Data is the whole link-layer frame.
	Data []byte
	// Time is when the recorder read it.
	Time time.Time
}

// Recorder collects the frames addressed to some interfaces of a namespace
// (AF_PACKET sockets, packet type PACKET_HOST: neither what the namespace
// sends itself nor broadcast or multicast such as IGMP and MLD reports). It is
// the lab's packet counter at a receiver: no tcpdump, no libpcap.
// Methods are safe for concurrent use.
type Recorder struct {
	all   bool // record frames for other hosts too (not only PACKET_HOST)
	fds   []int
	names []string
	stop  chan struct{}
	wg    sync.WaitGroup

	mu     sync.Mutex
	frames []Frame
	err    error
}

// recorder socket parameters.
const (
	recorderBuf     = 16 << 20
	recorderTimeout = 50 * time.Millisecond
	solPacket       = 263 // SOL_PACKET
	packetStats     = 6   // PACKET_STATISTICS
	packetHost      = 0   // PACKET_HOST
	packetOutgoing  = 4   // PACKET_OUTGOING
	ethPAll         = 0x0003
)

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// Record starts recording the frames addressed to the named interfaces of a
// namespace (role or full name).
func (l *Lab) Record(ns string, ifaces ...string) (*Recorder, error) {
	return l.record(ns, false, ifaces)
}

// RecordIncoming starts recording every frame arriving on the named
// interfaces, also those for other hosts (what a bridge port sees).
func (l *Lab) RecordIncoming(ns string, ifaces ...string) (*Recorder, error) {
	return l.record(ns, true, ifaces)
}

func (l *Lab) record(ns string, all bool, ifaces []string) (*Recorder, error) {
	r := &Recorder{stop: make(chan struct{}), all: all}
	err := l.InNS(ns, func() error {
		for _, name := range ifaces {
			ifc, err := net.InterfaceByName(name)
			if err != nil {
				return err
			}
			fd, err := syscall.Socket(syscall.AF_PACKET, syscall.SOCK_RAW|syscall.SOCK_CLOEXEC, int(htons(ethPAll)))
			if err != nil {
				return fmt.Errorf("%s: socket: %w", name, err)
			}
			r.fds = append(r.fds, fd)
			r.names = append(r.names, name)
			if err := syscall.Bind(fd, &syscall.SockaddrLinklayer{Protocol: htons(ethPAll), Ifindex: ifc.Index}); err != nil {
				return fmt.Errorf("%s: bind: %w", name, err)
			}
			if err := syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_RCVBUFFORCE, recorderBuf); err != nil {
				return fmt.Errorf("%s: SO_RCVBUFFORCE: %w", name, err)
			}
			tv := syscall.NsecToTimeval(recorderTimeout.Nanoseconds())
			if err := syscall.SetsockoptTimeval(fd, syscall.SOL_SOCKET, syscall.SO_RCVTIMEO, &tv); err != nil {
				return fmt.Errorf("%s: SO_RCVTIMEO: %w", name, err)
			}
		}
		return nil
	})
	if err != nil {
		for _, fd := range r.fds {
			syscall.Close(fd)
		}
		return nil, fmt.Errorf("lab: record %s: %w", ns, err)
	}
	for i := range r.fds {
		r.wg.Add(1)
		go r.read(r.fds[i], r.names[i])
	}
	return r, nil
}

// read receives frames until Stop.
func (r *Recorder) read(fd int, name string) {
	defer r.wg.Done()
	buf := make([]byte, 65536)
	for {
		select {
		case <-r.stop:
			return
		default:
		}
		n, from, err := syscall.Recvfrom(fd, buf, 0)
		if err != nil {
			if errors.Is(err, syscall.EAGAIN) || errors.Is(err, syscall.EINTR) {
				continue
			}
			r.mu.Lock()
			r.err = errors.Join(r.err, fmt.Errorf("%s: %w", name, err))
			r.mu.Unlock()
			return
		}
		ll, ok := from.(*syscall.SockaddrLinklayer)
		if !ok || ll.Pkttype == packetOutgoing || (!r.all && ll.Pkttype != packetHost) {
			continue
		}
		f := Frame{Iface: name, Data: append([]byte(nil), buf[:n]...), Time: time.Now()}
		r.mu.Lock()
		r.frames = append(r.frames, f)
		r.mu.Unlock()
	}
}

// Frames returns a copy of the frames recorded so far.
func (r *Recorder) Frames() []Frame {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Frame(nil), r.frames...)
}

// Count returns the number of frames recorded so far.
func (r *Recorder) Count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.frames)
}

// Settle waits until no frame has arrived for quiet, or max has passed.
func (r *Recorder) Settle(quiet, max time.Duration) {
	deadline := time.Now().Add(max)
	last, since := r.Count(), time.Now()
	for time.Now().Before(deadline) {
		time.Sleep(quiet / 4)
		if c := r.Count(); c != last {
			last, since = c, time.Now()
		} else if time.Since(since) >= quiet {
			return
		}
	}
}

// Stop ends the recording and returns the frames in arrival order per
// interface, and how many frames the kernel dropped because the recorder
// fell behind (a receiver count is only exact when that is 0).
func (r *Recorder) Stop() ([]Frame, uint64, error) {
	select {
	case <-r.stop:
	default:
		close(r.stop)
	}
	r.wg.Wait()
	var drops uint64
	for _, fd := range r.fds {
		var st struct{ packets, drops uint32 }
		l := uint32(unsafe.Sizeof(st))
		_, _, errno := syscall.Syscall6(syscall.SYS_GETSOCKOPT, uintptr(fd), solPacket, packetStats,
			uintptr(unsafe.Pointer(&st)), uintptr(unsafe.Pointer(&l)), 0)
		if errno == 0 {
			drops += uint64(st.drops)
		}
		syscall.Close(fd)
	}
	r.fds = nil
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.frames, drops, r.err
}
