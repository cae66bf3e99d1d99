package patchset

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

// catalog is the shipped patch catalog of the repository.
const catalog = "../../patches"

var testTime = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

func mustKey(t testing.TB) *PrivateKey {
	t.Helper()
	k, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// smallPatch is a valid patch with one matching and one non-matching test.
func smallPatch(id string, sid int, limit int) []byte {
	return []byte(strings.NewReplacer("ID", id, "SID", strconv.Itoa(sid), "LIMIT", strconv.Itoa(limit)).Replace(`id: ID
sid: SID
title: test patch ID
severity: high
category: dos
protocol: http
event: http.request_headers
when: len(uri.raw) > LIMIT
action: drop
mode: enforce
tests:
  - name: long uri
    match: true
    to_server: "GET /aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa HTTP/1.1\r\nHost: x\r\n\r\n"
  - name: short uri
    match: false
    to_server: "GET / HTTP/1.1\r\nHost: x\r\n\r\n"
`))
}

func writeFiles(t *testing.T, files map[string][]byte) string {
	t.Helper()
	dir := t.TempDir()
	for name, data := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func smallBundle(t *testing.T, key *PrivateKey) *Bundle {
	t.Helper()
	dir := writeFiles(t, map[string][]byte{
		"http/X-1.yaml": smallPatch("X-1", 9000001, 40),
		"http/X-2.yaml": smallPatch("X-2", 9000002, 50),
		"README.md":     []byte("ignored"),
	})
	b, err := Build(dir, 3, key, Meta{Author: "ops", Time: testTime, Message: "two patches"})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestCatalogRoundTripVerifyCompile(t *testing.T) {
	key := mustKey(t)
	b, err := Build(catalog, 1, key, Meta{Author: "ci", Time: testTime, Message: "shipped catalog"})
	if err != nil {
		t.Fatal(err)
	}
	if len(b.Files) < 10 || b.Files[0].Name != "dns/CVE-2015-5477.yaml" {
		t.Fatalf("files: %d, first %q", len(b.Files), b.Files[0].Name)
	}
	data, err := b.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	got, err := Unmarshal(data)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, b) {
		t.Fatal("bundle changed through Marshal/Unmarshal")
	}
	if err := got.Verify(NewKeySet(key.Public())); err != nil {
		t.Fatal(err)
	}
	prog, err := got.CompileAndTest()
	if err != nil {
		t.Fatal(err)
	}
	if prog.Version != 1 || len(prog.Patches) != len(b.Files) {
		t.Fatalf("program version %d with %d patches", prog.Version, len(prog.Patches))
	}
	// Deterministic: the same input and key give the same bytes.
	b2, err := Build(catalog, 1, key, Meta{Author: "ci", Time: testTime, Message: "shipped catalog"})
	if err != nil {
		t.Fatal(err)
	}
	data2, _ := b2.Marshal()
	if !bytes.Equal(data, data2) {
		t.Fatal("Build is not deterministic")
	}
	// The content hash ignores the version and the metadata.
	b3, _ := Build(catalog, 2, nil, Meta{Author: "someone else", Time: testTime.Add(time.Hour)})
	if b3.ContentHash() != b.ContentHash() || b3.Signer() != "" {
		t.Fatalf("content hash %s vs %s, signer %q", b3.ContentHash(), b.ContentHash(), b3.Signer())
	}
}

func TestVerifyRefusesUnsignedUnknownAndTampered(t *testing.T) {
	key, other := mustKey(t), mustKey(t)
	trusted := NewKeySet(key.Public())

	unsigned := smallBundle(t, nil)
	if err := unsigned.Verify(trusted); !errors.Is(err, ErrUnsigned) {
		t.Fatalf("unsigned: %v", err)
	}
	foreign := smallBundle(t, other)
	err := foreign.Verify(trusted)
	if !errors.Is(err, ErrUnknownKey) || !strings.Contains(err.Error(), other.ID()) {
		t.Fatalf("unknown key: %v", err)
	}
	if err := foreign.Verify(nil); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("empty key set: %v", err)
	}

	cases := []struct {
		name   string
		modify func(b *Bundle)
		want   error
	}{
		{"file byte", func(b *Bundle) { b.Files[0].Data[5] ^= 1 }, ErrTampered},
		{"file byte and manifest hash", func(b *Bundle) {
			b.Files[0].Data[5] ^= 1
			fresh, _ := New(b.Files, b.Manifest.Version, nil, Meta{Time: testTime})
			b.Manifest.Files = fresh.Manifest.Files
			b.Manifest.ContentHash = fresh.Manifest.ContentHash
		}, ErrBadSignature},
		{"message", func(b *Bundle) { b.Manifest.Message = "other" }, ErrBadSignature},
		{"version", func(b *Bundle) { b.Manifest.Version++ }, ErrBadSignature},
		{"signature", func(b *Bundle) { b.Signature[0] ^= 1 }, ErrBadSignature},
		{"truncated signature", func(b *Bundle) { b.Signature = b.Signature[:10] }, ErrBadSignature},
		{"dropped file", func(b *Bundle) { b.Files = b.Files[:1] }, ErrTampered},
		{"signer swapped to another trusted key", func(b *Bundle) { b.Manifest.Signer = other.ID() }, ErrBadSignature},
	}
	trusted2 := NewKeySet(key.Public(), other.Public())
	for _, c := range cases {
		b := smallBundle(t, key)
		if err := b.Verify(trusted2); err != nil {
			t.Fatalf("%s: intact bundle: %v", c.name, err)
		}
		c.modify(b)
		if err := b.Verify(trusted2); !errors.Is(err, c.want) {
			t.Errorf("%s: got %v, want %v", c.name, err, c.want)
		}
	}
}

// TestAnyByteTampered flips every byte of an encoded bundle: each change is
// refused by Unmarshal or by Verify.
func TestAnyByteTampered(t *testing.T) {
	key := mustKey(t)
	trusted := NewKeySet(key.Public())
	data, err := smallBundle(t, key).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	for i := range data {
		for _, mask := range []byte{0x01, 0x20, 0x80} {
			mod := append([]byte(nil), data...)
			mod[i] ^= mask
			b, err := Unmarshal(mod)
			if err != nil {
				continue
			}
			if err := b.Verify(trusted); err == nil {
				t.Fatalf("byte %d ^ %#x (%q -> %q) accepted", i, mask, data[i], mod[i])
			}
		}
	}
	// Non-canonical but equivalent JSON is refused too.
	spaced := bytes.Replace(data, []byte(`{"format"`), []byte(`{ "format"`), 1)
	if _, err := Unmarshal(spaced); !errors.Is(err, ErrNotCanonical) {
		t.Fatalf("whitespace: %v", err)
	}
	for _, bad := range [][]byte{nil, []byte("{}"), []byte("not json"), append(append([]byte{}, data...), data...)} {
		if _, err := Unmarshal(bad); err == nil {
			t.Fatalf("%.20q accepted", bad)
		}
	}
}

func TestBrokenPatchSetIsRefused(t *testing.T) {
	bad := bytes.Replace(smallPatch("X-3", 9000003, 40), []byte("len(uri.raw)"), []byte("nosuchfield"), 1)
	dir := writeFiles(t, map[string][]byte{"a/X-1.yaml": smallPatch("X-1", 9000001, 40), "b/X-3.yaml": bad})
	b, err := Build(dir, 4, nil, Meta{Time: testTime})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Compile(); err == nil || !strings.Contains(err.Error(), "b/X-3.yaml:8: when:") {
		t.Fatalf("compile error should name file, line and field: %v", err)
	}
	// A patch that compiles but whose own test fails.
	wrong := bytes.Replace(smallPatch("X-4", 9000004, 40), []byte("> 40"), []byte("> 400"), 1)
	dir = writeFiles(t, map[string][]byte{"X-4.yaml": wrong})
	b, _ = Build(dir, 5, nil, Meta{Time: testTime})
	if _, err := b.Compile(); err != nil {
		t.Fatal(err)
	}
	_, err = b.CompileAndTest()
	if err == nil || !strings.Contains(err.Error(), `X-4.yaml "long uri"`) {
		t.Fatalf("failing embedded test: %v", err)
	}
	// Duplicate ids across files.
	dir = writeFiles(t, map[string][]byte{"1.yaml": smallPatch("X-1", 9000001, 40), "2.yaml": smallPatch("X-1", 9000002, 40)})
	b, _ = Build(dir, 6, nil, Meta{Time: testTime})
	if _, err := b.Compile(); err == nil || !strings.Contains(err.Error(), "duplicate id") {
		t.Fatalf("duplicate: %v", err)
	}
}

func TestBuildErrors(t *testing.T) {
	if _, err := Build(t.TempDir(), 1, nil, Meta{}); err == nil || !strings.Contains(err.Error(), "no patch files") {
		t.Fatalf("empty dir: %v", err)
	}
	if _, err := Build(catalog, 0, nil, Meta{}); err == nil {
		t.Fatal("version 0 accepted")
	}
	if _, err := Build("/nonexistent", 1, nil, Meta{}); err == nil || !strings.Contains(err.Error(), "/nonexistent") {
		t.Fatalf("missing dir: %v", err)
	}
	for _, name := range []string{"../x.yaml", "/abs.yaml", "a//b.yaml", "x.txt", "a\\b.yaml", ""} {
		if _, err := New([]File{{Name: name, Data: []byte("x")}}, 1, nil, Meta{}); err == nil {
			t.Errorf("name %q accepted", name)
		}
	}
	if _, err := New([]File{{Name: "a.yaml"}, {Name: "a.yaml"}}, 1, nil, Meta{}); err == nil {
		t.Error("duplicate names accepted")
	}
}

func TestCompare(t *testing.T) {
	a, _ := New([]File{
		{Name: "X-1.yaml", Data: smallPatch("X-1", 9000001, 40)},
		{Name: "X-2.yaml", Data: smallPatch("X-2", 9000002, 40)},
		{Name: "X-3.yaml", Data: smallPatch("X-3", 9000003, 40)},
	}, 1, nil, Meta{Time: testTime})
	b, _ := New([]File{
		{Name: "X-1.yaml", Data: smallPatch("X-1", 9000001, 40)},
		{Name: "X-2.yaml", Data: smallPatch("X-2", 9000002, 41)},
		{Name: "X-4.yaml", Data: smallPatch("X-4", 9000004, 40)},
	}, 2, nil, Meta{Time: testTime})
	d, err := Compare(a, b)
	if err != nil {
		t.Fatal(err)
	}
	want := &Diff{From: 1, To: 2, Added: []string{"X-4"}, Removed: []string{"X-3"}, Changed: []string{"X-2"}, Unchanged: 1}
	if !reflect.DeepEqual(d, want) {
		t.Fatalf("diff %+v, want %+v", d, want)
	}
	if !strings.Contains(d.String(), "+ X-4") || d.Empty() {
		t.Fatal(d.String())
	}
	same, _ := Compare(a, a)
	if !same.Empty() || same.Unchanged != 3 {
		t.Fatalf("self diff %+v", same)
	}
}

func TestKeyFiles(t *testing.T) {
	dir := t.TempDir()
	key := mustKey(t)
	sec := filepath.Join(dir, "signer.key")
	if err := WriteKeyPair(key, sec, "release  signer"); err != nil {
		t.Fatal(err)
	}
	if err := WriteKeyPair(key, sec, ""); err == nil {
		t.Fatal("existing secret key overwritten")
	}
	if st, _ := os.Stat(sec); st.Mode().Perm() != 0o600 {
		t.Fatalf("secret key mode %v", st.Mode())
	}
	k2, err := LoadPrivateKey(sec)
	if err != nil {
		t.Fatal(err)
	}
	if k2.ID() != key.ID() || len(key.ID()) != 32 {
		t.Fatalf("ids %s %s", k2.ID(), key.ID())
	}
	pub, _ := os.ReadFile(sec + ".pub")
	if !strings.HasSuffix(string(pub), " release signer\n") {
		t.Fatalf("public key file %q", pub)
	}
	other := mustKey(t)
	trustFile := filepath.Join(dir, "trusted")
	os.WriteFile(trustFile, append(append([]byte("# release keys\n\n"), pub...), MarshalPublicKey(other.Public(), "")...), 0o644)
	ks, err := LoadKeySet(trustFile)
	if err != nil {
		t.Fatal(err)
	}
	if len(ks) != 2 || ks[key.ID()] == nil || ks[other.ID()] == nil {
		t.Fatalf("key set %v", ks.IDs())
	}
	for _, bad := range []string{"patchgate-ed25519-public-v1 !!!\n", "ssh-ed25519 AAAA\n", "patchgate-ed25519-public-v1 AAAA\n"} {
		if _, err := ParseKeySet("t", []byte(bad)); err == nil || !strings.Contains(err.Error(), "t:1") {
			t.Errorf("%q: %v", bad, err)
		}
	}
	if _, err := ParsePrivateKey(pub); err == nil {
		t.Error("public key accepted as secret key")
	}
}

func FuzzUnmarshal(f *testing.F) {
	key, _ := GenerateKey()
	b, _ := New([]File{{Name: "a.yaml", Data: []byte("id: X\n")}}, 1, key, Meta{Time: testTime})
	data, _ := b.Marshal()
	f.Add(data)
	f.Add([]byte(`{"format":"patchgate-patchset-v1"}`))
	trusted := NewKeySet(key.Public())
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := Unmarshal(data)
		if err != nil {
			return
		}
		again, err := b.Marshal()
		if err != nil || !bytes.Equal(again, data) {
			t.Fatalf("accepted non-canonical input: %v", err)
		}
		_ = b.Verify(trusted)
		_, _ = b.Patches()
	})
}

func BenchmarkVerifyCatalog(b *testing.B) {
	key, _ := GenerateKey()
	bd, err := Build(catalog, 1, key, Meta{Time: testTime})
	if err != nil {
		b.Fatal(err)
	}
	data, _ := bd.Marshal()
	trusted := NewKeySet(key.Public())
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		x, err := Unmarshal(data)
		if err != nil {
			b.Fatal(err)
		}
		if err := x.Verify(trusted); err != nil {
			b.Fatal(err)
		}
	}
}
