// Package source provides packet sources and verdict sinks: where frames come
// from and where the engine's decisions go. A Source has the shape of gopacket's
// PacketDataSource; implementations include an in-memory source (tests) and a
// capture-file source (pcap and pcapng). Inline sources (NFQUEUE, AF_PACKET) live
// beside them and also implement VerdictSink.
package source

import (
	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

// Source yields frames. ReadPacketData returns io.EOF at the end of a finite
// source. The returned data is valid until the next call. A Source is used by
// one goroutine at a time unless an implementation documents otherwise.
type Source interface {
	ReadPacketData() (data []byte, ci gopacket.CaptureInfo, err error)
	// LinkType is the link type of every frame the source yields.
	LinkType() layers.LinkType
}

// Closer is implemented by sources holding resources (files, sockets).
type Closer interface {
	Close() error
}
