// Package e2e holds patchgate's end-to-end tests: real servers and clients in
// the namespace lab of deploy/lab, three patchgate nodes between them (L3 with
// NFQUEUE and L2 with AF_PACKET), real kernel TCP stacks on both ends.
//
// They check what an operator relies on: benign traffic gets through, every
// shipped exploit is stopped before the server sees it (the servers record
// every byte they receive), the inline node decides as the offline engine
// does, replayed captures are filtered the same way, and a node's SIGTERM
// leaves traffic flowing (fail-open) or stopped (fail-closed).
//
// The tests need root, iproute2, iptables (iptables-legacy) and tcpreplay;
// without root they skip. PATCHGATE_BIN names a prebuilt patchgate binary;
// otherwise the tests build one.
package e2e
