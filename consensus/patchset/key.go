package patchset

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

// Key file tags (the first word of a key file line).
const (
	secretTag = "patchgate-ed25519-secret-v1"
	publicTag = "patchgate-ed25519-public-v1"
)

// maxKeyFile bounds a key or trusted-keys file.
const maxKeyFile = 1 << 20

// KeyID returns the id of a public key: the first 16 bytes of SHA-256 of the
// raw key, in lower-case hex.
func KeyID(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return hex.EncodeToString(sum[:16])
}

// PrivateKey is an ed25519 signing key.
type PrivateKey struct {
	key ed25519.PrivateKey
}

// GenerateKey creates a new signing key from crypto/rand.
func GenerateKey() (*PrivateKey, error) {
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("patchset: generate key: %w", err)
	}
	return &PrivateKey{key: k}, nil
}

// NewPrivateKey wraps an existing ed25519 private key.
func NewPrivateKey(k ed25519.PrivateKey) (*PrivateKey, error) {
	if len(k) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("patchset: private key has %d bytes, want %d", len(k), ed25519.PrivateKeySize)
	}
	return &PrivateKey{key: k}, nil
}

// Public returns the public half.
func (k *PrivateKey) Public() ed25519.PublicKey { return k.key.Public().(ed25519.PublicKey) }

// ID returns the key id of the public half.
func (k *PrivateKey) ID() string { return KeyID(k.Public()) }

func (k *PrivateKey) sign(msg []byte) []byte { return ed25519.Sign(k.key, msg) }

// MarshalText encodes the key in the secret key file format (one line).
func (k *PrivateKey) MarshalText() ([]byte, error) {
	return []byte(secretTag + " " + base64.StdEncoding.EncodeToString(k.key.Seed()) + "\n"), nil
}

// MarshalPublicKey encodes a public key in the public key file format, with an
// optional comment (e.g. who holds the secret half).
func MarshalPublicKey(pub ed25519.PublicKey, comment string) []byte {
	s := publicTag + " " + base64.StdEncoding.EncodeToString(pub)
	if c := strings.Join(strings.Fields(comment), " "); c != "" {
		s += " " + c
	}
	return []byte(s + "\n")
}

// ParsePrivateKey parses a secret key file.
func ParsePrivateKey(data []byte) (*PrivateKey, error) {
	f := strings.Fields(string(data))
	if len(f) != 2 || f[0] != secretTag {
		return nil, fmt.Errorf("patchset: not a patchgate secret key (want %q and the base64 seed)", secretTag)
	}
	seed, err := base64.StdEncoding.DecodeString(f[1])
	if err != nil {
		return nil, fmt.Errorf("patchset: secret key: %w", err)
	}
	if len(seed) != ed25519.SeedSize {
		return nil, fmt.Errorf("patchset: secret key seed has %d bytes, want %d", len(seed), ed25519.SeedSize)
	}
	return &PrivateKey{key: ed25519.NewKeyFromSeed(seed)}, nil
}

// LoadPrivateKey reads a secret key file.
func LoadPrivateKey(path string) (*PrivateKey, error) {
	data, err := readSmall(path)
	if err != nil {
		return nil, err
	}
	k, err := ParsePrivateKey(data)
	if err != nil {
		return nil, fmt.Errorf("%w (file %s)", err, path)
	}
	return k, nil
}

// WriteKeyPair writes a new key's secret half to secretPath (mode 0600, never
// overwriting an existing file) and its public half to secretPath + ".pub".
func WriteKeyPair(k *PrivateKey, secretPath, comment string) error {
	sec, _ := k.MarshalText()
	f, err := os.OpenFile(secretPath, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("patchset: write key: %w", err)
	}
	if _, err := f.Write(sec); err != nil {
		f.Close()
		return fmt.Errorf("patchset: write key: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("patchset: write key: %w", err)
	}
	if err := os.WriteFile(secretPath+".pub", MarshalPublicKey(k.Public(), comment), 0o644); err != nil {
		return fmt.Errorf("patchset: write public key: %w", err)
	}
	return nil
}

// KeySet is a set of trusted public keys indexed by key id. The zero value
// (nil) trusts nothing. A KeySet is not modified after it is built, so it is
// safe for concurrent reads.
type KeySet map[string]ed25519.PublicKey

// NewKeySet returns a key set trusting the given public keys.
func NewKeySet(pubs ...ed25519.PublicKey) KeySet {
	ks := KeySet{}
	for _, p := range pubs {
		ks[KeyID(p)] = append(ed25519.PublicKey(nil), p...)
	}
	return ks
}

// IDs returns the key ids, sorted.
func (ks KeySet) IDs() []string {
	ids := make([]string, 0, len(ks))
	for id := range ks {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// ParseKeySet parses a trusted-keys file: public key lines, blank lines and
// '#' comments. name is used in error messages.
func ParseKeySet(name string, data []byte) (KeySet, error) {
	ks := KeySet{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 4096), maxKeyFile)
	line := 0
	for sc.Scan() {
		line++
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		f := strings.Fields(text)
		if f[0] != publicTag || len(f) < 2 {
			return nil, fmt.Errorf("patchset: %s:%d: not a public key line (want %q, base64 key, optional comment)", name, line, publicTag)
		}
		pub, err := base64.StdEncoding.DecodeString(f[1])
		if err != nil {
			return nil, fmt.Errorf("patchset: %s:%d: public key: %w", name, line, err)
		}
		if len(pub) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("patchset: %s:%d: public key has %d bytes, want %d", name, line, len(pub), ed25519.PublicKeySize)
		}
		ks[KeyID(pub)] = pub
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("patchset: %s: %w", name, err)
	}
	return ks, nil
}

// LoadKeySet reads and merges trusted-keys files.
func LoadKeySet(paths ...string) (KeySet, error) {
	all := KeySet{}
	for _, p := range paths {
		data, err := readSmall(p)
		if err != nil {
			return nil, err
		}
		ks, err := ParseKeySet(p, data)
		if err != nil {
			return nil, err
		}
		for id, k := range ks {
			all[id] = k
		}
	}
	return all, nil
}

func readSmall(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("patchset: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxKeyFile+1))
	if err != nil {
		return nil, fmt.Errorf("patchset: %s: %w", path, err)
	}
	if len(data) > maxKeyFile {
		return nil, fmt.Errorf("patchset: %s: larger than %d bytes", path, maxKeyFile)
	}
	return data, nil
}
