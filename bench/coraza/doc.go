// Package corazabench compares patchgate's HTTP inspection with Coraza, the
// Go WAF people use for virtual patching, on the same requests and the same
// CVEs, from one binary.
//
// It is a separate Go module so that Coraza never enters patchgate's own
// go.mod. Three inspectors take the same raw request bytes (the shipped HTTP
// patches' exploit and look-alike requests, and a benign mix):
//
//   - PatchgateHTTP: patchgate's HTTP analyzer parses the bytes and the
//     compiled catalog's runner evaluates the patches on its events — the
//     per-request work of a node without the packet layer;
//   - Coraza: net/http's request parser (what a Go server running Coraza's
//     middleware uses) parses the bytes and a Coraza transaction evaluates
//     the CVE rules of bench/waf (waf.CVERules) through ProcessURI,
//     AddRequestHeader, ProcessRequestHeaders, WriteRequestBody and
//     ProcessRequestBody;
//   - PatchgateEngine: the whole engine on the frames of a TCP session
//     carrying the request (decode, flow table, TCP reassembly, analyzer,
//     patches) — more work than Coraza does, for context.
//
// PatchgateHTTP against Coraza is the like-for-like comparison: both start
// from request bytes and include their HTTP parsing; neither sees TCP.
package corazabench
