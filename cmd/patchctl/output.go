package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/patchgate/patchgate/api/pb"
)

// describe turns an API error into one line naming its code.
func describe(err error) string {
	if s, ok := status.FromError(err); ok && s.Code() != codes.Unknown {
		msg := s.Message()
		switch s.Code() {
		case codes.Unauthenticated:
			msg += " (give --token, --token-file or a client certificate)"
		case codes.Unavailable:
			msg += " (is the server address right, and does the cluster have a leader?)"
		}
		return fmt.Sprintf("%s: %s", strings.ToLower(s.Code().String()), msg)
	}
	return err.Error()
}

// printJSON writes a message as indented JSON.
func printJSON(w io.Writer, m proto.Message) error {
	b, err := protojson.MarshalOptions{Multiline: true, Indent: "  ", EmitUnpopulated: true}.Marshal(m)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(w, string(b))
	return err
}

func table(w io.Writer) *tabwriter.Writer { return tabwriter.NewWriter(w, 0, 4, 2, ' ', 0) }

func short(h string) string {
	h = strings.TrimPrefix(h, "sha256:")
	if len(h) > 12 {
		return h[:12]
	}
	if h == "" {
		return "-"
	}
	return h
}

func when(ms int64) string {
	if ms == 0 {
		return "-"
	}
	return time.UnixMilli(ms).UTC().Format("2006-01-02 15:04:05Z")
}

func yes(b bool, s string) string {
	if b {
		return s
	}
	return "-"
}

// drainCell is the DRAIN column: the drain phase (with the flows still
// sending while draining), "-" when announcing without a drain flag.
func drainCell(n *pb.NodeStatus) string {
	switch {
	case n.DrainPhase == "draining":
		return fmt.Sprintf("draining (%d flows)", n.DrainFlowsRemaining)
	case n.DrainPhase == "drained":
		return "drained"
	case n.Drained:
		return "flagged" // applied, phase not reported (yet)
	}
	return "-"
}

func cmdStatus(e *env, _ []string) error {
	c, err := e.connect()
	if err != nil {
		return err
	}
	r, err := c.Status(e.ctx, &pb.StatusRequest{})
	if err != nil {
		return err
	}
	if e.g.json {
		return printJSON(e.out, r)
	}
	fmt.Fprintf(e.out, "leader %s, active version %d, raft index %d (served by %s)\n\n", r.Leader, r.ActiveVersion, r.RaftIndex, r.ServedBy)
	tw := table(e.out)
	fmt.Fprintln(tw, "NAME\tADDRESS\tRAFT\tGOSSIP\tHEALTH\tAPPLIED\tDRAIN\tPACKETS/S\tALERTS")
	for _, n := range r.Nodes {
		pps, alerts := fmt.Sprintf("%.0f", n.PacketsPerSecond), fmt.Sprint(n.Alerts)
		if n.StatsError != "" {
			pps, alerts = "?", "?"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\tv%d %s\t%s\t%s\t%s\n", n.Name, n.ApiAddr, n.RaftRole, n.Gossip, n.Health,
			n.AppliedVersion, short(n.AppliedHash), drainCell(n), pps, alerts)
	}
	return tw.Flush()
}

func cmdList(e *env, _ []string) error {
	c, err := e.connect()
	if err != nil {
		return err
	}
	r, err := c.ListPatchSets(e.ctx, &pb.ListPatchSetsRequest{})
	if err != nil {
		return err
	}
	if e.g.json {
		return printJSON(e.out, r)
	}
	tw := table(e.out)
	fmt.Fprintln(tw, "VERSION\tACTIVE\tPATCHES\tCONTENT\tSIGNER\tAUTHOR\tCOMMITTED\tMESSAGE")
	for _, p := range r.PatchSets {
		fmt.Fprintf(tw, "%d\t%s\t%d\t%s\t%s\t%s\t%s\t%s\n", p.Version, yes(p.Active, "*"), p.PatchCount, short(p.ContentHash),
			short(p.Signer), p.Author, when(p.CommittedUnixMs), p.Message)
	}
	return tw.Flush()
}

func cmdShow(e *env, arg, bundleOut string) error {
	v, err := parseVersion(arg)
	if err != nil {
		return err
	}
	c, err := e.connect()
	if err != nil {
		return err
	}
	r, err := c.ShowPatchSet(e.ctx, &pb.ShowPatchSetRequest{Version: v, IncludeBundle: bundleOut != ""})
	if err != nil {
		return err
	}
	if bundleOut != "" {
		if err := os.WriteFile(bundleOut, r.Bundle, 0o644); err != nil {
			return err
		}
		r.Bundle = nil
	}
	if e.g.json {
		return printJSON(e.out, r)
	}
	i := r.Info
	fmt.Fprintf(e.out, "version %d%s\ncontent  %s\nsigner   %s\nauthor   %s, built %s\ncommitted %s by %s\nmessage  %s\n\n",
		i.Version, map[bool]string{true: " (active)"}[i.Active], i.ContentHash, i.Signer, i.Author, when(i.CreatedUnixMs),
		when(i.CommittedUnixMs), i.CommittedBy, i.Message)
	tw := table(e.out)
	fmt.Fprintln(tw, "PATCH\tFILE\tSHA256")
	for _, p := range r.Patches {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", p.Id, p.File, short(p.Sha256))
	}
	return tw.Flush()
}

func cmdDiff(e *env, a []string) error {
	from, err := parseVersion(a[0])
	if err != nil {
		return err
	}
	to, err := parseVersion(a[1])
	if err != nil {
		return err
	}
	c, err := e.connect()
	if err != nil {
		return err
	}
	r, err := c.DiffPatchSets(e.ctx, &pb.DiffPatchSetsRequest{From: from, To: to})
	if err != nil {
		return err
	}
	if e.g.json {
		return printJSON(e.out, r)
	}
	for _, l := range []struct {
		sign string
		ids  []string
	}{{"+", r.Added}, {"-", r.Removed}, {"~", r.Changed}} {
		for _, id := range l.ids {
			fmt.Fprintf(e.out, "%s %s\n", l.sign, id)
		}
	}
	if len(r.Added)+len(r.Removed)+len(r.Changed) == 0 {
		fmt.Fprintf(e.out, "versions %d and %d hold the same patches\n", from, to)
	}
	return nil
}

func cmdHistory(e *env, limit int) error {
	c, err := e.connect()
	if err != nil {
		return err
	}
	r, err := c.History(e.ctx, &pb.HistoryRequest{Limit: int32(limit)})
	if err != nil {
		return err
	}
	if e.g.json {
		return printJSON(e.out, r)
	}
	if ro := r.Rollout; ro != nil {
		fmt.Fprintf(e.out, "latest rollout: version %d from %d, %s, stage %s%s, started %s by %s\n\n", ro.Version, ro.From,
			ro.Strategy, ro.Stage, map[bool]string{true: " (rollback)"}[ro.Rollback], when(ro.StartedUnixMs), ro.StartedBy)
	}
	tw := table(e.out)
	fmt.Fprintln(tw, "VERSION\tACTIVE\tCOMMITTED\tBY\tAUTHOR\tMESSAGE")
	for _, p := range r.Entries {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\n", p.Version, yes(p.Active, "*"), when(p.CommittedUnixMs), p.CommittedBy, p.Author, p.Message)
	}
	return tw.Flush()
}

// printRollout prints the rollout and one line per node.
func printRollout(w io.Writer, r *pb.RolloutStatusResponse) {
	done := 0
	for _, n := range r.Nodes {
		if n.Done {
			done++
		}
	}
	if ro := r.Rollout; ro != nil {
		fmt.Fprintf(w, "rollout of version %d (from %d): %s, stage %s", ro.Version, ro.From, ro.Strategy, ro.Stage)
		if len(ro.CanaryNodes) > 0 {
			fmt.Fprintf(w, ", canaries %s", strings.Join(ro.CanaryNodes, ","))
		}
		fmt.Fprintln(w)
	}
	bar := strings.Repeat("#", done) + strings.Repeat(".", len(r.Nodes)-done)
	fmt.Fprintf(w, "active version %d  [%s] %d/%d nodes applied their target\n", r.ActiveVersion, bar, done, len(r.Nodes))
	tw := table(w)
	fmt.Fprintln(tw, "NODE\tGOSSIP\tTARGET\tAPPLIED\tSTATE")
	for _, n := range r.Nodes {
		st := "pending"
		if n.Done {
			st = "done"
		}
		fmt.Fprintf(tw, "%s\t%s\tv%d\tv%d\t%s\n", n.Name, n.Gossip, n.TargetVersion, n.AppliedVersion, st)
	}
	tw.Flush()
}

func cmdRolloutStatus(e *env, watch bool, interval time.Duration) error {
	c, err := e.connect()
	if err != nil {
		return err
	}
	ctx := e.ctx
	if watch && !flagSet(e, "timeout") {
		var cancel context.CancelFunc
		ctx, cancel = signal.NotifyContext(context.Background(), os.Interrupt)
		defer cancel()
	}
	last := ""
	for {
		r, err := c.RolloutStatus(ctx, &pb.RolloutStatusRequest{})
		if err != nil {
			return err
		}
		if !watch {
			if e.g.json {
				return printJSON(e.out, r)
			}
			printRollout(e.out, r)
			return nil
		}
		var b strings.Builder
		printRollout(&b, r)
		if s := b.String(); s != last {
			fmt.Fprintf(e.out, "--- %s\n%s", time.Now().Format("15:04:05.000"), s)
			last = s
		}
		if r.Converged {
			fmt.Fprintln(e.out, "converged")
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("not converged: %w", ctx.Err())
		case <-time.After(interval):
		}
	}
}

// flagSet reports whether the user gave flag name.
func flagSet(e *env, name string) bool {
	set := false
	e.fs.Visit(func(f *flagT) {
		if f.Name == name {
			set = true
		}
	})
	return set
}

func cmdAlertsTail(e *env, max uint32) error {
	c, err := e.connect()
	if err != nil {
		return err
	}
	ctx := e.ctx
	if !flagSet(e, "timeout") {
		var cancel context.CancelFunc
		ctx, cancel = signal.NotifyContext(context.Background(), os.Interrupt)
		defer cancel()
	}
	s, err := c.TailAlerts(ctx, &pb.TailAlertsRequest{Max: max})
	if err != nil {
		return err
	}
	for {
		a, err := s.Recv()
		if err == io.EOF || ctx.Err() != nil {
			return nil
		}
		if err != nil {
			return err
		}
		if e.g.json {
			b, _ := protojson.Marshal(a)
			fmt.Fprintln(e.out, string(b))
			continue
		}
		action := "allowed"
		if a.Blocked {
			action = "blocked"
		}
		fmt.Fprintf(e.out, "%s %s %s %s -> %s %s %s [%s] v%d\n", time.UnixMilli(a.TimeUnixMs).UTC().Format("15:04:05.000"),
			a.Node, action, a.Src, a.Dst, a.PatchId, a.Signature, strings.Join(a.Cve, ","), a.PatchSet)
	}
}

func cmdFlowsTop(e *env, limit int) error {
	c, err := e.connect()
	if err != nil {
		return err
	}
	r, err := c.TopFlows(e.ctx, &pb.TopFlowsRequest{Limit: uint32(limit)})
	if err != nil {
		return err
	}
	if e.g.json {
		return printJSON(e.out, r)
	}
	fmt.Fprintf(e.out, "node %s: %d flows\n\n", r.Node, r.TotalFlows)
	tw := table(e.out)
	fmt.Fprintln(tw, "SERVICE\tFLOWS")
	for _, g := range r.Groups {
		fmt.Fprintf(tw, "%s\t%d\n", g.Key, g.Flows)
	}
	tw.Flush()
	if len(r.PatchAlerts) > 0 {
		ids := make([]string, 0, len(r.PatchAlerts))
		for id := range r.PatchAlerts {
			ids = append(ids, id)
		}
		sort.Slice(ids, func(i, j int) bool { return r.PatchAlerts[ids[i]] > r.PatchAlerts[ids[j]] })
		fmt.Fprintln(e.out)
		tw = table(e.out)
		fmt.Fprintln(tw, "PATCH\tALERTS")
		for _, id := range ids {
			fmt.Fprintf(tw, "%s\t%d\n", id, r.PatchAlerts[id])
		}
		tw.Flush()
	}
	return nil
}
