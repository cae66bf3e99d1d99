package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/patchgate/patchgate/bench/traffic"
	"github.com/patchgate/patchgate/dataplane/patch"
)

// cmdTraffic implements `pgbench traffic`: it writes a seeded benchmark
// capture and its manifest (<out>.manifest.json) and prints a summary.
func cmdTraffic(args []string, stdout, stderr io.Writer) error {
	def := traffic.DefaultOptions()
	fs := flag.NewFlagSet("traffic", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: pgbench traffic --out FILE [flags]\n\nWrites a seeded capture of HTTP/1.1, TLS and DNS flows with the catalog's exploits and look-alikes at known positions, and FILE.manifest.json describing it.")
		fs.PrintDefaults()
	}
	var (
		o           = def
		weights     = fs.String("weights", formatWeights(def.Weights), "relative shares of benign flow kinds")
		patchesDir  = fs.String("patches", "patches", "catalog whose tests supply exploits and look-alikes (\"\" for none)")
		start       = fs.String("start", def.Clock.Start.Format(time.RFC3339Nano), "timestamp of the first frame (RFC 3339)")
		quiet       = fs.Bool("quiet", false, "print only the manifest path")
		pps         = fs.Int("pps", 0, "nominal packets per second of the timestamps (overrides --step)")
		concurrency = fs.Int("concurrency", def.Concurrency, "flows open at once (their frames interleave; memory grows with it)")
	)
	fs.Uint64Var(&o.Seed, "seed", def.Seed, "seed: the same flags give a byte-identical capture")
	fs.IntVar(&o.Flows, "flows", def.Flows, "total flows, exploits and look-alikes included")
	fs.StringVar(&o.Out, "out", "", "capture file (required)")
	fs.StringVar(&o.Format, "format", def.Format, "pcap or pcapng")
	fs.IntVar(&o.Exploits, "exploits", def.Exploits, "exploit flows, cycling through the catalog's exploit tests (-1: each test once)")
	fs.Float64Var(&o.ExploitRate, "exploit-rate", 0, "exploit flows as a fraction of --flows (overrides --exploits; at least each test once)")
	fs.IntVar(&o.LookAlikes, "lookalikes", def.LookAlikes, "look-alike flows (-1: each look-alike test once)")
	fs.Float64Var(&o.IPv6Share, "ipv6-share", def.IPv6Share, "fraction of flows over IPv6")
	fs.DurationVar(&o.Clock.Step, "step", def.Clock.Step, "time between frames (10µs = a nominal 100k packets/s)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("pgbench traffic: unexpected argument %q", fs.Arg(0))
	}
	if o.Out == "" {
		fs.Usage()
		return errors.New("pgbench traffic: --out is required")
	}
	o.Concurrency = *concurrency
	if *pps < 0 {
		return fmt.Errorf("pgbench traffic: --pps %d is negative", *pps)
	}
	if *pps > 0 {
		o.Clock.Step = time.Second / time.Duration(*pps)
	}
	var err error
	if o.Weights, err = parseWeights(*weights); err != nil {
		return err
	}
	if o.Clock.Start, err = time.Parse(time.RFC3339Nano, *start); err != nil {
		return fmt.Errorf("pgbench traffic: --start: %w", err)
	}
	if *patchesDir != "" {
		if o.Patches, err = patch.LoadDir(*patchesDir); err != nil {
			return fmt.Errorf("pgbench traffic: --patches: %w", err)
		}
	}
	res, err := traffic.Generate(o)
	if err != nil {
		return fmt.Errorf("pgbench traffic: %w", err)
	}
	if *quiet {
		fmt.Fprintln(stdout, res.ManifestPath)
		return nil
	}
	printSummary(stdout, res)
	return nil
}

func printSummary(w io.Writer, res *traffic.Result) {
	secs := res.Elapsed.Seconds()
	fmt.Fprintf(w, "capture   %s (%s)\nmanifest  %s\n", res.Path, res.Format, res.ManifestPath)
	fmt.Fprintf(w, "flows     %d: http %d, tls %d, dns/udp %d, dns/tcp %d, exploits %d, look-alikes %d (IPv6 %d)\n",
		res.FlowsTotal, res.Flows[traffic.KindHTTP], res.Flows[traffic.KindTLS], res.Flows[traffic.KindDNSUDP],
		res.Flows[traffic.KindDNSTCP], res.Flows[traffic.KindExploit], res.Flows[traffic.KindLookAlike], res.IPv6Flows)
	fmt.Fprintf(w, "packets   %d, %.1f MB, mean frame %.0f B, spanning %s\n",
		res.Packets, float64(res.Bytes)/1e6, res.FrameSizes.Mean, res.Last.Sub(res.First))
	fmt.Fprintf(w, "generated in %s: %.0f flows/s, %.0f packets/s, %.1f MB/s\n", res.Elapsed.Round(time.Millisecond),
		float64(res.FlowsTotal)/secs, float64(res.Packets)/secs, float64(res.Bytes)/1e6/secs)
	fmt.Fprintln(w, "frame sizes (bytes, no FCS):")
	for _, b := range res.FrameSizes.Bins {
		hi := strconv.Itoa(b.Max)
		if b.Max == 0 {
			hi = "…"
		}
		fmt.Fprintf(w, "  %5d-%-5s %10d  %5.1f%%\n", b.Min, hi, b.Count, 100*b.Share)
	}
}

func formatWeights(w traffic.Weights) string {
	f := func(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }
	return "http=" + f(w.HTTP) + ",tls=" + f(w.TLS) + ",dns_udp=" + f(w.DNSUDP) + ",dns_tcp=" + f(w.DNSTCP)
}

// parseWeights reads "http=40,tls=30,dns_udp=25,dns_tcp=5" (kinds omitted
// get 0).
func parseWeights(s string) (traffic.Weights, error) {
	var w traffic.Weights
	for _, kv := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(kv), "=")
		x, err := strconv.ParseFloat(v, 64)
		if !ok || err != nil {
			return w, fmt.Errorf("pgbench traffic: --weights: %q is not kind=number", kv)
		}
		switch k {
		case traffic.KindHTTP:
			w.HTTP = x
		case traffic.KindTLS:
			w.TLS = x
		case traffic.KindDNSUDP:
			w.DNSUDP = x
		case traffic.KindDNSTCP:
			w.DNSTCP = x
		default:
			return w, fmt.Errorf("pgbench traffic: --weights: unknown kind %q (http, tls, dns_udp, dns_tcp)", k)
		}
	}
	return w, nil
}

func init() { commands["traffic"] = cmdTraffic }
