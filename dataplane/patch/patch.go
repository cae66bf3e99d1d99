// Package patch loads, validates and compiles virtual patches.
//
// A virtual patch is one YAML file: a CVE-keyed predicate (expr-lang) over the
// typed fields of one protocol event, an action and a mode, and embedded test
// traffic that must and must not match. Patches are compiled once per patch-set
// version into a Program; the engine hands every event to Program.Eval, which
// runs each subscribed patch's cheap prefilter and then its predicate.
package patch

import (
	"fmt"

	"github.com/patchgate/patchgate/dataplane"
)

// Action is what a matching patch asks for.
type Action uint8

const (
	// ActionAlert records an alert and lets the traffic pass.
	ActionAlert Action = iota
	// ActionDrop drops the packet and blocks the flow (later packets dropped too).
	ActionDrop
	// ActionReset drops the packet and resets the flow at both ends.
	ActionReset
)

var actionNames = []string{"alert", "drop", "reset"}

func (a Action) String() string {
	if int(a) < len(actionNames) {
		return actionNames[a]
	}
	return fmt.Sprintf("action(%d)", uint8(a))
}

// Verdict maps an enforced action to a packet verdict.
func (a Action) Verdict() dataplane.Verdict {
	switch a {
	case ActionDrop:
		return dataplane.Drop
	case ActionReset:
		return dataplane.Reset
	}
	return dataplane.Pass
}

// Mode says whether a patch enforces its action or only reports.
type Mode uint8

const (
	// Enforce applies the action.
	Enforce Mode = iota
	// Detect only alerts (the EVE action is "allowed").
	Detect
)

func (m Mode) String() string {
	if m == Detect {
		return "detect"
	}
	return "enforce"
}

// Severities accepted in patch files, lowest first.
var Severities = []string{"low", "medium", "high", "critical"}

// Step is one piece of a test conversation: bytes sent in one direction (one
// datagram for UDP).
type Step struct {
	Dir  dataplane.Direction
	Data []byte
}

// Test is an embedded test vector of a patch.
type Test struct {
	Name string
	// Match is true when the patch must match the traffic, false when it must not.
	Match bool
	// Steps is the conversation, in order.
	Steps []Step
	// ServerPort is the server's port (0: the analyzer's first well-known port).
	ServerPort uint16
	// Transport is "tcp" or "udp".
	Transport string
	// Line is the line of the test in the patch file.
	Line int
}

// Patch is one parsed virtual patch.
type Patch struct {
	ID          string
	Title       string
	Severity    string
	Category    string
	References  []string
	CVE         []string
	SID         int
	Protocol    string
	Event       string
	Prefilter   []string
	When        string
	Action      Action
	Mode        Mode
	Description string
	Tests       []Test

	// File is the path the patch was loaded from; Line the line of its id.
	File string
	Line int
	// lines maps field names to their line, for error messages.
	lines map[string]int
	// whenLine/whenBlock locate the predicate in the file for error messages.
	whenLine  int
	whenBlock bool
}

// lineOf returns the line of a field in the patch file (the patch's line when unknown).
func (p *Patch) lineOf(field string) int {
	if l, ok := p.lines[field]; ok {
		return l
	}
	return p.Line
}

// Enforced reports whether a match changes the packet's fate.
func (p *Patch) Enforced() bool { return p.Mode == Enforce && p.Action != ActionAlert }

// Error is a problem in a patch file, located by file, line and field.
type Error struct {
	File  string
	Line  int
	Field string
	Msg   string
}

func (e *Error) Error() string {
	loc := e.File
	if e.Line > 0 {
		loc = fmt.Sprintf("%s:%d", e.File, e.Line)
	}
	if e.Field != "" {
		return fmt.Sprintf("%s: %s: %s", loc, e.Field, e.Msg)
	}
	return fmt.Sprintf("%s: %s", loc, e.Msg)
}
