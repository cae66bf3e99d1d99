package evasion

import (
	"testing"

	"github.com/patchgate/patchgate/dataplane"
	"github.com/patchgate/patchgate/dataplane/engine"
	"github.com/patchgate/patchgate/dataplane/gen"
)

// Urgent data beyond the class the catalog-wide suite covers. A Linux
// receiver (net.ipv4.tcp_stdurg = 0, no SO_OOBINLINE: the defaults) takes
// the byte at seq + urgent pointer - 1 out of the stream — for a pointer of
// 0 the byte at seq itself (tcp_check_urg only decrements a non-zero
// pointer) — and the pointer may name a byte in a later segment (the
// receiver marks it and removes it when it arrives). An attacker inserts
// one byte that breaks the exploit for the inspector and flags it urgent:
// the server reads the exploit.

// urgentSplit is a CVE-2015-1635 probe cut in two messages, the second
// starting with an extra byte: the server that removes that byte reads
// "Range: bytes=0-18446744073709551615".
var urgentSplit = [2]string{
	"GET /welcome.png HTTP/1.1\r\nHost: example.test\r\nRange: bytes=0-1844674407",
	"X3709551615\r\n\r\n",
}

// urgentRun sends urgentSplit with URG and the given pointer on the first
// data frame of message msg, and returns the verdicts of the first data
// frames of both messages.
func urgentRun(t *testing.T, msg int, ptr uint16) (a, b engine.Result, r *run) {
	t.Helper()
	prog := catalog(t)
	tr := req("CVE-2015-1635", "urgent byte", true, "")
	tr.steps[0].Data = []byte(urgentSplit[0])
	tr.steps = append(tr.steps, tr.steps[0])
	tr.steps[1].Data = []byte(urgentSplit[1])
	first := func(f gen.Frame) bool { return genuineData(f) && f.Meta.Dir == dataplane.ToServer }
	c := &class{name: "urgent", frames: func(fs []gen.Frame, fc *frameCtx) []gen.Frame {
		for i := range fs {
			if first(fs[i]) && fs[i].Meta.Msg == msg {
				fs[i].Data = withUrgent(fs[i].Data, fc.l3(), ptr)
				break
			}
		}
		return fs
	}}
	r = execute(t, prog, build(t, tr, c))
	ia, ib := -1, -1
	for i, f := range r.frames {
		if first(f) && f.Meta.Msg == 0 && ia < 0 {
			ia = i
		}
		if first(f) && f.Meta.Msg == 1 && ib < 0 {
			ib = i
		}
	}
	return r.res[ia], r.res[ib], r
}

// TestUrgentPointerInsideSegmentDropped: the control case the policy covers
// (pointer 1: the segment's first byte is urgent).
func TestUrgentPointerInsideSegmentDropped(t *testing.T) {
	_, b, r := urgentRun(t, 1, 1)
	if b.Verdict == dataplane.Pass || b.Reason != dataplane.ReasonTCPUrgent || !r.alerted(alertUrgent) {
		t.Fatalf("urgent segment: %v/%v, want drop/tcp_urgent with an alert: %s", b.Verdict, b.Reason, r.describe())
	}
}

// TestUrgentPointerZero: URG with urgent pointer 0 on the second segment.
func TestUrgentPointerZero(t *testing.T) {
	a, b, r := urgentRun(t, 1, 0)
	if a.Verdict == dataplane.Pass && b.Verdict == dataplane.Pass {
		t.Fatalf("both halves passed; the server reads the exploit: %s", r.describe())
	}
}

// TestUrgentPointerBeyondSegment: URG on the first segment with a pointer
// naming the first byte of the next segment.
func TestUrgentPointerBeyondSegment(t *testing.T) {
	a, b, r := urgentRun(t, 0, uint16(len(urgentSplit[0])+1))
	if a.Verdict == dataplane.Pass && b.Verdict == dataplane.Pass {
		t.Fatalf("both halves passed; the server reads the exploit: %s", r.describe())
	}
}
