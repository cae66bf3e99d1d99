// Package evasion is the evasion and robustness suite of the inspection
// engine. It holds no production code: its tests replay every shipped virtual
// patch's traffic (patches/*/*.yaml, exploits and benign look-alikes) through
// a fresh engine configured like an inline node (checksums validated), once
// per evasion class, and check what an inline device must guarantee:
//
//   - an exploit is blocked: the patch (or, where the engine refuses the
//     evasion itself, the engine's own evasion alert) fires, and the frames
//     the engine passed never let the server assemble the whole exploit
//     message (the receiver's view is rebuilt from the passed, genuine frames
//     only: decoys, corrupted segments and incomplete fragment trains do not
//     count);
//   - a benign look-alike passes: the patch does not fire and every genuine
//     (non-decoy) frame is forwarded — or, for the classes the normalisation
//     policy refuses outright (urgent data, overlaps with different bytes), the
//     documented policy is what happens.
//
// The classes cover the IP layer (low-TTL insertion, bad checksums, bogus
// lengths, options, fragments of every shape and order, overlaps, reassembly
// timeouts, IPv6 extension headers and atomic fragments), TCP (bad checksums,
// missing ACK, data in or before the handshake, RST/FIN desynchronisation,
// PAWS, out-of-window data, overlapping retransmissions, 1-byte segments,
// urgent data, second SYNs) and the application layer (HTTP encodings,
// framing and smuggling variants, TLS and DNS split at every byte). Further
// tests bound resources under SYN and fragment floods and feed malformed and
// truncated sessions of every protocol. README.md lists every class and how to
// run the suite.
package evasion
