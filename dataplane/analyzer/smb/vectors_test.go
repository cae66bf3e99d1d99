package smb

// Generator of the hex test vectors of patches/smb (see TestGenPatchVectors).

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
	"testing"
)

// hexBlock formats b as indented hex lines of 64 bytes.
func hexBlock(b []byte) string {
	h := hex.EncodeToString(b)
	var sb strings.Builder
	for len(h) > 0 {
		n := min(128, len(h))
		sb.WriteString("      " + h[:n] + "\n")
		h = h[n:]
	}
	return sb.String()
}

// writeTests replaces everything after the "tests:" line of a patch file.
func writeTests(t *testing.T, path, tests string) {
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	i := strings.Index(string(raw), "\ntests:\n")
	if i < 0 {
		t.Fatalf("%s: no tests section", path)
	}
	out := string(raw[:i]) + "\ntests:\n" + tests
	if err := os.WriteFile(path, []byte(out), 0o644); err != nil {
		t.Fatal(err)
	}
}

type gstep struct {
	dir  string
	data []byte
}

// gtest formats one patch test; two steps to_server then to_client use the
// short form, anything else a steps list.
func gtest(name, comment string, match bool, steps ...gstep) string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "  - name: %q\n", name)
	for _, l := range strings.Split(strings.TrimSpace(comment), "\n") {
		fmt.Fprintf(&sb, "    # %s\n", l)
	}
	fmt.Fprintf(&sb, "    match: %v\n    server_port: 445\n", match)
	if len(steps) <= 2 && (len(steps) == 1 || (steps[0].dir == "to_server" && steps[1].dir == "to_client")) {
		for _, s := range steps {
			fmt.Fprintf(&sb, "    %s_hex: |\n%s", s.dir, hexBlock(s.data))
		}
		return sb.String()
	}
	sb.WriteString("    steps:\n")
	for _, s := range steps {
		fmt.Fprintf(&sb, "      - %s_hex: |\n%s", s.dir, indent(hexBlock(s.data), "    "))
	}
	return sb.String()
}

func indent(s, p string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i := range lines {
		lines[i] = p + lines[i]
	}
	return strings.Join(lines, "\n") + "\n"
}

func srv(b []byte) gstep { return gstep{"to_server", b} }
func cli(b []byte) gstep { return gstep{"to_client", b} }

// TestGenPatchVectors rewrites the tests section of the SMB patches from the
// builders above: SMB_GEN_PATCHES=1 go test -run TestGenPatchVectors.
func TestGenPatchVectors(t *testing.T) {
	if os.Getenv("SMB_GEN_PATCHES") == "" {
		t.Skip("set SMB_GEN_PATCHES=1 to regenerate patches/smb test vectors")
	}
	neg := nb(negReq(0, dialectsAll, preauthCtx(), encryptionCtx(2, 1), compressionCtx(0, algLZNT1, algLZ77, algPatternV1)))
	negC := nb(negReq(0, dialectsAll, preauthCtx(), encryptionCtx(2, 1), compressionCtx(1, algLZNT1, algPatternV1)))
	resp := nb(negResp(0, 0x0311, 8<<20, 8<<20, 8<<20, preauthCtx(), encryptionCtx(2), compressionCtx(0, algLZNT1)))
	respC := nb(negResp(0, 0x0311, 8<<20, 8<<20, 8<<20, preauthCtx(), encryptionCtx(2), compressionCtx(1, algLZNT1, algPatternV1)))
	junk := bytes.Repeat([]byte{0x41}, 32)
	var g strings.Builder
	g.WriteString(gtest("SMBGhost proof-of-concept shape after a 3.1.1 negotiation",
		"negotiate 3.1.1 with LZNT1; then a transform with OriginalCompressedSegmentSize 0xFFFFFFFF and Offset 0x10:\nthe 32-bit sum wraps to 0xF and the server allocates a 15-byte buffer", true,
		srv(neg), cli(resp), srv(nb(compUnchained(0xFFFFFFFF, algLZNT1, 0x10, cat(junk, junk))))))
	g.WriteString(gtest("huge Offset on a flow picked up after negotiation",
		"no negotiation seen; OriginalCompressedSegmentSize 0x1000 + Offset 0xFFFFFFFF wraps (and Offset points past the message)", true,
		srv(nb(compUnchained(0x1000, algLZ77, 0xFFFFFFFF, junk)))))
	g.WriteString(gtest("sum of exactly 2^32",
		"OriginalCompressedSegmentSize 0x100 + Offset 0xFFFFFF00 = 0x100000000: the allocation size wraps to 0", true,
		srv(neg), cli(resp), srv(nb(compUnchained(0x100, algLZNT1, 0xFFFFFF00, cat(junk, junk))))))
	g.WriteString(gtest("original size far beyond the negotiated limits",
		"negotiated MaxTransact/Read/WriteSize 8 MiB; OriginalCompressedSegmentSize 0x7FFFFFF0 without wrapping", true,
		srv(neg), cli(resp), srv(nb(compUnchained(0x7FFFFFF0, algLZNT1, 0, cat(junk, junk, junk))))))
	g.WriteString(gtest("malicious server attacking the SMB client",
		"the client negotiates compression; the server answers with a compressed message whose sizes wrap", true,
		srv(neg), cli(resp), cli(nb(compUnchained(0xFFFFFFF0, algLZNT1, 0x70, cat(h2{cmd: smb2Read, flags: 1, mid: 1}.bytes(), make([]byte, 48), junk))))))
	g.WriteString(gtest("offset beyond the message",
		"Offset 0x100000 but only 64 bytes follow the header: the server copies Offset bytes from past the packet", true,
		srv(neg), cli(resp), srv(nb(compUnchained(0x1000, algLZNT1, 0x100000, cat(junk, junk))))))
	w := writeReq(h2{mid: 5, tid: 1, sid: 0x100000001}, 0, nil)
	g.WriteString(gtest("legitimate LZNT1-compressed WRITE",
		"uncompressed prefix = SMB2 WRITE header and fixed part (112 bytes); 4096 data bytes compressed", false,
		srv(neg), cli(resp), srv(nb(compUnchained(112+4096, algLZNT1, 112, cat(w, junk, junk, junk))))))
	g.WriteString(gtest("legitimate chained READ response",
		"chained compression negotiated; response = NONE payload (header + READ response fixed part) + Pattern_V1 run of 65536 zeros", false,
		srv(negC), cli(respC), cli(nb(compChained(64+16+65536,
			chainPayload(algNone, 0, -1, cat(h2{cmd: smb2Read, flags: 1, mid: 6}.bytes(), u16(17), []byte{0x50, 0}, u32(65536), make([]byte, 8))),
			patternPayload(0, 65536))))))
	g.WriteString(gtest("legitimate 8 MiB write compressed to a pattern",
		"chained: NONE payload with the WRITE header, then Pattern_V1 for 8 MiB of zeros; OriginalCompressedSegmentSize 8 MiB + 112 is within MaxWriteSize", false,
		srv(negC), cli(respC), srv(nb(compChained(112+8<<20,
			chainPayload(algNone, 0, -1, writeReq(h2{mid: 7}, 0, nil)),
			patternPayload(0, 8<<20))))))
	g.WriteString(gtest("transform-like bytes inside WRITE data",
		"an ordinary WRITE whose data holds FC 'SMB' FF FF FF FF ...: not a transform header", false,
		srv(neg), cli(resp), srv(nb(writeReq(h2{mid: 8}, 0, cat(compUnchained(0xFFFFFFFF, algLZNT1, 0x10, junk), junk))))))
	writeTests(t, "../../../patches/smb/CVE-2020-0796.yaml", g.String())

	// EternalBlue
	k := k1{tid: 2048, pid: 65279, uid: 2048, mid: 64}
	var e strings.Builder
	// full-size
	empty := fea("", nil)
	body := cat(u32(0x10000), bytes.Repeat(empty, 12000), []byte{0, 0}, u16(0x1FFF))
	for len(body) < 0x103D0 {
		body = append(body, 0x41)
	}
	body = body[:0x103D0]
	var full []byte
	full = append(full, nb(ntTransPrimary(k, 30, 0x103D0, 0, []uint16{0}, make([]byte, 30), body[:976]))...)
	for off := 976; off < len(body); off += 4096 {
		end := min(off+4096, len(body))
		full = append(full, nb(trans2Secondary(k, 30, 0x03D0, 0, uint16(off), nil, body[off:end]))...)
	}
	e.WriteString(gtest("EternalBlue: NT_TRANSACT with a 0x10000-byte FEA list finished by TRANS2_SECONDARY",
		"NT_TRANSACT (Function 0, Setup[0] 0 = TRANS2_OPEN2) declaring 66512 data bytes whose FEA list says SizeOfListInBytes 0x10000;\n16 TRANSACTION2_SECONDARY messages deliver the rest, so the server runs it as TRANS2_OPEN2 and\nshrinks the list with a 16-bit store (0x10000 -> 0x1xxxx)", true, srv(full)))
	small := cat(u32(0x10000), bytes.Repeat(empty, 100))
	e.WriteString(gtest("NT_TRANSACT primary continued by one TRANS2_SECONDARY",
		"the first fragments of the same attack: FEA list size 0x10000, transaction type confusion", true,
		srv(cat(nb(ntTransPrimary(k, 30, 0x103D0, 0, []uint16{0}, make([]byte, 30), small[:300])),
			nb(trans2Secondary(k, 30, 0x03D0, 0, 300, nil, small[300:]))))))
	e.WriteString(gtest("TRANS2_OPEN2 whose FEA list claims 64 KiB",
		"a plain TRANSACTION2 cannot carry 64 KiB, but the FEA list size field says 0x10000", true,
		srv(nb(trans2Primary(k, 30, uint16(len(small)), []uint16{trans2Open2}, make([]byte, 30), small)))))
	lie := feaList(0x9000, fea("attr", bytes.Repeat([]byte{'v'}, 100)), fea("x", []byte("y")))
	e.WriteString(gtest("SET_PATH_INFORMATION FEA list larger than the data sent",
		"TRANS2_SET_PATH_INFORMATION, level SMB_INFO_SET_EAS; SizeOfListInBytes 0x9000 but 119 bytes sent", true,
		srv(nb(trans2Primary(k, 12, uint16(len(lie)), []uint16{trans2SetPathInfo}, cat(u16(infoSetEAs), u32(0), []byte("a\\b\x00\x00\x00")), lie)))))
	e.WriteString(gtest("NT_TRANSACT over 64 KiB continued by TRANS2_SECONDARY",
		"the type confusion alone: an NT_TRANSACT declaring 70000 data bytes (Setup[0] 1 = FIND_FIRST2) finished as TRANSACTION2", true,
		srv(cat(nb(ntTransPrimary(k, 12, 70000, 0, []uint16{1}, make([]byte, 12), make([]byte, 200))),
			nb(trans2Secondary(k, 12, 70000&0xffff, 0, 200, nil, make([]byte, 200)))))))
	good := feaList(-1, fea("user.comment", []byte("quarterly report")), fea("user.author", []byte("alice")))
	e.WriteString(gtest("legitimate TRANS2_OPEN2 with extended attributes",
		"FEA list size equals the data sent", false,
		srv(nb(trans2Primary(k, 30, uint16(len(good)), []uint16{trans2Open2}, make([]byte, 30), good)))))
	var many [][]byte
	for i := 0; i < 40; i++ {
		many = append(many, fea(fmt.Sprintf("user.a%02d", i), bytes.Repeat([]byte{'v'}, 10)))
	}
	mid := feaList(-1, many...)
	e.WriteString(gtest("legitimate SET_EAS split across a secondary",
		fmt.Sprintf("TRANS2_SET_PATH_INFORMATION SMB_INFO_SET_EAS, FEA list of %d bytes sent as primary + TRANS2_SECONDARY", len(mid)), false,
		srv(cat(nb(trans2Primary(k, 12, uint16(len(mid)), []uint16{trans2SetPathInfo}, cat(u16(infoSetEAs), u32(0), []byte("a\\b\x00\x00\x00")), mid[:400])),
			nb(trans2Secondary(k, 12, uint16(len(mid)), 0, 400, nil, mid[400:]))))))
	e.WriteString(gtest("large NT_TRANSACT_SET_SECURITY_DESC",
		"NT_TRANSACT (Function 3) declaring 70000 data bytes, continued by NT_TRANSACT_SECONDARY (first fragments)", false,
		srv(cat(nb(ntTransPrimary(k, 8, 70000, 3, nil, make([]byte, 8), bytes.Repeat([]byte{1}, 1000))),
			nb(ntTransSecondary(k, 8, 70000, 0, 1000, nil, bytes.Repeat([]byte{2}, 1000)))))))
	e.WriteString(gtest("QUERY_PATH_INFORMATION whose data looks like a big list",
		"TRANS2_QUERY_PATH_INFORMATION level 3 (EAs from list) carries a GEA list starting 00 00 01 00: not an FEA list", false,
		srv(nb(trans2Primary(k, 12, 64, []uint16{trans2QueryPath}, cat(u16(3), u32(0), []byte("a\\b\x00\x00\x00")), cat(u32(0x10000), make([]byte, 60)))))))
	writeTests(t, "../../../patches/smb/CVE-2017-0144.yaml", e.String())
}
