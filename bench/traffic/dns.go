package traffic

import (
	"encoding/binary"

	"github.com/patchgate/patchgate/dataplane"
	"github.com/patchgate/patchgate/dataplane/gen"
)

// DNS record types used by the benign mix.
const (
	dnsA     = 1
	dnsCNAME = 5
	dnsTXT   = 16
	dnsAAAA  = 28
	dnsOPT   = 41
)

var (
	dnsLabels  = [...]string{"www", "api", "cdn", "mail", "img", "static", "auth", "m", "login", "assets"}
	dnsDomains = [...]string{"example.com", "example.net", "example.org", "shop.example", "corp.test", "svc.test"}
	qtypeNames = map[int]string{dnsA: "A", dnsAAAA: "AAAA", dnsTXT: "TXT"}
)

// dnsUDPFlow adds one resolver socket's exchange: a query and its
// response, or (as stub resolvers do) A and AAAA for the same name from the
// same port.
func (b *builder) dnsUDPFlow(f *gen.UDPFlow) {
	name := b.dnsName()
	types := []int{b.pickQtype()}
	if types[0] == dnsA && b.r.chance(0.5) {
		types = append(types, dnsAAAA)
	}
	for _, qt := range types {
		q, resp := b.dnsExchange(name, qt, false)
		f.Send(dataplane.ToServer, q)
		f.Send(dataplane.ToClient, resp)
	}
}

// dnsTCPFlow adds a DNS-over-TCP connection (RFC 7766): 1–3 length-prefixed
// queries and responses, larger TXT answers than UDP carries.
func (b *builder) dnsTCPFlow(s *gen.TCPSession) {
	for i, n := 0, b.r.between(1, 3); i < n; i++ {
		q, resp := b.dnsExchange(b.dnsName(), b.pickQtype(), true)
		s.Send(dataplane.ToServer, lengthPrefixed(q))
		s.Send(dataplane.ToClient, lengthPrefixed(resp))
	}
	s.Close(dataplane.ToServer)
}

func lengthPrefixed(m []byte) []byte {
	out := make([]byte, 2, 2+len(m))
	binary.BigEndian.PutUint16(out, uint16(len(m)))
	return append(out, m...)
}

// qtypeShares are the shares of A, AAAA and TXT queries.
var qtypeShares = []float64{55, 35, 10}

func (b *builder) pickQtype() int {
	switch b.r.weighted(qtypeShares) {
	case 0:
		return dnsA
	case 1:
		return dnsAAAA
	}
	return dnsTXT
}

func (b *builder) dnsName() string {
	name := dnsLabels[b.r.intn(len(dnsLabels))] + "." + dnsDomains[b.r.intn(len(dnsDomains))]
	if b.r.chance(0.3) {
		name = "n" + itoa(b.r.intn(1000)) + "." + name
	}
	return name
}

func appendName(m []byte, name string) []byte {
	start := 0
	for i := 0; i <= len(name); i++ {
		if i == len(name) || name[i] == '.' {
			m = append(m, byte(i-start))
			m = append(m, name[start:i]...)
			start = i + 1
		}
	}
	return append(m, 0)
}

func appendRR(m []byte, namePtr int, typ, ttl int, rdata []byte) []byte {
	m = append(m, byte(0xc0|namePtr>>8), byte(namePtr))
	m = binary.BigEndian.AppendUint16(m, uint16(typ))
	m = binary.BigEndian.AppendUint16(m, 1) // IN
	m = binary.BigEndian.AppendUint32(m, uint32(ttl))
	m = binary.BigEndian.AppendUint16(m, uint16(len(rdata)))
	return append(m, rdata...)
}

// dnsExchange builds a query for name/qtype and its answer. Answers use
// name compression as servers do; addresses are documentation addresses.
func (b *builder) dnsExchange(name string, qtype int, tcp bool) (query, resp []byte) {
	r := b.r
	b.stats.DNS.Queries[qtypeNames[qtype]]++
	id := uint16(r.next())
	edns := r.chance(0.8)
	hdr := func(flags uint16, an, ar int) []byte {
		h := binary.BigEndian.AppendUint16(nil, id)
		h = binary.BigEndian.AppendUint16(h, flags)
		h = binary.BigEndian.AppendUint16(h, 1)
		h = binary.BigEndian.AppendUint16(h, uint16(an))
		h = binary.BigEndian.AppendUint16(h, 0)
		return binary.BigEndian.AppendUint16(h, uint16(ar))
	}
	question := appendName(nil, name)
	question = binary.BigEndian.AppendUint16(question, uint16(qtype))
	question = binary.BigEndian.AppendUint16(question, 1)
	opt := []byte{0, 0, dnsOPT, 0x04, 0xd0, 0, 0, 0, 0, 0, 0} // root, OPT, 1232, no flags
	ar := 0
	if edns {
		ar = 1
	}
	query = append(hdr(0x0100, 0, ar), question...) // RD
	if edns {
		query = append(query, opt...)
	}

	const qname = 12 // offset of the question name
	var answers []byte
	an := 0
	owner := qname
	if qtype != dnsTXT && r.chance(0.2) { // a CNAME to a CDN name first
		target := "edge" + itoa(r.intn(100)) + ".cdn.example.net"
		owner = 12 + len(question) + 12 // the CNAME's rdata, after its 12-byte RR header
		answers = appendRR(answers, qname, dnsCNAME, 300, appendName(nil, target))
		an++
	}
	switch qtype {
	case dnsA:
		for i, n := 0, r.between(1, 4); i < n; i++ {
			answers = appendRR(answers, owner, dnsA, 60, []byte{192, 0, 2, byte(r.between(1, 254))})
			an++
		}
	case dnsAAAA:
		for i, n := 0, r.between(1, 2); i < n; i++ {
			ip := []byte{0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, byte(r.between(1, 254))}
			answers = appendRR(answers, owner, dnsAAAA, 60, ip)
			an++
		}
	default:
		total := r.logUniform(60, 900)
		if tcp {
			total = r.logUniform(1200, 6000)
		}
		var txt []byte
		for total > 0 {
			c := min(total, 255)
			txt = append(txt, byte(c))
			txt = b.appendFill(txt, b.text, c)
			total -= c
		}
		answers = appendRR(answers, owner, dnsTXT, 3600, txt)
		an++
	}
	resp = append(hdr(0x8180, an, ar), question...) // QR RD RA
	resp = append(resp, answers...)
	if edns {
		resp = append(resp, opt...)
	}
	return query, resp
}
