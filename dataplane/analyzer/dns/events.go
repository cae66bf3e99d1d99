package dns

// Event names emitted by the DNS analyzers ("dns" over UDP, "dns_tcp" over TCP).
const (
	// EventQuery fires once per complete message with QR=0.
	EventQuery = "dns.query"
	// EventResponse fires once per complete message with QR=1.
	EventResponse = "dns.response"
	// EventRR fires once per resource record of a message (at most MaxRRs per
	// message), before the message's own event.
	EventRR = "dns.rr"
)

// Section names used in RR.Section.
const (
	SectionAnswer     = "answer"
	SectionAuthority  = "authority"
	SectionAdditional = "additional"
)

// Names are given in presentation form: labels joined with ".", ASCII letters
// lower-cased, no trailing dot ("www.example.com"); the root name is ".". Inside
// a label, ".", "\" and bytes outside 0x21-0x7E are escaped as \. \\ and \DDD.

// Question is one entry of the question section.
type Question struct {
	Name string `expr:"name"`
	Type int    `expr:"type"`
	// TypeName is the type's mnemonic ("A", "TKEY"), or "TYPE<n>" when unknown.
	TypeName string `expr:"type_name"`
	Class    int    `expr:"class"`

	nameSp, typeSp span
}

// SIG holds the fixed fields of a SIG (type 24, RFC 2535) or RRSIG (type 46,
// RFC 4034) record and the sizes derived from them.
type SIG struct {
	TypeCovered int    `expr:"type_covered"`
	Algorithm   int    `expr:"algorithm"`
	Labels      int    `expr:"labels"`
	OriginalTTL int64  `expr:"original_ttl"`
	Expiration  int64  `expr:"expiration"`
	Inception   int64  `expr:"inception"`
	KeyTag      int    `expr:"key_tag"`
	Signer      string `expr:"signer"`
	// SignerWireLength is the number of bytes the signer name occupies in the
	// record data (a compression pointer counts 2 bytes).
	SignerWireLength int `expr:"signer_wire_length"`
	// SignerLength is the signer name's uncompressed wire length (1-255), i.e.
	// after following compression pointers.
	SignerLength int `expr:"signer_length"`
	// SignatureLength is the number of signature bytes after the signer name:
	// rdlength - 18 - SignerWireLength.
	SignatureLength int `expr:"signature_length"`
	// AllocSize is SignerLength + 20 + SignatureLength, computed without
	// truncation: the size a Windows DNS server computes in 16 bits when it
	// caches the record (CVE-2020-1350, SIGRed). Values above 65535 wrap there.
	AllocSize int `expr:"alloc_size"`
}

// SOA holds the fields of an SOA record (type 6).
type SOA struct {
	MName   string `expr:"mname"`
	RName   string `expr:"rname"`
	Serial  int64  `expr:"serial"`
	Refresh int64  `expr:"refresh"`
	Retry   int64  `expr:"retry"`
	Expire  int64  `expr:"expire"`
	Minimum int64  `expr:"minimum"`
}

// RR is one resource record of the answer, authority or additional section.
// The typed fields are set only for the types named in their comments.
type RR struct {
	// Section is "answer", "authority" or "additional".
	Section string `expr:"section"`
	// Name is the owner name.
	Name string `expr:"name"`
	Type int    `expr:"type"`
	// TypeName is the type's mnemonic ("RRSIG"), or "TYPE<n>" when unknown.
	TypeName string `expr:"type_name"`
	// Class is the class (for OPT: the requestor's UDP payload size).
	Class int `expr:"class"`
	// TTL is the time to live (for OPT: extended rcode, version and flags).
	TTL      int64 `expr:"ttl"`
	RDLength int   `expr:"rdlength"`
	// Offset is the byte offset of the record's owner name in the message.
	Offset int `expr:"offset"`
	// Address is the textual address of A and AAAA records.
	Address string `expr:"address"`
	// Target is the name in CNAME, NS, PTR, DNAME and MX (exchange) records.
	Target string `expr:"target"`
	// Preference is the MX preference.
	Preference int `expr:"preference"`
	// TXT holds the character-strings of a TXT record (bytes as received).
	TXT []string `expr:"txt"`
	SOA SOA      `expr:"soa"`
	// SIG is set for SIG and RRSIG records.
	SIG SIG `expr:"sig"`
	// Malformed is true when the record data does not follow its type's layout
	// (e.g. an A record whose rdlength is not 4, a name running past rdlength).
	Malformed bool `expr:"malformed"`

	// Spans of the string fields in the message's string arena, resolved
	// once the whole message is parsed.
	nameSp, typeSp, addrSp, targetSp, signerSp, mnameSp, rnameSp span
	txtLo, txtHi                                                 int32
}

// EDNSOption is one option of an OPT record (RFC 6891 §6.1.2).
type EDNSOption struct {
	Code   int `expr:"code"`
	Length int `expr:"length"`
}

// EDNS describes the message's first OPT pseudo-record (RFC 6891).
type EDNS struct {
	// Present is true when the message carries an OPT record.
	Present bool `expr:"present"`
	// Count is the number of OPT records (more than one is a format error).
	Count int `expr:"count"`
	// UDPSize is the requestor's UDP payload size (the OPT class).
	UDPSize int `expr:"udp_size"`
	// ExtendedRcode is the upper 8 bits of the 12-bit rcode.
	ExtendedRcode int `expr:"extended_rcode"`
	Version       int `expr:"version"`
	// DO is the DNSSEC OK bit.
	DO bool `expr:"do"`
	// Flags is the whole 16-bit flags field (DO is its top bit).
	Flags int `expr:"flags"`
	// Options are the options in order (at most MaxEDNSOptions are kept).
	Options []EDNSOption `expr:"options"`
}

// Message is the event of dns.query and dns.response: one complete DNS message
// and the statistics computed over all of its records.
type Message struct {
	name string

	// Transport is "udp" or "tcp".
	Transport string `expr:"transport"`
	// Index is the 0-based number of this message in its direction of the flow.
	Index int `expr:"index"`
	// Length is the message length in bytes: the TCP length prefix, or the UDP
	// payload length.
	Length int `expr:"length"`

	ID     int  `expr:"id"`
	QR     bool `expr:"qr"`
	Opcode int  `expr:"opcode"`
	AA     bool `expr:"aa"`
	TC     bool `expr:"tc"`
	RD     bool `expr:"rd"`
	RA     bool `expr:"ra"`
	// Z is the reserved header bit (must be zero).
	Z  bool `expr:"z"`
	AD bool `expr:"ad"`
	CD bool `expr:"cd"`
	// Rcode is the 4-bit header rcode (see EDNS.ExtendedRcode for the rest).
	Rcode int `expr:"rcode"`

	// Section counts as declared in the header.
	QDCount int `expr:"qdcount"`
	ANCount int `expr:"ancount"`
	NSCount int `expr:"nscount"`
	ARCount int `expr:"arcount"`

	// Questions are the parsed questions (at most MaxQuestions are kept).
	Questions []Question `expr:"questions"`
	// QName, QType, QTypeName and QClass repeat the first question ("" and 0
	// when there is none).
	QName     string `expr:"qname"`
	QType     int    `expr:"qtype"`
	QTypeName string `expr:"qtype_name"`
	QClass    int    `expr:"qclass"`

	// RRs are the parsed records of all sections in wire order (at most MaxRRs,
	// and only while their strings fit in MaxStringBytes).
	RRs []RR `expr:"rrs"`
	// Answers, Authority and Additional are the parts of RRs in each section.
	Answers    []RR `expr:"answers"`
	Authority  []RR `expr:"authority"`
	Additional []RR `expr:"additional"`
	// RRCount is the number of records parsed, including those beyond MaxRRs.
	RRCount int `expr:"rr_count"`
	// RRsTruncated is true when RRs holds only the first records (MaxRRs or
	// MaxStringBytes reached).
	RRsTruncated bool `expr:"rrs_truncated"`

	EDNS EDNS `expr:"edns"`

	// SigCount is the number of SIG and RRSIG records (all of them, not only
	// those kept in RRs).
	SigCount int `expr:"sig_count"`
	// SigMaxRDLength is the largest rdlength of a SIG or RRSIG record.
	SigMaxRDLength int `expr:"sig_max_rdlength"`
	// SigMaxAllocSize is the largest SIG.AllocSize of the message's SIG and
	// RRSIG records (CVE-2020-1350 overflows when it exceeds 65535).
	SigMaxAllocSize int `expr:"sig_max_alloc_size"`
	// MaxRDLength is the largest rdlength of any record.
	MaxRDLength int `expr:"max_rdlength"`
	// MaxNameLength is the longest uncompressed wire length of any name.
	MaxNameLength int `expr:"max_name_length"`
	// MaxNameJumps is the largest number of compression pointers followed to
	// read one name.
	MaxNameJumps int `expr:"max_name_jumps"`
	// TrailingBytes counts bytes after the last record the header announced.
	TrailingBytes int `expr:"trailing_bytes"`
	// Truncated is true when the message ended before all records the header
	// announced (normal for a UDP response with TC set by some servers).
	Truncated bool `expr:"truncated"`
	// Malformed is true when the message breaks the wire format: short header,
	// truncation, a record running past the end, a bad name (forward or looping
	// compression pointer, too long, too many labels or jumps, reserved label
	// type) or record data not matching its type.
	Malformed bool `expr:"malformed"`
	// MalformedReason is the first problem found, as a stable code
	// ("short_header", "truncated", "rdata_overrun", "name_pointer_forward",
	// "name_too_many_jumps", "name_too_long", "name_too_many_labels",
	// "name_bad_label_type", "bad_rdata"), or "".
	MalformedReason string `expr:"malformed_reason"`

	types typeSet
}

// EventName implements analyzer.Event.
func (m *Message) EventName() string { return m.name }

// Has implements analyzer.Prefilterable. Keys: "sig" (a SIG or RRSIG record is
// present), "edns" (an OPT record is present), "tc" (TC bit set), "malformed",
// and "type:<mnemonic>" (a question or record of that type, e.g. "type:tkey").
func (m *Message) Has(key string) bool {
	switch key {
	case "sig":
		return m.SigCount > 0
	case "edns":
		return m.EDNS.Present
	case "tc":
		return m.TC
	case "malformed":
		return m.Malformed
	}
	if t, ok := prefilterType(key); ok {
		return m.types.has(t)
	}
	return false
}

// Record is the event of dns.rr: one resource record with the context of the
// message it belongs to. The RR fields are promoted (name, type, sig, ...).
type Record struct {
	// Transport is "udp" or "tcp".
	Transport string `expr:"transport"`
	// MessageIndex is the Index of the enclosing message.
	MessageIndex int `expr:"message_index"`
	// MessageLength is the Length of the enclosing message.
	MessageLength int  `expr:"message_length"`
	ID            int  `expr:"id"`
	QR            bool `expr:"qr"`
	Opcode        int  `expr:"opcode"`
	// Index is the 0-based position of the record in the message (all sections).
	Index int `expr:"index"`
	RR
}

// EventName implements analyzer.Event.
func (r *Record) EventName() string { return EventRR }

// Has implements analyzer.Prefilterable. Keys: "sig" (the record is SIG or
// RRSIG), "malformed", and "type:<mnemonic>" (the record has that type).
func (r *Record) Has(key string) bool {
	switch key {
	case "sig":
		return r.Type == TypeSIG || r.Type == TypeRRSIG
	case "malformed":
		return r.Malformed
	}
	if t, ok := prefilterType(key); ok {
		return r.Type == int(t)
	}
	return false
}
