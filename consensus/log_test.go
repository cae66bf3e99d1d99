package consensus

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"
)

func TestLogAdapters(t *testing.T) {
	var buf bytes.Buffer
	l := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug - 4}))
	h := newHclog(l, "raft", hclog.Info).Named("transport").With("peer", "n1")
	h.Debug("hidden debug")
	h.Info("shown info", "k", 1)
	h.Error("shown error")
	if h.IsDebug() || !h.IsInfo() {
		t.Fatal("levels")
	}
	w := &levelWriter{l: l, component: "memberlist", min: slog.LevelInfo}
	w.Write([]byte("2026/11/22 10:00:00 [DEBUG] memberlist: hidden probe\n2026/11/22 10:00:00 [WARN] memberlist: shown warn\n"))
	out := buf.String()
	for _, want := range []string{`msg="shown info" component=raft.transport peer=n1 k=1`, "level=ERROR", `level=WARN msg="memberlist: shown warn" component=memberlist`} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in\n%s", want, out)
		}
	}
	if strings.Contains(out, "hidden") {
		t.Errorf("debug output leaked:\n%s", out)
	}
}
