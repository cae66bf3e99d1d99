package evasion

import (
	"fmt"
	"hash/fnv"
	"net/netip"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/gopacket/layers"

	"github.com/patchgate/patchgate/dataplane"
	"github.com/patchgate/patchgate/dataplane/analyzer"
	_ "github.com/patchgate/patchgate/dataplane/analyzer/all"
	"github.com/patchgate/patchgate/dataplane/engine"
	"github.com/patchgate/patchgate/dataplane/gen"
	"github.com/patchgate/patchgate/dataplane/patch"
)

// defaultMaxSegments bounds the data segments of one run: classes that cut
// traffic into tiny segments use larger ones for the few catalog tests whose
// messages are tens of kilobytes (the SIGRed and EternalBlue vectors), so
// every class stays affordable while still cutting those messages into
// hundreds of pieces. Every test of up to 2000 bytes is cut exactly as the
// class says.
const defaultMaxSegments = 2000

var (
	catalogOnce sync.Once
	catalogProg *patch.Program
	catalogErr  error
)

// catalog returns the shipped patch catalog, compiled once for the package.
func catalog(t testing.TB) *patch.Program {
	t.Helper()
	catalogOnce.Do(func() {
		ps, err := patch.LoadDir(filepath.Join("..", "..", "patches"))
		if err != nil {
			catalogErr = err
			return
		}
		catalogProg, catalogErr = patch.Compile(1, ps)
	})
	if catalogErr != nil {
		t.Fatalf("evasion: loading the catalog: %v", catalogErr)
	}
	if len(catalogProg.Patches) == 0 {
		t.Fatal("evasion: the shipped catalog is empty")
	}
	return catalogProg
}

// traffic is one conversation to replay: a catalog test, or a variant this
// suite writes (HTTP encodings, TLS record splits).
type traffic struct {
	name    string
	patchID string
	match   bool
	steps   []patch.Step
	udp     bool
	port    uint16
}

// catalogTraffic returns every test of every shipped patch. With -short only
// the first exploit and the first benign test of each patch are kept.
func catalogTraffic(t testing.TB) []traffic {
	t.Helper()
	var out []traffic
	for _, c := range catalog(t).Patches {
		var seen [2]bool
		for i := range c.Tests {
			tc := &c.Tests[i]
			k := 0
			if tc.Match {
				k = 1
			}
			if testing.Short() && seen[k] {
				continue
			}
			seen[k] = true
			out = append(out, fromTest(t, c.Patch, tc))
		}
	}
	return out
}

// fromTest turns a patch test into traffic, resolving the server port the
// way the engine's patch test runner does.
func fromTest(t testing.TB, p *patch.Patch, tc *patch.Test) traffic {
	t.Helper()
	port := tc.ServerPort
	if port == 0 {
		spec, ok := analyzer.Lookup(p.Protocol)
		if !ok || len(spec.Ports) == 0 {
			t.Fatalf("%s %q: no server port", p.ID, tc.Name)
		}
		port = spec.Ports[0]
	}
	return traffic{name: tc.Name, patchID: p.ID, match: tc.Match, steps: tc.Steps, udp: tc.Transport == "udp", port: port}
}

// protocolOf returns the protocol of a catalog patch.
func protocolOf(t testing.TB, id string) string {
	for _, c := range catalog(t).Patches {
		if c.ID == id {
			return c.Protocol
		}
	}
	t.Fatalf("no patch %s", id)
	return ""
}

// class is one evasion class: how the traffic is carried and what the engine
// must do with it.
type class struct {
	name string
	// segSize is the TCP payload per segment (0: the MSS).
	segSize int
	// maxSegs caps the data segments of a run (0: defaultMaxSegments);
	// segSize grows for larger traffic. Fragmenting classes set it lower.
	maxSegs int
	ipv6    bool
	// udp: the class applies to UDP tests too (TCP tests always).
	udp bool
	// udpOnly: the class applies to UDP tests only.
	udpOnly bool
	opts    func(*gen.SessionOptions)
	// segs rewrite the session's segments (gen transforms or this suite's).
	segs []gen.Transform
	// frames rewrites the encoded frames (header surgery, copies, timing).
	frames func(fs []gen.Frame, fc *frameCtx) []gen.Frame
	// client replaces the client endpoint (address and port) when set.
	client gen.Endpoint
	// config adjusts the engine configuration (ChecksumValidate already set).
	config func(*engine.Config)
	// detectedBy lists built-in alerts that count as detecting the exploit
	// when the engine refuses the evasion itself before the patch can see
	// the exploit (for example patchgate.frag_overlap).
	detectedBy []string
	// blockedOnly: the engine refuses the rest of the connection without an
	// alert (documented policy), so an exploit only has to be kept from the
	// server.
	blockedOnly bool
	// clientOnly: the class manipulates the client's segments only; exploits
	// a malicious server sends are out of its scope (their victim would not
	// take part in the evasion).
	clientOnly bool
	// benign replaces the standard benign assertion for classes the
	// normalisation policy refuses outright; it documents that policy.
	benign func(t *testing.T, prog *patch.Program, r *run)
}

// frameCtx tells frame rewriters about the frames they get.
type frameCtx struct {
	lt   layers.LinkType
	v6   bool
	segs []gen.Segment
}

// l3 returns the offset of the IP header in a frame.
func (fc *frameCtx) l3() int {
	if fc.lt == layers.LinkTypeEthernet {
		return 14
	}
	return 0
}

// run is one replay: the frames sent and what the engine did with each.
type run struct {
	tr     traffic
	cls    *class
	lt     layers.LinkType
	opts   gen.SessionOptions
	segs   []gen.Segment
	frames []gen.Frame
	res    []engine.Result
	alerts []engine.Alert
	stats  engine.Stats
}

// endpoints are documentation addresses (RFC 5737, RFC 3849).
func endpoints(port uint16, v6 bool) (client, server gen.Endpoint) {
	if v6 {
		return gen.Endpoint{Addr: netip.MustParseAddr("2001:db8::10"), Port: 40000},
			gen.Endpoint{Addr: netip.MustParseAddr("2001:db8::20"), Port: port}
	}
	return gen.Endpoint{Addr: netip.MustParseAddr("192.0.2.10"), Port: 40000},
		gen.Endpoint{Addr: netip.MustParseAddr("198.51.100.20"), Port: port}
}

func totalBytes(steps []patch.Step) int {
	n := 0
	for _, s := range steps {
		n += len(s.Data)
	}
	return n
}

// build generates the frames of tr carried as class c.
func build(t testing.TB, tr traffic, c *class) *run {
	t.Helper()
	client, server := endpoints(tr.port, c.ipv6)
	if c.client.Addr.IsValid() {
		client = c.client
	}
	opts := gen.DefaultSessionOptions()
	opts.SegmentSize = c.segSize
	maxSegs := c.maxSegs
	if maxSegs == 0 {
		maxSegs = defaultMaxSegments
	}
	if n := totalBytes(tr.steps); c.segSize > 0 && n/c.segSize > maxSegs {
		opts.SegmentSize = (n + maxSegs - 1) / maxSegs
	}
	if c.opts != nil {
		c.opts(&opts)
	}
	r := &run{tr: tr, cls: c, opts: opts}
	var frames []gen.Frame
	var err error
	if tr.udp {
		f, ferr := gen.NewUDPFlow(client, server, opts)
		if ferr != nil {
			t.Fatal(ferr)
		}
		for _, st := range tr.steps {
			f.Send(st.Dir, st.Data)
		}
		r.segs = f.Segments()
		for _, tf := range c.segs {
			r.segs = tf(r.segs)
		}
		frames, err = f.Frames(c.segs...)
	} else {
		s, serr := gen.NewTCPSession(client, server, opts)
		if serr != nil {
			t.Fatal(serr)
		}
		for _, st := range tr.steps {
			s.Send(st.Dir, st.Data)
		}
		s.Close(dataplane.ToServer)
		r.segs = s.Segments()
		for _, tf := range c.segs {
			r.segs = tf(r.segs)
		}
		frames, err = s.Encode(r.segs)
	}
	if err != nil {
		t.Fatalf("%s: generating %q: %v", c.name, tr.name, err)
	}
	r.lt = opts.LinkType
	if c.frames != nil {
		frames = c.frames(frames, &frameCtx{lt: r.lt, v6: c.ipv6, segs: r.segs})
	}
	r.frames = frames
	return r
}

// newEngine returns an engine configured like an inline node.
func newEngine(t testing.TB, prog *patch.Program, mod func(*engine.Config), alerts engine.AlertSink) *engine.Engine {
	t.Helper()
	cfg := engine.DefaultConfig()
	cfg.Checksums = engine.ChecksumValidate
	if mod != nil {
		mod(&cfg)
	}
	e, err := engine.New(cfg, prog, alerts)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// execute replays r's frames through a fresh engine.
func execute(t testing.TB, prog *patch.Program, r *run) *run {
	t.Helper()
	rec := &engine.AlertRecorder{}
	var mod func(*engine.Config)
	if r.cls != nil {
		mod = r.cls.config
	}
	e := newEngine(t, prog, mod, rec)
	w := e.NewWorker()
	r.res = make([]engine.Result, len(r.frames))
	for i, f := range r.frames {
		r.res[i] = w.Process(r.lt, f.Data, f.CI.Timestamp)
	}
	r.alerts = rec.Alerts()
	r.stats = e.Stats()
	return r
}

// alerted reports whether any alert has one of the ids.
func (r *run) alerted(ids ...string) bool {
	for _, a := range r.alerts {
		for _, id := range ids {
			if a.PatchID == id {
				return true
			}
		}
	}
	return false
}

// hasDecoy reports whether any frame of r is a decoy.
func (r *run) hasDecoy() bool {
	for _, f := range r.frames {
		if f.Meta.Decoy {
			return true
		}
	}
	return false
}

// describe summarises a run for failure messages.
func (r *run) describe() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d frames;", len(r.frames))
	for i, f := range r.frames {
		if r.res[i].Verdict != dataplane.Pass {
			fmt.Fprintf(&b, " #%d(%s m%d seg%d frag%d decoy=%v)=%s/%s", i, f.Meta.Dir, f.Meta.Msg, f.Meta.Segment,
				f.Meta.Fragment, f.Meta.Decoy, r.res[i].Verdict, r.res[i].Reason)
		}
	}
	b.WriteString("; alerts:")
	for _, a := range r.alerts {
		fmt.Fprintf(&b, " %s", a.PatchID)
	}
	return b.String()
}

// baseline is what the engine does with a traffic sent plainly: for an
// exploit, the message that carries it (the (direction, message) of the
// first frame the engine blocks); for every traffic, the catalog patches
// that alert. Computed once per traffic.
type baseline struct {
	exploit msgRef
	// patches are the catalog patches that alerted on the plain traffic (a
	// benign look-alike of one patch may be another patch's exploit).
	patches map[string]bool
	blocked bool
}

type msgRef struct {
	dir dataplane.Direction
	msg int
}

var baselines sync.Map // traffic key → *baseline

func isBuiltin(id string) bool { return strings.HasPrefix(id, "patchgate.") }

// trafficKey identifies a traffic by its content.
func trafficKey(tr traffic) string {
	h := fnv.New128a()
	fmt.Fprintf(h, "%s\x00%s\x00%v\x00%d", tr.patchID, tr.name, tr.udp, tr.port)
	for _, s := range tr.steps {
		fmt.Fprintf(h, "\x00%d:%d:", s.Dir, len(s.Data))
		h.Write(s.Data)
	}
	return string(h.Sum(nil))
}

func baselineOf(t testing.TB, prog *patch.Program, tr traffic) *baseline {
	t.Helper()
	key := trafficKey(tr)
	if v, ok := baselines.Load(key); ok {
		return v.(*baseline)
	}
	r := execute(t, prog, build(t, tr, &class{name: "plain"}))
	b := &baseline{patches: map[string]bool{}, exploit: msgRef{msg: -1}}
	for _, a := range r.alerts {
		if !isBuiltin(a.PatchID) {
			b.patches[a.PatchID] = true
		}
	}
	for i, res := range r.res {
		if res.Verdict == dataplane.Pass {
			continue
		}
		b.blocked = true
		m := r.frames[i].Meta
		b.exploit = msgRef{dir: m.Dir, msg: m.Msg}
		if m.Msg < 0 {
			// Blocked on a frame without data (a FIN ending a message):
			// the exploit is the last message of that direction before it.
			for j := i - 1; j >= 0; j-- {
				if mj := r.frames[j].Meta; mj.Dir == m.Dir && mj.Msg >= 0 {
					b.exploit.msg = mj.Msg
					break
				}
			}
		}
		break
	}
	if tr.match && (!b.blocked || !b.patches[tr.patchID]) {
		t.Fatalf("%s %q: the plain exploit is not blocked by its patch: %s", tr.patchID, tr.name, r.describe())
	}
	if !tr.match && b.patches[tr.patchID] {
		t.Fatalf("%s %q: the plain benign traffic matches its patch: %s", tr.patchID, tr.name, r.describe())
	}
	baselines.Store(key, b)
	return b
}

// genuineStream returns, per direction, the bytes the sender means to
// deliver and the stream offset at which each message ends.
func genuineStream(steps []patch.Step) (data [2][]byte, ends [2][]int) {
	for _, s := range steps {
		data[s.Dir] = append(data[s.Dir], s.Data...)
		ends[s.Dir] = append(ends[s.Dir], len(data[s.Dir]))
	}
	return data, ends
}

// segmentDelivered reports whether a receiver gets segment i: it is not a
// decoy, would be accepted by the receiver (valid checksum, ACK once
// synchronised, TTL that reaches it) and every IP fragment of it was passed
// at least once.
func (r *run) segmentDelivered(i int, tcp bool) bool {
	s := r.segs[i]
	if s.Decoy || s.BadChecksum || (s.TTL != 0 && s.TTL <= 16) {
		return false
	}
	if tcp && s.Flags&(gen.SYN|gen.ACK) == 0 {
		return false
	}
	need := map[int]bool{}
	for j, f := range r.frames {
		if f.Meta.Segment != i || f.Meta.Decoy {
			continue
		}
		if _, ok := need[f.Meta.Fragment]; !ok {
			need[f.Meta.Fragment] = false
		}
		if r.res[j].Verdict == dataplane.Pass {
			need[f.Meta.Fragment] = true
		}
	}
	if len(need) == 0 {
		return false
	}
	for _, ok := range need {
		if !ok {
			return false
		}
	}
	return true
}

// delivered reports whether the receiver of direction m.dir could assemble
// message m from the frames the engine passed. For TCP, the genuine bytes of
// every delivered segment are laid out by sequence number and the message is
// delivered when the in-order prefix reaches its end (bytes that differ from
// the genuine stream do not count). For UDP, some passed copy of the
// datagram must be intact.
func (r *run) delivered(m msgRef) bool {
	data, ends := genuineStream(r.tr.steps)
	if r.tr.udp {
		want := r.msgData(m)
		for i, s := range r.segs {
			if s.Dir == m.dir && s.Msg == m.msg && string(s.Payload) == string(want) && r.segmentDelivered(i, false) {
				return true
			}
		}
		return false
	}
	genuine := data[m.dir]
	have := make([]bool, len(genuine))
	isn := r.opts.ClientISN
	if m.dir == dataplane.ToClient {
		isn = r.opts.ServerISN
	}
	for i, s := range r.segs {
		if s.Dir != m.dir || len(s.Payload) == 0 || !r.segmentDelivered(i, true) {
			continue
		}
		start := s.Seq - (isn + 1)
		if s.Flags&gen.SYN != 0 {
			start = s.Seq - isn
		}
		for k, b := range s.Payload {
			off := int64(start) + int64(k)
			if off >= 0 && off < int64(len(genuine)) && genuine[off] == b {
				have[off] = true
			}
		}
	}
	prefix := 0
	for prefix < len(have) && have[prefix] {
		prefix++
	}
	return prefix >= ends[m.dir][m.msg]
}

// msgData returns the bytes of message m.
func (r *run) msgData(m msgRef) []byte {
	k := 0
	for _, s := range r.tr.steps {
		if s.Dir != m.dir {
			continue
		}
		if k == m.msg {
			return s.Data
		}
		k++
	}
	return nil
}

// checkExploit asserts that the exploit of r was detected and not delivered.
func checkExploit(t *testing.T, prog *patch.Program, r *run) {
	t.Helper()
	m := baselineOf(t, prog, r.tr).exploit
	ids := append([]string{r.tr.patchID}, r.cls.detectedBy...)
	if !r.cls.blockedOnly && !r.alerted(ids...) {
		t.Errorf("exploit not detected (want an alert from %v): %s", ids, r.describe())
	}
	if r.delivered(m) {
		t.Errorf("exploit message (%s #%d) reached the server through passed frames: %s", m.dir, m.msg, r.describe())
	}
}

// checkBenign asserts that the benign look-alike of r passed: no alert for
// its patch, no catalog alert the plain traffic does not raise, and every
// genuine frame forwarded. (A few look-alikes of one patch are another
// patch's exploit — plaintext Heartbleed for the encrypted-heartbeat patch;
// the frames that patch blocks plainly may be blocked here too.)
func checkBenign(t *testing.T, prog *patch.Program, r *run) {
	t.Helper()
	if r.alerted(r.tr.patchID) {
		t.Errorf("benign traffic matched %s: %s", r.tr.patchID, r.describe())
	}
	b := baselineOf(t, prog, r.tr)
	for _, a := range r.alerts {
		if !isBuiltin(a.PatchID) && !b.patches[a.PatchID] {
			t.Errorf("benign traffic matched %s, which the plain traffic does not: %s", a.PatchID, r.describe())
			return
		}
	}
	for i, f := range r.frames {
		v := r.res[i]
		if b.blocked && (v.Reason == dataplane.ReasonPatch || v.Reason == dataplane.ReasonBlockedFlow) {
			continue
		}
		if !f.Meta.Decoy && v.Verdict != dataplane.Pass {
			t.Errorf("genuine frame %d (%s msg %d) got %s/%s: %s", i, f.Meta.Dir, f.Meta.Msg, r.res[i].Verdict, r.res[i].Reason, r.describe())
			return
		}
	}
}

// policyRefuses returns a benign assertion for classes the normalisation
// policy refuses: the benign look-alike must not match its patch, the
// engine must raise the built-in alert id, and every genuine frame either
// passes or is dropped for one of the given reasons (at least one is).
// Classes whose evasion comes as decoy frames (overlaps) apply the policy
// only to runs that got a decoy (short messages may get none); the others
// are checked like any benign traffic.
func policyRefuses(id string, decoyBased bool, reasons ...dataplane.Reason) func(t *testing.T, prog *patch.Program, r *run) {
	return func(t *testing.T, prog *patch.Program, r *run) {
		t.Helper()
		if decoyBased && !r.hasDecoy() {
			checkBenign(t, prog, r)
			return
		}
		if r.alerted(r.tr.patchID) {
			t.Errorf("benign traffic matched %s: %s", r.tr.patchID, r.describe())
		}
		if id != "" && !r.alerted(id) {
			t.Errorf("no %s alert: %s", id, r.describe())
		}
		b := baselineOf(t, prog, r.tr)
		refused := 0
		for i, f := range r.frames {
			v := r.res[i]
			if f.Meta.Decoy || v.Verdict == dataplane.Pass ||
				(b.blocked && (v.Reason == dataplane.ReasonPatch || v.Reason == dataplane.ReasonBlockedFlow)) {
				continue
			}
			ok := false
			for _, reason := range reasons {
				ok = ok || v.Reason == reason
			}
			if !ok {
				t.Errorf("genuine frame %d dropped for %s, want pass or one of %v: %s", i, v.Reason, reasons, r.describe())
				return
			}
			refused++
		}
		if refused == 0 && !b.blocked {
			t.Errorf("no genuine frame refused for %v: %s", reasons, r.describe())
		}
	}
}

// runClasses runs every class over every traffic: one subtest per class and
// traffic.
func runClasses(t *testing.T, classes []class, all []traffic) {
	prog := catalog(t)
	for ci := range classes {
		c := &classes[ci]
		t.Run(c.name, func(t *testing.T) {
			n := 0
			for _, tr := range all {
				if (tr.udp && !c.udp && !c.udpOnly) || (!tr.udp && c.udpOnly) {
					continue
				}
				n++
				t.Run(tr.patchID+"/"+tr.name, func(t *testing.T) {

					if tr.match && c.clientOnly && baselineOf(t, prog, tr).exploit.dir == dataplane.ToClient {
						t.Skip("client-side evasion; this exploit is sent by the server")
					}
					r := execute(t, prog, build(t, tr, c))
					if r.stats.Panics != 0 {
						t.Fatalf("%d panics recovered", r.stats.Panics)
					}
					switch {
					case tr.match:
						checkExploit(t, prog, r)
					case c.benign != nil:
						c.benign(t, prog, r)
					default:
						checkBenign(t, prog, r)
					}
				})
			}
			if n == 0 {
				t.Fatalf("class %s applies to no traffic", c.name)
			}
		})
	}
}
