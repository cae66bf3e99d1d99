package dns

import (
	"encoding/binary"
	"net/netip"
)

// sigFixedLen is the fixed part of SIG/RRSIG data before the signer name:
// type covered (2), algorithm (1), labels (1), original TTL (4), expiration
// (4), inception (4), key tag (2) — RFC 2535 §4.1, RFC 4034 §3.1.
const sigFixedLen = 18

// sigAllocOverhead is the constant a Windows DNS server adds to the signer
// name and signature lengths when it sizes a cached SIG record (SigWireRead,
// CVE-2020-1350).
const sigAllocOverhead = 20

// rdata parses the typed fields of r from msg[start:end]. Problems mark r and
// the message malformed ("bad_rdata", or the name's own code) but never stop
// the parse: rdlength already says where the next record starts.
func (d *decoder) rdata(r *RR, start, end int) {
	msg := d.msg
	rd := msg[start:end]
	switch r.Type {
	case TypeA, TypeAAAA:
		want := 4
		if r.Type == TypeAAAA {
			want = 16
		}
		if len(rd) != want {
			d.badRdata(r, start)
			return
		}
		if d.build {
			a := len(d.arena)
			if want == 4 {
				d.arena = netip.AddrFrom4([4]byte(rd)).AppendTo(d.arena)
			} else {
				d.arena = netip.AddrFrom16([16]byte(rd)).AppendTo(d.arena)
			}
			r.addrSp = span{int32(a), int32(len(d.arena))}
		}
	case TypeNS, TypeCNAME, TypePTR, TypeDNAME:
		r.targetSp = d.rdataName(r, start, end, true)
	case TypeMX:
		if len(rd) < 3 {
			d.badRdata(r, start)
			return
		}
		r.Preference = int(binary.BigEndian.Uint16(rd))
		r.targetSp = d.rdataName(r, start+2, end, true)
	case TypeTXT:
		d.txtStrings(r, start, end)
	case TypeSOA:
		d.soa(r, start, end)
	case TypeSIG, TypeRRSIG:
		d.sig(r, start, end)
	case TypeOPT:
		d.opt(r, start, end)
	}
}

func (d *decoder) badRdata(r *RR, off int) {
	r.Malformed = true
	d.fail(reasonBadRdata, off)
}

// rdataName reads a name inside record data. When last is true the name must
// end exactly at end.
func (d *decoder) rdataName(r *RR, start, end int, last bool) span {
	next, sp, _, reason := d.readName(start, end)
	if reason != "" {
		r.Malformed = true
		d.fail(reason, start)
		return span{}
	}
	if last && next != end {
		d.badRdata(r, next)
	}
	return sp
}

// txtStrings splits TXT data into its length-prefixed character-strings.
func (d *decoder) txtStrings(r *RR, start, end int) {
	msg := d.msg
	r.txtLo = int32(len(d.txtSp))
	for pos := start; pos < end; {
		l := int(msg[pos])
		if pos+1+l > end {
			d.badRdata(r, pos)
			break
		}
		if d.build && len(d.txtSp) < MaxTXTStrings {
			a := len(d.arena)
			d.arena = append(d.arena, msg[pos+1:pos+1+l]...)
			d.txtSp = append(d.txtSp, span{int32(a), int32(len(d.arena))})
		}
		pos += 1 + l
	}
	r.txtHi = int32(len(d.txtSp))
}

// soa parses MNAME, RNAME and the five 32-bit counters.
func (d *decoder) soa(r *RR, start, end int) {
	next, sp, _, reason := d.readName(start, end)
	if reason != "" {
		r.Malformed = true
		d.fail(reason, start)
		return
	}
	r.mnameSp = sp
	next, sp, _, reason = d.readName(next, end)
	if reason != "" {
		r.Malformed = true
		d.fail(reason, start)
		return
	}
	r.rnameSp = sp
	if end-next != 20 {
		d.badRdata(r, next)
		return
	}
	b := d.msg[next:end]
	r.SOA.Serial = int64(binary.BigEndian.Uint32(b))
	r.SOA.Refresh = int64(binary.BigEndian.Uint32(b[4:]))
	r.SOA.Retry = int64(binary.BigEndian.Uint32(b[8:]))
	r.SOA.Expire = int64(binary.BigEndian.Uint32(b[12:]))
	r.SOA.Minimum = int64(binary.BigEndian.Uint32(b[16:]))
}

// sig parses SIG/RRSIG data and updates the message's SIG statistics, which
// cover every SIG record, kept or not.
func (d *decoder) sig(r *RR, start, end int) {
	m := d.m
	m.SigCount++
	if rdlen := end - start; rdlen > m.SigMaxRDLength {
		m.SigMaxRDLength = rdlen
	}
	d.sigFields(r, start, end)
	if r.SIG.AllocSize > m.SigMaxAllocSize {
		m.SigMaxAllocSize = r.SIG.AllocSize
	}
}

func (d *decoder) sigFields(r *RR, start, end int) {
	s := &r.SIG
	rdlen := end - start
	// Until the signer name is known, size the allocation as if the signer
	// took no more room expanded than on the wire (a lower bound).
	s.AllocSize = rdlen - sigFixedLen + sigAllocOverhead
	if rdlen < sigFixedLen+1 {
		d.badRdata(r, start)
		return
	}
	b := d.msg[start:end]
	s.TypeCovered = int(binary.BigEndian.Uint16(b))
	s.Algorithm = int(b[2])
	s.Labels = int(b[3])
	s.OriginalTTL = int64(binary.BigEndian.Uint32(b[4:]))
	s.Expiration = int64(binary.BigEndian.Uint32(b[8:]))
	s.Inception = int64(binary.BigEndian.Uint32(b[12:]))
	s.KeyTag = int(binary.BigEndian.Uint16(b[16:]))
	next, sp, wireLen, reason := d.readName(start+sigFixedLen, end)
	if reason != "" {
		r.Malformed = true
		d.fail(reason, start+sigFixedLen)
		return
	}
	r.signerSp = sp
	s.SignerWireLength = next - (start + sigFixedLen)
	s.SignerLength = wireLen
	s.SignatureLength = end - next
	s.AllocSize = s.SignerLength + sigAllocOverhead + s.SignatureLength
}

// opt parses an OPT pseudo-record into the message's EDNS description (the
// first OPT only; later ones are counted).
func (d *decoder) opt(r *RR, start, end int) {
	e := &d.m.EDNS
	e.Count++
	first := !e.Present
	if first {
		e.Present = true
		e.UDPSize = r.Class
		ttl := uint32(r.TTL)
		e.ExtendedRcode = int(ttl >> 24)
		e.Version = int(ttl>>16) & 0xFF
		e.Flags = int(ttl & 0xFFFF)
		e.DO = ttl&0x8000 != 0
	}
	msg := d.msg
	for pos := start; pos < end; {
		if pos+4 > end {
			d.badRdata(r, pos)
			return
		}
		code := int(binary.BigEndian.Uint16(msg[pos:]))
		l := int(binary.BigEndian.Uint16(msg[pos+2:]))
		if pos+4+l > end {
			d.badRdata(r, pos)
			return
		}
		if first && d.buildMsg && len(d.opts) < MaxEDNSOptions {
			d.opts = append(d.opts, EDNSOption{Code: code, Length: l})
		}
		pos += 4 + l
	}
}
