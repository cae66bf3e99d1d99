// Package waf measures patchgate inline against the peers an operator would
// otherwise deploy, in one run on one lab, so that the ratios mean something
// on a noisy machine:
//
//   - baseline: the lab's kernel forwarding, no inspection at all;
//   - patchgate: one patchgate node inline (L3, NFQUEUE) with the full
//     shipped catalog;
//   - nginx+ModSecurity: nginx with libmodsecurity3, the Debian OWASP CRS at
//     its default paranoia level 1 and CVERules (the same CVEs as the HTTP
//     patches, for parity) as a reverse proxy in the server's namespace, in
//     front of the same backend, with patchgate off; and, to split its
//     cost, the same nginx with CVERules only (no CRS: the like-for-like
//     rule set) and as a plain proxy (ModSecurity off). The settings are
//     an operator's (see nginxConf and modsecConf).
//
// Each path also reports the CPU time its gateway process used per
// request (the patchgate node; nginx's master and workers), which depends
// far less on the machine's other work than requests/s.
//
// Why nginx+ModSecurity+CRS is slow (hundreds of requests/s here): it is
// the CRS, not the setup. Measured on this 2-core machine (loopback, wrk
// with one thread and 8 connections, nginx CPU time over wrk's requests,
// nginx proxying to an nginx location in the same process):
//
//	ModSecurity off                          ~36 µs CPU per request
//	ModSecurity on, no rules                 ~100 µs
//	ModSecurity on, CVERules only            ~150 µs
//	ModSecurity on, CRS 3.3.4 PL1 + CVERules ~1100 µs (with or without
//	                                         CRS's IP collection, 901321)
//
// No error_log or audit log lines were written for the benign requests;
// upstream keep-alive was on. A perf profile of the CRS run shows the time
// spread over libmodsecurity's rule evaluation (malloc/free, string
// copies, dynamic_cast, per-variable transformations), not over PCRE2
// (JIT) matching, logging or I/O. At ~1.1 ms per request a core does about
// 900 requests/s; with wrk, the backend and other work sharing the two
// cores, a few hundred requests/s is what it reaches.
//
// Run drives wrk from the client namespace through each path (requests/s and
// the latency percentile curve), sends every HTTP exploit and look-alike of
// the shipped patches through each path and counts what reached the backend,
// and measures the latency patchgate adds per packet with a UDP ping-pong
// through the node against the same ping-pong with kernel forwarding.
//
// What is fair and what is not:
//
//   - All paths share the lab, the backend, the client, wrk's settings and
//     the two cores, measured one after the other in the same run.
//   - patchgate is a bump in the path (it inspects packets the kernel
//     forwards); nginx terminates the client's TCP connection and opens its
//     own to the backend (with upstream keep-alive). A proxy does more work
//     per request, but that is the deployment being compared.
//   - The nginx path runs CRS as well as the CVE rules, as deployed; CRS is
//     far broader than patchgate's catalog and costs accordingly. Its
//     blocking figures include CRS's own decisions (false positives on
//     look-alikes too).
//   - The backend is a small lenient HTTP/1.1 server of this package, not
//     net/http: net/http refuses some exploit targets itself (the "%%32%65"
//     forms of CVE-2021-42013) with 400, which would count as blocked on
//     every path, even the baseline. The baseline shows the backend
//     receives every corpus request.
//   - Per-packet latency is the round trip of 64-byte UDP datagrams from the
//     client to a UDP echo server in the server namespace. Both directions
//     cross the node, so the added latency per packet is half the difference
//     of the round-trip percentiles (a difference of percentiles, not a
//     percentile of differences). patchgate has no UDP analyzer on that port,
//     so this is the cost of the packet path: queueing to user space,
//     decode, flow table and verdict.
//   - Two shared cores: wrk, nginx, patchgate, the backend and other work on
//     the machine compete. The numbers are indicative; ratios from one run
//     are the figures to quote.
package waf
