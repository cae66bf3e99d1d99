package dns

import (
	"strconv"
	"strings"
)

// Record types the analyzer parses or names (IANA "Resource Record (RR) TYPEs").
const (
	TypeA      = 1
	TypeNS     = 2
	TypeCNAME  = 5
	TypeSOA    = 6
	TypePTR    = 12
	TypeMX     = 15
	TypeTXT    = 16
	TypeSIG    = 24
	TypeAAAA   = 28
	TypeDNAME  = 39
	TypeOPT    = 41
	TypeRRSIG  = 46
	TypeTKEY   = 249
	TypeTSIG   = 250
	TypeAXFR   = 252
	TypeANY    = 255
	maxNamedTy = 260
)

// typeNames maps type numbers below maxNamedTy to their mnemonics.
var typeNames [maxNamedTy]string

// typeByName maps lower-case mnemonics to type numbers (prefilter keys).
var typeByName = map[string]uint16{}

func init() {
	for _, t := range []struct {
		n    uint16
		name string
	}{
		{1, "A"}, {2, "NS"}, {3, "MD"}, {4, "MF"}, {5, "CNAME"}, {6, "SOA"},
		{7, "MB"}, {8, "MG"}, {9, "MR"}, {10, "NULL"}, {11, "WKS"}, {12, "PTR"},
		{13, "HINFO"}, {14, "MINFO"}, {15, "MX"}, {16, "TXT"}, {17, "RP"},
		{18, "AFSDB"}, {19, "X25"}, {20, "ISDN"}, {21, "RT"}, {22, "NSAP"},
		{23, "NSAP-PTR"}, {24, "SIG"}, {25, "KEY"}, {26, "PX"}, {27, "GPOS"},
		{28, "AAAA"}, {29, "LOC"}, {30, "NXT"}, {33, "SRV"}, {35, "NAPTR"},
		{36, "KX"}, {37, "CERT"}, {38, "A6"}, {39, "DNAME"}, {41, "OPT"},
		{42, "APL"}, {43, "DS"}, {44, "SSHFP"}, {45, "IPSECKEY"}, {46, "RRSIG"},
		{47, "NSEC"}, {48, "DNSKEY"}, {49, "DHCID"}, {50, "NSEC3"},
		{51, "NSEC3PARAM"}, {52, "TLSA"}, {53, "SMIMEA"}, {55, "HIP"},
		{59, "CDS"}, {60, "CDNSKEY"}, {61, "OPENPGPKEY"}, {62, "CSYNC"},
		{63, "ZONEMD"}, {64, "SVCB"}, {65, "HTTPS"}, {99, "SPF"},
		{249, "TKEY"}, {250, "TSIG"}, {251, "IXFR"}, {252, "AXFR"},
		{253, "MAILB"}, {254, "MAILA"}, {255, "ANY"}, {256, "URI"}, {257, "CAA"},
	} {
		typeNames[t.n] = t.name
		typeByName[strings.ToLower(t.name)] = t.n
	}
}

// knownTypeName returns the mnemonic of t, or "" when it has none.
func knownTypeName(t uint16) string {
	if int(t) < len(typeNames) {
		return typeNames[t]
	}
	return ""
}

// TypeName returns the mnemonic of a record type, or "TYPE<n>" (RFC 3597).
func TypeName(t int) string {
	if t >= 0 && t < len(typeNames) && typeNames[t] != "" {
		return typeNames[t]
	}
	return "TYPE" + strconv.Itoa(t)
}

// prefilterType parses a "type:<mnemonic>" or "type:type<n>" prefilter key.
func prefilterType(key string) (uint16, bool) {
	if len(key) <= 5 || key[:5] != "type:" {
		return 0, false
	}
	m := key[5:]
	if t, ok := typeByName[m]; ok {
		return t, true
	}
	if len(m) > 4 && m[:4] == "type" {
		n, err := strconv.ParseUint(m[4:], 10, 16)
		if err == nil {
			return uint16(n), true
		}
	}
	return 0, false
}

// typeSet records which types occur in a message, for prefilters. Types below
// 256 are kept exactly; at most len(high) distinct higher types are kept, after
// which every higher type is reported present (a prefilter may over-approximate,
// never under-approximate).
type typeSet struct {
	low      [4]uint64
	high     [8]uint16
	nHigh    uint8
	overflow bool
}

func (s *typeSet) reset() { *s = typeSet{} }

func (s *typeSet) add(t uint16) {
	if t < 256 {
		s.low[t>>6] |= 1 << (t & 63)
		return
	}
	for _, h := range s.high[:s.nHigh] {
		if h == t {
			return
		}
	}
	if int(s.nHigh) < len(s.high) {
		s.high[s.nHigh] = t
		s.nHigh++
		return
	}
	s.overflow = true
}

func (s *typeSet) has(t uint16) bool {
	if t < 256 {
		return s.low[t>>6]&(1<<(t&63)) != 0
	}
	for _, h := range s.high[:s.nHigh] {
		if h == t {
			return true
		}
	}
	return s.overflow
}
