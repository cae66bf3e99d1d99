package patch

import (
	"errors"
	"fmt"
	"reflect"
	"strings"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/vm"

	"github.com/patchgate/patchgate/dataplane/analyzer"
)

// Compiled is a patch ready to run.
type Compiled struct {
	*Patch
	program *vm.Program
	// prefilter keys; nil means the predicate always runs.
	prefilter []string
}

// Program is a compiled patch set. It is immutable and safe for concurrent
// use; per-goroutine evaluation state lives in a Runner.
type Program struct {
	// Version is the patch-set version this program was compiled from.
	Version uint64
	// Patches are all compiled patches, in load order.
	Patches []*Compiled
	byEvent map[string][]*Compiled
}

// Empty returns a program with no patches (everything passes).
func Empty() *Program { return &Program{byEvent: map[string][]*Compiled{}} }

// Compile type-checks and compiles patches. Every predicate is checked against
// its event's schema; problems name the file, line and field.
func Compile(version uint64, patches []*Patch) (*Program, error) {
	prog := &Program{Version: version, byEvent: map[string][]*Compiled{}}
	var errs []error
	for _, p := range patches {
		c, err := compileOne(p)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		prog.Patches = append(prog.Patches, c)
		prog.byEvent[p.Event] = append(prog.byEvent[p.Event], c)
	}
	if err := CheckUnique(patches); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return prog, nil
}

func compileOne(p *Patch) (*Compiled, error) {
	spec, owner, ok := analyzer.LookupEvent(p.Event)
	if !ok {
		return nil, &Error{File: p.File, Line: p.lineOf("event"), Field: "event",
			Msg: fmt.Sprintf("unknown event %q (known: %s)", p.Event, strings.Join(analyzer.Events(), ", "))}
	}
	if owner != p.Protocol && !strings.HasPrefix(p.Event, p.Protocol+".") {
		return nil, &Error{File: p.File, Line: p.lineOf("protocol"), Field: "protocol",
			Msg: fmt.Sprintf("event %s belongs to protocol %q, not %q", p.Event, owner, p.Protocol)}
	}
	for _, k := range p.Prefilter {
		if !prefilterKnown(spec, k) {
			return nil, &Error{File: p.File, Line: p.lineOf("prefilter"), Field: "prefilter",
				Msg: fmt.Sprintf("event %s cannot answer prefilter key %q (known: %s)", p.Event, k, strings.Join(spec.Prefilter, ", "))}
		}
	}
	env := reflect.New(reflect.TypeOf(spec.Schema)).Interface()
	opts := append([]expr.Option{expr.Env(env), expr.AsBool()}, functions()...)
	prog, err := expr.Compile(p.When, opts...)
	if err != nil {
		return nil, p.whenError(err)
	}
	return &Compiled{Patch: p, program: prog, prefilter: p.Prefilter}, nil
}

// prefilterKnown accepts keys the event spec lists; a spec key ending in "*"
// or ":" (e.g. "header:*", "header:") accepts any longer key with that prefix.
func prefilterKnown(spec *analyzer.EventSpec, key string) bool {
	for _, k := range spec.Prefilter {
		prefix := strings.TrimSuffix(k, "*")
		if k == key || ((strings.HasSuffix(k, "*") || strings.HasSuffix(k, ":")) && strings.HasPrefix(key, prefix) && len(key) > len(prefix)) {
			return true
		}
	}
	return false
}

// whenError locates an expr compile error in the patch file.
func (p *Patch) whenError(err error) error {
	var fe *file.Error
	line, msg := p.whenLine, err.Error()
	if errors.As(err, &fe) {
		msg = fmt.Sprintf("%s (predicate line %d, column %d)", fe.Message, fe.Line, fe.Column+1)
		if p.whenBlock {
			line = p.whenLine + fe.Line
		} else {
			line = p.whenLine + fe.Line - 1
		}
	}
	return &Error{File: p.File, Line: line, Field: "when", Msg: msg}
}

// Lookup returns the compiled patch with the given id.
func (prog *Program) Lookup(id string) *Compiled {
	for _, c := range prog.Patches {
		if c.ID == id {
			return c
		}
	}
	return nil
}

// Runner evaluates patches. It holds a reusable VM and is not safe for
// concurrent use: give each engine shard its own.
type Runner struct {
	vm vm.VM
	// Errors counts predicate evaluations that failed at run time (treated as no match).
	Errors uint64
	// Evaluations counts predicates run (after prefilters).
	Evaluations uint64
	// Skipped counts patches whose prefilter rejected the event.
	Skipped uint64
}

// Eval runs every patch subscribed to ev's event and calls match for each one
// whose predicate holds, in load order.
func (r *Runner) Eval(prog *Program, ev analyzer.Event, match func(*Compiled)) {
	list := prog.byEvent[ev.EventName()]
	if len(list) == 0 {
		return
	}
	pf, _ := ev.(analyzer.Prefilterable)
	for _, c := range list {
		if c.prefilter != nil && pf != nil {
			hit := false
			for _, k := range c.prefilter {
				if pf.Has(k) {
					hit = true
					break
				}
			}
			if !hit {
				r.Skipped++
				continue
			}
		}
		r.Evaluations++
		out, err := r.vm.Run(c.program, ev)
		if err != nil {
			r.Errors++
			continue
		}
		if b, ok := out.(bool); ok && b {
			match(c)
		}
	}
}
