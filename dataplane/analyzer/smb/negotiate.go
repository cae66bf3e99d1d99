package smb

import (
	"github.com/patchgate/patchgate/dataplane"
	"github.com/patchgate/patchgate/dataplane/analyzer"
)

// Negotiate context types (MS-SMB2 2.2.3.1).
const (
	ctxPreauth     = 0x0001
	ctxEncryption  = 0x0002
	ctxCompression = 0x0003
	ctxSigning     = 0x0008
)

// resetNegotiate clears the reusable negotiate event, keeping slice capacity.
func (a *Analyzer) resetNegotiate() *Negotiate {
	n := &a.neg
	*n = Negotiate{
		Dialects:              n.Dialects[:0],
		Contexts:              n.Contexts[:0],
		CompressionAlgorithms: n.CompressionAlgorithms[:0],
		Ciphers:               n.Ciphers[:0],
		SigningAlgorithms:     n.SigningAlgorithms[:0],
		HashAlgorithms:        n.HashAlgorithms[:0],
	}
	return n
}

// parseNegotiate fires smb2.negotiate for the NEGOTIATE message whose first
// bytes (header included) are h, and records a response's outcome in the
// connection state. The body's StructureSize has been checked.
func (a *Analyzer) parseNegotiate(dir dataplane.Direction, h []byte, resp bool, sink analyzer.Sink) {
	d := &a.dir[dir]
	msgSize := d.end - d.base
	n := a.resetNegotiate()
	n.Direction = directionName(uint8(dir))
	n.IsResponse = resp
	n.MessageID = int(int64(le64(h[24:])))
	b := h[smb2HeaderSize:]
	if !resp {
		if len(b) < 36 {
			n.Truncated = true
			sink.Event(n)
			return
		}
		n.DialectCount = int(le16(b[2:]))
		n.SecurityMode = int(le16(b[4:]))
		n.Capabilities = int(le32(b[8:]))
		has311 := false
		for i := 0; i < n.DialectCount; i++ {
			at := smb2HeaderSize + 36 + 2*i
			if at+2 > msgSize {
				n.Malformed = true
				break
			}
			if at+2 > len(h) {
				n.Truncated = true
				break
			}
			v := le16(h[at:])
			if v == dialect311 {
				has311 = true
			}
			if len(n.Dialects) < MaxDialects {
				n.Dialects = append(n.Dialects, int(v))
			}
		}
		if has311 {
			n.ContextCount = int(le16(b[32:]))
			a.parseContexts(n, h, int(le32(b[28:])), msgSize)
		}
		sink.Event(n)
		return
	}
	if len(b) < 64 {
		n.Truncated = true
		sink.Event(n)
		return
	}
	n.SecurityMode = int(le16(b[2:]))
	n.Dialect = int(le16(b[4:]))
	n.Capabilities = int(le32(b[24:]))
	n.MaxTransactSize = int(le32(b[28:]))
	n.MaxReadSize = int(le32(b[32:]))
	n.MaxWriteSize = int(le32(b[36:]))
	n.SecurityBufferLength = int(le16(b[58:]))
	if n.Dialect == dialect311 {
		n.ContextCount = int(le16(b[6:]))
		a.parseContexts(n, h, int(le32(b[60:])), msgSize)
	}
	c := &a.conn
	c.negotiated = true
	c.dialect = uint16(n.Dialect)
	c.maxTransact = le32(b[28:])
	c.maxRead = le32(b[32:])
	c.maxWrite = le32(b[36:])
	c.compChained = n.Compression && n.CompressionChained
	c.compAlgs = c.compAlgs[:0]
	for _, v := range n.CompressionAlgorithms {
		c.compAlgs = append(c.compAlgs, uint16(v))
	}
	sink.Event(n)
}

// parseContexts walks the negotiate context list at off (from the header
// start). Contexts are 8-byte aligned.
func (a *Analyzer) parseContexts(n *Negotiate, h []byte, off, msgSize int) {
	count := n.ContextCount
	if count > MaxNegotiateContexts {
		count = MaxNegotiateContexts
		n.Truncated = true
	}
	at := off
	for i := 0; i < count; i++ {
		at = (at + 7) &^ 7
		if at < 0 || at+8 > msgSize {
			n.Malformed = true
			return
		}
		if at+8 > len(h) {
			n.Truncated = true
			return
		}
		typ := le16(h[at:])
		dl := int(le16(h[at+2:]))
		n.Contexts = append(n.Contexts, NegotiateContext{Type: int(typ), Length: dl})
		data := at + 8
		if data+dl > msgSize {
			n.Malformed = true
			return
		}
		if data+dl > len(h) {
			n.Truncated = true
			return
		}
		parseContext(n, typ, h[data:data+dl])
		at = data + dl
	}
}

// parseContext reads the fields of one context the analyzer reports.
func parseContext(n *Negotiate, typ uint16, b []byte) {
	switch typ {
	case ctxCompression:
		n.Compression = true
		if len(b) < 8 {
			n.Malformed = true
			return
		}
		n.CompressionFlags = int(le32(b[4:]))
		n.CompressionChained = n.CompressionFlags&compressFlagChain != 0
		n.CompressionAlgorithms = appendU16List(n.CompressionAlgorithms, int(le16(b)), b[8:], &n.Malformed)
	case ctxEncryption:
		if len(b) < 2 {
			n.Malformed = true
			return
		}
		n.Ciphers = appendU16List(n.Ciphers, int(le16(b)), b[2:], &n.Malformed)
	case ctxSigning:
		if len(b) < 2 {
			n.Malformed = true
			return
		}
		n.SigningAlgorithms = appendU16List(n.SigningAlgorithms, int(le16(b)), b[2:], &n.Malformed)
	case ctxPreauth:
		if len(b) < 4 {
			n.Malformed = true
			return
		}
		n.HashAlgorithms = appendU16List(n.HashAlgorithms, int(le16(b)), b[4:], &n.Malformed)
	}
}

// appendU16List appends count little-endian 16-bit values from b (at most
// MaxAlgorithms); it sets *bad when b is too short.
func appendU16List(dst []int, count int, b []byte, bad *bool) []int {
	for i := 0; i < count; i++ {
		if 2*i+2 > len(b) {
			*bad = true
			break
		}
		if i < MaxAlgorithms {
			dst = append(dst, int(le16(b[2*i:])))
		}
	}
	return dst
}
