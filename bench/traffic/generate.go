// Package traffic generates realistic, seeded benchmark captures for
// patchgate: HTTP/1.1 keep-alive sessions with a heavy-tailed object-size
// mix, TLS 1.2 and 1.3 sessions, DNS over UDP and TCP, and the shipped
// patches' own exploit and look-alike conversations placed at known
// positions, with a JSON manifest saying where they are.
//
// Every flow is a complete TCP connection (handshake, MSS-sized segments,
// delayed ACKs, FIN) or UDP exchange with correct sequence numbers and
// checksums, built with dataplane/gen, so an inline engine inspects it like
// real traffic. Frames are written as they are produced: memory is bounded
// by Options.Concurrency open flows, whatever Options.Flows is. The same
// options give a byte-identical capture and manifest.
//
// The traffic model, its sources and the manifest format are in README.md.
package traffic

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/google/gopacket"

	"github.com/patchgate/patchgate/dataplane/gen"
	"github.com/patchgate/patchgate/dataplane/patch"
)

// Result is what Generate produced.
type Result struct {
	*Manifest
	// Path is the capture file ("" with Options.Writer).
	Path string
	// ManifestPath is where the manifest was written ("" with Options.Writer).
	ManifestPath string
	// Elapsed is the generation time (not part of the manifest, which is
	// deterministic).
	Elapsed time.Duration
}

// maxBurst is the most frames one flow emits before the scheduler moves on.
const maxBurst = 4

// openFlow is a flow whose frames are being written.
type openFlow struct {
	frames   []gen.Frame
	pos      int
	kind     string
	special  int // index into specials, or -1
	complete int // frame completing the special's last message
}

// special is an exploit or look-alike to place.
type special struct {
	test    catalogTest
	exploit bool
	place   Placement
}

// Generate writes a capture (and its manifest) as described by o. Calls
// may run concurrently: each has its own state and only reads o.Patches.
func Generate(o Options) (*Result, error) {
	start := time.Now()
	if o.Format == "" {
		o.Format = FormatPcap
	}
	if o.Clock.Start.IsZero() && o.Clock.Step == 0 {
		o.Clock = DefaultOptions().Clock
	}
	if err := o.Validate(); err != nil {
		return nil, err
	}
	exploits, lookalikes, err := catalogTests(o.Patches)
	if err != nil {
		return nil, err
	}
	nExp := o.Exploits
	if nExp == EveryTest {
		nExp = len(exploits)
	}
	if o.ExploitRate > 0 {
		nExp = max(len(exploits), int(o.ExploitRate*float64(o.Flows)+0.999999))
	}
	nLook := o.LookAlikes
	if nLook == EveryTest {
		nLook = len(lookalikes)
	}
	switch {
	case nExp > 0 && len(exploits) == 0:
		return nil, fmt.Errorf("traffic: Exploits: %d requested but Patches hold no exploit test", nExp)
	case nLook > 0 && len(lookalikes) == 0:
		return nil, fmt.Errorf("traffic: LookAlikes: %d requested but Patches hold no look-alike test", nLook)
	case nExp+nLook > o.Flows:
		return nil, fmt.Errorf("traffic: Flows %d cannot hold %d exploits and %d look-alikes", o.Flows, nExp, nLook)
	}

	m := newManifest(o)
	m.Options.Out, m.Options.Writer = "", nil
	m.Options.Exploits, m.Options.LookAlikes = nExp, nLook
	b := newBuilder(o.Seed, m)

	// Specials: exploits and look-alikes in catalog order (cycling),
	// shuffled, each in its own stretch of flow numbers.
	specials := make([]special, 0, nExp+nLook)
	for i := 0; i < nExp; i++ {
		specials = append(specials, special{test: exploits[i%len(exploits)], exploit: true})
	}
	for i := 0; i < nLook; i++ {
		specials = append(specials, special{test: lookalikes[i%len(lookalikes)]})
	}
	for i := len(specials) - 1; i > 0; i-- {
		j := b.r.intn(i + 1)
		specials[i], specials[j] = specials[j], specials[i]
	}
	var prog *patch.Program
	if nLook > 0 {
		if prog, err = patch.Compile(0, o.Patches); err != nil {
			return nil, fmt.Errorf("traffic: Patches: %w", err)
		}
	}
	slot := make(map[int]int, len(specials))
	for i := range specials {
		k := int64(len(specials))
		lo, hi := int(int64(i)*int64(o.Flows)/k), int(int64(i+1)*int64(o.Flows)/k)
		slot[lo+b.r.intn(hi-lo)] = i
		specials[i].place = specials[i].test.placement()
	}

	var out io.Writer = o.Writer
	var file *os.File
	if o.Writer == nil {
		if file, err = os.Create(o.Out); err != nil {
			return nil, fmt.Errorf("traffic: %w", err)
		}
		defer file.Close()
		out = file
		m.Capture = filepath.Base(o.Out)
	}
	cw, err := newCaptureWriter(out, o.Format)
	if err != nil {
		return nil, err
	}

	g := &generation{o: o, b: b, m: m, cw: cw, slot: slot, specials: specials, prog: prog}
	if err := g.run(); err != nil {
		return nil, err
	}
	if err := cw.flush(); err != nil {
		return nil, err
	}
	if file != nil {
		if err := file.Close(); err != nil {
			return nil, fmt.Errorf("traffic: %w", err)
		}
	}

	m.FrameSizes.finish(m.Packets, m.Bytes)
	for _, s := range specials {
		if s.exploit {
			m.Exploits = append(m.Exploits, s.place)
		} else {
			m.LookAlikes = append(m.LookAlikes, s.place)
		}
	}
	byPos := func(p []Placement) func(i, j int) bool {
		return func(i, j int) bool { return p[i].FirstPacket < p[j].FirstPacket }
	}
	sort.Slice(m.Exploits, byPos(m.Exploits))
	sort.Slice(m.LookAlikes, byPos(m.LookAlikes))
	res := &Result{Manifest: m}
	if o.Writer == nil {
		res.Path, res.ManifestPath = o.Out, o.Out+".manifest.json"
		if err := m.write(res.ManifestPath); err != nil {
			return nil, err
		}
	}
	res.Elapsed = time.Since(start)
	return res, nil
}

// generation is the state of one Generate call.
type generation struct {
	o        Options
	b        *builder
	m        *Manifest
	cw       *captureWriter
	slot     map[int]int
	specials []special
	prog     *patch.Program // the catalog, to check look-alikes
	next     int            // next flow number to start
	frame    int64          // next capture frame index
}

// run interleaves the flows: Concurrency flows are open at once; a seeded
// choice among them writes a burst of 1–maxBurst frames; a finished flow
// is replaced by the next one. Each flow keeps its own frame order.
func (g *generation) run() error {
	open := make([]*openFlow, 0, g.o.Concurrency)
	for len(open) < g.o.Concurrency && g.next < g.o.Flows {
		f, err := g.start()
		if err != nil {
			return err
		}
		open = append(open, f)
	}
	for len(open) > 0 {
		a := g.b.r.intn(len(open))
		f := open[a]
		for burst := g.b.r.between(1, maxBurst); burst > 0 && f.pos < len(f.frames); burst-- {
			if err := g.write(f); err != nil {
				return err
			}
		}
		if f.pos < len(f.frames) {
			continue
		}
		if g.next < g.o.Flows {
			nf, err := g.start()
			if err != nil {
				return err
			}
			open[a] = nf
		} else {
			open = append(open[:a], open[a+1:]...)
		}
	}
	return nil
}

// write writes f's next frame.
func (g *generation) write(f *openFlow) error {
	fr := &f.frames[f.pos]
	ci := gopacket.CaptureInfo{Timestamp: g.o.Clock.At(int(g.frame)), CaptureLength: len(fr.Data), Length: len(fr.Data)}
	if err := g.cw.write(ci, fr.Data); err != nil {
		return err
	}
	if g.frame == 0 {
		g.m.First = ci.Timestamp
	}
	g.m.Last = ci.Timestamp
	n := int64(len(fr.Data))
	g.m.Packets++
	g.m.Bytes += n
	g.m.PacketsByKind[f.kind]++
	g.m.BytesByKind[f.kind] += n
	g.m.FrameSizes.add(len(fr.Data))
	if f.special >= 0 {
		p := &g.specials[f.special].place
		if f.pos == 0 {
			p.FirstPacket = g.frame
		}
		if f.pos == f.complete {
			p.CompletePacket = g.frame
		}
		p.LastPacket = g.frame
	}
	fr.Data = nil // written: let the collector have it
	f.pos++
	g.frame++
	return nil
}

// start builds flow number g.next.
func (g *generation) start() (*openFlow, error) {
	j := g.next
	g.next++
	b := g.b
	v6 := b.r.chance(g.o.IPv6Share)
	if v6 {
		g.m.IPv6Flows++
	}
	g.m.FlowsTotal++
	if si, ok := g.slot[j]; ok {
		sp := &g.specials[si]
		client, server := endpoints(j, v6, sp.test.port)
		frames, complete, err := b.testFrames(sp.test, client, server, v6)
		if err != nil {
			return nil, err
		}
		kind := KindLookAlike
		if sp.exploit {
			kind = KindExploit
		} else if sp.place.Expected == "pass" && g.prog != nil {
			v, others, err := catalogVerdict(g.prog, sp.test.p.ID, frames)
			if err != nil {
				return nil, err
			}
			sp.place.Expected, sp.place.OtherPatches = v.String(), others
		}
		g.m.Flows[kind]++
		sp.place.Flow, sp.place.Client, sp.place.Server, sp.place.Packets = j, client.String(), server.String(), len(frames)
		return &openFlow{frames: frames, kind: kind, special: si, complete: complete}, nil
	}
	kind := benignKinds[b.r.weighted(g.o.Weights.slice())]
	g.m.Flows[kind]++
	var (
		frames []gen.Frame
		err    error
	)
	switch kind {
	case KindDNSUDP:
		client, server := endpoints(j, v6, 53)
		f, ferr := gen.NewUDPFlow(client, server, b.sessionOptions(v6))
		if ferr != nil {
			return nil, fmt.Errorf("traffic: flow %d: %w", j, ferr)
		}
		b.dnsUDPFlow(f)
		frames, err = f.Frames()
	default:
		port := map[string]uint16{KindHTTP: 80, KindTLS: 443, KindDNSTCP: 53}[kind]
		client, server := endpoints(j, v6, port)
		s, serr := gen.NewTCPSession(client, server, b.sessionOptions(v6))
		if serr != nil {
			return nil, fmt.Errorf("traffic: flow %d: %w", j, serr)
		}
		switch kind {
		case KindHTTP:
			b.httpFlow(s)
		case KindTLS:
			b.tlsFlow(s)
		default:
			b.dnsTCPFlow(s)
		}
		frames, err = s.Frames()
	}
	if err != nil {
		return nil, fmt.Errorf("traffic: flow %d (%s): %w", j, kind, err)
	}
	return &openFlow{frames: frames, kind: kind, special: -1, complete: -1}, nil
}
