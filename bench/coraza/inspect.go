package corazabench

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/corazawaf/coraza/v3"
	corazatypes "github.com/corazawaf/coraza/v3/types"

	"github.com/patchgate/patchgate/bench/waf"
	"github.com/patchgate/patchgate/dataplane"
	"github.com/patchgate/patchgate/dataplane/analyzer"
	httpan "github.com/patchgate/patchgate/dataplane/analyzer/http"
	"github.com/patchgate/patchgate/dataplane/engine"
	"github.com/patchgate/patchgate/dataplane/gen"
	"github.com/patchgate/patchgate/dataplane/patch"
)

// Inspector decides whether one HTTP request is blocked. Implementations are
// not safe for concurrent use: give each goroutine its own.
type Inspector interface {
	// Name is a short stable name for reports ("patchgate-http", "coraza").
	Name() string
	// Inspect returns the ids of the patches or rules that block req (empty
	// when it passes).
	Inspect(req *Prepared) ([]string, error)
}

// Prepared is a corpus request with what each inspector needs built in
// advance, so that benchmarks measure inspection, not set-up.
type Prepared struct {
	waf.Request
	// frames is the TCP session carrying the request (for PatchgateEngine).
	frames *gen.Capture
}

// Prepare builds the inspectors' inputs for reqs. The i-th request travels
// from client port 20000+i so that each one is a flow of its own.
func Prepare(reqs []waf.Request) ([]*Prepared, error) {
	out := make([]*Prepared, 0, len(reqs))
	for i, r := range reqs {
		client := gen.Endpoint{Addr: gen.EP("192.0.2.10:1").Addr, Port: uint16(20000 + i%40000)}
		server := gen.EP("198.51.100.20:80")
		s, err := gen.NewTCPSession(client, server, gen.DefaultSessionOptions())
		if err != nil {
			return nil, fmt.Errorf("corazabench: prepare %s: %w", r.Name, err)
		}
		s.Send(dataplane.ToServer, r.Raw)
		s.Close(dataplane.ToServer)
		c, err := s.Capture()
		if err != nil {
			return nil, fmt.Errorf("corazabench: prepare %s: %w", r.Name, err)
		}
		out = append(out, &Prepared{Request: r, frames: c})
	}
	return out, nil
}

// LoadCatalog loads and compiles the HTTP patches in dir.
func LoadCatalog(dir string) (*patch.Program, error) {
	ps, err := patch.LoadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("corazabench: catalog: %w", err)
	}
	prog, err := patch.Compile(1, ps)
	if err != nil {
		return nil, fmt.Errorf("corazabench: catalog: %w", err)
	}
	return prog, nil
}

// PatchgateHTTP runs patchgate's HTTP analyzer and patch runner on request
// bytes: a fresh analyzer per request (one request per connection), every
// event evaluated against the compiled catalog. Enforced patches block.
type PatchgateHTTP struct {
	prog    *patch.Program
	runner  patch.Runner
	matched []string
}

// NewPatchgateHTTP returns an inspector enforcing prog.
func NewPatchgateHTTP(prog *patch.Program) *PatchgateHTTP { return &PatchgateHTTP{prog: prog} }

// Name implements Inspector.
func (p *PatchgateHTTP) Name() string { return "patchgate-http" }

// Event implements analyzer.Sink.
func (p *PatchgateHTTP) Event(ev analyzer.Event) {
	p.runner.Eval(p.prog, ev, func(c *patch.Compiled) {
		if c.Enforced() {
			p.matched = append(p.matched, c.ID)
		}
	})
}

// Boundary implements analyzer.Sink.
func (p *PatchgateHTTP) Boundary(dataplane.Direction) {}

// Violation implements analyzer.Sink: protocol violations are counted, not
// blocked, as under the engine's default policy.
func (p *PatchgateHTTP) Violation(dataplane.Direction, string, string) {}

// Inspect implements Inspector.
func (p *PatchgateHTTP) Inspect(req *Prepared) ([]string, error) {
	p.matched = p.matched[:0]
	a := httpan.New()
	if err := a.Feed(dataplane.ToServer, req.Raw, p); err != nil {
		return nil, fmt.Errorf("corazabench: patchgate-http %s: %w", req.Name, err)
	}
	a.End(dataplane.ToServer, p)
	return dedupe(p.matched), nil
}

// PatchgateEngine runs the whole engine on the frames of the TCP session
// carrying each request; a request is blocked when the engine drops or
// resets any of its packets.
type PatchgateEngine struct {
	eng    *engine.Engine
	w      *engine.Worker
	alerts []string
}

// NewPatchgateEngine returns an inspector with one engine shard enforcing prog.
func NewPatchgateEngine(prog *patch.Program) (*PatchgateEngine, error) {
	p := &PatchgateEngine{}
	e, err := engine.New(engine.DefaultConfig(), prog, engine.AlertFunc(func(a *engine.Alert) {
		p.alerts = append(p.alerts, a.PatchID)
	}))
	if err != nil {
		return nil, fmt.Errorf("corazabench: engine: %w", err)
	}
	p.eng, p.w = e, e.NewWorker()
	return p, nil
}

// Name implements Inspector.
func (p *PatchgateEngine) Name() string { return "patchgate-engine" }

// Inspect implements Inspector. The ids are those of the alerts raised while
// the request's packets were processed, when one of them was blocked.
func (p *PatchgateEngine) Inspect(req *Prepared) ([]string, error) {
	p.alerts = p.alerts[:0]
	blocked := false
	var last time.Time
	for _, fr := range req.frames.Frames {
		res := p.w.Process(req.frames.LinkType, fr.Data, fr.CI.Timestamp)
		if res.Verdict != dataplane.Pass {
			blocked = true
		}
		last = fr.CI.Timestamp
	}
	// The same frames are replayed many times in a benchmark: expire the
	// flow so that every replay is a new connection.
	p.eng.Expire(last.Add(24 * time.Hour))
	if !blocked {
		return nil, nil
	}
	return dedupe(p.alerts), nil
}

// Coraza parses request bytes with net/http and evaluates them in a Coraza
// transaction loaded with waf.CVERules.
type Coraza struct {
	waf coraza.WAF
	buf bufio.Reader
	rd  bytes.Reader
}

// CorazaDirectives is the Coraza configuration: engine on, request bodies
// inspected (up to 128 KiB in memory, above patchgate's 64 KiB inspection
// window), then the CVE rules.
const CorazaDirectives = `SecRuleEngine On
SecRequestBodyAccess On
SecRequestBodyLimit 131072
SecRequestBodyInMemoryLimit 131072
SecRequestBodyLimitAction ProcessPartial
`

// NewCoraza returns a Coraza inspector with CorazaDirectives and waf.CVERules.
func NewCoraza() (*Coraza, error) {
	w, err := coraza.NewWAF(coraza.NewWAFConfig().WithDirectives(CorazaDirectives + waf.CVERules))
	if err != nil {
		return nil, fmt.Errorf("corazabench: coraza: %w", err)
	}
	return &Coraza{waf: w}, nil
}

// Name implements Inspector.
func (c *Coraza) Name() string { return "coraza" }

// Inspect implements Inspector. The bytes are parsed with net/http, as a Go
// server running Coraza would; the few requests net/http refuses (a "%" that
// is not an escape in the target) are split by hand and judged by the rules
// all the same, as a WAF in front of a server that accepts them must.
func (c *Coraza) Inspect(req *Prepared) ([]string, error) {
	tx := c.waf.NewTransaction()
	defer func() {
		tx.ProcessLogging()
		_ = tx.Close()
	}()
	tx.ProcessConnection("192.0.2.10", 40000, "198.51.100.20", 80)
	var body []byte
	c.rd.Reset(req.Raw)
	c.buf.Reset(&c.rd)
	if hr, err := http.ReadRequest(&c.buf); err == nil {
		tx.ProcessURI(hr.RequestURI, hr.Method, hr.Proto)
		if hr.Host != "" {
			tx.AddRequestHeader("Host", hr.Host)
		}
		for k, vs := range hr.Header {
			for _, v := range vs {
				tx.AddRequestHeader(k, v)
			}
		}
		if body, err = io.ReadAll(hr.Body); err != nil {
			return []string{"net/http"}, nil
		}
	} else {
		rr, ok := splitRaw(req.Raw)
		if !ok {
			return []string{"unparsable"}, nil
		}
		tx.ProcessURI(rr.target, rr.method, rr.proto)
		for _, h := range rr.headers {
			tx.AddRequestHeader(h[0], h[1])
		}
		body = rr.body
	}
	if it := tx.ProcessRequestHeaders(); it != nil {
		return ruleIDs(tx, it), nil
	}
	if len(body) > 0 {
		if it, _, err := tx.WriteRequestBody(body); err != nil {
			return nil, fmt.Errorf("corazabench: coraza %s: %w", req.Name, err)
		} else if it != nil {
			return ruleIDs(tx, it), nil
		}
	}
	it, err := tx.ProcessRequestBody()
	if err != nil {
		return nil, fmt.Errorf("corazabench: coraza %s: %w", req.Name, err)
	}
	if it != nil {
		return ruleIDs(tx, it), nil
	}
	return nil, nil
}

// ruleIDs names the rule of an interruption by its CVE tag when it has one.
func ruleIDs(tx interface {
	MatchedRules() []corazatypes.MatchedRule
}, it *corazatypes.Interruption) []string {
	for _, m := range tx.MatchedRules() {
		if m.Rule().ID() != it.RuleID {
			continue
		}
		for _, tag := range m.Rule().Tags() {
			if len(tag) > 4 && tag[:4] == "CVE-" {
				return []string{tag}
			}
		}
	}
	return []string{"rule " + strconv.Itoa(it.RuleID)}
}

func dedupe(ids []string) []string {
	if len(ids) == 0 {
		return nil
	}
	out := make([]string, 0, len(ids))
	seen := map[string]bool{}
	for _, id := range ids {
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out
}

var (
	_ Inspector     = (*PatchgateHTTP)(nil)
	_ Inspector     = (*PatchgateEngine)(nil)
	_ Inspector     = (*Coraza)(nil)
	_ analyzer.Sink = (*PatchgateHTTP)(nil)
)
