package nfqueue

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// injector sends locally built IP packets (RSTs) through raw sockets of the
// node's namespace. The packets carry the node's mark so that, in an OUTPUT
// hook, the node's chain returns them instead of queueing them again. Safe for
// concurrent use.
type injector struct {
	fd4, fd6 int
}

func newInjector(mark uint32) (*injector, error) {
	in := &injector{fd4: -1, fd6: -1}
	for _, fam := range []int{unix.AF_INET, unix.AF_INET6} {
		// IPPROTO_RAW implies that the packet carries its own IP header.
		fd, err := unix.Socket(fam, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_RAW)
		if err != nil {
			in.close()
			return nil, fmt.Errorf("nfqueue: raw socket: %w", err)
		}
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_MARK, int(mark)); err != nil {
			unix.Close(fd)
			in.close()
			return nil, fmt.Errorf("nfqueue: raw socket mark: %w", err)
		}
		if fam == unix.AF_INET {
			in.fd4 = fd
		} else {
			in.fd6 = fd
		}
	}
	return in, nil
}

// send transmits one IP packet to its destination.
func (in *injector) send(pkt []byte) error {
	if len(pkt) < 1 {
		return errors.New("nfqueue: empty packet")
	}
	var err error
	switch pkt[0] >> 4 {
	case 4:
		if len(pkt) < 20 {
			return errors.New("nfqueue: short IPv4 packet")
		}
		err = unix.Sendto(in.fd4, pkt, 0, &unix.SockaddrInet4{Addr: [4]byte(pkt[16:20])})
	case 6:
		if len(pkt) < 40 {
			return errors.New("nfqueue: short IPv6 packet")
		}
		err = unix.Sendto(in.fd6, pkt, 0, &unix.SockaddrInet6{Addr: [16]byte(pkt[24:40])})
	default:
		return errors.New("nfqueue: not an IP packet")
	}
	if err != nil {
		return fmt.Errorf("nfqueue: inject: %w", err)
	}
	return nil
}

func (in *injector) close() {
	if in.fd4 >= 0 {
		unix.Close(in.fd4)
	}
	if in.fd6 >= 0 {
		unix.Close(in.fd6)
	}
}
