package tls

import (
	"github.com/patchgate/patchgate/dataplane"
	"github.com/patchgate/patchgate/dataplane/analyzer"
)

// Name is the analyzer's registered name (and EVE app_proto).
const Name = "tls"

// Ports are the well-known ports of TLS services: HTTPS, HTTPS-alt, SMTPS,
// IMAPS, POP3S, LDAPS, FTPS data and control, SIP-TLS.
var Ports = []uint16{443, 8443, 465, 993, 995, 636, 989, 990, 5061}

func init() {
	analyzer.Register(analyzer.Spec{
		Name:      Name,
		Transport: analyzer.TCP,
		Ports:     Ports,
		Detect:    Detect,
		New:       func() analyzer.Analyzer { return New() },
		Events: []analyzer.EventSpec{
			{Name: EventRecord, Schema: Record{}, Doc: "every record header, before its body"},
			{Name: EventHandshake, Schema: Handshake{}, Doc: "every plaintext handshake message header"},
			{Name: EventClientHello, Schema: ClientHello{}, Doc: "a complete ClientHello (TLS or SSLv2-compatible)"},
			{Name: EventServerHello, Schema: ServerHello{}, Doc: "a complete ServerHello (or HelloRetryRequest)"},
			{Name: EventCertificate, Schema: Certificate{}, Doc: "a plaintext Certificate message: count and sizes"},
			{Name: EventChangeCipherSpec, Schema: ChangeCipherSpec{}, Doc: "a plaintext ChangeCipherSpec record, at its end"},
			{Name: EventAlert, Schema: Alert{}, Doc: "a plaintext alert"},
			{Name: EventHeartbeat, Schema: Heartbeat{}, Doc: "a heartbeat record, plaintext or encrypted"},
		},
	})
}

// Detect recognises TLS by content on any port: a record header with content
// type 20..24, version 3.0..3.4 and a length up to MaxRecordLength, or (from
// the client) an SSLv2-compatible ClientHello. With no data yet, a well-known
// port makes it Maybe.
func Detect(p analyzer.Probe) analyzer.Confidence {
	b := p.Data
	if len(b) == 0 {
		for _, port := range Ports {
			if port == p.ServerPort {
				return analyzer.Maybe
			}
		}
		return analyzer.NeedMore
	}
	if b[0]&0x80 != 0 {
		if p.Dir != dataplane.ToServer {
			return analyzer.No
		}
		return detectSSLv2(b)
	}
	if b[0] < ContentChangeCipherSpec || b[0] > ContentHeartbeat {
		return analyzer.No
	}
	if len(b) >= 2 && b[1] != 3 {
		return analyzer.No
	}
	if len(b) >= 3 && b[2] > 4 {
		return analyzer.No
	}
	if len(b) < recordHeaderLen {
		return analyzer.NeedMore
	}
	if n := int(b[3])<<8 | int(b[4]); n == 0 || n > MaxRecordLength {
		return analyzer.No
	}
	return analyzer.Yes
}

// detectSSLv2 checks an SSLv2 record header carrying a ClientHello with
// version 0x0002 or 0x0300..0x0304.
func detectSSLv2(b []byte) analyzer.Confidence {
	if len(b) >= 2 && (int(b[0]&0x7f)<<8|int(b[1])) < minSSLv2Hello {
		return analyzer.No
	}
	if len(b) >= 3 && b[2] != HandshakeClientHello {
		return analyzer.No
	}
	if len(b) >= 4 && b[3] != 0 && b[3] != 3 {
		return analyzer.No
	}
	if len(b) >= 5 && ((b[3] == 0 && b[4] != 2) || (b[3] == 3 && b[4] > 4)) {
		return analyzer.No
	}
	if len(b) < 5 {
		return analyzer.NeedMore
	}
	return analyzer.Yes
}
