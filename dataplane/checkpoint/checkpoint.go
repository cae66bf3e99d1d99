// Package checkpoint defines the flow checkpoint record: a flow's complete
// inspection state — 5-tuple, TCP state of both directions, analyzer state,
// verdict so far and patch-set version — in a compact, versioned binary form
// that another engine instance imports to continue the flow exactly.
//
// Layout: "PGCK", version byte, fields (package wire encodings), then a
// CRC-32C of everything before it. Unmarshal validates the magic, version,
// every length against its limit and the checksum, and never panics.
package checkpoint

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"net/netip"
	"time"

	"github.com/patchgate/patchgate/dataplane"
	"github.com/patchgate/patchgate/dataplane/flow"
	"github.com/patchgate/patchgate/dataplane/wire"
)

// Version is the record format version written by Marshal.
const Version = 1

// Limits applied when reading a record from the network.
const (
	// MaxRecord bounds a whole record: stream buffers (retained and
	// out-of-order bytes of both directions) plus analyzer state.
	MaxRecord = 8 << 20
	// MaxState bounds one embedded state blob.
	MaxState = 4 << 20
	maxName  = 64
)

var magic = [4]byte{'P', 'G', 'C', 'K'}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Errors returned by Unmarshal.
var (
	ErrMagic    = errors.New("checkpoint: not a checkpoint record")
	ErrVersion  = errors.New("checkpoint: unsupported record version")
	ErrChecksum = errors.New("checkpoint: checksum mismatch")
)

// Record is one flow's checkpoint.
type Record struct {
	Key       flow.Key
	FlowID    uint64
	ClientIsA bool
	Midstream bool
	Created   time.Time
	LastSeen  time.Time
	// PatchSet is the version of the patch set that last inspected the flow.
	PatchSet uint64

	Blocked      bool
	BlockVerdict dataplane.Verdict
	BlockedBy    string

	Packets [2]uint64
	Bytes   [2]uint64
	Alerts  uint32

	// Stream is the TCP connection state (package stream), empty for UDP.
	Stream []byte

	// Protocol detection and analyzer.
	Detected     bool
	FirstSet     bool
	FirstDir     dataplane.Direction
	Detect       [2][]byte
	Analyzer     string
	AnalyzerDead bool
	// Proven: the analyzer recognised its protocol (engine failure policy).
	Proven        bool
	AnalyzerState []byte
}

// Marshal appends the record to dst.
func (r *Record) Marshal(dst []byte) []byte {
	start := len(dst)
	dst = append(dst, magic[:]...)
	dst = append(dst, Version)
	dst = appendAddr(dst, r.Key.A)
	dst = appendAddr(dst, r.Key.B)
	dst = binary.BigEndian.AppendUint16(dst, r.Key.APort)
	dst = binary.BigEndian.AppendUint16(dst, r.Key.BPort)
	dst = append(dst, r.Key.Proto)
	dst = wire.AppendUvarint(dst, r.FlowID)
	var flags uint64
	for bit, b := range []bool{r.ClientIsA, r.Midstream, r.Blocked, r.Detected, r.FirstSet, r.AnalyzerDead, r.Proven} {
		if b {
			flags |= 1 << bit
		}
	}
	dst = wire.AppendUvarint(dst, flags)
	dst = wire.AppendVarint(dst, r.Created.UnixNano())
	dst = wire.AppendVarint(dst, r.LastSeen.UnixNano())
	dst = wire.AppendUvarint(dst, r.PatchSet)
	dst = append(dst, byte(r.BlockVerdict), byte(r.FirstDir))
	dst = wire.AppendString(dst, r.BlockedBy)
	for d := 0; d < 2; d++ {
		dst = wire.AppendUvarint(dst, r.Packets[d])
		dst = wire.AppendUvarint(dst, r.Bytes[d])
	}
	dst = wire.AppendUvarint(dst, uint64(r.Alerts))
	dst = wire.AppendBytes(dst, r.Stream)
	dst = wire.AppendBytes(dst, r.Detect[0])
	dst = wire.AppendBytes(dst, r.Detect[1])
	dst = wire.AppendString(dst, r.Analyzer)
	dst = wire.AppendBytes(dst, r.AnalyzerState)
	return binary.BigEndian.AppendUint32(dst, crc32.Checksum(dst[start:], castagnoli))
}

func appendAddr(dst []byte, a netip.Addr) []byte {
	if a.Is4() {
		b := a.As4()
		return append(append(dst, 4), b[:]...)
	}
	b := a.As16()
	return append(append(dst, 6), b[:]...)
}

// Unmarshal parses and validates a record.
func Unmarshal(b []byte) (*Record, error) {
	if len(b) > MaxRecord {
		return nil, fmt.Errorf("checkpoint: record of %d bytes exceeds limit %d", len(b), MaxRecord)
	}
	if len(b) < 4+1+4 || [4]byte(b[:4]) != magic {
		return nil, ErrMagic
	}
	if b[4] != Version {
		return nil, fmt.Errorf("%w: %d", ErrVersion, b[4])
	}
	body, sum := b[:len(b)-4], binary.BigEndian.Uint32(b[len(b)-4:])
	if crc32.Checksum(body, castagnoli) != sum {
		return nil, ErrChecksum
	}
	r := wire.NewReader(body[5:])
	rec := &Record{}
	rec.Key.A = readAddr(r)
	rec.Key.B = readAddr(r)
	rec.Key.APort = uint16(r.Byte())<<8 | uint16(r.Byte())
	rec.Key.BPort = uint16(r.Byte())<<8 | uint16(r.Byte())
	rec.Key.Proto = r.Byte()
	rec.FlowID = r.Uvarint()
	flags := r.Uvarint()
	if flags >= 1<<7 {
		r.Fail(fmt.Errorf("checkpoint: bad flags %#x", flags))
	}
	for bit, p := range []*bool{&rec.ClientIsA, &rec.Midstream, &rec.Blocked, &rec.Detected, &rec.FirstSet, &rec.AnalyzerDead, &rec.Proven} {
		*p = flags&(1<<bit) != 0
	}
	rec.Created = time.Unix(0, r.Varint())
	rec.LastSeen = time.Unix(0, r.Varint())
	rec.PatchSet = r.Uvarint()
	rec.BlockVerdict = dataplane.Verdict(r.Byte())
	rec.FirstDir = dataplane.Direction(r.Byte())
	if rec.BlockVerdict > dataplane.Reset || rec.FirstDir > dataplane.ToClient {
		r.Fail(errors.New("checkpoint: bad verdict or direction"))
	}
	rec.BlockedBy = r.String(maxName)
	for d := 0; d < 2; d++ {
		rec.Packets[d] = r.Uvarint()
		rec.Bytes[d] = r.Uvarint()
	}
	alerts := r.Uvarint()
	if alerts > 1<<32-1 {
		r.Fail(errors.New("checkpoint: alert count overflows"))
	}
	rec.Alerts = uint32(alerts)
	rec.Stream = r.Bytes(MaxState)
	rec.Detect[0] = r.Bytes(MaxState)
	rec.Detect[1] = r.Bytes(MaxState)
	rec.Analyzer = r.String(maxName)
	rec.AnalyzerState = r.Bytes(MaxState)
	if err := r.Done(); err != nil {
		return nil, fmt.Errorf("checkpoint: %w", err)
	}
	if !rec.Key.A.IsValid() || !rec.Key.B.IsValid() {
		return nil, errors.New("checkpoint: bad flow key")
	}
	if k, _ := flow.NewKey(rec.Key.A, rec.Key.B, rec.Key.APort, rec.Key.BPort, rec.Key.Proto); k != rec.Key {
		return nil, errors.New("checkpoint: flow key not canonical")
	}
	return rec, nil
}

func readAddr(r *wire.Reader) netip.Addr {
	switch r.Byte() {
	case 4:
		var b [4]byte
		for i := range b {
			b[i] = r.Byte()
		}
		return netip.AddrFrom4(b)
	case 6:
		var b [16]byte
		for i := range b {
			b[i] = r.Byte()
		}
		return netip.AddrFrom16(b)
	}
	r.Fail(errors.New("checkpoint: bad address family"))
	return netip.Addr{}
}
