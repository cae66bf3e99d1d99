package defrag

import (
	"fmt"
	"time"
)

// Defaults, in one place.
const (
	// DefaultMaxDatagrams bounds partial datagrams per reassembler (one per
	// engine shard). Legitimate fragmentation is rare; a few thousand
	// datagrams in flight is already an attack or a broken path MTU.
	DefaultMaxDatagrams = 4096
	// DefaultMaxBytes bounds the memory buffered for partial datagrams:
	// 16 MiB holds 256 maximum-size (64 KiB) datagrams.
	DefaultMaxBytes = 16 << 20
	// tombstonesPerDatagram sets the default tombstone capacity relative to
	// MaxDatagrams. A tombstone is a key and a deadline (~100 bytes); it must
	// outlive a flood of new partial datagrams, or the flood would evict it and
	// let the rest of a poisoned, evicted or blocked datagram through to a host
	// that still holds its first fragments.
	tombstonesPerDatagram = 16
	// DefaultTimeout is how long a partial datagram waits for its missing
	// fragments. It must be at least the protected hosts' own reassembly
	// timeout (Linux: 30 s for IPv4, 60 s for IPv6; RFC 8200 says 60 s):
	// a fragment arriving after the gateway gave up but before the host did
	// would otherwise complete a datagram the gateway never inspected.
	DefaultTimeout = 60 * time.Second
	// DefaultMaxFragmentsPerDatagram bounds the fragments of one datagram. A
	// 64 KiB datagram over a 1280-byte MTU needs 52; more only serves to make
	// reassembly expensive.
	DefaultMaxFragmentsPerDatagram = 64

	// maxFragmentsLimit is the most fragments a datagram can have: 65535
	// bytes in 8-byte units.
	maxFragmentsLimit = 65535 / 8
	// minMaxBytes is the least MaxBytes that still fits one maximum-size
	// datagram with its bookkeeping.
	minMaxBytes = maxDatagramLen + maxHeaderCopy + datagramOverhead
)

// Config sets the limits of a Reassembler.
type Config struct {
	// MaxDatagrams is the most partial datagrams buffered at once. When a
	// new datagram would exceed it, the oldest partial datagram is evicted.
	MaxDatagrams int
	// MaxBytes is the most memory, in bytes, accounted to partial datagrams
	// (buffers plus bookkeeping). Oldest datagrams are evicted to stay under it.
	MaxBytes int
	// Timeout is how long, in packet-timestamp time, a partial datagram
	// waits for its missing fragments after its first one arrived.
	Timeout time.Duration
	// MaxFragmentsPerDatagram is the most fragments accepted for one
	// datagram; the datagram is dropped when it receives more.
	MaxFragmentsPerDatagram int
	// MaxTombstones is the most tombstones (keys of poisoned, evicted or
	// blocked datagrams whose later fragments are dropped) kept at once;
	// 0 means 16 × MaxDatagrams.
	MaxTombstones int
}

// TombstoneCap returns the effective tombstone capacity (MaxTombstones, or
// 16 × MaxDatagrams when it is 0).
func (c Config) TombstoneCap() int {
	if c.MaxTombstones > 0 {
		return c.MaxTombstones
	}
	return tombstonesPerDatagram * c.MaxDatagrams
}

// DefaultConfig returns the default limits.
func DefaultConfig() Config {
	return Config{
		MaxDatagrams:            DefaultMaxDatagrams,
		MaxBytes:                DefaultMaxBytes,
		Timeout:                 DefaultTimeout,
		MaxFragmentsPerDatagram: DefaultMaxFragmentsPerDatagram,
	}
}

// Validate reports the first field that is out of range, and why.
func (c Config) Validate() error {
	switch {
	case c.MaxDatagrams < 1:
		return fmt.Errorf("dataplane/defrag: MaxDatagrams %d: must be at least 1", c.MaxDatagrams)
	case c.MaxBytes < minMaxBytes:
		return fmt.Errorf("dataplane/defrag: MaxBytes %d: must be at least %d to hold one maximum-size datagram", c.MaxBytes, minMaxBytes)
	case c.MaxTombstones < 0:
		return fmt.Errorf("dataplane/defrag: MaxTombstones %d: must not be negative", c.MaxTombstones)
	case c.Timeout <= 0:
		return fmt.Errorf("dataplane/defrag: Timeout %v: must be positive", c.Timeout)
	case c.MaxFragmentsPerDatagram < 2 || c.MaxFragmentsPerDatagram > maxFragmentsLimit:
		return fmt.Errorf("dataplane/defrag: MaxFragmentsPerDatagram %d: must be between 2 and %d (65535 bytes in 8-byte units)",
			c.MaxFragmentsPerDatagram, maxFragmentsLimit)
	}
	return nil
}
