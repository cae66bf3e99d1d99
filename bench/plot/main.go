// Command plot draws the PNG plots of a `pgbench run`: offered vs delivered
// rate per configuration for every lab bring-up (rate-<variant>-n<N>.png)
// and, when bench/waf ran, the latency distributions per request and per
// packet (latency.png). It reads results.json only, so gonum stays out of the main
// module:
//
//	go -C bench/plot run . -in bench/results/<date>/results.json -out bench/results/<date>
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// results is the part of results.json the plots need.
type results struct {
	Labs []struct {
		Variant string `json:"variant"`
		Nodes   int    `json:"nodes"`
		Configs []struct {
			Name  string `json:"name"`
			Steps []struct {
				Offered struct {
					PPS float64 `json:"pps"`
				} `json:"offered"`
				DeliveredPPS float64 `json:"delivered_pps"`
			} `json:"steps"`
		} `json:"configs"`
	} `json:"labs"`
	Peers *struct {
		WAF *wafResult `json:"waf"`
	} `json:"peers"`
}

// wafResult is the part of bench/waf's result the latency plot needs.
type wafResult struct {
	Paths []struct {
		Name string `json:"name"`
		// Wrk is the saturating run, Unloaded the one-connection run;
		// Curve is [percentile, microseconds] pairs.
		Wrk struct {
			Curve [][2]float64 `json:"curve"`
		} `json:"wrk"`
		Unloaded struct {
			Curve [][2]float64 `json:"curve"`
		} `json:"unloaded"`
	} `json:"paths"`
	PacketRTT []struct {
		Path      string    `json:"path"`
		SamplesUS []float64 `json:"samples_us"`
	} `json:"packet_rtt"`
}

func main() {
	in := flag.String("in", "", "results.json of a pgbench run")
	out := flag.String("out", "", "directory for the PNGs (default: the results file's)")
	flag.Parse()
	if err := run(*in, *out); err != nil {
		fmt.Fprintln(os.Stderr, "plot:", err)
		os.Exit(1)
	}
}

func run(in, out string) error {
	if in == "" {
		return fmt.Errorf("-in is required")
	}
	if out == "" {
		out = filepath.Dir(in)
	}
	data, err := os.ReadFile(in)
	if err != nil {
		return err
	}
	var r results
	if err := json.Unmarshal(data, &r); err != nil {
		return fmt.Errorf("%s: %w", in, err)
	}
	for _, l := range r.Labs {
		p := plot.New()
		p.Title.Text = fmt.Sprintf("%s, %d node(s): offered vs delivered", strings.ToUpper(l.Variant), l.Nodes)
		p.X.Label.Text = "offered (k packets/s)"
		p.Y.Label.Text = "delivered (k packets/s)"
		p.Legend.Top, p.Legend.Left = true, true
		var args []any
		maxX := 0.0
		for _, c := range l.Configs {
			pts := make(plotter.XYs, 0, len(c.Steps))
			for _, s := range c.Steps {
				pts = append(pts, plotter.XY{X: s.Offered.PPS / 1e3, Y: s.DeliveredPPS / 1e3})
				maxX = max(maxX, s.Offered.PPS/1e3, s.DeliveredPPS/1e3)
			}
			sort.Slice(pts, func(i, j int) bool { return pts[i].X < pts[j].X })
			if len(pts) > 0 {
				args = append(args, c.Name, pts)
			}
		}
		if len(args) == 0 {
			continue
		}
		if err := plotutil.AddLinePoints(p, args...); err != nil {
			return err
		}
		// The line of no loss.
		diag, err := plotter.NewLine(plotter.XYs{{X: 0, Y: 0}, {X: maxX, Y: maxX}})
		if err != nil {
			return err
		}
		diag.Dashes = []vg.Length{vg.Points(2), vg.Points(2)}
		p.Add(diag)
		p.Legend.Add("delivered = offered", diag)
		name := fmt.Sprintf("rate-%s-n%d.png", l.Variant, l.Nodes)
		if err := p.Save(16*vg.Centimeter, 11*vg.Centimeter, filepath.Join(out, name)); err != nil {
			return err
		}
	}
	if r.Peers != nil && r.Peers.WAF != nil {
		return latencyPlot(r.Peers.WAF, filepath.Join(out, "latency.png"))
	}
	return nil
}

// latencyPlot draws two distributions side by side: per request (wrk's
// latency percentiles through each path, one request at a time) and per packet (UDP round trips
// through the node, kernel forwarding vs patchgate). The x axes are
// logarithmic: the paths differ by orders of magnitude.
func latencyPlot(w *wafResult, path string) error {
	req := plot.New()
	req.Title.Text = "per request (wrk, one request at a time)"
	req.X.Label.Text = "latency (µs, log)"
	req.Y.Label.Text = "fraction of requests ≤ x"
	var args []any
	for _, p := range w.Paths {
		curve := p.Unloaded.Curve
		if len(curve) == 0 { // an older result: the saturating run
			curve = p.Wrk.Curve
			req.Title.Text = "per request (wrk through each path)"
		}
		var pts plotter.XYs
		for _, c := range curve {
			if c[1] > 0 {
				pts = append(pts, plotter.XY{X: c[1], Y: c[0] / 100})
			}
		}
		if len(pts) > 1 {
			args = append(args, p.Name, pts)
		}
	}
	pkt := plot.New()
	pkt.Title.Text = "per packet (UDP round trip through the node)"
	pkt.X.Label.Text = "round trip (µs, log)"
	pkt.Y.Label.Text = "fraction of packets ≤ x"
	var pargs []any
	for _, p := range w.PacketRTT {
		vs := make([]float64, 0, len(p.SamplesUS))
		for _, v := range p.SamplesUS {
			if v > 0 {
				vs = append(vs, v)
			}
		}
		sort.Float64s(vs)
		if len(vs) < 2 {
			continue
		}
		pts := make(plotter.XYs, len(vs))
		for i, v := range vs {
			pts[i] = plotter.XY{X: v, Y: float64(i+1) / float64(len(vs))}
		}
		pargs = append(pargs, p.Path, pts)
	}
	if len(args) == 0 && len(pargs) == 0 {
		return nil
	}
	for _, x := range []struct {
		p    *plot.Plot
		args []any
	}{{req, args}, {pkt, pargs}} {
		x.p.X.Scale = plot.LogScale{}
		x.p.X.Tick.Marker = plot.LogTicks{Prec: -1}
		x.p.Legend.Top, x.p.Legend.Left = false, false
		x.p.Y.Min, x.p.Y.Max = 0, 1
		if len(x.args) > 0 {
			if err := plotutil.AddLines(x.p, x.args...); err != nil {
				return err
			}
		}
	}
	const width, height = 30 * vg.Centimeter, 11 * vg.Centimeter
	img := vgimg.New(width, height)
	dc := draw.New(img)
	tiles := draw.Tiles{Rows: 1, Cols: 2, PadX: vg.Centimeter, PadTop: vg.Points(4), PadBottom: vg.Points(4), PadLeft: vg.Points(4), PadRight: vg.Points(4)}
	canvases := plot.Align([][]*plot.Plot{{req, pkt}}, tiles, dc)
	req.Draw(canvases[0][0])
	pkt.Draw(canvases[0][1])
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
