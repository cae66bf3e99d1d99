package patchset

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/patchgate/patchgate/dataplane/patch"
)

// Format is the bundle format identifier written into every bundle.
const Format = "patchgate-patchset-v1"

// Limits on what a bundle may hold. A real patch set is a few dozen files of a
// few KiB; anything far larger is a mistake or an attempt to exhaust a node.
const (
	// MaxFiles bounds the number of patch files in a bundle.
	MaxFiles = 4096
	// MaxBundleSize bounds an encoded bundle.
	MaxBundleSize = 64 << 20
	// MaxMetaLen bounds the author and message fields.
	MaxMetaLen = 4096
)

// ErrNotCanonical is returned by Unmarshal for input that is not exactly what
// Marshal writes: modified, or not written by patchgate.
var ErrNotCanonical = errors.New("bundle is not in canonical form (modified, or not written by patchgate)")

// Meta is the human metadata of a patch-set version.
type Meta struct {
	// Author names who built the version.
	Author string
	// Time is when it was built (zero: now). Stored in UTC.
	Time time.Time
	// Message says why (like a commit message).
	Message string
}

// FileEntry describes one file in the manifest.
type FileEntry struct {
	Name   string `json:"name"`
	Size   int    `json:"size"`
	SHA256 string `json:"sha256"`
}

// Manifest is the signed part of a bundle.
type Manifest struct {
	Version     uint64      `json:"version"`
	Author      string      `json:"author"`
	Created     time.Time   `json:"created"`
	Message     string      `json:"message"`
	Signer      string      `json:"signer"`
	ContentHash string      `json:"content_hash"`
	Files       []FileEntry `json:"files"`
}

// File is one patch file of a bundle. Name is slash-separated and relative to
// the directory the bundle was built from.
type File struct {
	Name string `json:"name"`
	Data []byte `json:"data"`
}

// Bundle is a patch set: manifest, signature and files. A Bundle returned by
// Build or Unmarshal is not modified by this package afterwards and is safe for
// concurrent reads.
type Bundle struct {
	Manifest Manifest
	// Signature is the ed25519 signature of the manifest (nil: unsigned).
	Signature []byte
	// Files are sorted by name.
	Files []File
}

// envelope is the wire form; its field order is the canonical order.
type envelope struct {
	Format    string   `json:"format"`
	Manifest  Manifest `json:"manifest"`
	Signature []byte   `json:"signature"`
	Files     []File   `json:"files"`
}

// Version returns the patch-set version.
func (b *Bundle) Version() uint64 { return b.Manifest.Version }

// ContentHash returns the content hash recorded in the manifest.
func (b *Bundle) ContentHash() string { return b.Manifest.ContentHash }

// Signer returns the signer key id recorded in the manifest ("" if unsigned).
func (b *Bundle) Signer() string { return b.Manifest.Signer }

// Build packages the patch files (*.yaml, *.yml) below dir as version, signed
// with key (nil: unsigned, which every node refuses; useful for tests and for
// signing later with Sign). Build checks names and sizes, not the patches:
// call CompileAndTest for that.
func Build(dir string, version uint64, key *PrivateKey, meta Meta) (*Bundle, error) {
	files, err := readDir(dir)
	if err != nil {
		return nil, err
	}
	return New(files, version, key, meta)
}

// New packages files (any order) as version and signs it with key (nil:
// unsigned).
func New(files []File, version uint64, key *PrivateKey, meta Meta) (*Bundle, error) {
	if version == 0 {
		return nil, errors.New("patchset: version must be at least 1")
	}
	if len(meta.Author) > MaxMetaLen || len(meta.Message) > MaxMetaLen {
		return nil, fmt.Errorf("patchset: author and message are limited to %d bytes", MaxMetaLen)
	}
	if meta.Time.IsZero() {
		meta.Time = time.Now()
	}
	fs := make([]File, len(files))
	for i, f := range files {
		fs[i] = File{Name: f.Name, Data: append([]byte{}, f.Data...)}
	}
	sort.Slice(fs, func(i, j int) bool { return fs[i].Name < fs[j].Name })
	if err := checkFiles(fs); err != nil {
		return nil, err
	}
	b := &Bundle{
		Manifest: Manifest{
			Version: version,
			Author:  meta.Author,
			Created: meta.Time.UTC().Round(0),
			Message: meta.Message,
			Files:   make([]FileEntry, len(fs)),
		},
		Files: fs,
	}
	for i, f := range fs {
		sum := sha256.Sum256(f.Data)
		b.Manifest.Files[i] = FileEntry{Name: f.Name, Size: len(f.Data), SHA256: hex.EncodeToString(sum[:])}
	}
	b.Manifest.ContentHash = contentHash(fs)
	if key != nil {
		b.Sign(key)
	}
	return b, nil
}

// Sign (re-)signs the bundle with key, recording its id as the signer.
func (b *Bundle) Sign(key *PrivateKey) {
	b.Manifest.Signer = key.ID()
	b.Signature = key.sign(signedBytes(&b.Manifest))
}

// contentHash hashes the files (names and contents), not the metadata.
func contentHash(files []File) string {
	h := sha256.New()
	var n [4]byte
	for _, f := range files {
		binary.BigEndian.PutUint32(n[:], uint32(len(f.Name)))
		h.Write(n[:])
		h.Write([]byte(f.Name))
		sum := sha256.Sum256(f.Data)
		h.Write(sum[:])
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil))
}

// signedBytes is what the signature covers: a domain prefix and the canonical
// manifest.
func signedBytes(m *Manifest) []byte {
	mb, err := json.Marshal(m)
	if err != nil {
		panic("patchset: manifest does not encode: " + err.Error()) // only plain types inside
	}
	return append([]byte(Format+"\x00"), mb...)
}

// Marshal encodes the bundle in its canonical form.
func (b *Bundle) Marshal() ([]byte, error) {
	data, err := json.Marshal(envelope{Format: Format, Manifest: b.Manifest, Signature: b.Signature, Files: b.Files})
	if err != nil {
		return nil, fmt.Errorf("patchset: marshal: %w", err)
	}
	return data, nil
}

// Unmarshal decodes a bundle. It checks the encoding and the structure (file
// names, sizes, manifest entries) but not hashes or the signature: Verify does
// that. A bundle that fails Verify can still be inspected.
func Unmarshal(data []byte) (*Bundle, error) {
	if len(data) > MaxBundleSize {
		return nil, fmt.Errorf("patchset: bundle of %d bytes exceeds %d", len(data), MaxBundleSize)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var env envelope
	if err := dec.Decode(&env); err != nil {
		return nil, fmt.Errorf("patchset: not a patch-set bundle: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("patchset: not a patch-set bundle: data after the bundle")
	}
	if env.Format != Format {
		return nil, fmt.Errorf("patchset: unsupported bundle format %q (want %q)", env.Format, Format)
	}
	b := &Bundle{Manifest: env.Manifest, Signature: env.Signature, Files: env.Files}
	again, err := b.Marshal()
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(again, data) {
		return nil, fmt.Errorf("patchset: %w", ErrNotCanonical)
	}
	if b.Manifest.Version == 0 {
		return nil, errors.New("patchset: manifest: version must be at least 1")
	}
	if err := checkFiles(b.Files); err != nil {
		return nil, err
	}
	if len(b.Manifest.Files) != len(b.Files) {
		return nil, fmt.Errorf("patchset: manifest lists %d files, bundle holds %d", len(b.Manifest.Files), len(b.Files))
	}
	for i, e := range b.Manifest.Files {
		if e.Name != b.Files[i].Name {
			return nil, fmt.Errorf("patchset: manifest entry %d is %q, file %d is %q", i, e.Name, i, b.Files[i].Name)
		}
	}
	return b, nil
}

// checkFiles checks count, sizes, names and order (sorted, unique).
func checkFiles(files []File) error {
	if len(files) == 0 {
		return errors.New("patchset: no patch files (*.yaml, *.yml)")
	}
	if len(files) > MaxFiles {
		return fmt.Errorf("patchset: %d files exceed the limit of %d", len(files), MaxFiles)
	}
	for i, f := range files {
		if err := checkName(f.Name); err != nil {
			return err
		}
		if len(f.Data) > patch.MaxFileSize {
			return fmt.Errorf("patchset: %s: file larger than %d bytes", f.Name, patch.MaxFileSize)
		}
		if i > 0 && files[i-1].Name >= f.Name {
			if files[i-1].Name == f.Name {
				return fmt.Errorf("patchset: %s: file listed twice", f.Name)
			}
			return fmt.Errorf("patchset: files not sorted by name (%q before %q)", files[i-1].Name, f.Name)
		}
	}
	return nil
}

// checkName accepts clean, relative, slash-separated names of YAML files.
func checkName(name string) error {
	switch {
	case name == "" || len(name) > 512:
		return fmt.Errorf("patchset: file name %q: empty or longer than 512 bytes", name)
	case path.IsAbs(name) || strings.Contains(name, `\`) || path.Clean(name) != name ||
		name == ".." || strings.HasPrefix(name, "../"):
		return fmt.Errorf("patchset: file name %q: must be a clean relative path with '/' separators", name)
	case path.Ext(name) != ".yaml" && path.Ext(name) != ".yml":
		return fmt.Errorf("patchset: file name %q: not a .yaml or .yml file", name)
	}
	for _, r := range name {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("patchset: file name %q: control character", name)
		}
	}
	return nil
}

// readDir reads the *.yaml / *.yml files below dir, the way patch.LoadDir does.
func readDir(dir string) ([]File, error) {
	st, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("patchset: %w", err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("patchset: %s: not a directory", dir)
	}
	var files []File
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		if ext := filepath.Ext(p); ext != ".yaml" && ext != ".yml" {
			return nil
		}
		if len(files) >= MaxFiles {
			return fmt.Errorf("more than %d patch files", MaxFiles)
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		data, err := readLimited(p)
		if err != nil {
			return err
		}
		files = append(files, File{Name: filepath.ToSlash(rel), Data: data})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("patchset: %s: %w", dir, err)
	}
	return files, nil
}

func readLimited(p string) ([]byte, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, patch.MaxFileSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > patch.MaxFileSize {
		return nil, fmt.Errorf("%s: file larger than %d bytes", p, patch.MaxFileSize)
	}
	return data, nil
}
