package e2e

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/patchgate/patchgate/deploy/lab"
)

// Bulk transfers are rate-limited on purpose: they must still be in progress
// when the failover event happens, whatever the machine's speed.
const (
	// bulkTick is how often a rate-limited writer sends a chunk.
	bulkTick = 50 * time.Millisecond
	// bulkMinBytes is the least a bulk transfer must have moved by the end
	// of the workload for it to count as a real (multi-MB) transfer.
	bulkMinBytes = 1 << 20
)

// bulkByte is the byte at offset o of every bulk body (downloads are checked
// byte by byte).
func bulkByte(o int64) byte { return byte(o % 251) }

// progress tracks the bytes of one bulk transfer and the longest gap
// between two reads that moved data. Safe for concurrent use.
type progress struct {
	mark   *atomic.Int64 // last withdrawal (UnixNano), as kaSession.mark
	mu     sync.Mutex
	bytes  int64
	start  time.Time
	last   time.Time
	maxGap time.Duration
	done   bool
}

func (p *progress) add(n int) {
	now := time.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.start.IsZero() {
		p.start, p.last = now, now
	}
	if n <= 0 {
		return
	}
	p.maxGap = max(p.maxGap, gapSince(p.last, now, p.mark))
	p.bytes += int64(n)
	p.last = now
}

func (p *progress) finish() {
	p.mu.Lock()
	p.done = true
	p.mu.Unlock()
}

// snapshot returns bytes moved, whether the transfer completed and its
// longest gap, counting an unfinished transfer's silence up to at.
func (p *progress) snapshot(at time.Time) (int64, bool, time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	gap := p.maxGap
	if !p.done && !p.last.IsZero() {
		gap = max(gap, gapSince(p.last, at, p.mark))
	}
	return p.bytes, p.done, gap
}

// bulkServer serves rate-limited downloads (GET /down/ID?n=BYTES&rate=BPS)
// and records uploads (POST /up/ID, progress kept by ID) on :80 in one
// server namespace. Safe for concurrent use.
type bulkServer struct {
	mark *atomic.Int64
	mu   sync.Mutex
	ups  map[string]*progress
}

// startBulkServer serves on :80 (both families) in ns until the test ends.
func startBulkServer(t *testing.T, ns string, mark *atomic.Int64) *bulkServer {
	t.Helper()
	ln, err := lab.Listen(ns, "tcp", ":80")
	if err != nil {
		t.Fatal(err)
	}
	s := &bulkServer{ups: map[string]*progress{}, mark: mark}
	srv := &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(ln)
	}()
	t.Cleanup(func() {
		srv.Close()
		<-done
	})
	return s
}

func (s *bulkServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case strings.HasPrefix(r.URL.Path, "/down/"):
		n, err1 := strconv.ParseInt(r.URL.Query().Get("n"), 10, 64)
		rate, err2 := strconv.ParseInt(r.URL.Query().Get("rate"), 10, 64)
		if err1 != nil || err2 != nil || n <= 0 || rate <= 0 {
			http.Error(w, "bad n or rate", http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Length", strconv.FormatInt(n, 10))
		w.WriteHeader(http.StatusOK)
		_ = rateCopy(r.Context(), w, n, rate)
	case strings.HasPrefix(r.URL.Path, "/up/"):
		p := s.upload(strings.TrimPrefix(r.URL.Path, "/up/"))
		p.add(0)
		buf := make([]byte, 32<<10)
		var total int64
		for {
			n, err := r.Body.Read(buf)
			p.add(n)
			total += int64(n)
			if err == io.EOF {
				p.finish()
				fmt.Fprintf(w, "ok %d\n", total)
				return
			}
			if err != nil {
				return
			}
		}
	default:
		http.NotFound(w, r)
	}
}

// upload returns the progress record of upload id.
func (s *bulkServer) upload(id string) *progress {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.ups[id]
	if p == nil {
		p = &progress{mark: s.mark}
		s.ups[id] = p
	}
	return p
}

// rateCopy writes n pattern bytes to w at rate bytes per second, flushing
// every chunk.
func rateCopy(ctx context.Context, w io.Writer, n, rate int64) error {
	chunk := max(rate*int64(bulkTick)/int64(time.Second), 1)
	buf := make([]byte, chunk)
	tick := time.NewTicker(bulkTick)
	defer tick.Stop()
	f, _ := w.(http.Flusher)
	for off := int64(0); off < n; {
		m := min(chunk, n-off)
		for i := int64(0); i < m; i++ {
			buf[i] = bulkByte(off + i)
		}
		if _, err := w.Write(buf[:m]); err != nil {
			return err
		}
		if f != nil {
			f.Flush()
		}
		off += m
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
	return nil
}

// rateReader is an upload body: n pattern bytes at rate bytes per second.
type rateReader struct {
	ctx        context.Context
	n, off     int64
	rate       int64
	next       time.Time
	chunk, got int64 // bytes allowed in the current tick, and given
}

func (r *rateReader) Read(b []byte) (int, error) {
	if r.off >= r.n {
		return 0, io.EOF
	}
	if r.got >= r.chunk {
		if d := time.Until(r.next); d > 0 {
			select {
			case <-r.ctx.Done():
				return 0, r.ctx.Err()
			case <-time.After(d):
			}
		}
		r.next = time.Now().Add(bulkTick)
		r.chunk, r.got = max(r.rate*int64(bulkTick)/int64(time.Second), 1), 0
	}
	m := min(int64(len(b)), r.chunk-r.got, r.n-r.off)
	for i := int64(0); i < m; i++ {
		b[i] = bulkByte(r.off + i)
	}
	r.off += m
	r.got += m
	return int(m), nil
}

// bulkTransfer is one download or upload from a fixed client port (so the
// test knows which node carries it). Safe for concurrent use.
type bulkTransfer struct {
	id    string
	up    bool
	ns    string
	port  int
	url   string // http://server
	bytes int64
	rate  int64
	srv   *bulkServer

	prog progress // downloads: what the client read
	mu   sync.Mutex
	err  error
}

// run performs the transfer until it completes or ctx ends; an error after
// ctx ended is the test stopping it, not a break.
func (b *bulkTransfer) run(ctx context.Context) {
	tr := &http.Transport{DisableCompression: true, DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		var c net.Conn
		err := lab.InNS(b.ns, func() error {
			d := net.Dialer{LocalAddr: &net.TCPAddr{Port: b.port}, Timeout: 5 * time.Second}
			var err error
			c, err = d.DialContext(ctx, network, addr)
			return err
		})
		return c, err
	}}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr}
	err := b.do(ctx, c)
	if err != nil && ctx.Err() == nil {
		b.mu.Lock()
		b.err = err
		b.mu.Unlock()
	}
}

func (b *bulkTransfer) do(ctx context.Context, c *http.Client) error {
	if b.up {
		body := &rateReader{ctx: ctx, n: b.bytes, rate: b.rate}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, b.url+"/up/"+b.id, body)
		if err != nil {
			return err
		}
		req.ContentLength = b.bytes
		resp, err := c.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		out, err := io.ReadAll(resp.Body)
		if err != nil {
			return err
		}
		if want := fmt.Sprintf("ok %d\n", b.bytes); string(out) != want {
			return fmt.Errorf("upload answer %q, want %q", out, want)
		}
		return nil
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet,
		fmt.Sprintf("%s/down/%s?n=%d&rate=%d", b.url, b.id, b.bytes, b.rate), nil)
	if err != nil {
		return err
	}
	b.prog.add(0)
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("download: %s", resp.Status)
	}
	buf := make([]byte, 32<<10)
	var off int64
	for {
		n, err := resp.Body.Read(buf)
		for i := 0; i < n; i++ {
			if buf[i] != bulkByte(off+int64(i)) {
				return fmt.Errorf("download: wrong byte at offset %d", off+int64(i))
			}
		}
		off += int64(n)
		b.prog.add(n)
		if err == io.EOF {
			if off != b.bytes {
				return fmt.Errorf("download: %d of %d bytes", off, b.bytes)
			}
			b.prog.finish()
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// state returns the transfer's progress (the server's record for uploads).
func (b *bulkTransfer) state(at time.Time) (int64, bool, time.Duration) {
	if b.up {
		return b.srv.upload(b.id).snapshot(at)
	}
	return b.prog.snapshot(at)
}

// broken says why the transfer counts as broken at time at ("" if not).
func (b *bulkTransfer) broken(at time.Time) string {
	b.mu.Lock()
	err := b.err
	b.mu.Unlock()
	n, done, gap := b.state(at)
	switch {
	case err != nil:
		return err.Error()
	case gap > stallLimit:
		return fmt.Sprintf("stalled %v", gap.Round(time.Millisecond))
	case !done && n < bulkMinBytes:
		return fmt.Sprintf("only %d bytes moved", n)
	}
	return ""
}
