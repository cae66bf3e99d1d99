// Package consensus is patchgate's control-plane core: a hashicorp/raft
// replicated state machine (FSM) holding the patch-set history, the active
// version, the rollout plan, node drain flags and cluster settings, and
// Cluster, which runs raft (raft-boltdb log, file snapshots, TCP transport)
// beside hashicorp/memberlist for discovery and failure detection.
//
// Writes go to the leader (Cluster.Apply and its wrappers); a follower answers
// with a *NotLeaderError naming the leader so the API layer can forward. Every
// node serves reads of its own applied state (FSM.State, FSM.Target) and keeps
// it when it loses the leader or quorum: the data plane goes on enforcing the
// last version it applied (static stability).
//
// Patch sets are built, signed and verified by the sub-package patchset. See
// README.md for the rollout semantics, the membership rules and measured
// numbers.
package consensus
