package consensus

import (
	"errors"
	"fmt"
)

// ErrNotLeader is returned (wrapped in a *NotLeaderError) by writes on a node
// that is not the raft leader.
var ErrNotLeader = errors.New("not the raft leader")

// ErrShutdown is returned by calls on a cluster member that was shut down.
var ErrShutdown = errors.New("cluster member shut down")

// NotLeaderError says where the leader is, so the API layer can forward the
// write. The fields are empty when no leader is known (election in progress
// or no quorum).
type NotLeaderError struct {
	LeaderID       string
	LeaderRaftAddr string
	// LeaderAPIAddr is the leader's API address from its gossip metadata.
	LeaderAPIAddr string
}

func (e *NotLeaderError) Error() string {
	if e.LeaderID == "" {
		return "consensus: not the raft leader, and no leader is known"
	}
	return fmt.Sprintf("consensus: not the raft leader; leader is %s (raft %s, api %s)", e.LeaderID, e.LeaderRaftAddr, e.LeaderAPIAddr)
}

// Is makes errors.Is(err, ErrNotLeader) true.
func (e *NotLeaderError) Is(target error) bool { return target == ErrNotLeader }
