package runner

import (
	"fmt"
	"io"
	"sync"
	"time"
)

// progress prints the current variant/N/configuration/step, the elapsed
// time and an estimate of the time left to a writer (standard error). The
// estimate assumes the remaining steps take as long as the finished ones
// on average; ramps that stop early make it pessimistic. Safe for
// concurrent use.
type progress struct {
	mu         sync.Mutex
	w          io.Writer
	start      time.Time
	total      int // steps planned
	finished   int // steps run or skipped
	ran        int
	ranTime    time.Duration
	stepStart  time.Time
	current    string
	extraSteps int
}

func newProgress(w io.Writer, total int) *progress {
	return &progress{w: w, start: time.Now(), total: total}
}

func (p *progress) begin(what string) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.current, p.stepStart = what, time.Now()
	fmt.Fprintf(p.w, "[%s elapsed, ETA %s] step %d/%d: %s\n", round(time.Since(p.start)), p.eta(), p.finished+1, p.total, what)
}

func (p *progress) done() {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.finished++
	p.ran++
	p.ranTime += time.Since(p.stepStart)
}

// skip counts planned steps that will not run (a ramp that stopped).
func (p *progress) skip(n int) {
	if p == nil || n <= 0 {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.finished += n
}

func (p *progress) note(s string) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.w, "    %s\n", s)
}

// eta is called with mu held.
func (p *progress) eta() string {
	if p.ran == 0 {
		return "?"
	}
	left := p.total - p.finished
	if left < 0 {
		left = 0
	}
	return round(p.ranTime / time.Duration(p.ran) * time.Duration(left)).String()
}

func round(d time.Duration) time.Duration { return d.Round(time.Second) }
