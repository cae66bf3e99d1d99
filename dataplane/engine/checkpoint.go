package engine

import (
	"fmt"
	"time"

	"github.com/patchgate/patchgate/dataplane/checkpoint"
	"github.com/patchgate/patchgate/dataplane/decode"
	"github.com/patchgate/patchgate/dataplane/flow"
	"github.com/patchgate/patchgate/dataplane/stream"
)

// export1 builds the checkpoint record of a flow. The shard must be locked.
func (s *shard) exportEntry(ent *flow.Entry[*Flow]) []byte {
	f := ent.Value
	rec := checkpoint.Record{
		Key: ent.Key, FlowID: f.ID, ClientIsA: f.ClientIsA, Midstream: f.Midstream,
		Created: f.Created, LastSeen: ent.LastSeen(), PatchSet: f.PatchSet,
		Blocked: f.Blocked, BlockVerdict: f.BlockVerdict, BlockedBy: f.BlockedBy,
		Packets: f.Packets, Bytes: f.Bytes, Alerts: f.Alerts,
		Detected: f.detected, FirstSet: f.firstSet, FirstDir: f.firstDir, Detect: f.detect,
		Analyzer: f.anName, AnalyzerDead: f.anDead, Proven: f.proven,
	}
	if f.conn != nil {
		rec.Stream = f.conn.MarshalState(nil)
	}
	if f.an != nil {
		rec.AnalyzerState = f.an.MarshalState(nil)
	}
	return rec.Marshal(nil)
}

// decodeFlow rebuilds a Flow from a checkpoint record.
func decodeFlow(e *Engine, b []byte) (*Flow, flow.Key, error) {
	rec, err := checkpoint.Unmarshal(b)
	if err != nil {
		return nil, flow.Key{}, err
	}
	f := &Flow{
		ID: rec.FlowID, ClientIsA: rec.ClientIsA, Proto: rec.Key.Proto, Created: rec.Created,
		Midstream: rec.Midstream, Blocked: rec.Blocked, BlockVerdict: rec.BlockVerdict, BlockedBy: rec.BlockedBy,
		PatchSet: rec.PatchSet, Packets: rec.Packets, Bytes: rec.Bytes, Alerts: rec.Alerts,
		detected: rec.Detected, firstSet: rec.FirstSet, firstDir: rec.FirstDir, detect: rec.Detect,
		anName: rec.Analyzer, anDead: rec.AnalyzerDead, proven: rec.Proven,
	}
	for d := range f.detect {
		if len(f.detect[d]) > e.cfg.DetectWindow+stream.DefaultMaxOutOfOrder {
			return nil, flow.Key{}, fmt.Errorf("engine: checkpoint detection buffer too large")
		}
	}
	switch rec.Key.Proto {
	case decode.ProtoTCP:
		f.conn = stream.New(e.cfg.Stream)
		if err := f.conn.UnmarshalState(rec.Stream); err != nil {
			return nil, flow.Key{}, fmt.Errorf("engine: checkpoint of %s: %w", rec.Key, err)
		}
	case decode.ProtoUDP:
		if len(rec.Stream) != 0 {
			return nil, flow.Key{}, fmt.Errorf("engine: checkpoint of %s: UDP flow with TCP state", rec.Key)
		}
	default:
		return nil, flow.Key{}, fmt.Errorf("engine: checkpoint of %s: protocol %d not tracked", rec.Key, rec.Key.Proto)
	}
	if rec.Analyzer != "" {
		spec, err := analyzerFor(rec.Analyzer)
		if err != nil {
			return nil, flow.Key{}, err
		}
		f.an, f.appProto = spec.New(), spec.AppProto
		if err := f.an.UnmarshalState(rec.AnalyzerState); err != nil {
			return nil, flow.Key{}, fmt.Errorf("engine: checkpoint of %s: analyzer %s: %w", rec.Key, rec.Analyzer, err)
		}
	} else if len(rec.AnalyzerState) != 0 {
		return nil, flow.Key{}, fmt.Errorf("engine: checkpoint of %s: analyzer state without analyzer", rec.Key)
	}
	return f, rec.Key, nil
}

// install puts an imported flow into the shard's table, replacing any existing
// state for the key. The shard must be locked.
func (s *shard) install(key flow.Key, f *Flow, now time.Time) error {
	if old := s.table.Get(key); old != nil {
		s.table.Remove(old)
	}
	class := flow.Datagram
	if f.conn != nil {
		class = classOf(f.conn.State)
		f.conn.MarkMoved()
	}
	if f.Blocked {
		class = flow.Closing
	}
	ent := s.table.Insert(key, class, now)
	if ent == nil {
		return fmt.Errorf("engine: flow table full, cannot import %s", key)
	}
	ent.Value = f
	s.account(ent)
	return nil
}
