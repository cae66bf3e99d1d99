// Package defrag reassembles IPv4 and IPv6 fragments so that the analyzers
// see the datagram the receiving host will see, and refuses the fragment
// tricks used to evade inline inspection (RFC 1858, Ptacek–Newsham):
// overlapping fragments whose bytes differ from the ones already received
// poison their datagram (first copy wins, every later fragment is dropped);
// offsets and lengths that break the IP rules are malformed; memory, count
// and per-datagram fragment limits bound what an attacker can make the
// gateway hold.
//
// Inline, a fragment that leaves a datagram Incomplete is forwarded; the one
// that Completes it is held until the engine has inspected the reassembled
// datagram, so the host can never reassemble something the gateway did not.
// Time comes from packet timestamps, so offline replay is deterministic.
package defrag

import (
	"net/netip"
	"time"

	"github.com/patchgate/patchgate/dataplane"
	"github.com/patchgate/patchgate/dataplane/decode"
)

// Action is what the caller does with a fragment.
type Action uint8

const (
	// NotFragment: the packet is not a fragment; process it as it is.
	NotFragment Action = iota
	// Incomplete: the fragment was buffered and its datagram is still
	// incomplete; inline, the fragment is forwarded.
	Incomplete
	// Complete: the fragment completed its datagram; Result.Datagram holds
	// the reassembled IP packet, to be decoded (decode.Decoder.DecodeIP) and
	// inspected before the fragment is forwarded.
	Complete
	// Drop: drop the fragment; Result.Reason says why.
	Drop
)

func (a Action) String() string {
	switch a {
	case NotFragment:
		return "not_fragment"
	case Incomplete:
		return "incomplete"
	case Complete:
		return "complete"
	case Drop:
		return "drop"
	}
	return "action(?)"
}

// Result is the outcome of Process.
type Result struct {
	Action Action
	// Reason is set when Action is Drop: ReasonFragOverlap,
	// ReasonFragLimit or ReasonMalformed.
	Reason dataplane.Reason
	// Key identifies the datagram (valid when Action is Complete); pass it to
	// Block when the datagram's verdict is not pass.
	Key Key
	// Datagram is the reassembled IP packet when Action is Complete: the
	// first fragment's header with the total (payload) length set and no
	// fragmentation fields, followed by the whole payload. It is valid until
	// the next call to Process.
	Datagram []byte
}

// Stats counts what a Reassembler did. Counters only grow; Datagrams,
// Tombstones and Bytes are current values.
type Stats struct {
	Datagrams  int // partial datagrams buffered
	Tombstones int // poisoned or evicted datagrams whose later fragments are dropped
	Bytes      int // memory accounted to partial datagrams

	Fragments   uint64 // fragments processed
	Reassembled uint64 // datagrams completed from several fragments
	Atomic      uint64 // IPv6 atomic fragments (offset 0, no more fragments)
	Duplicates  uint64 // fragments overlapping earlier ones with identical bytes (accepted)
	Timeouts    uint64 // partial datagrams expired
	Evicted     uint64 // partial datagrams evicted under memory or count pressure

	Overlaps       uint64 // datagrams poisoned by an overlap with different bytes
	HeaderOverlaps uint64 // of those, overlaps rewriting the transport header

	DroppedOverlap   uint64 // fragments dropped with ReasonFragOverlap
	DroppedLimit     uint64 // fragments dropped with ReasonFragLimit
	DroppedMalformed uint64 // fragments dropped with ReasonMalformed
}

// Key identifies a datagram (for Block).
type Key = key

// key identifies the datagram a fragment belongs to.
type key struct {
	src, dst netip.Addr
	id       uint32
	proto    uint8
}

// Reassembler reassembles fragmented IP datagrams. It is not safe for
// concurrent use: give each engine shard its own.
type Reassembler struct {
	cfg   Config
	table map[key]*datagram
	live  list // partial datagrams, oldest first
	dead  list // tombstones, oldest first
	bytes int
	out   []byte
	stats Stats
}

// New returns a Reassembler with the limits of cfg. It panics if
// cfg.Validate fails: validate configuration from users first.
func New(cfg Config) *Reassembler {
	if err := cfg.Validate(); err != nil {
		panic(err)
	}
	return &Reassembler{cfg: cfg, table: make(map[key]*datagram)}
}

// Stats returns the current counters.
func (r *Reassembler) Stats() Stats {
	s := r.stats
	s.Datagrams, s.Tombstones, s.Bytes = r.live.n, r.dead.n, r.bytes
	return s
}

// Process takes one decoded packet. Packets that are not fragments yield
// NotFragment. Fragments are buffered (Incomplete), complete their datagram
// (Complete) or are refused (Drop). p.Timestamp is the clock: partial
// datagrams older than the timeout are expired first.
func (r *Reassembler) Process(p *decode.Packet) Result {
	if !p.IsFragment || p.IPVersion == 0 {
		return Result{Action: NotFragment}
	}
	r.stats.Fragments++
	now := p.Timestamp
	r.Expire(now)
	if p.Truncated {
		return r.drop(dataplane.ReasonMalformed)
	}
	off := int(p.Frag.Offset)
	data := p.L3Payload
	end := off + len(data)
	hdrLen := p.IPHeaderLen
	if p.IPVersion == 6 {
		hdrLen -= fragHeaderLen // the reassembled datagram has no fragment header
		if p.IPHeaderLen < ipv6HeaderLen+fragHeaderLen {
			return r.drop(dataplane.ReasonMalformed)
		}
		if off == 0 && !p.Frag.More {
			return r.atomic(p)
		}
	}
	switch {
	case len(data) == 0:
		return r.drop(dataplane.ReasonMalformed) // an empty fragment carries nothing but ambiguity
	case p.Frag.More && len(data)%8 != 0:
		return r.drop(dataplane.ReasonMalformed) // RFC 791, RFC 8200 4.5: only the last may be ragged
	case payloadLimit(p.IPVersion, hdrLen) < end:
		return r.drop(dataplane.ReasonMalformed) // the datagram would exceed 65535 bytes
	case hdrLen > maxHeaderCopy:
		return r.drop(dataplane.ReasonFragLimit)
	}

	k := key{src: p.Src, dst: p.Dst, id: p.Frag.ID, proto: p.Frag.Proto}
	dg := r.table[k]
	if dg != nil && !now.Before(dg.deadline) {
		// Expired but not yet reached by Expire (timestamps went backwards).
		if !dg.dead {
			r.stats.Timeouts++
		}
		r.remove(dg)
		dg = nil
	}
	if dg == nil {
		dg = r.create(k, p.IPVersion, now)
	}
	if dg.dead {
		return r.drop(dg.reason)
	}
	if dg.frags >= r.cfg.MaxFragmentsPerDatagram {
		r.kill(dg, dataplane.ReasonFragLimit, now)
		return r.drop(dataplane.ReasonFragLimit)
	}
	// Where the datagram ends must be consistent across fragments.
	if !p.Frag.More {
		if (dg.total >= 0 && dg.total != end) || dg.maxEnd() > end {
			return r.drop(dataplane.ReasonMalformed)
		}
	} else if dg.total >= 0 && end > dg.total {
		return r.drop(dataplane.ReasonMalformed) // data past the last fragment
	}

	switch at, dup := dg.compare(off, data); {
	case at >= 0:
		r.stats.Overlaps++
		if at < dg.transportHeaderEnd(off, data) {
			r.stats.HeaderOverlaps++
		}
		r.kill(dg, dataplane.ReasonFragOverlap, now)
		return r.drop(dataplane.ReasonFragOverlap)
	case dup:
		r.stats.Duplicates++
	}

	if !r.reserve(dg, end, off == 0, hdrLen, now) {
		return r.drop(dataplane.ReasonFragLimit)
	}
	dg.insert(off, data)
	dg.frags++
	if off == 0 && dg.hdr == nil {
		if !dg.setHeader(p, hdrLen) {
			r.kill(dg, dataplane.ReasonMalformed, now)
			return r.drop(dataplane.ReasonMalformed)
		}
	}
	if !p.Frag.More {
		dg.total = end
	}
	r.account(dg)
	if !dg.complete() {
		return Result{Action: Incomplete}
	}
	r.out = dg.build(r.out[:0])
	r.remove(dg)
	r.stats.Reassembled++
	return Result{Action: Complete, Key: k, Datagram: r.out}
}

// Block records that the datagram just completed (Result.Key) was dropped:
// the host still holds its other fragments, so a copy of the completing
// fragment, or any later fragment with its key, must not reach it either.
// Its fragments are dropped with ReasonBlockedFlow until the timeout.
func (r *Reassembler) Block(k Key, now time.Time) {
	if old := r.table[k]; old != nil {
		r.remove(old)
	}
	dg := &datagram{key: k, total: -1}
	r.table[k] = dg
	r.live.push(dg)
	r.kill(dg, dataplane.ReasonBlockedFlow, now)
}

// Expire removes partial datagrams and tombstones whose time is up at now
// (packet-timestamp time) and returns the number of partial datagrams
// expired. Datagrams are kept in arrival order, so with timestamps that go
// backwards an entry may outlive its deadline until the ones before it expire.
func (r *Reassembler) Expire(now time.Time) int {
	n := 0
	for dg := r.live.head; dg != nil && !now.Before(dg.deadline); dg = r.live.head {
		r.remove(dg)
		r.stats.Timeouts++
		n++
	}
	for dg := r.dead.head; dg != nil && !now.Before(dg.deadline); dg = r.dead.head {
		r.remove(dg)
	}
	return n
}

func (r *Reassembler) drop(reason dataplane.Reason) Result {
	switch reason {
	case dataplane.ReasonFragOverlap:
		r.stats.DroppedOverlap++
	case dataplane.ReasonFragLimit:
		r.stats.DroppedLimit++
	default:
		r.stats.DroppedMalformed++
	}
	return Result{Action: Drop, Reason: reason}
}

// create starts a partial datagram, evicting the oldest one if the table is full.
func (r *Reassembler) create(k key, version uint8, now time.Time) *datagram {
	for r.live.n >= r.cfg.MaxDatagrams && r.live.head != nil {
		r.evict(r.live.head, now)
	}
	dg := &datagram{key: k, version: version, total: -1, deadline: now.Add(r.cfg.Timeout)}
	r.table[k] = dg
	r.live.push(dg)
	r.account(dg)
	return dg
}

// reserve makes room for dg to hold data up to end (and a header copy),
// evicting older datagrams; if dg alone would exceed MaxBytes it is killed.
func (r *Reassembler) reserve(dg *datagram, end int, header bool, hdrLen int, now time.Time) bool {
	need := dg.growth(end)
	if header && dg.hdr == nil {
		need += hdrLen
	}
	for r.bytes+need > r.cfg.MaxBytes {
		victim := r.live.head
		if victim == dg {
			victim = dg.next
		}
		if victim == nil {
			r.kill(dg, dataplane.ReasonFragLimit, now)
			return false
		}
		r.evict(victim, now)
	}
	return true
}

// evict drops a partial datagram under pressure and leaves a tombstone, so
// its later fragments are dropped rather than forwarded to a host that might
// complete the datagram uninspected.
func (r *Reassembler) evict(dg *datagram, now time.Time) {
	r.stats.Evicted++
	r.kill(dg, dataplane.ReasonFragLimit, now)
}

// kill turns a partial datagram into a tombstone that drops its later
// fragments with reason until the timeout has passed again.
func (r *Reassembler) kill(dg *datagram, reason dataplane.Reason, now time.Time) {
	r.live.remove(dg)
	r.bytes -= dg.cost
	dg.release()
	dg.dead, dg.reason = true, reason
	dg.deadline = now.Add(r.cfg.Timeout)
	for r.dead.n >= r.cfg.TombstoneCap() && r.dead.head != nil {
		old := r.dead.head
		r.dead.remove(old)
		delete(r.table, old.key)
	}
	r.dead.push(dg)
}

// remove forgets a datagram or tombstone entirely.
func (r *Reassembler) remove(dg *datagram) {
	if dg.dead {
		r.dead.remove(dg)
	} else {
		r.live.remove(dg)
		r.bytes -= dg.cost
	}
	delete(r.table, dg.key)
	dg.release()
}

// account updates the memory charged to a live datagram.
func (r *Reassembler) account(dg *datagram) {
	c := dg.footprint()
	r.bytes += c - dg.cost
	dg.cost = c
}

// atomic rebuilds an IPv6 atomic fragment (RFC 6946: processed on its own,
// never mixed with queued fragments) as an unfragmented datagram.
func (r *Reassembler) atomic(p *decode.Packet) Result {
	var dg datagram
	dg.version = 6
	if !dg.setHeader(p, p.IPHeaderLen-fragHeaderLen) {
		return r.drop(dataplane.ReasonMalformed)
	}
	dg.data = p.L3Payload
	dg.total = len(p.L3Payload)
	r.out = dg.build(r.out[:0])
	r.stats.Atomic++
	return Result{Action: Complete, Datagram: r.out}
}
