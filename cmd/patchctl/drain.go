package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/patchgate/patchgate/api/pb"
)

// drainWaitTimeout is the default deadline of node drain and undrain: above
// a node's default drain timeout (30 s), so that a node that reports drained
// at its timeout is still waited for.
const drainWaitTimeout = 2 * time.Minute

// Drain phases a node reports (node.DrainPhase).
const (
	phaseAnnounce = "announce"
	phaseDrained  = "drained"
)

// waitDrainPhase polls the cluster status every interval until node reports
// phase want, printing the phase and the flows remaining whenever they
// change. It fails when the command's deadline passes first.
func waitDrainPhase(e *env, node, want string, interval time.Duration) error {
	c, err := e.connect()
	if err != nil {
		return err
	}
	last := ""
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		row, err := nodeRow(e.ctx, c, node)
		if err == nil {
			line := describePhase(row)
			if line != last {
				fmt.Fprintf(e.out, "%s: %s\n", node, line)
				last = line
			}
			if row.DrainPhase == want && row.Drained == (want == phaseDrained) {
				return nil
			}
		}
		select {
		case <-e.ctx.Done():
			if err != nil {
				return fmt.Errorf("timed out waiting for %s to be %s: %w", node, want, err)
			}
			return fmt.Errorf("timed out waiting for %s to be %s (last: %s)", node, want, last)
		case <-t.C:
		}
	}
}

// nodeRow returns node's row of the cluster status.
func nodeRow(ctx context.Context, c pb.PatchGateClient, node string) (*pb.NodeStatus, error) {
	r, err := c.Status(ctx, &pb.StatusRequest{})
	if err != nil {
		return nil, err
	}
	for _, n := range r.Nodes {
		if n.Name == node {
			return n, nil
		}
	}
	return nil, errors.New("node not in the cluster status")
}

// describePhase is the progress line of one status row.
func describePhase(n *pb.NodeStatus) string {
	flag := "drain flag applied"
	if !n.Drained {
		flag = "no drain flag applied"
	}
	switch n.DrainPhase {
	case "":
		return "drain phase not reported (" + flag + ")"
	case phaseAnnounce:
		return "announce (" + flag + ")"
	}
	return fmt.Sprintf("%s, %d flows remaining (%s)", n.DrainPhase, n.DrainFlowsRemaining, flag)
}
