// Package patchset builds, signs, verifies and compiles patch sets.
//
// A patch set is a versioned bundle of virtual-patch files (the YAML files of a
// directory, see dataplane/patch) signed with ed25519. Nodes accept a bundle
// only when Verify succeeds against the public keys they trust, and the Raft
// leader compiles it and runs its embedded tests (CompileAndTest) before the
// bundle is committed: a broken patch set never reaches the log.
//
// # Bundle format (patchgate-patchset-v1)
//
// A bundle is one compact JSON object, written by Marshal and nothing else:
//
//	{"format":"patchgate-patchset-v1",
//	 "manifest":{"version":7,"author":"ops","created":"2026-11-22T10:00:00Z",
//	             "message":"add SIGRed","signer":"<key id>",
//	             "content_hash":"sha256:<hex>",
//	             "files":[{"name":"dns/CVE-2020-1350.yaml","size":1234,"sha256":"<hex>"}, ...]},
//	 "signature":"<base64 ed25519 signature>",
//	 "files":[{"name":"dns/CVE-2020-1350.yaml","data":"<base64>"}, ...]}
//
// Files are sorted by name (slash-separated, relative to the built directory).
// The content hash covers the files only (not the version or the metadata), so
// two versions with the same files have the same content hash:
//
//	content_hash = sha256( for each file in name order:
//	                        uint32be(len(name)) || name || sha256(data) )
//
// The signature is ed25519 over the bytes "patchgate-patchset-v1\x00" followed by
// the manifest exactly as it appears in the bundle (its canonical JSON). The
// manifest names the signer's key id, so the signature also binds the signer.
// The signature field is empty in an unsigned bundle.
//
// Unmarshal accepts only the canonical encoding: a bundle that does not
// re-encode to exactly the same bytes is refused, so any change to any byte is
// either refused by Unmarshal or detected by Verify (file hash, content hash or
// signature mismatch).
//
// # Key files
//
// Keys are plain one-line text files (no PEM, no OpenSSH format):
//
//	patchgate-ed25519-secret-v1 <base64 of the 32-byte ed25519 seed>
//	patchgate-ed25519-public-v1 <base64 of the 32-byte public key> [comment]
//
// A trusted-keys file holds any number of public-key lines; blank lines and
// lines starting with '#' are ignored. A key id is the first 16 bytes of the
// SHA-256 of the raw 32-byte public key, in lower-case hex (32 characters).
package patchset
