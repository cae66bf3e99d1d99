package smb

// Event names emitted by the SMB analyzer.
const (
	EventMessage              = "smb.message"
	EventNegotiate            = "smb2.negotiate"
	EventCompressionTransform = "smb2.compression_transform"
	EventTrans                = "smb1.trans"
)

// SessionSetup holds the fixed fields of an SMB2 SESSION_SETUP request or
// response (zero for other commands).
type SessionSetup struct {
	// Flags is the request's Flags byte (SMB2_SESSION_FLAG_BINDING = 0x01).
	Flags int `expr:"flags"`
	// SecurityMode is the request's SecurityMode byte.
	SecurityMode int `expr:"security_mode"`
	// Capabilities is the request's Capabilities field.
	Capabilities int `expr:"capabilities"`
	// PreviousSessionID is the request's PreviousSessionId.
	PreviousSessionID int `expr:"previous_session_id"`
	// SessionFlags is the response's SessionFlags (0x1 guest, 0x2 null, 0x4 encrypt).
	SessionFlags int `expr:"session_flags"`
	// SecurityBufferOffset and SecurityBufferLength locate the GSS token.
	SecurityBufferOffset int `expr:"security_buffer_offset"`
	SecurityBufferLength int `expr:"security_buffer_length"`
}

// TreeConnect holds an SMB2 TREE_CONNECT request's path or response's share
// description.
type TreeConnect struct {
	// Path is the share path ("\\server\share") decoded from UTF-16LE.
	Path string `expr:"path"`
	// PathLength is the declared PathLength in bytes.
	PathLength int `expr:"path_length"`
	// PathTruncated is true when the path lies (partly) beyond the bytes the
	// analyzer keeps or beyond the message.
	PathTruncated bool `expr:"path_truncated"`
	// Flags is the request's Flags field (SMB 3.1.1 extension present = 0x4).
	Flags int `expr:"flags"`
	// ShareType is the response's ShareType (1 disk, 2 pipe, 3 print).
	ShareType int `expr:"share_type"`
	// ShareFlags, Capabilities and MaximalAccess are the response's fields.
	ShareFlags    int `expr:"share_flags"`
	Capabilities  int `expr:"capabilities"`
	MaximalAccess int `expr:"maximal_access"`
}

// Read holds the fixed fields of an SMB2 READ request or response.
type Read struct {
	// Length is the request's Length (bytes to read).
	Length int `expr:"length"`
	// Offset is the request's file Offset.
	Offset int `expr:"offset"`
	// MinimumCount and RemainingBytes are the request's fields.
	MinimumCount   int `expr:"minimum_count"`
	RemainingBytes int `expr:"remaining_bytes"`
	// Flags is the request's Flags byte.
	Flags int `expr:"flags"`
	// DataOffset and DataLength locate the data of a response.
	DataOffset int `expr:"data_offset"`
	DataLength int `expr:"data_length"`
}

// Write holds the fixed fields of an SMB2 WRITE request or response.
type Write struct {
	// Length is the request's Length (bytes of data).
	Length int `expr:"length"`
	// Offset is the request's file Offset.
	Offset int `expr:"offset"`
	// DataOffset is the request's DataOffset (from the start of the SMB2 header).
	DataOffset int `expr:"data_offset"`
	// RemainingBytes and Flags are the request's fields.
	RemainingBytes int `expr:"remaining_bytes"`
	Flags          int `expr:"flags"`
	// Count is the response's Count (bytes written).
	Count int `expr:"count"`
}

// IOCTL holds the fixed fields of an SMB2 IOCTL request or response.
type IOCTL struct {
	// CtlCode is the FSCTL/IOCTL code.
	CtlCode int `expr:"ctl_code"`
	// IsFSCTL is true when Flags has SMB2_0_IOCTL_IS_FSCTL (request).
	IsFSCTL bool `expr:"is_fsctl"`
	// InputOffset and InputCount locate the input buffer.
	InputOffset int `expr:"input_offset"`
	InputCount  int `expr:"input_count"`
	// OutputOffset and OutputCount locate the output buffer.
	OutputOffset int `expr:"output_offset"`
	OutputCount  int `expr:"output_count"`
	// MaxInputResponse and MaxOutputResponse are the request's limits.
	MaxInputResponse  int `expr:"max_input_response"`
	MaxOutputResponse int `expr:"max_output_response"`
	// Flags is the Flags field.
	Flags int `expr:"flags"`
}

// Message is the event of smb.message: one SMB1 or SMB2 message header (each
// message of an SMB2 compound, the SMB2 header found in the uncompressed part
// of a compressed message, and the transform header of an encrypted one).
// Numeric fields that do not apply to the message's version are 0. 64-bit
// identifiers are reported as two's-complement int64 (0xFFFFFFFFFFFFFFFF is -1).
type Message struct {
	// Direction is "to_server" or "to_client".
	Direction string `expr:"direction"`
	// Version is 1 (0xFF 'SMB') or 2 (0xFE 'SMB', also for SMB 3.x dialects).
	Version int `expr:"version"`
	// Dialect is the connection's negotiated SMB2 dialect (0x0311 ...), 0 if unknown.
	Dialect int `expr:"dialect"`
	// Command is the command code; -1 for an encrypted message.
	Command int `expr:"command"`
	// CommandName is the command's name ("NEGOTIATE", "TRANSACTION2", ...).
	CommandName string `expr:"command_name"`
	// IsResponse is true when the header marks a response (SMB2 flag
	// SERVER_TO_REDIR, SMB1 flag REPLY).
	IsResponse bool `expr:"is_response"`
	// Status is the NT status (in SMB 3.x requests: ChannelSequence/Reserved).
	Status int `expr:"status"`
	// Flags is the header Flags (SMB1: the 8-bit Flags).
	Flags int `expr:"flags"`
	// Flags2 is the SMB1 Flags2 field.
	Flags2 int `expr:"flags2"`
	// MessageID is the SMB2 MessageId or the SMB1 MID.
	MessageID int `expr:"message_id"`
	// SessionID is the SMB2 SessionId or the SMB1 UID.
	SessionID int `expr:"session_id"`
	// TreeID is the SMB2 TreeId (sync messages) or the SMB1 TID.
	TreeID int `expr:"tree_id"`
	// ProcessID is the SMB2 ProcessId (sync) or the SMB1 PIDHigh<<16|PIDLow.
	ProcessID int `expr:"process_id"`
	// Async is true when the SMB2 header is the async form; AsyncID is its AsyncId.
	Async   bool `expr:"async"`
	AsyncID int  `expr:"async_id"`
	// Signed is true when the SMB2 SIGNED flag (SMB1: Flags2 SECURITY_SIGNATURE) is set.
	Signed bool `expr:"signed"`
	// Related is true when the SMB2 RELATED_OPERATIONS flag is set.
	Related bool `expr:"related"`
	// CreditCharge is the SMB2 CreditCharge; Credits is CreditRequest/CreditResponse.
	CreditCharge int `expr:"credit_charge"`
	Credits      int `expr:"credits"`
	// NextCommand is the SMB2 NextCommand offset (0 for the last of a compound).
	NextCommand int `expr:"next_command"`
	// CompoundIndex is the 0-based position of the message in its compound.
	CompoundIndex int `expr:"compound_index"`
	// Compressed is true for the header found in the uncompressed prefix of a
	// compression transform message.
	Compressed bool `expr:"compressed"`
	// Encrypted is true for an SMB2 TRANSFORM_HEADER (0xFD 'SMB'); only
	// SessionID and Length are then known.
	Encrypted bool `expr:"encrypted"`
	// Length is the message's length: for a compound member the bytes up to
	// NextCommand, else the rest of the NetBIOS message (the transform's
	// OriginalMessageSize for an encrypted message).
	Length int `expr:"length"`
	// NetBIOSLength is the length of the enclosing NetBIOS session message.
	NetBIOSLength int `expr:"netbios_length"`
	// WordCount and ByteCount are the SMB1 counts (-1 when absent or for SMB2).
	WordCount int `expr:"word_count"`
	ByteCount int `expr:"byte_count"`
	// StructureSize is the SMB2 body's StructureSize (-1 when absent or for SMB1).
	StructureSize int `expr:"structure_size"`

	SessionSetup SessionSetup `expr:"session_setup"`
	TreeConnect  TreeConnect  `expr:"tree_connect"`
	Read         Read         `expr:"read"`
	Write        Write        `expr:"write"`
	IOCTL        IOCTL        `expr:"ioctl"`
}

// EventName implements analyzer.Event.
func (*Message) EventName() string { return EventMessage }

// NegotiateContext is one SMB 3.1.1 negotiate context.
type NegotiateContext struct {
	// Type is the ContextType (1 preauth, 2 encryption, 3 compression, 5 netname,
	// 6 transport, 7 RDMA transform, 8 signing).
	Type int `expr:"type"`
	// Length is the DataLength.
	Length int `expr:"length"`
}

// Negotiate is the event of smb2.negotiate: an SMB2 NEGOTIATE request or response.
type Negotiate struct {
	// Direction is "to_server" or "to_client".
	Direction  string `expr:"direction"`
	IsResponse bool   `expr:"is_response"`
	MessageID  int    `expr:"message_id"`
	// DialectCount is the request's declared DialectCount.
	DialectCount int `expr:"dialect_count"`
	// Dialects are the request's dialects (0x0202 ... 0x0311), at most MaxDialects.
	Dialects []int `expr:"dialects"`
	// Dialect is the response's DialectRevision.
	Dialect int `expr:"dialect"`
	// SecurityMode and Capabilities are the sender's fields.
	SecurityMode int `expr:"security_mode"`
	Capabilities int `expr:"capabilities"`
	// MaxTransactSize, MaxReadSize and MaxWriteSize are the response's limits.
	MaxTransactSize int `expr:"max_transact_size"`
	MaxReadSize     int `expr:"max_read_size"`
	MaxWriteSize    int `expr:"max_write_size"`
	// SecurityBufferLength is the response's GSS token length.
	SecurityBufferLength int `expr:"security_buffer_length"`
	// ContextCount is the declared NegotiateContextCount (SMB 3.1.1).
	ContextCount int `expr:"context_count"`
	// Contexts are the parsed contexts, at most MaxNegotiateContexts.
	Contexts []NegotiateContext `expr:"contexts"`
	// Compression is true when a COMPRESSION_CAPABILITIES context is present.
	Compression bool `expr:"compression"`
	// CompressionAlgorithms are its algorithms (0 none, 1 LZNT1, 2 LZ77,
	// 3 LZ77+Huffman, 4 Pattern_V1, 5 LZ4).
	CompressionAlgorithms []int `expr:"compression_algorithms"`
	// CompressionFlags is its Flags; CompressionChained is bit 0x1 (chained).
	CompressionFlags   int  `expr:"compression_flags"`
	CompressionChained bool `expr:"compression_chained"`
	// Ciphers, SigningAlgorithms and HashAlgorithms come from the encryption,
	// signing and preauth integrity contexts.
	Ciphers           []int `expr:"ciphers"`
	SigningAlgorithms []int `expr:"signing_algorithms"`
	HashAlgorithms    []int `expr:"hash_algorithms"`
	// Truncated is true when part of the dialects or contexts lies beyond the
	// MaxBuffered bytes the analyzer keeps.
	Truncated bool `expr:"truncated"`
	// Malformed is true when counts or offsets point outside the message.
	Malformed bool `expr:"malformed"`
}

// EventName implements analyzer.Event.
func (*Negotiate) EventName() string { return EventNegotiate }

// ChainPayload is one payload header of a chained compression transform.
type ChainPayload struct {
	// Algorithm is the payload's CompressionAlgorithm.
	Algorithm int `expr:"algorithm"`
	// Flags is the payload header's Flags.
	Flags int `expr:"flags"`
	// Length is the payload's Length (it counts the OriginalPayloadSize field
	// when that is present).
	Length int `expr:"length"`
	// OriginalSize is the uncompressed size the payload stands for:
	// OriginalPayloadSize for LZNT1/LZ77/LZ77+Huffman/LZ4, Repetitions for
	// Pattern_V1, Length for NONE, -1 when unknown.
	OriginalSize int `expr:"original_size"`
}

// CompressionTransform is the event of smb2.compression_transform: an SMB 3.1.1
// COMPRESSION_TRANSFORM_HEADER (0xFC 'SMB'). The unchained form fires as soon
// as its 16-byte header is in; the chained form fires at the end of the
// message, after its payload headers have been walked.
type CompressionTransform struct {
	// Direction is "to_server" or "to_client".
	Direction string `expr:"direction"`
	// Chained is true for the chained form (Flags has SMB2_COMPRESSION_FLAG_CHAINED).
	Chained bool `expr:"chained"`
	// OriginalSize is OriginalCompressedSegmentSize.
	OriginalSize int `expr:"original_size"`
	// Algorithm is the CompressionAlgorithm of the header (chained: of the
	// first payload); AlgorithmName names it ("LZNT1", "Pattern_V1", ...).
	Algorithm     int    `expr:"algorithm"`
	AlgorithmName string `expr:"algorithm_name"`
	// Flags is the header's Flags.
	Flags int `expr:"flags"`
	// Offset is the unchained Offset (bytes of uncompressed data after the
	// header); 0 for the chained form.
	Offset int `expr:"offset"`
	// Length is the chained form's first payload Length; for the unchained
	// form the bytes after the 16-byte header.
	Length int `expr:"length"`
	// Sum is OriginalSize + Offset computed without wrapping.
	Sum int `expr:"sum"`
	// Overflow is true when Sum does not fit in 32 bits: a receiver adding the
	// two in 32-bit arithmetic allocates a buffer that is too small.
	Overflow bool `expr:"overflow"`
	// MessageLength is the length of the NetBIOS message holding the transform.
	MessageLength int `expr:"message_length"`
	// CompressedLength is MessageLength - 16 - Offset for the unchained form
	// (negative when Offset points beyond the message).
	CompressedLength int `expr:"compressed_length"`
	// OffsetBeyondMessage is true when the unchained Offset exceeds the bytes
	// that follow the header.
	OffsetBeyondMessage bool `expr:"offset_beyond_message"`
	// Payloads are the chained payload headers, at most MaxChainPayloads.
	Payloads []ChainPayload `expr:"payloads"`
	// PayloadCount is the number of chained payload headers walked.
	PayloadCount int `expr:"payload_count"`
	// ChainOriginalTotal is the sum of the payloads' OriginalSize (it should
	// equal OriginalSize).
	ChainOriginalTotal int `expr:"chain_original_total"`
	// ChainMalformed is true when a payload overruns the message, is too short
	// for its fields, or trailing bytes cannot hold a payload header.
	ChainMalformed bool `expr:"chain_malformed"`
	// Negotiated is true when the connection's NEGOTIATE response was seen.
	Negotiated bool `expr:"negotiated"`
	// Dialect is the negotiated dialect (0 if unknown).
	Dialect int `expr:"dialect"`
	// CompressionNegotiated is true when the NEGOTIATE response carried a
	// compression context with an algorithm other than NONE.
	CompressionNegotiated bool `expr:"compression_negotiated"`
	// NegotiatedAlgorithms are the response's compression algorithms.
	NegotiatedAlgorithms []int `expr:"negotiated_algorithms"`
	// AlgorithmNegotiated is true when Algorithm is among NegotiatedAlgorithms
	// (or is NONE).
	AlgorithmNegotiated bool `expr:"algorithm_negotiated"`
	// ChainedNegotiated is true when the server accepted chained compression.
	ChainedNegotiated bool `expr:"chained_negotiated"`
	// MaxTransactSize, MaxReadSize and MaxWriteSize are the negotiated limits
	// (0 if unknown); MaxSize is the largest of the three.
	MaxTransactSize int `expr:"max_transact_size"`
	MaxReadSize     int `expr:"max_read_size"`
	MaxWriteSize    int `expr:"max_write_size"`
	MaxSize         int `expr:"max_size"`
}

// EventName implements analyzer.Event.
func (*CompressionTransform) EventName() string { return EventCompressionTransform }

// Trans is the event of smb1.trans: an SMB1 TRANSACTION, TRANSACTION2 or
// NT_TRANSACT request aggregated over its primary and secondary messages. It
// fires after the primary and after each secondary with the totals so far;
// Final is set on its last firing (complete, overflow, evicted or end).
type Trans struct {
	// State is "partial", "complete" (all declared bytes received), "overflow"
	// (bytes beyond the declared totals), "evicted" (replaced by a new primary
	// with the same ids, or dropped from a full table) or "end" (connection end).
	State string `expr:"state"`
	// Final is true when State is not "partial"; Complete when it is "complete".
	Final    bool `expr:"final"`
	Complete bool `expr:"complete"`
	// Command is the primary's command (0x25, 0x32, 0xA0); CommandName its name.
	Command     int    `expr:"command"`
	CommandName string `expr:"command_name"`
	// Subcommand is Setup[0] of TRANSACTION/TRANSACTION2 or the NT_TRANSACT Function.
	Subcommand int `expr:"subcommand"`
	// SetupCount is the primary's SetupCount; Setup0 its first setup word (-1 if none).
	SetupCount int `expr:"setup_count"`
	Setup0     int `expr:"setup0"`
	// LastCommand is the command of the message that triggered this firing.
	LastCommand int `expr:"last_command"`
	// EffectiveCommand is the primary type a server dispatches on when the
	// transaction completes: that of the last secondary received (Windows
	// matches secondaries to primaries by ids only). EffectiveSubcommand is the
	// subcommand that dispatch uses (Setup[0] for TRANSACTION2).
	EffectiveCommand    int    `expr:"effective_command"`
	EffectiveName       string `expr:"effective_name"`
	EffectiveSubcommand int    `expr:"effective_subcommand"`
	// SecondaryMismatch is true when a secondary of another transaction type
	// continued this transaction (e.g. NT_TRANSACT + TRANSACTION2_SECONDARY).
	SecondaryMismatch bool `expr:"secondary_mismatch"`
	// SecondaryCount is the number of secondaries received.
	SecondaryCount int `expr:"secondary_count"`
	// TreeID, ProcessID, UserID and MultiplexID identify the transaction.
	TreeID      int `expr:"tree_id"`
	ProcessID   int `expr:"process_id"`
	UserID      int `expr:"user_id"`
	MultiplexID int `expr:"multiplex_id"`
	// TotalParameterCount and TotalDataCount are the primary's declared totals.
	TotalParameterCount int `expr:"total_parameter_count"`
	TotalDataCount      int `expr:"total_data_count"`
	// SecondaryTotalParameterCount and SecondaryTotalDataCount are the totals
	// declared by the last secondary (-1 when none).
	SecondaryTotalParameterCount int `expr:"secondary_total_parameter_count"`
	SecondaryTotalDataCount      int `expr:"secondary_total_data_count"`
	// ParameterCount, ParameterOffset, ParameterDisplacement, DataCount,
	// DataOffset and DataDisplacement are the triggering message's fields.
	ParameterCount        int `expr:"parameter_count"`
	ParameterOffset       int `expr:"parameter_offset"`
	ParameterDisplacement int `expr:"parameter_displacement"`
	DataCount             int `expr:"data_count"`
	DataOffset            int `expr:"data_offset"`
	DataDisplacement      int `expr:"data_displacement"`
	// MaxParameterCount and MaxDataCount are the primary's response limits.
	MaxParameterCount int `expr:"max_parameter_count"`
	MaxDataCount      int `expr:"max_data_count"`
	// ParameterBytesSent and DataBytesSent count the bytes actually present in
	// the primary and secondaries so far.
	ParameterBytesSent int `expr:"parameter_bytes_sent"`
	DataBytesSent      int `expr:"data_bytes_sent"`
	// Overflow is true when a message placed bytes beyond the declared totals.
	Overflow bool `expr:"overflow"`
	// OutOfOrder is true when data arrived at a displacement other than the
	// end of the data received so far (the FEA walk stops then).
	OutOfOrder bool `expr:"out_of_order"`
	// Malformed is true when a message's parameter or data region lies outside it.
	Malformed bool `expr:"malformed"`
	// Gap is true when bytes of the transaction were lost (capture gap).
	Gap bool `expr:"gap"`
	// InfoLevel is the TRANS2 SET/QUERY_PATH/FILE_INFORMATION level (-1 otherwise).
	InfoLevel int `expr:"info_level"`
	// FEAList is true when the effective subcommand carries an OS/2 FEA list in
	// its data: TRANS2_OPEN2, TRANS2_MKDIR, or TRANS2_SET_PATH/FILE_INFORMATION
	// at level SMB_INFO_SET_EAS.
	FEAList bool `expr:"fea_list"`
	// FEAListSize is the SizeOfListInBytes field (the first 4 data bytes), -1
	// until 4 data bytes have arrived. It is read whatever the subcommand.
	FEAListSize int `expr:"fea_list_size"`
	// FEABytesSent is the number of data bytes received contiguously from
	// displacement 0: the FEA list bytes actually sent.
	FEABytesSent int `expr:"fea_bytes_sent"`
	// FEAValidSize is the extent (from the start of the list, size field
	// included) of the whole FEA entries that fit both in FEAListSize and in
	// the bytes sent: what a server shrinks the list to.
	FEAValidSize int `expr:"fea_valid_size"`
	// FEACount is the number of FEA entries walked.
	FEACount int `expr:"fea_count"`
	// FEAEntryOverruns is true when an entry extends past FEAListSize.
	FEAEntryOverruns bool `expr:"fea_entry_overruns"`
}

// EventName implements analyzer.Event.
func (*Trans) EventName() string { return EventTrans }
