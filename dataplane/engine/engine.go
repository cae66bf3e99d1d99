// Package engine is the inspection engine of one gateway node: it takes frames,
// decodes them, reassembles IP fragments, tracks flows, normalises and
// reassembles TCP, detects each flow's protocol, runs its analyzer and evaluates
// the virtual patches subscribed to the events it produces — and returns a
// verdict per packet.
//
// The engine is split into shards by flow hash (both directions of a flow land
// on the same shard). Each shard has its own lock, flow table and patch runner,
// so one goroutine per shard (one per core, or per NFQUEUE queue) never
// contends. A Worker holds the per-goroutine decode state.
//
// Lock order: Engine.fragMu, then shard.mu. Never hold two shard locks.
package engine

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/gopacket/layers"

	"github.com/patchgate/patchgate/dataplane"
	"github.com/patchgate/patchgate/dataplane/analyzer"
	"github.com/patchgate/patchgate/dataplane/decode"
	"github.com/patchgate/patchgate/dataplane/defrag"
	"github.com/patchgate/patchgate/dataplane/flow"
	"github.com/patchgate/patchgate/dataplane/patch"
)

// Hooks let the embedding node observe and feed the engine. All are optional
// and are called with the flow's shard locked: they must be quick and must not
// call back into the engine.
type Hooks struct {
	// Boundary is called when a flow finished a message in direction dir
	// (analyzer state at rest) or changed verdict; a node publishes the flow's
	// checkpoint then (Engine.ExportLocked is valid inside the hook via the
	// given exporter).
	Boundary func(key flow.Key, dir dataplane.Direction, export func() []byte)
	// Resume is asked for a checkpoint when a TCP packet arrives for a flow the
	// shard does not know and the packet is not a SYN. It returns a record
	// produced by Export, or nil.
	Resume func(key flow.Key) []byte
}

// Result is the engine's decision for one packet.
type Result struct {
	Verdict dataplane.Verdict
	Reason  dataplane.Reason
	// Flow is the packet's flow key (zero for non-IP or undecodable packets).
	Flow flow.Key
	// Dir is the packet's direction within its flow.
	Dir dataplane.Direction
}

// Engine inspects packets. Create it with New; it is safe for concurrent use
// by several Workers.
type Engine struct {
	cfg    Config
	prog   atomic.Pointer[patch.Program]
	alerts AlertSink
	shards []*shard

	fragMu sync.Mutex
	frag   *defrag.Reassembler

	// analyzers by transport, fixed at New (the registry is filled by init).
	analyzers [3][]*analyzer.Spec

	// checksum auto-detection (ChecksumAuto).
	csSeen, csBad atomic.Int64
	csOff         atomic.Bool

	global counters
}

// New returns an engine enforcing prog (nil: no patches). alerts may be nil.
func New(cfg Config, prog *patch.Program, alerts AlertSink) (*Engine, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if prog == nil {
		prog = patch.Empty()
	}
	if alerts == nil {
		alerts = AlertFunc(func(*Alert) {})
	}
	e := &Engine{cfg: cfg, alerts: alerts, frag: defrag.New(cfg.Defrag)}
	for _, sp := range analyzer.All() {
		e.analyzers[sp.Transport] = append(e.analyzers[sp.Transport], sp)
	}
	e.prog.Store(prog)
	for i := 0; i < cfg.Shards; i++ {
		s, err := newShard(e, i)
		if err != nil {
			return nil, err
		}
		e.shards = append(e.shards, s)
	}
	if cfg.Checksums == ChecksumIgnore {
		e.csOff.Store(true)
	}
	return e, nil
}

// Config returns the engine's configuration.
func (e *Engine) Config() Config { return e.cfg }

// SetProgram atomically replaces the patch set. Packets already being processed
// finish with the old program; the next packet of every flow uses the new one.
// Flow state does not depend on the program, so no flow is disturbed.
func (e *Engine) SetProgram(p *patch.Program) {
	if p == nil {
		p = patch.Empty()
	}
	e.prog.Store(p)
}

// Program returns the patch set in force.
func (e *Engine) Program() *patch.Program { return e.prog.Load() }

// ShardOf returns the shard index for a flow key.
func (e *Engine) ShardOf(k flow.Key) int { return int(k.Hash() % uint64(len(e.shards))) }

// Shards returns the number of shards.
func (e *Engine) Shards() int { return len(e.shards) }

// Worker holds per-goroutine decode state. A Worker must be used by one
// goroutine at a time.
type Worker struct {
	e   *Engine
	dec *decode.Decoder
	pkt decode.Packet
	re  decode.Packet // decoded reassembled datagram
}

// NewWorker returns a worker for this engine.
func (e *Engine) NewWorker() *Worker {
	d := decode.NewDecoder()
	d.VerifyChecksums = e.cfg.Checksums != ChecksumIgnore
	return &Worker{e: e, dec: d}
}

// Process inspects one frame of link type lt captured at ts and returns the
// verdict. It never panics on malformed input: a frame that cannot be decoded
// gets Drop with ReasonMalformed (the receiver could not parse it either);
// frames that are not IP pass.
func (w *Worker) Process(lt layers.LinkType, frame []byte, ts time.Time) (res Result) {
	e := w.e
	e.global.packets.Add(1)
	e.global.bytes.Add(uint64(len(frame)))
	defer func() {
		if r := recover(); r != nil {
			// A bug must not take the node down; the packet is dropped and counted.
			e.global.panics.Add(1)
			res = Result{Verdict: dataplane.Drop, Reason: dataplane.ReasonMalformed}
		}
		e.global.verdicts[res.Verdict].Add(1)
		if res.Verdict != dataplane.Pass {
			e.global.reasons[res.Reason].Add(1)
		}
	}()
	p := &w.pkt
	if err := w.dec.Decode(lt, frame, ts, p); err != nil {
		return Result{Verdict: dataplane.Drop, Reason: dataplane.ReasonMalformed}
	}
	return w.processPacket(p)
}

// ProcessPacket inspects an already decoded packet (its slices must stay valid
// for the call).
func (w *Worker) processPacket(p *decode.Packet) Result {
	e := w.e
	if p.IPVersion == 0 {
		return Result{}
	}
	if p.Truncated {
		return Result{Verdict: dataplane.Drop, Reason: dataplane.ReasonMalformed}
	}
	if !p.IPChecksumOK && e.checksumsOn() {
		return Result{Verdict: dataplane.Drop, Reason: dataplane.ReasonBadChecksum}
	}
	var (
		reassembled bool
		fragKey     defrag.Key
	)
	if p.IsFragment {
		e.fragMu.Lock()
		r := e.frag.Process(p)
		e.fragMu.Unlock()
		switch r.Action {
		case defrag.Incomplete:
			// Forward the fragment: the receiver cannot reassemble the datagram
			// without the fragment that completes it, and that one carries the verdict.
			return Result{}
		case defrag.Drop:
			if r.Reason == dataplane.ReasonFragOverlap {
				e.raiseBuiltin(p, r.Reason)
			}
			return Result{Verdict: dataplane.Drop, Reason: r.Reason}
		case defrag.Complete:
			reassembled, fragKey = true, r.Key
			if err := w.dec.DecodeIP(r.Datagram, p.Timestamp, &w.re); err != nil || w.re.IsFragment {
				e.blockDatagram(fragKey, p.Timestamp)
				return Result{Verdict: dataplane.Drop, Reason: dataplane.ReasonMalformed}
			}
			p = &w.re
		}
	}
	res := w.inspect(p)
	if reassembled && res.Verdict != dataplane.Pass {
		e.blockDatagram(fragKey, p.Timestamp)
	}
	return res
}

// blockDatagram makes the reassembler drop every later fragment of a
// datagram whose completing fragment was dropped.
func (e *Engine) blockDatagram(k defrag.Key, now time.Time) {
	e.fragMu.Lock()
	e.frag.Block(k, now)
	e.fragMu.Unlock()
}

// inspect runs a complete (not fragmented) IP packet through its flow.
func (w *Worker) inspect(p *decode.Packet) Result {
	e := w.e
	if p.Proto != decode.ProtoTCP && p.Proto != decode.ProtoUDP {
		return Result{}
	}
	if e.cfg.Checksums == ChecksumAuto && !e.csOff.Load() {
		e.sampleChecksum(p.L4ChecksumOK)
	}
	if !p.L4ChecksumOK && e.checksumsOn() {
		return Result{Verdict: dataplane.Drop, Reason: dataplane.ReasonBadChecksum}
	}
	key, swapped := flow.NewKey(p.Src, p.Dst, p.SrcPort, p.DstPort, p.Proto)
	s := e.shards[e.ShardOf(key)]
	s.mu.Lock()
	res := s.process(p, key, swapped)
	s.mu.Unlock()
	res.Flow = key
	return res
}

func (e *Engine) checksumsOn() bool { return !e.csOff.Load() }

// sampleChecksum implements ChecksumAuto: if more than half of the first
// autoChecksumSample transport checksums are wrong, the packets were captured
// before checksum offload filled them in, and validation is switched off.
func (e *Engine) sampleChecksum(ok bool) {
	n := e.csSeen.Add(1)
	if !ok {
		e.csBad.Add(1)
	}
	if n == 64 || n == autoChecksumSample {
		if e.csBad.Load()*2 > n {
			e.csOff.Store(true)
		}
	}
}

// Expire evicts idle flows and fragments older than their timeouts at time now
// (packet time for offline replay, wall time inline). It returns the number of
// flows evicted.
func (e *Engine) Expire(now time.Time) int {
	e.fragMu.Lock()
	e.frag.Expire(now)
	e.fragMu.Unlock()
	n := 0
	for _, s := range e.shards {
		s.mu.Lock()
		n += s.table.Expire(now, 0)
		s.mu.Unlock()
	}
	return n
}

// raiseBuiltin raises an engine-detected alert for a packet outside any flow
// context (fragments).
func (e *Engine) raiseBuiltin(p *decode.Packet, r dataplane.Reason) {
	b, ok := reasonSigs[r]
	if !ok {
		return
	}
	a := Alert{Time: p.Timestamp, Proto: p.Frag.Proto, Blocked: true, Verdict: dataplane.Drop,
		SID: b.sid, PatchID: b.id, Signature: b.title, Category: b.category, Severity: b.severity,
		Event: "ip.fragment", PatchSet: e.prog.Load().Version}
	a.Src = addrPort(p.Src, 0)
	a.Dst = addrPort(p.Dst, 0)
	e.global.alerts.Add(1)
	e.alerts.Alert(&a)
}

// ErrUnknownFlow is returned by Export for a flow the engine does not hold.
var ErrUnknownFlow = errors.New("engine: unknown flow")

// Export returns the checkpoint record of a flow.
func (e *Engine) Export(k flow.Key) ([]byte, error) {
	s := e.shards[e.ShardOf(k)]
	s.mu.Lock()
	defer s.mu.Unlock()
	ent := s.table.Get(k)
	if ent == nil {
		return nil, ErrUnknownFlow
	}
	return s.exportEntry(ent), nil
}

// Import installs a flow from a checkpoint record, replacing any state the
// engine has for it.
func (e *Engine) Import(rec []byte, now time.Time) error {
	f, key, err := decodeFlow(e, rec)
	if err != nil {
		return err
	}
	s := e.shards[e.ShardOf(key)]
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.install(key, f, now)
}

// FlowKeys returns the keys of every flow held (for drain and inspection).
func (e *Engine) FlowKeys() []flow.Key {
	var out []flow.Key
	for _, s := range e.shards {
		s.mu.Lock()
		s.table.Range(func(en *flow.Entry[*Flow]) bool {
			out = append(out, en.Key)
			return true
		})
		s.mu.Unlock()
	}
	return out
}

// analyzerFor returns the analyzer spec by name.
func analyzerFor(name string) (*analyzer.Spec, error) {
	s, ok := analyzer.Lookup(name)
	if !ok {
		return nil, fmt.Errorf("engine: analyzer %q not registered", name)
	}
	return s, nil
}
