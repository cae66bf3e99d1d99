package patchset

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
)

// Verification failures. Verify wraps one of them with the details, so callers
// test with errors.Is.
var (
	// ErrUnsigned: the bundle carries no signature.
	ErrUnsigned = errors.New("patch set is not signed")
	// ErrUnknownKey: the signer is not among the trusted keys.
	ErrUnknownKey = errors.New("patch set is signed by a key that is not trusted")
	// ErrTampered: a file, the content hash or the manifest does not match what
	// was signed.
	ErrTampered = errors.New("patch set was modified after it was built")
	// ErrBadSignature: the signature does not verify with the signer's key.
	ErrBadSignature = errors.New("patch set signature does not verify")
)

// CheckIntegrity recomputes every file hash and the content hash and compares
// them with the manifest. It does not look at the signature.
func (b *Bundle) CheckIntegrity() error {
	v := b.Manifest.Version
	if len(b.Manifest.Files) != len(b.Files) {
		return fmt.Errorf("patchset: version %d: %w: manifest lists %d files, bundle holds %d", v, ErrTampered, len(b.Manifest.Files), len(b.Files))
	}
	for i, f := range b.Files {
		e := b.Manifest.Files[i]
		if e.Name != f.Name {
			return fmt.Errorf("patchset: version %d: %w: manifest entry %q, file %q", v, ErrTampered, e.Name, f.Name)
		}
		sum := sha256.Sum256(f.Data)
		if e.Size != len(f.Data) || e.SHA256 != hex.EncodeToString(sum[:]) {
			return fmt.Errorf("patchset: version %d: %w: %s does not match its manifest hash", v, ErrTampered, f.Name)
		}
	}
	if got := contentHash(b.Files); got != b.Manifest.ContentHash {
		return fmt.Errorf("patchset: version %d: %w: content hash %s, manifest says %s", v, ErrTampered, got, b.Manifest.ContentHash)
	}
	return nil
}

// Verify checks that the bundle is intact and signed by one of the trusted
// keys. It refuses unsigned bundles (ErrUnsigned), bundles signed by a key
// outside trusted (ErrUnknownKey), and bundles whose files or manifest changed
// after signing (ErrTampered, ErrBadSignature).
func (b *Bundle) Verify(trusted KeySet) error {
	v := b.Manifest.Version
	if err := b.CheckIntegrity(); err != nil {
		return err
	}
	if len(b.Signature) == 0 || b.Manifest.Signer == "" {
		return fmt.Errorf("patchset: version %d: %w", v, ErrUnsigned)
	}
	pub, ok := trusted[b.Manifest.Signer]
	if !ok {
		return fmt.Errorf("patchset: version %d: %w: signer key id %s (trusted: %v)", v, ErrUnknownKey, b.Manifest.Signer, trusted.IDs())
	}
	if len(b.Signature) != ed25519.SignatureSize || !ed25519.Verify(pub, signedBytes(&b.Manifest), b.Signature) {
		return fmt.Errorf("patchset: version %d: %w with key %s (manifest or signature modified)", v, ErrBadSignature, b.Manifest.Signer)
	}
	return nil
}
