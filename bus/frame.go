package bus

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"strconv"

	"github.com/patchgate/patchgate/dataplane/checkpoint"
	"github.com/patchgate/patchgate/dataplane/flow"
	"github.com/patchgate/patchgate/dataplane/wire"
)

// Wire formats (all integers are unsigned LEB128 varints unless noted):
//
//	batch   = "PGB" version(1) nodeLen(u8) node entry*
//	entry   = kind(u8: 1 record, 2 tombstone) len payload
//	          record payload: a checkpoint record (package checkpoint)
//	          tombstone payload: key
//	key     = family(u8: 4|6) A B APort(u16 BE) BPort(u16 BE) proto(u8)
//	request = "PGQ" version(1) key
//	reply   = "PGR" version(1) status(u8: 0 miss, 1 cached, 2 live) record?
const (
	frameVersion = 1

	entryRecord    = 1
	entryTombstone = 2

	// maxNodeID bounds a node name on the wire.
	maxNodeID = 255
	// maxBatchEntries bounds the entries a received batch may carry.
	maxBatchEntries = 1 << 16
)

// Reply status of a lookup answer.
const (
	replyMiss   = 0
	replyCached = 1
	replyLive   = 2
)

var (
	batchMagic   = [3]byte{'P', 'G', 'B'}
	requestMagic = [3]byte{'P', 'G', 'Q'}
	replyMagic   = [3]byte{'P', 'G', 'R'}
)

// errFrame is wrapped by every framing error.
var errFrame = errors.New("bus: bad frame")

// ckptSubject returns the checkpoint subject of shard.
func ckptSubject(prefix string, shard int) string {
	return prefix + ".ckpt." + strconv.Itoa(shard)
}

// lookupSubject returns the lookup subject of shard.
func lookupSubject(prefix string, shard int) string {
	return prefix + ".lookup." + strconv.Itoa(shard)
}

// shardOf maps a flow to its subject shard.
func shardOf(k flow.Key, shards int) int { return int(k.Hash() % uint64(shards)) }

// appendBatchHeader starts a batch from node.
func appendBatchHeader(dst []byte, node string) []byte {
	dst = append(dst, batchMagic[:]...)
	dst = append(dst, frameVersion, byte(len(node)))
	return append(dst, node...)
}

// appendEntry appends one batch entry.
func appendEntry(dst []byte, kind byte, payload []byte) []byte {
	dst = append(dst, kind)
	dst = binary.AppendUvarint(dst, uint64(len(payload)))
	return append(dst, payload...)
}

// entrySize is the encoded size of an entry with an n-byte payload.
func entrySize(n int) int { return 1 + uvarintLen(uint64(n)) + n }

func uvarintLen(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}

// batchEntry is one decoded entry; payload aliases the message.
type batchEntry struct {
	kind    byte
	payload []byte
}

// decodeBatch parses a batch and calls fn for each entry in order. It stops
// at the first framing error, which it returns; entries before it were
// delivered.
func decodeBatch(b []byte, fn func(node string, e batchEntry)) (node string, err error) {
	if len(b) < 5 || [3]byte(b[:3]) != batchMagic {
		return "", fmt.Errorf("%w: not a checkpoint batch", errFrame)
	}
	if b[3] != frameVersion {
		return "", fmt.Errorf("%w: batch version %d", errFrame, b[3])
	}
	n := int(b[4])
	b = b[5:]
	if len(b) < n {
		return "", fmt.Errorf("%w: short node name", errFrame)
	}
	node, b = string(b[:n]), b[n:]
	for i := 0; len(b) > 0; i++ {
		if i >= maxBatchEntries {
			return node, fmt.Errorf("%w: more than %d entries", errFrame, maxBatchEntries)
		}
		kind := b[0]
		l, w := binary.Uvarint(b[1:])
		if w <= 0 {
			return node, fmt.Errorf("%w: bad entry length", errFrame)
		}
		b = b[1+w:]
		if l > uint64(len(b)) || l > checkpoint.MaxRecord {
			return node, fmt.Errorf("%w: entry of %d bytes exceeds frame", errFrame, l)
		}
		fn(node, batchEntry{kind: kind, payload: b[:l]})
		b = b[l:]
	}
	return node, nil
}

// appendKey encodes a flow key.
func appendKey(dst []byte, k flow.Key) []byte {
	dst = appendAddr(dst, k.A)
	dst = appendAddr(dst, k.B)
	dst = binary.BigEndian.AppendUint16(dst, k.APort)
	dst = binary.BigEndian.AppendUint16(dst, k.BPort)
	return append(dst, k.Proto)
}

func appendAddr(dst []byte, a netip.Addr) []byte {
	if a.Is4() {
		b := a.As4()
		return append(append(dst, 4), b[:]...)
	}
	b := a.As16()
	return append(append(dst, 6), b[:]...)
}

// decodeKey parses a key that must fill b exactly.
func decodeKey(b []byte) (flow.Key, error) {
	r := wire.NewReader(b)
	var k flow.Key
	k.A = readAddr(r)
	k.B = readAddr(r)
	k.APort = uint16(r.Byte())<<8 | uint16(r.Byte())
	k.BPort = uint16(r.Byte())<<8 | uint16(r.Byte())
	k.Proto = r.Byte()
	if err := r.Done(); err != nil {
		return flow.Key{}, fmt.Errorf("%w: key: %w", errFrame, err)
	}
	if c, _ := flow.NewKey(k.A, k.B, k.APort, k.BPort, k.Proto); c != k {
		return flow.Key{}, fmt.Errorf("%w: key not canonical", errFrame)
	}
	return k, nil
}

func readAddr(r *wire.Reader) netip.Addr {
	var n int
	switch r.Byte() {
	case 4:
		n = 4
	case 6:
		n = 16
	default:
		r.Fail(errors.New("bad address family"))
		return netip.Addr{}
	}
	var b [16]byte
	for i := 0; i < n; i++ {
		b[i] = r.Byte()
	}
	if n == 4 {
		return netip.AddrFrom4([4]byte(b[:4]))
	}
	return netip.AddrFrom16(b)
}

// encodeRequest builds a lookup request for k.
func encodeRequest(k flow.Key) []byte {
	dst := append(make([]byte, 0, 48), requestMagic[:]...)
	dst = append(dst, frameVersion)
	return appendKey(dst, k)
}

// decodeRequest parses a lookup request.
func decodeRequest(b []byte) (flow.Key, error) {
	if len(b) < 4 || [3]byte(b[:3]) != requestMagic || b[3] != frameVersion {
		return flow.Key{}, fmt.Errorf("%w: not a lookup request", errFrame)
	}
	return decodeKey(b[4:])
}

// encodeReply builds a lookup answer.
func encodeReply(status byte, rec []byte) []byte {
	dst := make([]byte, 0, 5+len(rec))
	dst = append(dst, replyMagic[:]...)
	dst = append(dst, frameVersion, status)
	return append(dst, rec...)
}

// decodeReply parses a lookup answer; rec aliases b.
func decodeReply(b []byte) (status byte, rec []byte, err error) {
	if len(b) < 5 || [3]byte(b[:3]) != replyMagic || b[3] != frameVersion {
		return 0, nil, fmt.Errorf("%w: not a lookup reply", errFrame)
	}
	status, rec = b[4], b[5:]
	switch {
	case status > replyLive:
		return 0, nil, fmt.Errorf("%w: reply status %d", errFrame, status)
	case status == replyMiss && len(rec) != 0:
		return 0, nil, fmt.Errorf("%w: miss with a record", errFrame)
	case status != replyMiss && len(rec) == 0:
		return 0, nil, fmt.Errorf("%w: hit without a record", errFrame)
	}
	return status, rec, nil
}
