package traffic

import (
	"net/netip"

	"github.com/patchgate/patchgate/dataplane/gen"
)

// Address plan (deploy/lab's replay tap plays these): clients are
// 198.51.100.1–.200 and 2001:db8:1::1–::c8, servers 203.0.113.10–.13 and
// 2001:db8:2::a–::d, all documentation ranges (RFC 5737, RFC 3849).
const (
	clientHosts = 200
	serverHosts = 4
	// Client ports are the whole unprivileged range, 1024–65535.
	firstPort = 1024
	numPorts  = 65536 - firstPort
	// portStride scatters consecutive flows of a host over the port range
	// (odd and prime to numPorts = 2^10·63, so the mapping is a bijection).
	portStride = 7919
)

// endpoints gives flow j a client address and port no other flow of the
// capture uses (for j < clientHosts×numPorts) and one of the servers.
// Consecutive flows differ in address and port, so any ECMP hash over the
// 5-tuple spreads them.
func endpoints(j int, v6 bool, port uint16) (client, server gen.Endpoint) {
	host := j % clientHosts
	cport := firstPort + (j/clientHosts*portStride+host*97)%numPorts
	srv := int(uint32(j)*2654435761>>20) % serverHosts
	if v6 {
		c := netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 0, 1, 15: byte(host + 1)})
		s := netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 0, 2, 15: byte(0xa + srv)})
		return gen.Endpoint{Addr: c, Port: uint16(cport)}, gen.Endpoint{Addr: s, Port: port}
	}
	c := netip.AddrFrom4([4]byte{198, 51, 100, byte(host + 1)})
	s := netip.AddrFrom4([4]byte{203, 0, 113, byte(10 + srv)})
	return gen.Endpoint{Addr: c, Port: uint16(cport)}, gen.Endpoint{Addr: s, Port: port}
}
