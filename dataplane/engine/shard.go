package engine

import (
	"net/netip"
	"sync"
	"time"

	"github.com/patchgate/patchgate/dataplane"
	"github.com/patchgate/patchgate/dataplane/analyzer"
	"github.com/patchgate/patchgate/dataplane/decode"
	"github.com/patchgate/patchgate/dataplane/flow"
	"github.com/patchgate/patchgate/dataplane/patch"
	"github.com/patchgate/patchgate/dataplane/stream"
)

// Flow is the engine's state of one flow.
type Flow struct {
	ID uint64
	// ClientIsA is true when the key's A endpoint is the client.
	ClientIsA bool
	Proto     uint8
	Created   time.Time
	Midstream bool

	conn     *stream.Conn
	an       analyzer.Analyzer
	anName   string
	appProto string
	anDead   bool
	// proven: the analyzer recognised its protocol by content or completed a
	// message, so its giving up is an attack sign, not a misdetection.
	proven   bool
	detected bool
	detect   [2][]byte
	firstDir dataplane.Direction
	firstSet bool

	Blocked      bool
	BlockVerdict dataplane.Verdict
	BlockedBy    string
	// PatchSet is the version of the patch set that last inspected the flow.
	PatchSet uint64
	Packets  [2]uint64
	Bytes    [2]uint64
	Alerts   uint32

	accounted int64
	// ckptAt is when Hooks.Boundary last exported the flow; ckptBusy is true
	// when that was in the middle of a message (Config.CheckpointInterval).
	ckptAt   time.Time
	ckptBusy bool
}

// shard is one independent part of the engine.
type shard struct {
	e      *Engine
	idx    int
	mu     sync.Mutex
	table  *flow.Table[*Flow]
	runner patch.Runner
	prog   *patch.Program

	// Per-packet context, valid during process.
	cur struct {
		f        *Flow
		key      flow.Key
		dir      dataplane.Direction
		p        *decode.Packet
		verdict  dataplane.Verdict
		reason   dataplane.Reason
		boundary [2]bool
		changed  bool
		// lastViolation is the code of the last violation reported while
		// processing this packet.
		lastViolation string
	}
	matchFn   func(*patch.Compiled)
	exportCur func() []byte

	patchAlerts map[string]uint64
	violations  map[string]uint64
	anErrors    uint64
	gaps        uint64
	flows       uint64
	pickups     uint64
	resumed     uint64
}

// A shard is the analyzers' Sink and the TCP normaliser's Receiver for the
// packet it is processing.
var (
	_ analyzer.Sink   = (*shard)(nil)
	_ stream.Receiver = (*shard)(nil)
)

func newShard(e *Engine, idx int) (*shard, error) {
	s := &shard{e: e, idx: idx, patchAlerts: map[string]uint64{}, violations: map[string]uint64{}}
	t, err := flow.New[*Flow](e.cfg.Flow, nil)
	if err != nil {
		return nil, err
	}
	s.table = t
	s.matchFn = s.match
	s.exportCur = func() []byte {
		if ent := s.table.Get(s.cur.key); ent != nil {
			return s.exportEntry(ent)
		}
		return nil
	}
	return s, nil
}

func flowID(k flow.Key, created time.Time) uint64 {
	h := k.Hash() ^ uint64(created.UnixNano())*0x9e3779b97f4a7c15
	h ^= h >> 29
	return h & (1<<63 - 1)
}

// direction returns the packet's direction in f.
func direction(f *Flow, swapped bool) dataplane.Direction {
	// Not swapped: the packet's source is A.
	if swapped != f.ClientIsA {
		return dataplane.ToServer
	}
	return dataplane.ToClient
}

// serverPort returns the server's port of a flow.
func serverPort(f *Flow, k flow.Key) uint16 {
	if f.ClientIsA {
		return k.BPort
	}
	return k.APort
}

func (s *shard) newFlow(key flow.Key, clientIsA bool, p *decode.Packet, class flow.Class) *flow.Entry[*Flow] {
	ent := s.table.Insert(key, class, p.Timestamp)
	if ent == nil {
		return nil
	}
	f := &Flow{ID: flowID(key, p.Timestamp), ClientIsA: clientIsA, Proto: p.Proto, Created: p.Timestamp}
	if p.Proto == decode.ProtoTCP {
		f.conn = stream.New(s.e.cfg.Stream)
	}
	ent.Value = f
	s.flows++
	return ent
}

// guessClientIsA decides, for a flow first seen mid-stream or a datagram flow,
// which side is the client: the side talking to a port an analyzer registers,
// else the side with the higher port.
func (s *shard) guessClientIsA(key flow.Key, transport analyzer.Transport) bool {
	aKnown, bKnown := s.knownPort(key.APort, transport), s.knownPort(key.BPort, transport)
	switch {
	case bKnown && !aKnown:
		return true
	case aKnown && !bKnown:
		return false
	}
	return key.APort >= key.BPort
}

func (s *shard) knownPort(port uint16, t analyzer.Transport) bool {
	for _, sp := range s.e.analyzers[t] {
		if hasPort(sp, port) {
			return true
		}
	}
	return false
}

func (s *shard) process(p *decode.Packet, key flow.Key, swapped bool) Result {
	s.prog = s.e.prog.Load()
	ent := s.table.Get(key)
	tcp := p.Proto == decode.ProtoTCP
	isSYN := tcp && p.HasFlag(decode.FlagSYN) && !p.HasFlag(decode.FlagACK)
	if ent != nil && isSYN {
		f := ent.Value
		// A new connection reusing the 4-tuple after the old one closed (or was
		// reset by us) replaces it.
		if f.conn.State == stream.StateClosed || (f.Blocked && f.BlockVerdict == dataplane.Reset) {
			s.table.Remove(ent)
			ent = nil
		}
	}
	if ent == nil {
		var res Result
		ent, res = s.admit(p, key, swapped, isSYN)
		if ent == nil {
			return res
		}
	}
	f := ent.Value
	dir := direction(f, swapped)
	f.Packets[dir]++
	f.Bytes[dir] += uint64(len(p.Payload))
	if f.Blocked {
		s.table.Touch(ent, ent.Class(), p.Timestamp)
		return Result{Verdict: f.BlockVerdict, Reason: dataplane.ReasonBlockedFlow, Dir: dir}
	}
	c := &s.cur
	c.f, c.key, c.dir, c.p = f, key, dir, p
	c.verdict, c.reason, c.boundary, c.changed, c.lastViolation = dataplane.Pass, dataplane.ReasonNone, [2]bool{}, false, ""
	f.PatchSet = s.prog.Version

	class := flow.Datagram
	if tcp {
		r := f.conn.Segment(dir, p, s)
		if r.Verdict != dataplane.Pass {
			if r.Evasion {
				s.raise(reasonSigs[r.Reason], dataplane.Drop, "tcp.stream")
			}
			c.f = nil
			s.table.Touch(ent, classOf(f.conn.State), p.Timestamp)
			return Result{Verdict: r.Verdict, Reason: r.Reason, Dir: dir}
		}
		for d, ended := range r.Ended {
			if ended && f.an != nil && !f.anDead && c.verdict == dataplane.Pass {
				f.an.End(dataplane.Direction(d), s)
			}
		}
		class = classOf(f.conn.State)
	} else if len(p.Payload) > 0 {
		s.Data(dir, p.Payload)
	}
	res := Result{Verdict: c.verdict, Reason: c.reason, Dir: dir}
	if c.verdict != dataplane.Pass {
		f.Blocked, f.BlockVerdict = true, c.verdict
		class = flow.Closing
		c.changed = true
	}
	s.table.Touch(ent, class, p.Timestamp)
	s.account(ent)
	if h := s.e.cfg.Hooks.Boundary; h != nil {
		fired := false
		for d, b := range c.boundary {
			if b || (c.changed && d == int(dir)) {
				h(key, dataplane.Direction(d), s.exportCur)
				fired = true
			}
		}
		switch iv := s.e.cfg.CheckpointInterval; {
		case fired:
			f.ckptAt, f.ckptBusy = p.Timestamp, false
		case iv > 0 && tcp && len(p.Payload) > 0 && (!f.ckptBusy || p.Timestamp.Sub(f.ckptAt) >= iv):
			// A message is in flight: checkpoint its first packet, then
			// at most once per interval.
			h(key, dir, s.exportCur)
			f.ckptAt, f.ckptBusy = p.Timestamp, true
		}
	}
	c.f = nil
	return res
}

// admit creates the flow for a packet of an unknown flow, or refuses it.
func (s *shard) admit(p *decode.Packet, key flow.Key, swapped, isSYN bool) (*flow.Entry[*Flow], Result) {
	if p.Proto == decode.ProtoUDP {
		ent := s.newFlow(key, s.guessClientIsA(key, analyzer.UDP), p, flow.Datagram)
		if ent == nil {
			return nil, Result{Verdict: dataplane.Drop, Reason: dataplane.ReasonFlowLimit}
		}
		return ent, Result{}
	}
	if isSYN {
		ent := s.newFlow(key, !swapped, p, flow.Embryonic)
		if ent == nil {
			return nil, Result{Verdict: dataplane.Drop, Reason: dataplane.ReasonFlowLimit}
		}
		return ent, Result{}
	}
	if h := s.e.cfg.Hooks.Resume; h != nil {
		if rec := h(key); rec != nil {
			if f, k, err := decodeFlow(s.e, rec); err == nil && k == key {
				if err := s.install(key, f, p.Timestamp); err == nil {
					s.resumed++
					return s.table.Get(key), Result{}
				}
			}
		}
	}
	if p.HasFlag(decode.FlagRST) {
		// A stray RST for a flow we never saw: nothing to protect.
		return nil, Result{}
	}
	switch s.e.cfg.Midstream {
	case MidstreamDrop:
		return nil, Result{Verdict: dataplane.Drop, Reason: dataplane.ReasonMidstream}
	case MidstreamReset:
		return nil, Result{Verdict: dataplane.Reset, Reason: dataplane.ReasonMidstream}
	}
	clientIsA := s.guessClientIsA(key, analyzer.TCP)
	ent := s.newFlow(key, clientIsA, p, flow.Established)
	if ent == nil {
		return nil, Result{Verdict: dataplane.Drop, Reason: dataplane.ReasonFlowLimit}
	}
	f := ent.Value
	f.Midstream = true
	f.conn.Pickup(direction(f, swapped), p)
	s.pickups++
	return ent, Result{}
}

func classOf(st stream.State) flow.Class {
	switch st {
	case stream.StateNew, stream.StateSynSent, stream.StateSynRecv:
		return flow.Embryonic
	case stream.StateEstablished:
		return flow.Established
	}
	return flow.Closing
}

// account reports the flow's buffered bytes to the table.
func (s *shard) account(ent *flow.Entry[*Flow]) {
	f := ent.Value
	size := int64(len(f.detect[0]) + len(f.detect[1]))
	if f.conn != nil {
		size += int64(f.conn.Bytes())
	}
	if d := size - f.accounted; d != 0 {
		f.accounted = size
		s.table.Account(ent, d)
	}
}

// Gap implements stream.Receiver: n bytes of dir were skipped.
func (s *shard) Gap(dir dataplane.Direction, n int) {
	f := s.cur.f
	if f == nil {
		return
	}
	s.gaps++
	if !f.detected {
		// Detection restarts after the hole; the analyzer will be told.
		f.detect[dir] = f.detect[dir][:0]
		f.Midstream = true
		return
	}
	if f.an != nil && !f.anDead {
		f.an.Gap(dir, n, s)
	}
}

// Data implements stream.Receiver: in-order bytes (TCP) or a datagram (UDP)
// of the current flow.
func (s *shard) Data(dir dataplane.Direction, data []byte) {
	f := s.cur.f
	if f == nil || s.cur.verdict != dataplane.Pass {
		return
	}
	if !f.detected {
		s.detectProto(f, dir, data)
		return
	}
	s.feed(f, dir, data)
}

func (s *shard) feed(f *Flow, dir dataplane.Direction, data []byte) {
	if f.an == nil || f.anDead || len(data) == 0 {
		return
	}
	if err := f.an.Feed(dir, data, s); err != nil {
		f.anDead = true
		s.anErrors++
		if f.proven && s.e.cfg.AnalyzerFailure == FailureBlock {
			code := s.cur.lastViolation
			if code == "" {
				code = f.appProto + ".analyzer_failure"
			}
			s.block(dataplane.Reset, dataplane.ReasonAnalyzerViolation, code)
			b := violationSig(code)
			b.title = "analyzer gave up: " + code + " (framing the server may parse differently)"
			b.severity = "high"
			s.raise(b, dataplane.Reset, code)
		}
	}
}

// detectProto buffers the first bytes of a flow until an analyzer recognises
// them, then hands the buffered bytes to it.
func (s *shard) detectProto(f *Flow, dir dataplane.Direction, data []byte) {
	transport := analyzer.TCP
	if f.Proto == decode.ProtoUDP {
		transport = analyzer.UDP
	}
	if !f.firstSet {
		f.firstDir, f.firstSet = dir, true
	}
	if transport == analyzer.TCP {
		f.detect[dir] = append(f.detect[dir], data...)
	}
	probeData := data
	if transport == analyzer.TCP {
		probeData = f.detect[dir]
	}
	port := serverPort(f, s.cur.key)
	full := len(f.detect[dir]) >= s.e.cfg.DetectWindow || transport == analyzer.UDP
	var chosen, byPort *analyzer.Spec
	undecided, byContent := false, false
	for _, sp := range s.e.analyzers[transport] {
		conf := sp.Detect(analyzer.Probe{Transport: transport, ServerPort: port, Dir: dir, Data: probeData})
		if conf == analyzer.Yes && (chosen == nil || hasPort(sp, port)) {
			chosen = sp
			byContent = true
		}
		if conf == analyzer.NeedMore {
			undecided = true
		}
		if hasPort(sp, port) && byPort == nil {
			byPort = sp
		}
	}
	if chosen == nil {
		if undecided && !full {
			return
		}
		// Content did not decide: the server on a registered port speaks that
		// port's protocol, whatever the bytes look like.
		chosen = byPort
	}
	f.detected = true
	if chosen == nil {
		f.detect = [2][]byte{}
		return
	}
	f.anName, f.appProto = chosen.Name, chosen.AppProto
	f.an = chosen.New()
	f.proven = byContent && !f.Midstream
	if f.Midstream {
		f.an.Gap(dataplane.ToServer, analyzer.GapUnknown, s)
		f.an.Gap(dataplane.ToClient, analyzer.GapUnknown, s)
	}
	if transport == analyzer.UDP {
		s.feed(f, dir, data)
		return
	}
	bufs := f.detect
	f.detect = [2][]byte{}
	s.feed(f, f.firstDir, bufs[f.firstDir])
	s.feed(f, f.firstDir.Reverse(), bufs[f.firstDir.Reverse()])
}

func hasPort(sp *analyzer.Spec, port uint16) bool {
	for _, p := range sp.Ports {
		if p == port {
			return true
		}
	}
	return false
}

// Event implements analyzer.Sink: it evaluates the patches subscribed to ev.
func (s *shard) Event(ev analyzer.Event) {
	if s.cur.f == nil {
		return
	}
	s.runner.Eval(s.prog, ev, s.matchFn)
}

// Boundary implements analyzer.Sink.
func (s *shard) Boundary(dir dataplane.Direction) {
	if s.cur.f != nil {
		s.cur.boundary[dir] = true
		s.cur.f.proven = true
	}
}

// Violation implements analyzer.Sink.
func (s *shard) Violation(dir dataplane.Direction, code, detail string) {
	if s.cur.f == nil {
		return
	}
	s.violations[code]++
	s.cur.lastViolation = code
	switch s.e.cfg.Violations {
	case ViolationCount:
		return
	case ViolationBlock:
		s.block(dataplane.Reset, dataplane.ReasonAnalyzerViolation, code)
		s.raise(violationSig(code), dataplane.Reset, code)
		return
	}
	s.raise(violationSig(code), dataplane.Pass, code)
}

func (s *shard) block(v dataplane.Verdict, r dataplane.Reason, by string) {
	c := &s.cur
	if v > c.verdict {
		c.verdict, c.reason = v, r
		c.f.BlockedBy = by
	}
}

// match is called for every patch whose predicate held.
func (s *shard) match(cp *patch.Compiled) {
	c := &s.cur
	v := dataplane.Pass
	if cp.Enforced() {
		v = cp.Action.Verdict()
		s.block(v, dataplane.ReasonPatch, cp.ID)
	}
	s.patchAlerts[cp.ID]++
	a := s.alert(v)
	a.Blocked = v != dataplane.Pass
	a.SID, a.PatchID, a.Signature, a.Category, a.Severity, a.CVE = cp.SID, cp.ID, cp.Title, cp.Category, cp.Severity, cp.CVE
	a.Event = cp.Event
	c.f.Alerts++
	s.e.global.alerts.Add(1)
	s.e.alerts.Alert(&a)
}

// raise emits a built-in alert for the current packet.
func (s *shard) raise(b builtin, v dataplane.Verdict, event string) {
	if s.cur.f == nil || b.sid == 0 {
		return
	}
	s.patchAlerts[b.id]++
	a := s.alert(v)
	a.Blocked = v != dataplane.Pass
	a.SID, a.PatchID, a.Signature, a.Category, a.Severity = b.sid, b.id, b.title, b.category, b.severity
	a.Event = event
	s.cur.f.Alerts++
	s.e.global.alerts.Add(1)
	s.e.alerts.Alert(&a)
}

func (s *shard) alert(v dataplane.Verdict) Alert {
	c := &s.cur
	return Alert{
		Time: c.p.Timestamp, FlowID: c.f.ID,
		Src: addrPort(c.p.Src, c.p.SrcPort), Dst: addrPort(c.p.Dst, c.p.DstPort),
		Proto: c.p.Proto, AppProto: c.f.appProto, Dir: c.dir, Verdict: v,
		PatchSet: s.prog.Version,
	}
}

func addrPort(a netip.Addr, port uint16) netip.AddrPort { return netip.AddrPortFrom(a, port) }
