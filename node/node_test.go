package node

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/gopacket/layers"

	"github.com/patchgate/patchgate/dataplane"
	"github.com/patchgate/patchgate/dataplane/gen"
	"github.com/patchgate/patchgate/dataplane/inline"
)

// memBackend is an in-memory inline.Backend: Run feeds the given frames to one
// inspector, then waits for the context like a real backend.
type memBackend struct {
	ins      inline.Inspector
	frames   []gen.Frame
	ready    atomic.Bool
	counters inline.Counters
	fed      chan struct{}
	hold     chan struct{} // Run waits for it before attaching
}

func (m *memBackend) Run(ctx context.Context) error {
	select {
	case <-m.hold:
	case <-ctx.Done():
		return nil
	}
	m.ready.Store(true)
	for _, f := range m.frames {
		m.counters.Received(len(f.Data))
		res := m.ins.Process(layers.LinkTypeEthernet, f.Data, f.CI.Timestamp)
		m.counters.Applied(res.Verdict)
	}
	close(m.fed)
	<-ctx.Done()
	m.ready.Store(false)
	return nil
}
func (m *memBackend) Ready() bool { return m.ready.Load() }
func (m *memBackend) Stats() inline.Stats {
	s := m.counters.Snapshot()
	s.Units = []inline.UnitStats{{Name: "mem-0", Packets: s.Packets, KernelDropped: 3}}
	return s
}

func catalog(t *testing.T) string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "patches")
}

// syncBuffer is a bytes.Buffer safe for the node's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestNodeServesMetricsHealthAndEVE(t *testing.T) {
	s, err := gen.NewTCPSession(gen.EP("198.51.100.1:40000"), gen.EP("203.0.113.2:80"), gen.DefaultSessionOptions())
	if err != nil {
		t.Fatal(err)
	}
	s.Send(dataplane.ToServer, []byte("GET /cgi-bin/x HTTP/1.1\r\nHost: example.test\r\nUser-Agent: () { :; }; /bin/id\r\n\r\n"))
	frames, err := s.Frames()
	if err != nil {
		t.Fatal(err)
	}
	mb := &memBackend{frames: frames, fed: make(chan struct{}), hold: make(chan struct{})}
	cfg := DefaultConfig()
	cfg.Name = "gw-test"
	cfg.Patches = catalog(t)
	cfg.HTTP.Listen = "127.0.0.1:0"
	eveOut, logOut := &syncBuffer{}, &syncBuffer{}
	n, err := New(cfg, Options{
		Logger: NewLogger(LogConfig{Level: "info", Format: "json"}, logOut),
		EVE:    eveOut,
		Backend: func(_ Config, ni func() inline.Inspector, _ *slog.Logger) (inline.Backend, error) {
			mb.ins = ni()
			return mb, nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	defer func() {
		cancel()
		<-done
	}()
	waitFor(t, func() error {
		if n.HTTPAddr() == "" {
			return errors.New("not listening")
		}
		return nil
	})
	base := "http://" + n.HTTPAddr()
	if code, _ := get(t, base+"/healthz"); code != 200 {
		t.Errorf("/healthz %d", code)
	}
	if code, _ := get(t, base+"/readyz"); code != http.StatusServiceUnavailable {
		t.Errorf("/readyz before the backend attached: %d, want 503", code)
	}
	close(mb.hold)
	<-mb.fed
	if code, _ := get(t, base+"/readyz"); code != 200 {
		t.Errorf("/readyz once attached: %d", code)
	}
	_, metrics := get(t, base+"/metrics")
	for _, want := range []string{
		`patchgate_alerts_total{cve="CVE-2014-6271",node="gw-test",patch="CVE-2014-6271"} 1`,
		`patchgate_verdicts_total{node="gw-test",verdict="reset"} `,
		`patchgate_drops_total{node="gw-test",reason="patch"} 1`,
		`patchgate_drops_total{node="gw-test",reason="tcp_window"} 0`,
		`patchgate_kernel_drops_total{node="gw-test",unit="mem-0"} 3`,
		`patchgate_patch_set_version{node="gw-test"} 1`,
		`patchgate_ready{node="gw-test"} 1`,
		`patchgate_flows{node="gw-test"} 1`,
		`patchgate_flow_evictions_total{class="established",node="gw-test"} 0`,
		fmt.Sprintf(`patchgate_backend_packets_total{node="gw-test"} %d`, len(frames)),
		`patchgate_overload_bypassed_total{node="gw-test"} 0`,
		`patchgate_packets_total{node="gw-test"}`,
		`patchgate_bytes_total{node="gw-test"}`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	done <- nil
	// EVE: one alert line naming the node and the CVE.
	var rec struct {
		Host  string `json:"host"`
		Alert struct {
			Action   string `json:"action"`
			Metadata struct {
				CVE []string `json:"cve"`
			} `json:"metadata"`
		} `json:"alert"`
	}
	line, _, _ := strings.Cut(eveOut.String(), "\n")
	if err := json.Unmarshal([]byte(line), &rec); err != nil {
		t.Fatalf("EVE output %q: %v", eveOut.String(), err)
	}
	if rec.Host != "gw-test" || rec.Alert.Action != "blocked" || len(rec.Alert.Metadata.CVE) != 1 {
		t.Errorf("EVE record %+v", rec)
	}
	// Logs are JSON lines carrying the node name.
	for _, l := range strings.Split(strings.TrimSpace(logOut.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil || m["node"] != "gw-test" {
			t.Errorf("log line %q: %v", l, err)
		}
	}
}

func TestNewRejectsBadPatchDir(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Patches = t.TempDir()
	_, err := New(cfg, Options{Logger: slog.New(slog.DiscardHandler)})
	if err == nil || !strings.Contains(err.Error(), "node: patches") {
		t.Errorf("got %v", err)
	}
}

func TestCleanupRejectsBadName(t *testing.T) {
	if err := Cleanup("a b", ""); err == nil {
		t.Error("bad name accepted")
	}
}

func waitFor(t *testing.T, f func() error) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
