package smb

import "github.com/patchgate/patchgate/dataplane/analyzer"

// Name is the analyzer's registered name (and EVE app_proto).
const Name = "smb"

func init() {
	analyzer.Register(analyzer.Spec{
		Name:      Name,
		Transport: analyzer.TCP,
		Ports:     []uint16{445, 139},
		Detect:    Detect,
		New:       func() analyzer.Analyzer { return New() },
		Events: []analyzer.EventSpec{
			{Name: EventMessage, Schema: Message{}, Doc: "every SMB1 or SMB2 message header (each compound member, the header inside a compressed message's uncompressed prefix, encrypted messages)"},
			{Name: EventNegotiate, Schema: Negotiate{}, Doc: "an SMB2 NEGOTIATE request or response with its dialects and negotiate contexts"},
			{Name: EventCompressionTransform, Schema: CompressionTransform{}, Doc: "an SMB 3.1.1 compression transform header (unchained: at its header; chained: at the message end)"},
			{Name: EventTrans, Schema: Trans{}, Doc: "an SMB1 TRANSACTION/TRANSACTION2/NT_TRANSACT request, after its primary and each secondary; final when complete, overflowing, evicted or at connection end"},
		},
	})
}

// Detect recognises NetBIOS session traffic carrying SMB: a session message
// (type 0x00, 3-byte length) whose payload starts with 0xFF, 0xFE or 0xFC
// 'SMB' is Yes; leading keepalives are skipped; a NetBIOS session request
// (port 139) or an encrypted SMB3 message (0xFD 'SMB') is Maybe.
func Detect(p analyzer.Probe) analyzer.Confidence {
	if p.Transport != analyzer.TCP {
		return analyzer.No
	}
	b := p.Data
	for len(b) >= 4 && b[0] == 0x85 && b[1] == 0 && b[2] == 0 && b[3] == 0 {
		b = b[4:]
	}
	if len(b) == 0 {
		return analyzer.NeedMore
	}
	switch b[0] {
	case 0x00:
	case 0x81, 0x85:
		if len(b) < 4 {
			return analyzer.NeedMore
		}
		if b[1] <= 1 && int(b[1])<<16|int(b[2])<<8|int(b[3]) <= MaxControlLength {
			return analyzer.Maybe
		}
		return analyzer.No
	default:
		return analyzer.No
	}
	if len(b) >= 5 {
		switch b[4] {
		case 0xFF, 0xFE, 0xFC, 0xFD:
		default:
			return analyzer.No
		}
	}
	for i := 5; i < 8 && i < len(b); i++ {
		if b[i] != "SMB"[i-5] {
			return analyzer.No
		}
	}
	if len(b) < 8 {
		return analyzer.NeedMore
	}
	if !plausibleStart(b[:8]) {
		return analyzer.No
	}
	if b[4] == 0xFD {
		return analyzer.Maybe
	}
	return analyzer.Yes
}
