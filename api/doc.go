// Package api serves patchgate's control API (service patchgate.v1.PatchGate,
// defined in patchgate.proto; generated code in api/pb) on every node of a
// cluster, and provides the client patchctl uses.
//
// Reads are answered from the receiving node's replicated state. Writes on a
// follower are forwarded to the raft leader's API address (from its gossip
// metadata) with the node's own credentials; a forwarded write is never
// forwarded again.
//
// Every call passes the interceptor chain: recovery (a panic becomes
// codes.Internal), logging (log/slog), authentication (bearer token and/or
// client certificate signed by the cluster CA), rate limiting (token bucket)
// and request validation (the requests' Validate methods).
package api
