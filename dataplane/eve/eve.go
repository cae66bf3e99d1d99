// Package eve writes alerts as EVE JSON lines, with Suricata's field names so
// existing pipelines (Filebeat/Logstash modules, SIEM parsers) ingest them:
// timestamp, flow_id, event_type, src_ip, src_port, dest_ip, dest_port, proto,
// app_proto, direction and an alert object with action, gid, signature_id,
// rev, signature, category, severity and metadata (cve, patch_id, ...).
package eve

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"sync"

	"github.com/patchgate/patchgate/dataplane/engine"
	"github.com/patchgate/patchgate/dataplane/flow"
)

// TimeFormat is Suricata's EVE timestamp layout.
const TimeFormat = "2006-01-02T15:04:05.000000-0700"

// Record is one EVE alert line.
type Record struct {
	Timestamp string      `json:"timestamp"`
	FlowID    uint64      `json:"flow_id"`
	EventType string      `json:"event_type"`
	SrcIP     string      `json:"src_ip"`
	SrcPort   uint16      `json:"src_port"`
	DestIP    string      `json:"dest_ip"`
	DestPort  uint16      `json:"dest_port"`
	Proto     string      `json:"proto"`
	AppProto  string      `json:"app_proto,omitempty"`
	Direction string      `json:"direction"`
	Alert     AlertRecord `json:"alert"`
	// Host is the node that raised the alert (set by the writer's owner).
	Host string `json:"host,omitempty"`
}

// AlertRecord is the "alert" object of an EVE record.
type AlertRecord struct {
	Action      string   `json:"action"`
	GID         int      `json:"gid"`
	SignatureID int      `json:"signature_id"`
	Rev         int      `json:"rev"`
	Signature   string   `json:"signature"`
	Category    string   `json:"category"`
	Severity    int      `json:"severity"`
	Metadata    Metadata `json:"metadata"`
}

// Metadata carries patchgate's fields; values are lists of strings, as in
// Suricata's rule metadata.
type Metadata struct {
	CVE       []string `json:"cve,omitempty"`
	PatchID   []string `json:"patch_id"`
	Severity  []string `json:"patchgate_severity,omitempty"`
	Event     []string `json:"event,omitempty"`
	PatchSet  []string `json:"patch_set,omitempty"`
	Verdict   []string `json:"verdict,omitempty"`
	Component []string `json:"component,omitempty"`
}

// SeverityNumber maps a patch severity to EVE's 1 (highest) .. 3 (lowest).
func SeverityNumber(s string) int {
	switch s {
	case "critical", "high":
		return 1
	case "medium":
		return 2
	}
	return 3
}

// FromAlert converts an engine alert.
func FromAlert(a *engine.Alert) Record {
	action := "allowed"
	if a.Blocked {
		action = "blocked"
	}
	r := Record{
		Timestamp: a.Time.Format(TimeFormat),
		FlowID:    a.FlowID,
		EventType: "alert",
		SrcIP:     a.Src.Addr().String(), SrcPort: a.Src.Port(),
		DestIP: a.Dst.Addr().String(), DestPort: a.Dst.Port(),
		Proto:     flow.ProtoName(a.Proto),
		AppProto:  a.AppProto,
		Direction: a.Dir.String(),
		Alert: AlertRecord{
			Action: action, GID: 1, SignatureID: a.SID, Rev: 1,
			Signature: a.Signature, Category: a.Category, Severity: SeverityNumber(a.Severity),
			Metadata: Metadata{
				CVE: a.CVE, PatchID: []string{a.PatchID}, Severity: []string{a.Severity},
				Event: []string{a.Event}, PatchSet: []string{strconv.FormatUint(a.PatchSet, 10)},
				Verdict: []string{a.Verdict.String()},
			},
		},
	}
	if r.Alert.Metadata.CVE == nil {
		r.Alert.Metadata.CVE = []string{}
	}
	return r
}

// Writer writes alerts as JSON lines. It is safe for concurrent use and
// implements engine.AlertSink. Write errors are kept and reported by Flush.
type Writer struct {
	mu   sync.Mutex
	bw   *bufio.Writer
	enc  *json.Encoder
	host string
	err  error
	n    uint64
}

var _ engine.AlertSink = (*Writer)(nil)

// NewWriter returns a Writer on w. host, if not empty, is written in each record.
func NewWriter(w io.Writer, host string) *Writer {
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false)
	return &Writer{bw: bw, enc: enc, host: host}
}

// Alert implements engine.AlertSink.
func (w *Writer) Alert(a *engine.Alert) {
	r := FromAlert(a)
	r.Host = w.host
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return
	}
	if err := w.enc.Encode(&r); err != nil {
		w.err = fmt.Errorf("eve: %w", err)
		return
	}
	w.n++
}

// Count returns the number of records written.
func (w *Writer) Count() uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.n
}

// Flush writes buffered records and returns the first error met.
func (w *Writer) Flush() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.bw.Flush(); err != nil && w.err == nil {
		w.err = fmt.Errorf("eve: %w", err)
	}
	return w.err
}
