package tls

// suite describes how a cipher suite protects a record, enough to compute the
// size a plaintext of known length encrypts to.
type suite struct {
	kind  uint8 // suiteStream, suiteCBC or suiteAEAD
	mac   uint8 // HMAC length (stream and CBC)
	block uint8 // block size (CBC)
	nonce uint8 // explicit nonce bytes in each record (TLS 1.2 AEAD)
	tag   uint8 // authentication tag (AEAD)
}

const (
	suiteStream = 1 + iota // RC4 and NULL encryption: plaintext + MAC
	suiteCBC               // [IV] + CBC(plaintext + MAC + padding)
	suiteAEAD              // explicit nonce + ciphertext + tag
)

var (
	rc4MD5   = suite{kind: suiteStream, mac: 16}
	rc4SHA   = suite{kind: suiteStream, mac: 20}
	nullSHA2 = suite{kind: suiteStream, mac: 32}
	des3SHA  = suite{kind: suiteCBC, mac: 20, block: 8}
	aesSHA   = suite{kind: suiteCBC, mac: 20, block: 16}
	aesSHA2  = suite{kind: suiteCBC, mac: 32, block: 16}
	aesSHA3  = suite{kind: suiteCBC, mac: 48, block: 16}
	gcm      = suite{kind: suiteAEAD, nonce: 8, tag: 16}
	ccm8     = suite{kind: suiteAEAD, nonce: 8, tag: 8}
	chacha   = suite{kind: suiteAEAD, tag: 16}
	tls13    = suite{kind: suiteAEAD, tag: 16}
	tls13c8  = suite{kind: suiteAEAD, tag: 8}
)

// suites maps the common cipher suites (IANA TLS Cipher Suites registry) to
// their record protection. Suites not listed give an unknown minimum.
var suites = map[uint16]suite{
	0x0001: rc4MD5, 0x0002: rc4SHA, 0x003b: nullSHA2, // NULL encryption
	0x0004: rc4MD5, 0x0005: rc4SHA, 0xc007: rc4SHA, 0xc011: rc4SHA,
	0x000a: des3SHA, 0x0013: des3SHA, 0x0016: des3SHA, 0xc008: des3SHA, 0xc012: des3SHA,
	0x002f: aesSHA, 0x0032: aesSHA, 0x0033: aesSHA, 0x0035: aesSHA, 0x0038: aesSHA, 0x0039: aesSHA,
	0x0041: aesSHA, 0x0045: aesSHA, 0x0084: aesSHA, 0x0088: aesSHA, // Camellia, same layout
	0xc004: aesSHA, 0xc005: aesSHA, 0xc009: aesSHA, 0xc00a: aesSHA,
	0xc00e: aesSHA, 0xc00f: aesSHA, 0xc013: aesSHA, 0xc014: aesSHA,
	0x003c: aesSHA2, 0x003d: aesSHA2, 0x0067: aesSHA2, 0x006b: aesSHA2, 0xc023: aesSHA2, 0xc027: aesSHA2,
	0xc024: aesSHA3, 0xc028: aesSHA3,
	0x009c: gcm, 0x009d: gcm, 0x009e: gcm, 0x009f: gcm, 0xc02b: gcm, 0xc02c: gcm, 0xc02f: gcm, 0xc030: gcm,
	0xc09c: gcm, 0xc09d: gcm, 0xc09e: gcm, 0xc09f: gcm, 0xc0ac: gcm, 0xc0ad: gcm, // CCM: GCM layout
	0xc0a0: ccm8, 0xc0a1: ccm8, 0xc0a2: ccm8, 0xc0a3: ccm8, 0xc0ae: ccm8, 0xc0af: ccm8,
	0xcca8: chacha, 0xcca9: chacha, 0xccaa: chacha,
	0x1301: tls13, 0x1302: tls13, 0x1303: tls13, 0x1304: tls13, 0x1305: tls13c8,
}

// truncatedMAC is the HMAC length with the truncated_hmac extension (RFC 6066 §7).
const truncatedMAC = 10

// minHeartbeatRecord returns the smallest record length that can carry a
// conforming heartbeat message (MinHeartbeatLength bytes of plaintext) under
// the current protection, or 0 when it cannot be known.
func (a *Analyzer) minHeartbeatRecord(encrypted bool) int {
	if !encrypted {
		return MinHeartbeatLength
	}
	c := &a.c
	if c.serverVersion == 0 || c.compression != 0 {
		return 0
	}
	s, ok := suites[c.cipherSuite]
	if !ok {
		return 0
	}
	p := MinHeartbeatLength
	if c.tls13 {
		if s.kind != suiteAEAD {
			return 0
		}
		return p + 1 + int(s.tag) // inner content type + tag
	}
	mac := int(s.mac)
	if c.truncatedHMAC {
		mac = truncatedMAC
	}
	switch s.kind {
	case suiteStream:
		return p + mac
	case suiteCBC:
		bs := int(s.block)
		iv := 0
		if c.serverVersion >= 0x0302 { // TLS 1.1+: explicit IV per record
			iv = bs
		}
		if c.encThenMAC { // RFC 7366: MAC over the ciphertext
			return iv + roundUp(p+1, bs) + mac
		}
		return iv + roundUp(p+mac+1, bs) // at least one padding-length byte
	case suiteAEAD:
		return int(s.nonce) + p + int(s.tag)
	}
	return 0
}

func roundUp(n, to int) int { return (n + to - 1) / to * to }
