// Package analyzer defines the contract between the engine and protocol
// analyzers, and the registry analyzers add themselves to (CoreDNS-plugin style:
// each analyzer is its own package whose setup.go calls Register in init).
//
// An analyzer turns the in-order bytes of one flow (TCP) or its datagrams (UDP)
// into typed events. Events are Go structs whose exported fields, named by their
// `expr` struct tags, are the fields virtual patches may test. Analyzers are
// incremental (a message may span any number of Feed calls), bounded (limits on
// line length, header count, buffered bytes) and resumable: their whole state can
// be exported and imported so that another engine continues exactly where this one
// stopped (flow checkpoints).
package analyzer

import (
	"fmt"
	"math"
	"reflect"
	"sort"
	"sync"

	"github.com/patchgate/patchgate/dataplane"
)

// Event is a typed protocol event. Implementations are pointers to structs.
type Event interface {
	// EventName returns the registered event name, e.g. "http.request_headers".
	EventName() string
}

// Sink receives what an analyzer produces. The engine implements it; it evaluates
// patches synchronously inside Event, so the event value (and any slices in it)
// only has to stay valid for the duration of the call: analyzers may reuse it.
type Sink interface {
	// Event delivers one event.
	Event(ev Event)
	// Boundary tells that a complete message in direction dir has just ended and
	// the analyzer's state for dir is at rest (a checkpoint taken now is small).
	Boundary(dir dataplane.Direction)
	// Violation reports a protocol violation that is an attack sign in itself
	// (request smuggling, limits exceeded). code is a short stable identifier such
	// as "http.cl_te_conflict"; the engine turns it into an alert and, by policy,
	// a verdict.
	Violation(dir dataplane.Direction, code string, detail string)
}

// Analyzer parses one flow. An Analyzer is used by one goroutine at a time
// (the engine shard that owns the flow); implementations need no locking.
type Analyzer interface {
	// Feed delivers the next in-order bytes of direction dir (TCP), or one whole
	// datagram (UDP). data is only valid during the call. Feed never panics on
	// hostile input; an error means the analyzer gave up on the flow (it will
	// receive no more data; the engine counts it and, by policy, passes or blocks).
	Feed(dir dataplane.Direction, data []byte, sink Sink) error
	// Gap tells that n bytes of direction dir will never be seen (bytes
	// skipped by a limit), or GapUnknown bytes (a flow picked up mid-stream
	// without a checkpoint). Unless the gap provably ends inside the message
	// in progress, the analyzer resynchronises at the next message it can
	// recognise. n <= 0 is a no-op.
	Gap(dir dataplane.Direction, n int, sink Sink)
	// End tells that direction dir has ended (FIN or flow end).
	End(dir dataplane.Direction, sink Sink)
	// MarshalState appends the analyzer's complete state to dst and returns it.
	// UnmarshalState on a fresh analyzer of the same kind restores it exactly:
	// subsequent Feed calls produce the same events as they would have here.
	MarshalState(dst []byte) []byte
	// UnmarshalState restores state produced by MarshalState. It validates what
	// it reads and returns an error (never panics) on a corrupt record.
	UnmarshalState(src []byte) error
}

// GapUnknown is the byte count of a gap of unknown size: larger than any
// message, so every analyzer resynchronises.
const GapUnknown = math.MaxInt32

// Transport says which transport an analyzer handles.
type Transport uint8

const (
	TCP Transport = 1
	UDP Transport = 2
)

// Confidence is an analyzer's answer to "is this my protocol?".
type Confidence uint8

const (
	// No: not this protocol.
	No Confidence = iota
	// NeedMore: cannot tell yet; call again with more bytes.
	NeedMore
	// Maybe: plausible (e.g. by port only).
	Maybe
	// Yes: recognised by content.
	Yes
)

// Probe describes the first bytes of a flow offered for protocol detection.
type Probe struct {
	Transport Transport
	// ServerPort is the server's port (the destination port of the client's SYN).
	ServerPort uint16
	Dir        dataplane.Direction
	// Data is the first bytes seen in direction Dir (up to the detection window).
	Data []byte
}

// EventSpec describes one event type an analyzer emits.
type EventSpec struct {
	// Name is the event name patches subscribe to ("http.request").
	Name string
	// Schema is a zero value of the event's struct (not a pointer). Patches'
	// predicates are type-checked against it.
	Schema any
	// Doc is one line describing when the event fires.
	Doc string
	// Prefilter lists the keys this event can answer in PrefilterKeys (see
	// Prefilterable); patches may name them in their prefilter.
	Prefilter []string
}

// Prefilterable is an optional interface of events: Has reports cheaply whether
// the event carries the named key (e.g. a header name). The patch engine runs it
// before the full predicate of patches that declare a prefilter.
type Prefilterable interface {
	Event
	// Has reports whether key (already lower-case) is present in the event.
	Has(key string) bool
}

// Spec registers one analyzer.
type Spec struct {
	// Name is the analyzer's short name, unique in the registry ("http").
	Name string
	// AppProto is the EVE app_proto of flows it parses; empty means Name
	// (two analyzers of one protocol on different transports share it).
	AppProto  string
	Transport Transport
	// Ports are the well-known server ports; used as a hint when content
	// detection cannot decide.
	Ports []uint16
	// Detect looks at the first bytes of a flow. It must not retain Probe.Data.
	Detect func(p Probe) Confidence
	// New returns a fresh analyzer for one flow.
	New func() Analyzer
	// Events lists the event types the analyzer emits.
	Events []EventSpec
}

var (
	mu       sync.RWMutex
	byName   = map[string]*Spec{}
	byEvent  = map[string]*EventSpec{}
	eventOwn = map[string]string{}
)

// Register adds an analyzer. It panics on a duplicate name or event, which is a
// programming error found at start-up.
func Register(s Spec) {
	mu.Lock()
	defer mu.Unlock()
	if s.Name == "" || s.New == nil || s.Detect == nil {
		panic("analyzer: Register needs Name, New and Detect")
	}
	if _, dup := byName[s.Name]; dup {
		panic("analyzer: duplicate analyzer " + s.Name)
	}
	sp := s
	if sp.AppProto == "" {
		sp.AppProto = sp.Name
	}
	byName[s.Name] = &sp
	for i := range sp.Events {
		ev := &sp.Events[i]
		if _, dup := byEvent[ev.Name]; dup {
			panic("analyzer: duplicate event " + ev.Name)
		}
		if ev.Schema == nil || reflect.TypeOf(ev.Schema).Kind() != reflect.Struct {
			panic(fmt.Sprintf("analyzer: event %s needs a struct schema", ev.Name))
		}
		byEvent[ev.Name] = ev
		eventOwn[ev.Name] = s.Name
	}
}

// Lookup returns the analyzer registered under name.
func Lookup(name string) (*Spec, bool) {
	mu.RLock()
	defer mu.RUnlock()
	s, ok := byName[name]
	return s, ok
}

// LookupEvent returns the spec of an event and the name of the analyzer emitting it.
func LookupEvent(name string) (*EventSpec, string, bool) {
	mu.RLock()
	defer mu.RUnlock()
	e, ok := byEvent[name]
	return e, eventOwn[name], ok
}

// All returns the registered analyzers sorted by name.
func All() []*Spec {
	mu.RLock()
	defer mu.RUnlock()
	out := make([]*Spec, 0, len(byName))
	for _, s := range byName {
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Events returns every registered event name, sorted.
func Events() []string {
	mu.RLock()
	defer mu.RUnlock()
	out := make([]string, 0, len(byEvent))
	for n := range byEvent {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}
