package lab

import (
	"errors"
	"fmt"
	"runtime"
	"syscall"
	"unsafe"
)

// Offloads are switched off on every lab interface, so that what crosses a
// veth looks like what crosses a wire: packets no larger than the MTU (no
// TSO/GSO/GRO super-packets) with their checksums filled in (no
// CHECKSUM_PARTIAL). An AF_PACKET bridge forwards frames as it reads them,
// and an inline engine that validates checksums must see final ones.

// Legacy ethtool commands (linux/ethtool.h): each takes a struct ethtool_value.
const (
	siocEthtool    = 0x8946
	ethtoolSRXCSUM = 0x15
	ethtoolSTXCSUM = 0x17
	ethtoolSSG     = 0x19
	ethtoolSTSO    = 0x1f
	ethtoolSGSO    = 0x24
	ethtoolSGRO    = 0x2c
)

type ethtoolValue struct {
	cmd  uint32
	data uint32
}

// ifreqPtr is struct ifreq with the union holding a pointer (ifr_data).
type ifreqPtr struct {
	name [16]byte
	data unsafe.Pointer
	_    [16]byte
}

// offloadsOff switches off checksum, segmentation and receive offloads of
// the named interfaces in the calling thread's namespace (call inside InNS).
// Settings a device does not support are skipped.
func offloadsOff(ifaces ...string) error {
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_DGRAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("offloads: socket: %w", err)
	}
	defer syscall.Close(fd)
	for _, name := range ifaces {
		if len(name) >= 16 {
			return fmt.Errorf("offloads: interface name %q too long", name)
		}
		for _, cmd := range []uint32{ethtoolSGRO, ethtoolSGSO, ethtoolSTSO, ethtoolSSG, ethtoolSTXCSUM, ethtoolSRXCSUM} {
			v := &ethtoolValue{cmd: cmd, data: 0}
			req := &ifreqPtr{data: unsafe.Pointer(v)}
			copy(req.name[:], name)
			_, _, errno := syscall.Syscall(syscall.SYS_IOCTL, uintptr(fd), siocEthtool, uintptr(unsafe.Pointer(req)))
			runtime.KeepAlive(v)
			runtime.KeepAlive(req)
			if errno != 0 && !errors.Is(errno, syscall.EOPNOTSUPP) && !errors.Is(errno, syscall.EINVAL) {
				return fmt.Errorf("offloads: %s: ethtool command %#x: %w", name, cmd, errno)
			}
		}
	}
	return nil
}
