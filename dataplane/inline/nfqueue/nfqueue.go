// Package nfqueue is the L3 inline backend: the node is a routed hop, iptables
// (legacy) sends the packets it should inspect to NFQUEUE queues, one engine
// worker per queue inspects them and returns batched verdicts. The kernel's
// --queue-balance hash is symmetric in the address pair, so both directions of
// a flow reach the same queue.
//
// What the backend leaves in the kernel:
//
//   - While running: a chain PATCHGATE-<name> in the filter table of
//     iptables-legacy and ip6tables-legacy (only the family the match names,
//     if it names addresses), holding a RETURN for packets carrying the node's
//     mark (its own RSTs) and an NFQUEUE rule; a jump to that chain, with the
//     configured match, at the top of every configured built-in chain.
//   - Fail-open: the NFQUEUE rule has --queue-bypass and the queues the
//     library's FailOpen flag, so a full queue, a full socket buffer or a dead
//     node lets packets through. On stop the jumps and the chain are removed:
//     nothing is left and traffic is forwarded by the kernel.
//   - Fail-closed: neither flag; a full queue drops (counted by the kernel).
//     On stop the chain's NFQUEUE rule is replaced by DROP and the jumps stay:
//     the matched traffic is dropped until the node starts again (which
//     replaces the chain) or Cleanup runs. A node that crashes leaves the
//     NFQUEUE rule without bypass, which drops too.
//
// Every start first removes what an earlier run of the same name left, so a
// crash never leaves two sets of rules.
package nfqueue

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"regexp"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	nfq "github.com/florianl/go-nfqueue/v2"
	"github.com/google/gopacket/layers"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

	"github.com/patchgate/patchgate/dataplane"
	"github.com/patchgate/patchgate/dataplane/inline"
)

// Defaults.
const (
	DefaultQueues      = 2
	DefaultBatch       = 16
	DefaultMaxQueueLen = 4096
	// DefaultMark marks the node's own injected packets ("PG").
	DefaultMark = 0x5047
	// flushEvery bounds how long a pass verdict can wait in a batch when the
	// socket goes quiet without the backend noticing (a safety net: the last
	// packet of a burst normally flushes the batch itself).
	flushEvery = 5 * time.Millisecond
	// drainIdle and drainMax bound how long Stop keeps inspecting packets
	// already queued after the rules were removed.
	drainIdle = 50 * time.Millisecond
	drainMax  = 2 * time.Second
	// socketBuffer is the netlink receive buffer per queue.
	socketBuffer = 8 << 20
)

// nameRe is what a node name may look like (it becomes part of a chain name).
var nameRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$`)

// Config configures the backend.
type Config struct {
	// Name is the node name; the rules live in chain ChainName(Name).
	Name string
	// QueueBase and Queues select queues QueueBase..QueueBase+Queues-1.
	QueueBase uint16
	Queues    int
	// Chains are the built-in chains hooked (INPUT, FORWARD, OUTPUT).
	Chains []string
	// Match are extra iptables match arguments for the jump rules.
	Match []string
	// Batch is the most pass verdicts sent in one batch message.
	Batch int
	// Fail is the overload and shutdown policy.
	Fail inline.FailPolicy
	// MaxQueueLen is the kernel queue length per queue.
	MaxQueueLen uint32
	// Mark marks the RSTs the node injects (must not be 0).
	Mark uint32
	// Netns, if set, is the path of the network namespace the backend works
	// in (sockets, rules); empty means the process's own.
	Netns string
	// Logger receives operational messages; nil discards them.
	Logger *slog.Logger
}

// DefaultConfig returns a working configuration for node name.
func DefaultConfig(name string) Config {
	return Config{Name: name, Queues: DefaultQueues, Chains: []string{"FORWARD"}, Batch: DefaultBatch,
		MaxQueueLen: DefaultMaxQueueLen, Mark: DefaultMark}
}

// Validate says which field is wrong and why.
func (c Config) Validate() error {
	var errs []error
	if !nameRe.MatchString(c.Name) {
		errs = append(errs, fmt.Errorf("nfqueue: Name %q must be 1-63 letters, digits, '.', '_' or '-'", c.Name))
	}
	if c.Queues < 1 || c.Queues > 64 {
		errs = append(errs, fmt.Errorf("nfqueue: Queues must be 1..64, got %d", c.Queues))
	} else if int(c.QueueBase)+c.Queues-1 > 65535 {
		errs = append(errs, fmt.Errorf("nfqueue: QueueBase %d + Queues %d exceeds queue 65535", c.QueueBase, c.Queues))
	}
	if len(c.Chains) == 0 {
		errs = append(errs, errors.New("nfqueue: Chains must name at least one chain"))
	}
	for i, ch := range c.Chains {
		if !slices.Contains(BuiltinChains, ch) {
			errs = append(errs, fmt.Errorf("nfqueue: Chains[%d] %q is not one of INPUT, FORWARD, OUTPUT", i, ch))
		} else if slices.Index(c.Chains, ch) != i {
			errs = append(errs, fmt.Errorf("nfqueue: Chains[%d] %q is listed twice", i, ch))
		}
	}
	if err := ValidateMatch(c.Match); err != nil {
		errs = append(errs, err)
	}
	if c.Batch < 1 || c.Batch > 1024 {
		errs = append(errs, fmt.Errorf("nfqueue: Batch must be 1..1024, got %d", c.Batch))
	}
	if c.MaxQueueLen < 1 {
		errs = append(errs, errors.New("nfqueue: MaxQueueLen must be at least 1"))
	}
	if c.Mark == 0 {
		errs = append(errs, errors.New("nfqueue: Mark must not be 0"))
	}
	return errors.Join(errs...)
}

// ValidateMatch rejects match arguments that would change what the rule does
// rather than what it matches (targets, gotos, rule commands).
func ValidateMatch(match []string) error {
	for i, a := range match {
		switch a {
		case "-j", "--jump", "-g", "--goto", "-A", "--append", "-I", "--insert", "-D", "--delete",
			"-F", "--flush", "-X", "-N", "-P", "-t", "--table":
			return fmt.Errorf("nfqueue: Match[%d] %q: only match arguments are allowed", i, a)
		}
	}
	return nil
}

// Backend is the NFQUEUE inline backend.
type Backend struct {
	cfg    Config
	newIns func() inline.Inspector
	log    *slog.Logger
	rules  *ruleSet

	ready    atomic.Bool
	counters inline.Counters

	mu     sync.Mutex // guards queues against Stats while opening and closing
	queues []*queue

	procMu sync.Mutex
	proc   *os.File // the kernel status file, opened in the node's namespace

	rulePackets atomic.Uint64 // last read of the NFQUEUE rule counters (fail-open)
	inj         *injector
}

var _ inline.Backend = (*Backend)(nil)

// New returns a backend; newInspector is called once per queue.
func New(cfg Config, newInspector func() inline.Inspector) (*Backend, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	b := &Backend{cfg: cfg, newIns: newInspector, log: log.With("backend", "nfqueue")}
	b.rules = &ruleSet{chain: ChainName(cfg.Name), tools: families(cfg.Match), hooks: cfg.Chains,
		match: cfg.Match, mark: cfg.Mark, target: queueTarget(cfg.QueueBase, cfg.Queues, cfg.Fail == inline.FailOpen)}
	return b, nil
}

// Ready implements inline.Backend.
func (b *Backend) Ready() bool { return b.ready.Load() }

// Run implements inline.Backend: bind the queues, install the rules, inspect
// until ctx ends, then apply the fail policy, drain the queues and unbind.
func (b *Backend) Run(ctx context.Context) error {
	libCtx, stopLib := context.WithCancel(context.Background())
	defer stopLib()
	defer b.closeQueues()
	if err := inline.InNetns(b.cfg.Netns, func() error { return b.open(libCtx) }); err != nil {
		return err
	}
	if err := inline.InNetns(b.cfg.Netns, b.rules.install); err != nil {
		_ = inline.InNetns(b.cfg.Netns, b.rules.remove)
		return err
	}
	b.ready.Store(true)
	b.log.Info("attached", "chain", b.rules.chain, "queues", b.cfg.Queues, "queue_base", b.cfg.QueueBase,
		"hooks", b.cfg.Chains, "fail", b.cfg.Fail.String())

	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); b.flusher(libCtx) }()
	if b.cfg.Fail == inline.FailOpen {
		wg.Add(1)
		go func() { defer wg.Done(); b.pollRuleCounters(libCtx) }()
	}
	<-ctx.Done()
	b.ready.Store(false)

	var stopErr error
	if b.cfg.Fail == inline.FailOpen {
		stopErr = inline.InNetns(b.cfg.Netns, b.rules.remove)
		b.log.Info("rules removed; traffic now bypasses the node (fail-open)")
	} else {
		stopErr = inline.InNetns(b.cfg.Netns, b.rules.closeGate)
		b.log.Info("queue rules replaced by DROP; matched traffic is blocked (fail-closed)", "chain", b.rules.chain)
	}
	b.drain()
	stopLib()
	wg.Wait()
	return stopErr
}

// open binds every queue and opens the injector and the status file; it runs
// inside the node's namespace.
func (b *Backend) open(libCtx context.Context) error {
	inj, err := newInjector(b.cfg.Mark)
	if err != nil {
		return err
	}
	b.inj = inj
	if f, err := os.Open(ProcPath); err == nil {
		b.proc = f
	}
	var flags uint32
	if b.cfg.Fail == inline.FailOpen {
		flags = nfq.NfQaCfgFlagFailOpen
	}
	for i := 0; i < b.cfg.Queues; i++ {
		num := b.cfg.QueueBase + uint16(i)
		nf, err := nfq.Open(&nfq.Config{NfQueue: num, MaxPacketLen: 0xffff, MaxQueueLen: b.cfg.MaxQueueLen,
			Copymode: nfq.NfQnlCopyPacket, Flags: flags, AfFamily: unix.AF_INET})
		if err != nil {
			return fmt.Errorf("nfqueue: queue %d: %w", num, err)
		}
		q := &queue{b: b, num: num, nf: nf, ins: b.newIns()}
		b.mu.Lock()
		b.queues = append(b.queues, q)
		b.mu.Unlock()
		if err := nf.SetOption(netlink.NoENOBUFS, true); err != nil {
			return fmt.Errorf("nfqueue: queue %d: %w", num, err)
		}
		_ = nf.Con.SetReadBuffer(socketBuffer)
		if q.raw, err = nf.Con.SyscallConn(); err != nil {
			return fmt.Errorf("nfqueue: queue %d: %w", num, err)
		}
		if err := nf.RegisterWithErrorFunc(libCtx, q.hook, q.onError(libCtx)); err != nil {
			return fmt.Errorf("nfqueue: bind queue %d (another process bound to it?): %w", num, err)
		}
	}
	return nil
}

func (b *Backend) closeQueues() {
	b.mu.Lock()
	qs := b.queues
	b.queues = nil
	b.mu.Unlock()
	for _, q := range qs {
		q.nf.Close()
	}
	if b.inj != nil {
		b.inj.close()
	}
	b.procMu.Lock()
	if b.proc != nil {
		b.proc.Close()
		b.proc = nil
	}
	b.procMu.Unlock()
}

// drain keeps inspecting what is still queued after the rules changed, until
// the queues have been quiet for drainIdle (at most drainMax), and flushes the
// last batches.
func (b *Backend) drain() {
	deadline := time.Now().Add(drainMax)
	last, quietSince := b.counters.Snapshot().Packets, time.Now()
	for time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
		if n := b.counters.Snapshot().Packets; n != last {
			last, quietSince = n, time.Now()
		} else if time.Since(quietSince) >= drainIdle {
			break
		}
	}
	for _, q := range b.snapshot() {
		q.mu.Lock()
		q.flushLocked()
		q.mu.Unlock()
	}
}

func (b *Backend) snapshot() []*queue {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.queues
}

// flusher sends batched pass verdicts that waited longer than flushEvery.
func (b *Backend) flusher(ctx context.Context) {
	t := time.NewTicker(flushEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for _, q := range b.snapshot() {
			q.mu.Lock()
			if q.pending > 0 && time.Since(q.pendingSince) >= flushEvery {
				q.flushLocked()
			}
			q.mu.Unlock()
		}
	}
}

// pollRuleCounters reads the NFQUEUE rules' packet counters, from which the
// packets the kernel let through uninspected (fail-open) are estimated.
func (b *Backend) pollRuleCounters(ctx context.Context) {
	t := time.NewTicker(2 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		var n uint64
		err := inline.InNetns(b.cfg.Netns, func() error {
			var err error
			n, err = b.rules.packets()
			return err
		})
		if err == nil {
			b.rulePackets.Store(n)
		}
	}
}

// Stats implements inline.Backend. Kernel drops come from the kernel's queue
// status file. Bypassed (fail-open) is estimated as the packets the NFQUEUE
// rules matched minus those the node received, the kernel dropped or still
// holds; it is refreshed every two seconds.
func (b *Backend) Stats() inline.Stats {
	s := b.counters.Snapshot()
	kq := b.kernelQueues()
	b.mu.Lock()
	qs := b.queues
	b.mu.Unlock()
	var accounted uint64
	for i := 0; i < b.cfg.Queues; i++ {
		num := b.cfg.QueueBase + uint16(i)
		u := inline.UnitStats{Name: fmt.Sprintf("queue-%d", num)}
		if i < len(qs) {
			u.Packets = qs[i].packets.Load()
		}
		if k, ok := kq[num]; ok {
			u.KernelDropped = k.Dropped + k.UserDropped
			accounted += k.Total
		}
		accounted += u.Packets + u.KernelDropped
		s.Units = append(s.Units, u)
	}
	if rp := b.rulePackets.Load(); b.cfg.Fail == inline.FailOpen && rp > accounted {
		s.Bypassed = rp - accounted
	}
	return s
}

func (b *Backend) kernelQueues() map[uint16]KernelQueue {
	b.procMu.Lock()
	defer b.procMu.Unlock()
	if b.proc == nil {
		return nil
	}
	buf := make([]byte, 64<<10)
	n, err := b.proc.ReadAt(buf, 0)
	if n == 0 && err != nil {
		return nil
	}
	return ParseProc(buf[:n])
}

// queue is one bound NFQUEUE queue with its engine worker. hook runs on the
// library's receive goroutine; mu guards the batch, which the flusher also
// touches.
type queue struct {
	b   *Backend
	num uint16
	nf  *nfq.Nfqueue
	ins inline.Inspector
	raw syscall.RawConn

	packets atomic.Uint64

	mu           sync.Mutex
	pending      int
	pendingID    uint32
	pendingSince time.Time
	peek         [16]byte
}

// hook inspects one packet and applies its verdict.
func (q *queue) hook(a nfq.Attribute) int {
	if a.PacketID == nil {
		return 0
	}
	id := *a.PacketID
	var payload []byte
	if a.Payload != nil {
		payload = *a.Payload
	}
	ts := time.Now()
	q.packets.Add(1)
	q.b.counters.Received(len(payload))
	res := q.ins.Process(layers.LinkTypeRaw, payload, ts)
	q.mu.Lock()
	defer q.mu.Unlock()
	if res.Verdict == dataplane.Pass {
		if q.pending == 0 {
			q.pendingSince = ts
		}
		q.pending++
		q.pendingID = id
		if q.pending >= q.b.cfg.Batch || !q.more() {
			q.flushLocked()
		}
		q.b.counters.Applied(dataplane.Pass)
		return 0
	}
	// Packets accepted before this one leave first: a RST must not overtake
	// the handshake's last ACK still waiting in the batch.
	q.flushLocked()
	if err := q.nf.SetVerdict(id, nfq.NfDrop); err != nil {
		q.b.counters.Error()
		q.b.log.Warn("verdict failed", "queue", q.num, "err", err)
	}
	q.b.counters.Applied(res.Verdict)
	if res.Verdict == dataplane.Reset {
		q.b.reset(payload)
	}
	return 0
}

// more reports whether another message waits on the queue's socket, without
// consuming it: the batch is flushed when the burst ends.
func (q *queue) more() bool {
	more := false
	_ = q.raw.Read(func(fd uintptr) bool {
		n, _, err := unix.Recvfrom(int(fd), q.peek[:], unix.MSG_PEEK|unix.MSG_DONTWAIT)
		more = err == nil && n > 0
		return true
	})
	return more
}

// flushLocked accepts every pending packet with one batch verdict.
func (q *queue) flushLocked() {
	if q.pending == 0 {
		return
	}
	if err := q.nf.SetVerdictBatch(q.pendingID, nfq.NfAccept); err != nil {
		q.b.counters.Error()
		q.b.log.Warn("batch verdict failed", "queue", q.num, "err", err)
	}
	q.pending = 0
}

// onError handles receive errors: timeouts and buffer overruns are expected,
// anything after the context ended stops the queue.
func (q *queue) onError(ctx context.Context) nfq.ErrorFunc {
	return func(err error) int {
		if ctx.Err() != nil {
			return 1
		}
		var op *netlink.OpError
		if errors.As(err, &op) && (op.Timeout() || errors.Is(op.Err, unix.ENOBUFS)) {
			return 0
		}
		q.b.counters.Error()
		q.b.log.Error("queue receive failed", "queue", q.num, "err", err)
		return 0
	}
}

// reset injects a RST towards both ends of the packet's connection.
func (b *Backend) reset(ipPacket []byte) {
	toDst, toSrc, err := inline.Resets(ipPacket)
	if err != nil {
		return // not TCP, or a RST: dropping is all there is to do
	}
	for _, p := range [][]byte{toDst, toSrc} {
		if err := b.inj.send(p); err != nil {
			b.counters.Error()
			b.log.Warn("RST injection failed", "err", err)
			continue
		}
		b.counters.ResetSent(1)
	}
}
