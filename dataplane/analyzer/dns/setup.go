package dns

import (
	"github.com/patchgate/patchgate/dataplane/analyzer"
)

// Analyzer names. The registry keys analyzers by name and each Spec has one
// transport, so DNS registers twice; both emit the same events, which the
// "dns" spec declares.
const (
	NameUDP = "dns"
	NameTCP = "dns_tcp"
)

// Ports are the well-known DNS server ports: DNS (53), multicast DNS (5353)
// and LLMNR (5355).
var Ports = []uint16{53, 5353, 5355}

// messagePrefilter and recordPrefilter list the keys Message.Has and
// Record.Has answer.
var (
	messagePrefilter = []string{"sig", "edns", "tc", "malformed", "type:*"}
	recordPrefilter  = []string{"sig", "malformed", "type:*"}
)

func init() {
	analyzer.Register(analyzer.Spec{
		Name:      NameUDP,
		Transport: analyzer.UDP,
		Ports:     Ports,
		Detect:    DetectUDP,
		New:       func() analyzer.Analyzer { return NewUDP() },
		Events: []analyzer.EventSpec{
			{Name: EventQuery, Schema: Message{}, Prefilter: messagePrefilter,
				Doc: "a complete DNS message with QR=0 (UDP datagram or TCP length-prefixed message)"},
			{Name: EventResponse, Schema: Message{}, Prefilter: messagePrefilter,
				Doc: "a complete DNS message with QR=1 (UDP datagram or TCP length-prefixed message)"},
			{Name: EventRR, Schema: Record{}, Prefilter: recordPrefilter,
				Doc: "one resource record of a DNS message (at most MaxRRs per message), before the message's event"},
		},
	})
	analyzer.Register(analyzer.Spec{
		Name:      NameTCP,
		AppProto:  NameUDP,
		Transport: analyzer.TCP,
		Ports:     Ports,
		Detect:    DetectTCP,
		New:       func() analyzer.Analyzer { return NewTCP() },
	})
}

func dnsPort(p uint16) bool {
	for _, q := range Ports {
		if p == q {
			return true
		}
	}
	return false
}

// validMessage reports whether msg parses as a well-formed message with a
// plausible header and nothing after its records.
func validMessage(msg []byte) bool {
	if len(msg) < HeaderSize || !plausibleHeader(msg, len(msg)) {
		return false
	}
	var m Message
	d := decoder{m: &m}
	d.parse(msg)
	return !m.Malformed && !m.Truncated && m.TrailingBytes == 0
}

// DetectUDP recognises a DNS datagram. On a DNS port the answer is Yes for a
// well-formed message and Maybe otherwise (hostile traffic to a DNS server must
// still be analyzed); elsewhere a well-formed message is Maybe.
func DetectUDP(p analyzer.Probe) analyzer.Confidence {
	valid := validMessage(p.Data)
	switch {
	case dnsPort(p.ServerPort) && valid:
		return analyzer.Yes
	case dnsPort(p.ServerPort), valid:
		return analyzer.Maybe
	}
	return analyzer.No
}

// DetectTCP recognises a DNS stream by its first length-prefixed message (or
// the header of it, when the message is longer than the probe). On a DNS port
// the answer is never No, for the same reason as in DetectUDP.
func DetectTCP(p analyzer.Probe) analyzer.Confidence {
	b := p.Data
	port := dnsPort(p.ServerPort)
	if len(b) < 2+HeaderSize {
		return analyzer.NeedMore
	}
	n := int(b[0])<<8 | int(b[1])
	var valid bool
	if len(b) >= 2+n {
		valid = validMessage(b[2 : 2+n])
	} else {
		valid = plausibleHeader(b[2:], n)
	}
	switch {
	case port && valid:
		return analyzer.Yes
	case port, valid:
		return analyzer.Maybe
	}
	return analyzer.No
}
