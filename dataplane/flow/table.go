package flow

import (
	"errors"
	"fmt"
	"time"
)

// Class groups flows that share an idle timeout and an eviction priority.
type Class uint8

// Classes, in eviction order: under pressure the oldest embryonic flow goes
// first (a SYN flood only ever evicts its own half-open flows while any
// remain), then closing, then datagram flows, and established flows last.
const (
	Embryonic   Class = iota // TCP handshake not complete
	Closing                  // FIN or RST seen
	Datagram                 // UDP and other connectionless flows
	Established              // TCP established
	NumClasses
)

var classNames = [NumClasses]string{"embryonic", "closing", "datagram", "established"}

func (c Class) String() string {
	if c < NumClasses {
		return classNames[c]
	}
	return fmt.Sprintf("class(%d)", uint8(c))
}

// Defaults, chosen like stateful firewalls do: half-open and closing flows
// are cheap to recreate and are the target of floods, established flows are
// not and may idle for minutes between keep-alive requests.
const (
	DefaultMaxFlows           = 1 << 18
	DefaultMaxBytes           = 256 << 20
	DefaultEmbryonicTimeout   = 30 * time.Second
	DefaultClosingTimeout     = 10 * time.Second
	DefaultDatagramTimeout    = 60 * time.Second
	DefaultEstablishedTimeout = 10 * time.Minute
	// initialMapSize is the flow map's starting capacity; it grows on demand
	// (short-lived engines in tests and tools should not pay for a big table).
	initialMapSize = 1024
	// EntryOverhead is the accounted cost of a flow with no buffered data: the
	// entry, map slot and the engine's per-flow state.
	EntryOverhead = 512
)

// Config bounds a table.
type Config struct {
	// MaxFlows is the most flows held at once.
	MaxFlows int
	// MaxBytes bounds accounted memory (EntryOverhead per flow plus what the
	// owner reports with Account).
	MaxBytes int64
	// Timeouts are idle timeouts per class.
	Timeouts [NumClasses]time.Duration
}

// DefaultConfig returns the default bounds.
func DefaultConfig() Config {
	return Config{
		MaxFlows: DefaultMaxFlows,
		MaxBytes: DefaultMaxBytes,
		Timeouts: [NumClasses]time.Duration{DefaultEmbryonicTimeout, DefaultClosingTimeout,
			DefaultDatagramTimeout, DefaultEstablishedTimeout},
	}
}

// Validate says which field is wrong.
func (c Config) Validate() error {
	var errs []error
	if c.MaxFlows < 1 {
		errs = append(errs, fmt.Errorf("flow: MaxFlows must be at least 1, got %d", c.MaxFlows))
	}
	if c.MaxBytes < int64(EntryOverhead) {
		errs = append(errs, fmt.Errorf("flow: MaxBytes must be at least %d, got %d", EntryOverhead, c.MaxBytes))
	}
	for i, d := range c.Timeouts {
		if d <= 0 {
			errs = append(errs, fmt.Errorf("flow: Timeouts[%s] must be positive, got %s", Class(i), d))
		}
	}
	return errors.Join(errs...)
}

// EvictReason says why a flow left the table.
type EvictReason uint8

const (
	// Expired: idle longer than its class timeout.
	Expired EvictReason = iota
	// Pressure: evicted to make room (flow count or memory).
	Pressure
	// Removed: the owner removed it.
	Removed
)

// Entry is one flow in a table. Value is the owner's per-flow state.
type Entry[V any] struct {
	Key   Key
	Value V

	lastSeen   int64 // unix nanoseconds, from packet time
	bytes      int64
	class      Class
	prev, next *Entry[V]
	inTable    bool
}

// LastSeen returns the time of the last Touch.
func (e *Entry[V]) LastSeen() time.Time { return time.Unix(0, e.lastSeen) }

// Class returns the entry's class.
func (e *Entry[V]) Class() Class { return e.class }

// Bytes returns the accounted size beyond EntryOverhead.
func (e *Entry[V]) Bytes() int64 { return e.bytes }

type list[V any] struct {
	head, tail *Entry[V] // head: most recent
	n          int
}

func (l *list[V]) pushFront(e *Entry[V]) {
	e.prev, e.next = nil, l.head
	if l.head != nil {
		l.head.prev = e
	} else {
		l.tail = e
	}
	l.head = e
	l.n++
}

func (l *list[V]) remove(e *Entry[V]) {
	if e.prev != nil {
		e.prev.next = e.next
	} else {
		l.head = e.next
	}
	if e.next != nil {
		e.next.prev = e.prev
	} else {
		l.tail = e.prev
	}
	e.prev, e.next = nil, nil
	l.n--
}

// Stats are a table's counters.
type Stats struct {
	Flows     int
	Bytes     int64
	PerClass  [NumClasses]int
	Inserted  uint64
	Expired   uint64
	Evicted   [NumClasses]uint64 // evicted under pressure, by class
	Removed   uint64
	Refused   uint64 // inserts refused because nothing could be evicted
	MaxFlows  int
	MaxBytesC int64
}

// Table is a bounded flow table. Not safe for concurrent use.
type Table[V any] struct {
	cfg     Config
	m       map[Key]*Entry[V]
	lists   [NumClasses]list[V]
	bytes   int64
	stats   Stats
	onEvict func(e *Entry[V], why EvictReason)
}

// New returns a table. onEvict, if not nil, is called for every entry leaving
// the table (expired, evicted or removed) before it is unlinked.
func New[V any](cfg Config, onEvict func(e *Entry[V], why EvictReason)) (*Table[V], error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Table[V]{cfg: cfg, m: make(map[Key]*Entry[V], min(cfg.MaxFlows, initialMapSize)), onEvict: onEvict}, nil
}

// Get returns the entry for k, or nil.
func (t *Table[V]) Get(k Key) *Entry[V] { return t.m[k] }

// Insert adds a new entry for k in class c, evicting under pressure. It returns
// nil when the table is full and nothing may be evicted (only classes evicted
// before c in eviction order, or c itself, are eligible: an embryonic flow never
// evicts an established one).
func (t *Table[V]) Insert(k Key, c Class, now time.Time) *Entry[V] {
	if e := t.m[k]; e != nil {
		return e
	}
	for len(t.m) >= t.cfg.MaxFlows || t.bytes+EntryOverhead > t.cfg.MaxBytes {
		if !t.evictOne(c) {
			t.stats.Refused++
			return nil
		}
	}
	e := &Entry[V]{Key: k, lastSeen: now.UnixNano(), class: c, inTable: true}
	t.m[k] = e
	t.lists[c].pushFront(e)
	t.bytes += EntryOverhead
	t.stats.Inserted++
	return e
}

// evictOne evicts the oldest entry of the lowest class up to and including
// limit. It reports whether one was evicted.
func (t *Table[V]) evictOne(limit Class) bool {
	for c := Class(0); c <= limit && c < NumClasses; c++ {
		if e := t.lists[c].tail; e != nil {
			t.stats.Evicted[c]++
			t.drop(e, Pressure)
			return true
		}
	}
	return false
}

// Touch marks e as seen at now and moves it to class c.
func (t *Table[V]) Touch(e *Entry[V], c Class, now time.Time) {
	if !e.inTable {
		return
	}
	if ns := now.UnixNano(); ns > e.lastSeen {
		e.lastSeen = ns
	}
	t.lists[e.class].remove(e)
	e.class = c
	t.lists[c].pushFront(e)
}

// Account adds delta bytes to e's accounted size. When memory exceeds the cap,
// entries are evicted (oldest, lowest class first, never e itself); it reports
// false when the cap could not be met without evicting e, in which case the
// caller should shed the data it was about to buffer.
func (t *Table[V]) Account(e *Entry[V], delta int64) bool {
	if !e.inTable {
		return true
	}
	e.bytes += delta
	t.bytes += delta
	for t.bytes > t.cfg.MaxBytes {
		victim := t.oldestExcept(e)
		if victim == nil {
			return false
		}
		t.stats.Evicted[victim.class]++
		t.drop(victim, Pressure)
	}
	return true
}

func (t *Table[V]) oldestExcept(keep *Entry[V]) *Entry[V] {
	for c := Class(0); c < NumClasses; c++ {
		for e := t.lists[c].tail; e != nil; e = e.prev {
			if e != keep {
				return e
			}
		}
	}
	return nil
}

// Remove deletes e.
func (t *Table[V]) Remove(e *Entry[V]) {
	if e.inTable {
		t.stats.Removed++
		t.drop(e, Removed)
	}
}

func (t *Table[V]) drop(e *Entry[V], why EvictReason) {
	if t.onEvict != nil {
		t.onEvict(e, why)
	}
	t.lists[e.class].remove(e)
	delete(t.m, e.Key)
	t.bytes -= EntryOverhead + e.bytes
	e.inTable = false
}

// Expire removes entries idle beyond their class timeout at time now and
// returns how many it removed. It stops after max removals (0: no limit) so a
// caller on the packet path can spread the work.
func (t *Table[V]) Expire(now time.Time, max int) int {
	n := 0
	ns := now.UnixNano()
	for c := Class(0); c < NumClasses; c++ {
		limit := int64(t.cfg.Timeouts[c])
		for e := t.lists[c].tail; e != nil; e = t.lists[c].tail {
			if ns-e.lastSeen <= limit {
				break
			}
			t.stats.Expired++
			t.drop(e, Expired)
			n++
			if max > 0 && n >= max {
				return n
			}
		}
	}
	return n
}

// Len returns the number of flows.
func (t *Table[V]) Len() int { return len(t.m) }

// Range calls fn for every entry until fn returns false. fn must not insert
// or remove entries.
func (t *Table[V]) Range(fn func(e *Entry[V]) bool) {
	for _, e := range t.m {
		if !fn(e) {
			return
		}
	}
}

// Stats returns the table's counters.
func (t *Table[V]) Stats() Stats {
	s := t.stats
	s.Flows = len(t.m)
	s.Bytes = t.bytes
	s.MaxFlows = t.cfg.MaxFlows
	s.MaxBytesC = t.cfg.MaxBytes
	for c := Class(0); c < NumClasses; c++ {
		s.PerClass[c] = t.lists[c].n
	}
	return s
}
