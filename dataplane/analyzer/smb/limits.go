package smb

// Safety limits of the SMB analyzer. Every buffer and every loop over attacker
// controlled counts is bounded by one of these constants; the comment on each
// says why the value is enough for legitimate traffic.
const (
	// MaxMessageLength is the largest NetBIOS session message accepted: the
	// 24-bit StreamProtocolLength of direct TCP transport (MS-SMB2 2.1) cannot
	// express more. SMB 3 writes of 8 MiB need most of it, and the analyzer
	// streams through message bodies, so no buffer depends on this value.
	MaxMessageLength = 1<<24 - 1

	// MaxControlLength bounds NetBIOS control messages (session request,
	// positive/negative response, retarget, keepalive). The largest legitimate
	// one is a session request carrying two encoded names of at most 255
	// bytes each (RFC 1002 4.3.2).
	MaxControlLength = 512

	// MaxBuffered is the most bytes of one SMB message kept to parse its
	// headers. Only NEGOTIATE and TREE_CONNECT need their variable part (dialect
	// list, negotiate contexts, share path); legitimate ones are well under
	// 1 KiB. Everything else is parsed from its fixed header and streamed.
	MaxBuffered = 4096

	// MaxDialects is the number of dialects of a NEGOTIATE request kept in the
	// event (DialectCount itself is reported in full). Clients offer at most 6.
	MaxDialects = 32

	// MaxNegotiateContexts is the number of negotiate contexts parsed per
	// NEGOTIATE message. MS-SMB2 defines 7 context types.
	MaxNegotiateContexts = 16

	// MaxAlgorithms bounds each algorithm list kept from a negotiate context
	// (compression, cipher, signing, hash). MS-SMB2 defines at most 6 of each.
	MaxAlgorithms = 16

	// MaxChainPayloads is the number of chained compression payload headers
	// kept in the event; counting and summing continue past it.
	MaxChainPayloads = 16

	// MaxChainWalk bounds the payload headers walked in one chained
	// compression message. Windows emits a handful (an uncompressed header,
	// then one payload per compressed or pattern run).
	MaxChainWalk = 4096

	// MaxCompound bounds the SMB2 messages parsed in one compound chain.
	// Clients compound a few operations (create+read+close).
	MaxCompound = 256

	// MaxPendingTrans bounds the SMB1 transactions awaiting secondaries per
	// connection. Clients have very few outstanding multi-part transactions;
	// the oldest is reported and dropped when the table is full.
	MaxPendingTrans = 32

	// MaxTransParams is the number of leading transaction parameter bytes kept
	// (enough for the TRANS2 information level of SET_*_INFORMATION).
	MaxTransParams = 8
)
