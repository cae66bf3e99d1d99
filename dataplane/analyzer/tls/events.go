package tls

// Event names emitted by the TLS analyzer.
const (
	EventRecord           = "tls.record"
	EventHandshake        = "tls.handshake"
	EventClientHello      = "tls.client_hello"
	EventServerHello      = "tls.server_hello"
	EventCertificate      = "tls.certificate"
	EventChangeCipherSpec = "tls.change_cipher_spec"
	EventAlert            = "tls.alert"
	EventHeartbeat        = "tls.heartbeat"
)

// Record content types (RFC 8446 §5.1, RFC 6520 §3).
const (
	ContentChangeCipherSpec = 20
	ContentAlert            = 21
	ContentHandshake        = 22
	ContentApplicationData  = 23
	ContentHeartbeat        = 24
)

// Handshake message types the analyzer parses (RFC 8446 §4, RFC 5246 §7.4).
const (
	HandshakeClientHello       = 1
	HandshakeServerHello       = 2
	HandshakeCertificate       = 11
	HandshakeServerHelloDone   = 14
	HandshakeClientKeyExchange = 16
)

// Heartbeat message types (RFC 6520 §3).
const (
	HeartbeatRequest  = 1
	HeartbeatResponse = 2
)

// Record is the event of tls.record: one record header, fired as soon as the
// five header bytes (or the SSLv2 header of an SSLv2-compatible ClientHello)
// have arrived, before the body.
type Record struct {
	// ContentType is the record's content type (20..24); 22 for an SSLv2
	// ClientHello.
	ContentType int `expr:"content_type"`
	// Version is the record-layer version, e.g. 0x0301; for an SSLv2
	// ClientHello the version field of the hello (0x0002 or 0x0300..0x0304).
	Version int `expr:"version"`
	// Length is the length of the record body in bytes (the SSLv2 message
	// length for an SSLv2 ClientHello).
	Length int `expr:"length"`
	// Encrypted is true when the body cannot be read as plaintext: the sender
	// switched to encryption (ChangeCipherSpec, or TLS 1.3 after ServerHello),
	// the record is application data, or a gap hid the switch.
	Encrypted bool `expr:"encrypted"`
	// HandshakeComplete is true once both sides have switched to encryption
	// and each has sent at least one encrypted record (its Finished).
	HandshakeComplete bool `expr:"handshake_complete"`
	// FromClient is true for records sent by the client.
	FromClient bool `expr:"from_client"`
	// Direction is "to_server" or "to_client".
	Direction string `expr:"direction"`
	// Index is the 0-based number of this record in its direction.
	Index int `expr:"index"`
	// SSLv2 is true for an SSLv2-compatible (or SSLv2) ClientHello.
	SSLv2 bool `expr:"sslv2"`
	// Midstream is true when a gap made the analyzer lose the record
	// boundaries of this direction before this record (it resynchronised).
	Midstream bool `expr:"midstream"`
}

// EventName implements analyzer.Event.
func (*Record) EventName() string { return EventRecord }

// Handshake is the event of tls.handshake: the header of one plaintext
// handshake message, fired as soon as its four header bytes have arrived.
type Handshake struct {
	// MsgType is the handshake message type (1 ClientHello, 2 ServerHello, ...).
	MsgType int `expr:"msg_type"`
	// Length is the declared body length (24-bit).
	Length int `expr:"length"`
	// FromClient is true for messages sent by the client.
	FromClient bool `expr:"from_client"`
	// Index is the 0-based number of this message in its direction.
	Index int `expr:"index"`
	// HandshakeComplete is the flow's handshake state when the message starts.
	HandshakeComplete bool `expr:"handshake_complete"`
}

// EventName implements analyzer.Event.
func (*Handshake) EventName() string { return EventHandshake }

// ClientHello is the event of tls.client_hello, fired when the whole message
// has been reassembled (possibly from several records).
type ClientHello struct {
	// FromClient is true when the client sent it (always, unless the peer
	// misbehaves).
	FromClient bool `expr:"from_client"`
	// Index is the 0-based number of ClientHellos on the connection (1 after a
	// HelloRetryRequest).
	Index int `expr:"index"`
	// Length is the handshake message length.
	Length int `expr:"length"`
	// RecordVersion is the version of the record that carried the start of
	// the message.
	RecordVersion int `expr:"record_version"`
	// Version is legacy_version (client_version), e.g. 0x0303.
	Version int `expr:"version"`
	// SSLv2 is true for an SSLv2-compatible ClientHello.
	SSLv2 bool `expr:"sslv2"`
	// SessionIDLength is the length of the session id.
	SessionIDLength int `expr:"session_id_length"`
	// CipherSuites are the offered suites in order (SSLv2 specs as 24-bit
	// values; at most MaxListItems kept).
	CipherSuites []int `expr:"cipher_suites"`
	// CipherSuiteCount is the number of offered suites (even beyond those kept).
	CipherSuiteCount int `expr:"cipher_suite_count"`
	// CompressionMethods are the offered compression methods.
	CompressionMethods []int `expr:"compression_methods"`
	// Extensions are the extension types in order (at most MaxExtensions kept).
	Extensions []int `expr:"extensions"`
	// ExtensionCount is the number of extensions (even beyond those kept).
	ExtensionCount int `expr:"extension_count"`
	// DuplicateExtension is true when an extension type appears twice.
	DuplicateExtension bool `expr:"duplicate_extension"`
	// ServerName is the first host_name of the server_name extension.
	ServerName string `expr:"server_name"`
	// ServerNames are all host_name entries (at most MaxNames kept).
	ServerNames []string `expr:"server_names"`
	// ALPN are the offered application protocols (at most MaxNames kept).
	ALPN []string `expr:"alpn"`
	// SupportedVersions are the versions of the supported_versions extension.
	SupportedVersions []int `expr:"supported_versions"`
	// SupportedGroups are the groups of the supported_groups extension.
	SupportedGroups []int `expr:"supported_groups"`
	// SignatureAlgorithms are the schemes of signature_algorithms.
	SignatureAlgorithms []int `expr:"signature_algorithms"`
	// Heartbeat is true when the heartbeat extension (15) is present.
	Heartbeat bool `expr:"heartbeat"`
	// HeartbeatMode is its mode: 1 peer_allowed_to_send, 2
	// peer_not_allowed_to_send (0 when absent or empty).
	HeartbeatMode int `expr:"heartbeat_mode"`
	// MaxVersion is the highest version offered (supported_versions when
	// present, else Version).
	MaxVersion int `expr:"max_version"`
	// Malformed is true when the message does not follow the grammar; the
	// fields hold what was parsed before the error.
	Malformed bool `expr:"malformed"`
}

// EventName implements analyzer.Event.
func (*ClientHello) EventName() string { return EventClientHello }

// ServerHello is the event of tls.server_hello.
type ServerHello struct {
	// FromClient is true when the client sent it (a misbehaving peer).
	FromClient bool `expr:"from_client"`
	// Index is the 0-based number of ServerHellos on the connection.
	Index         int `expr:"index"`
	Length        int `expr:"length"`
	RecordVersion int `expr:"record_version"`
	// Version is legacy_version (server_version).
	Version int `expr:"version"`
	// SelectedVersion is the negotiated version: supported_versions when
	// present (0x0304 for TLS 1.3), else Version.
	SelectedVersion int `expr:"selected_version"`
	// HelloRetryRequest is true when the random is the HelloRetryRequest value.
	HelloRetryRequest bool `expr:"hello_retry_request"`
	SessionIDLength   int  `expr:"session_id_length"`
	CipherSuite       int  `expr:"cipher_suite"`
	CompressionMethod int  `expr:"compression_method"`
	// Extensions are the extension types in order.
	Extensions         []int `expr:"extensions"`
	ExtensionCount     int   `expr:"extension_count"`
	DuplicateExtension bool  `expr:"duplicate_extension"`
	// ALPN is the selected application protocol ("" when absent).
	ALPN          string `expr:"alpn"`
	Heartbeat     bool   `expr:"heartbeat"`
	HeartbeatMode int    `expr:"heartbeat_mode"`
	Malformed     bool   `expr:"malformed"`
}

// EventName implements analyzer.Event.
func (*ServerHello) EventName() string { return EventServerHello }

// Certificate is the event of tls.certificate (a plaintext Certificate
// message, TLS 1.2 and earlier): counts and sizes only.
type Certificate struct {
	FromClient bool `expr:"from_client"`
	// Length is the handshake message length.
	Length int `expr:"length"`
	// ListLength is the declared certificate_list length.
	ListLength int `expr:"list_length"`
	// Count is the number of certificates parsed.
	Count int `expr:"count"`
	// Sizes are the certificate sizes in order (at most MaxListItems kept).
	Sizes []int `expr:"sizes"`
	// MaxSize is the largest certificate size.
	MaxSize int `expr:"max_size"`
	// Truncated is true when the message exceeded MaxHandshakeMessage and only
	// its first part was parsed.
	Truncated bool `expr:"truncated"`
	// Malformed is true when the lengths do not add up.
	Malformed bool `expr:"malformed"`
}

// EventName implements analyzer.Event.
func (*Certificate) EventName() string { return EventCertificate }

// ChangeCipherSpec is the event of tls.change_cipher_spec (a plaintext
// ChangeCipherSpec record), fired at the end of the record.
type ChangeCipherSpec struct {
	FromClient bool `expr:"from_client"`
	// Length is the record length (1 when well-formed).
	Length int `expr:"length"`
	// Value is the first body byte (1 when well-formed), -1 for an empty record.
	Value int `expr:"value"`
	// Index is the 0-based number of ChangeCipherSpec records in this direction.
	Index int `expr:"index"`
	// KeyExchangeSent is true when the client has sent a ClientKeyExchange.
	KeyExchangeSent bool `expr:"key_exchange_sent"`
	// ServerHelloDone is true when the server has sent ServerHelloDone (a
	// full, not abbreviated, TLS 1.2-style handshake).
	ServerHelloDone bool `expr:"server_hello_done"`
	// PeerChangeCipherSpec is true when the other side already sent one.
	PeerChangeCipherSpec bool `expr:"peer_change_cipher_spec"`
	// ServerHelloSeen is true when a ServerHello was seen.
	ServerHelloSeen bool `expr:"server_hello_seen"`
	// ServerVersion is the version the ServerHello selected (0 before it).
	ServerVersion int `expr:"server_version"`
	// ClientOffersTLS13 is true when the ClientHello offered TLS 1.3.
	ClientOffersTLS13 bool `expr:"client_offers_tls13"`
	HandshakeComplete bool `expr:"handshake_complete"`
	// HandshakeGap is true when a gap hid handshake bytes of either side, so
	// KeyExchangeSent and ServerHelloDone may miss a message.
	HandshakeGap bool `expr:"handshake_gap"`
}

// EventName implements analyzer.Event.
func (*ChangeCipherSpec) EventName() string { return EventChangeCipherSpec }

// Alert is the event of tls.alert: one plaintext alert (encrypted alerts are
// only visible as tls.record with content_type 21).
type Alert struct {
	FromClient bool `expr:"from_client"`
	// Level is 1 (warning) or 2 (fatal).
	Level int `expr:"level"`
	// Description is the alert description code (e.g. 40 handshake_failure).
	Description int `expr:"description"`
	// Fatal is true when Level is 2.
	Fatal             bool `expr:"fatal"`
	HandshakeComplete bool `expr:"handshake_complete"`
}

// EventName implements analyzer.Event.
func (*Alert) EventName() string { return EventAlert }

// Heartbeat is the event of tls.heartbeat, one per heartbeat record (RFC 6520).
// For a plaintext record it fires once the type and payload_length bytes have
// arrived (or at the end of a shorter record); for an encrypted record it
// fires on the record header, and only record-level fields are known.
type Heartbeat struct {
	FromClient bool `expr:"from_client"`
	// Direction is "to_server" or "to_client".
	Direction string `expr:"direction"`
	// Encrypted is true when the record body is encrypted.
	Encrypted bool `expr:"encrypted"`
	// HandshakeComplete is the flow's handshake state when the record starts.
	HandshakeComplete bool `expr:"handshake_complete"`
	// RecordLength is the length of the record carrying the message.
	RecordLength int `expr:"record_length"`
	// MessageType is 1 (request) or 2 (response) or another raw value;
	// -1 when unknown (encrypted or empty record).
	MessageType int `expr:"message_type"`
	// PayloadLength is the declared payload_length; -1 when unknown
	// (encrypted, or the record is shorter than three bytes).
	PayloadLength int `expr:"payload_length"`
	// PayloadSize is the payload actually present:
	// min(payload_length, record_length-3); -1 when unknown.
	PayloadSize int `expr:"payload_size"`
	// PaddingLength is record_length-3-payload_length when that is not
	// negative, else 0; -1 when unknown.
	PaddingLength int `expr:"padding_length"`
	// Truncated is true for a plaintext record shorter than three bytes.
	Truncated bool `expr:"truncated"`
	// MinRecordLength is the smallest record length that can carry a
	// conforming heartbeat message (1+2+0 payload+16 padding = 19 bytes of
	// plaintext) under the current protection: 19 for plaintext, the
	// encrypted size under the negotiated cipher suite otherwise; 0 when the
	// suite or compression makes it unknown.
	MinRecordLength int `expr:"min_record_length"`
	// PeerRecordLength is the record length of the last heartbeat record
	// the other side sent (-1 when none): a response far larger than the
	// request leaks memory.
	PeerRecordLength int `expr:"peer_record_length"`
	// Negotiated is true when both hellos carried the heartbeat extension.
	Negotiated bool `expr:"negotiated"`
	// Index is the 0-based number of heartbeat records in this direction.
	Index int `expr:"index"`
	// Version is the record-layer version.
	Version int `expr:"version"`
	// Midstream is as in tls.record.
	Midstream bool `expr:"midstream"`
}

// EventName implements analyzer.Event.
func (*Heartbeat) EventName() string { return EventHeartbeat }
