package engine

import (
	"errors"
	"fmt"
	"time"

	"github.com/patchgate/patchgate/dataplane/defrag"
	"github.com/patchgate/patchgate/dataplane/flow"
	"github.com/patchgate/patchgate/dataplane/stream"
)

// MidstreamPolicy says what to do with a TCP flow first seen without its
// handshake and without a checkpoint to resume from.
type MidstreamPolicy uint8

const (
	// MidstreamPickup tracks the flow from the packet seen and lets the
	// analyzer resynchronise at the next message it recognises.
	MidstreamPickup MidstreamPolicy = iota
	// MidstreamDrop drops the packets of such flows (the client reconnects).
	MidstreamDrop
	// MidstreamReset resets such flows at both ends.
	MidstreamReset
)

var midstreamNames = []string{"pickup", "drop", "reset"}

func (m MidstreamPolicy) String() string {
	if int(m) < len(midstreamNames) {
		return midstreamNames[m]
	}
	return fmt.Sprintf("midstream(%d)", uint8(m))
}

// ParseMidstream parses "pickup", "drop" or "reset".
func ParseMidstream(s string) (MidstreamPolicy, error) {
	for i, n := range midstreamNames {
		if n == s {
			return MidstreamPolicy(i), nil
		}
	}
	return 0, fmt.Errorf("engine: midstream policy %q is not one of pickup, drop, reset", s)
}

// ChecksumPolicy says whether packets with bad checksums are inspected.
type ChecksumPolicy uint8

const (
	// ChecksumAuto validates checksums, unless most of the first packets have
	// bad ones (a capture taken on a host with checksum offload), in which case
	// validation is switched off.
	ChecksumAuto ChecksumPolicy = iota
	// ChecksumValidate drops packets with bad checksums: the receiver would too,
	// so they must be neither inspected nor forwarded.
	ChecksumValidate
	// ChecksumIgnore inspects packets whatever their checksums.
	ChecksumIgnore
)

var checksumNames = []string{"auto", "validate", "ignore"}

func (c ChecksumPolicy) String() string {
	if int(c) < len(checksumNames) {
		return checksumNames[c]
	}
	return fmt.Sprintf("checksum(%d)", uint8(c))
}

// ParseChecksum parses "auto", "validate" or "ignore".
func ParseChecksum(s string) (ChecksumPolicy, error) {
	for i, n := range checksumNames {
		if n == s {
			return ChecksumPolicy(i), nil
		}
	}
	return 0, fmt.Errorf("engine: checksum policy %q is not one of auto, validate, ignore", s)
}

// ViolationPolicy says what a protocol violation reported by an analyzer
// (request smuggling signs, limits exceeded) does to its flow.
type ViolationPolicy uint8

const (
	// ViolationCount counts violations per code (Stats.Violations) and lets
	// traffic pass: real traffic contains odd but harmless framing (obs-fold,
	// bare LF), so this is the default.
	ViolationCount ViolationPolicy = iota
	// ViolationAlert also raises an alert per violation.
	ViolationAlert
	// ViolationBlock raises an alert and resets the flow.
	ViolationBlock
)

var violationNames = []string{"count", "alert", "block"}

func (v ViolationPolicy) String() string {
	if int(v) < len(violationNames) {
		return violationNames[v]
	}
	return fmt.Sprintf("violations(%d)", uint8(v))
}

// ParseViolations parses "count", "alert" or "block".
func ParseViolations(s string) (ViolationPolicy, error) {
	for i, n := range violationNames {
		if n == s {
			return ViolationPolicy(i), nil
		}
	}
	return 0, fmt.Errorf("engine: violation policy %q is not one of count, alert, block", s)
}

// FailurePolicy says what happens to a flow whose analyzer gives up (a fatal
// violation such as ambiguous HTTP framing): the bytes that follow can no
// longer be inspected.
type FailurePolicy uint8

const (
	// FailureBlock resets the flow when its analyzer gives up after the
	// protocol was proven (recognised by content, or a message completed):
	// what it cannot parse, a server may parse differently (request smuggling).
	// A flow on a registered port whose first bytes were never that protocol
	// passes: it is another protocol, not an attack on this one.
	FailureBlock FailurePolicy = iota
	// FailurePass detaches the analyzer and passes the rest of the flow.
	FailurePass
)

var failureNames = []string{"block", "pass"}

func (f FailurePolicy) String() string {
	if int(f) < len(failureNames) {
		return failureNames[f]
	}
	return fmt.Sprintf("failure(%d)", uint8(f))
}

// ParseFailure parses "block" or "pass".
func ParseFailure(s string) (FailurePolicy, error) {
	for i, n := range failureNames {
		if n == s {
			return FailurePolicy(i), nil
		}
	}
	return 0, fmt.Errorf("engine: analyzer failure policy %q is not one of block, pass", s)
}

// Defaults.
const (
	// DefaultDetectWindow is how many bytes per direction are buffered while
	// deciding a flow's protocol; every supported protocol identifies itself
	// within its first message header.
	DefaultDetectWindow = 4096
	// DefaultShards is the number of independent engine shards.
	DefaultShards = 1
	// autoChecksumSample is how many checksummed packets ChecksumAuto examines.
	autoChecksumSample = 1000
)

// Config configures an engine.
type Config struct {
	// Shards is the number of independent shards (one per core or queue).
	Shards int
	// Flow bounds each shard's flow table (MaxFlows and MaxBytes are per shard).
	Flow   flow.Config
	Stream stream.Config
	Defrag defrag.Config
	// Midstream is the policy for TCP flows first seen mid-stream.
	Midstream MidstreamPolicy
	Checksums ChecksumPolicy
	// Violations is the policy for analyzer-reported protocol violations.
	Violations ViolationPolicy
	// AnalyzerFailure is the policy for flows whose analyzer gives up.
	AnalyzerFailure FailurePolicy
	// DetectWindow bounds the bytes buffered per direction for protocol detection.
	DetectWindow int
	// Hooks lets the node observe flows (checkpoints, metrics). Optional.
	Hooks Hooks
	// CheckpointInterval: besides message boundaries and verdict changes,
	// Hooks.Boundary is also called for a TCP data packet that leaves a
	// message unfinished when the flow's last checkpoint was at rest (the
	// first packet of a multi-packet message) or is at least this old. So a
	// flow moved while a message is in flight (a slow or split request, a
	// long download) resumes from where it was, not from the last boundary.
	// 0 checkpoints at boundaries only.
	CheckpointInterval time.Duration
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{
		Shards:       DefaultShards,
		Flow:         flow.DefaultConfig(),
		Stream:       stream.DefaultConfig(),
		Defrag:       defrag.DefaultConfig(),
		Midstream:    MidstreamPickup,
		Checksums:    ChecksumAuto,
		Violations:   ViolationCount,
		DetectWindow: DefaultDetectWindow,

		CheckpointInterval: DefaultCheckpointInterval,
	}
}

// DefaultCheckpointInterval bounds how stale a mid-message checkpoint gets
// (Config.CheckpointInterval): a long transfer costs one checkpoint per
// interval, a single-packet message none beyond its boundary.
const DefaultCheckpointInterval = 100 * time.Millisecond

// Validate says which field is wrong and why.
func (c Config) Validate() error {
	var errs []error
	if c.Shards < 1 || c.Shards > 1024 {
		errs = append(errs, fmt.Errorf("engine: Shards must be in [1, 1024], got %d", c.Shards))
	}
	if err := c.Flow.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := c.Defrag.Validate(); err != nil {
		errs = append(errs, err)
	}
	if c.Stream.MaxRetained < 1 || c.Stream.MaxOutOfOrder < 1 || c.Stream.MaxSegments < 1 {
		errs = append(errs, errors.New("engine: Stream limits must be positive"))
	}
	if c.DetectWindow < 16 || c.DetectWindow > 1<<20 {
		errs = append(errs, fmt.Errorf("engine: DetectWindow must be in [16, 1MiB], got %d", c.DetectWindow))
	}
	if c.CheckpointInterval < 0 || c.CheckpointInterval > time.Minute {
		errs = append(errs, fmt.Errorf("engine: CheckpointInterval must be in [0, 1m], got %v", c.CheckpointInterval))
	}
	if c.Midstream > MidstreamReset {
		errs = append(errs, fmt.Errorf("engine: Midstream policy %d unknown", c.Midstream))
	}
	if c.AnalyzerFailure > FailurePass {
		errs = append(errs, fmt.Errorf("engine: AnalyzerFailure policy %d unknown", c.AnalyzerFailure))
	}
	if c.Violations > ViolationBlock {
		errs = append(errs, fmt.Errorf("engine: Violations policy %d unknown", c.Violations))
	}
	if c.Checksums > ChecksumIgnore {
		errs = append(errs, fmt.Errorf("engine: Checksums policy %d unknown", c.Checksums))
	}
	return errors.Join(errs...)
}
