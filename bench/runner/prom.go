package runner

import (
	"bufio"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Metrics are the samples of a Prometheus text exposition: metric name →
// label set (rendered `k="v",...` sorted as exposed) → value. Histograms and
// summaries appear as their _bucket/_sum/_count series.
type Metrics map[string]map[string]float64

// ParseMetrics parses the Prometheus text format (version 0.0.4) as the
// nodes' /metrics serve it. Comments and blank lines are skipped; a
// timestamp after the value is ignored.
func ParseMetrics(text string) (Metrics, error) {
	m := Metrics{}
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		name, labels, rest := line, "", ""
		if i := strings.IndexByte(line, '{'); i >= 0 {
			j := strings.LastIndexByte(line, '}')
			if j < i {
				return nil, fmt.Errorf("runner: metrics line %d: unbalanced braces", n)
			}
			name, labels, rest = line[:i], line[i+1:j], line[j+1:]
		} else {
			sp := strings.IndexAny(line, " \t")
			if sp < 0 {
				return nil, fmt.Errorf("runner: metrics line %d: no value", n)
			}
			name, rest = line[:sp], line[sp:]
		}
		fs := strings.Fields(rest)
		if len(fs) < 1 {
			return nil, fmt.Errorf("runner: metrics line %d: no value", n)
		}
		v, err := parsePromFloat(fs[0])
		if err != nil {
			return nil, fmt.Errorf("runner: metrics line %d: %w", n, err)
		}
		if m[name] == nil {
			m[name] = map[string]float64{}
		}
		m[name][labels] = v
	}
	return m, sc.Err()
}

func parsePromFloat(s string) (float64, error) {
	switch s {
	case "+Inf":
		return math.Inf(1), nil
	case "-Inf":
		return math.Inf(-1), nil
	case "NaN":
		return math.NaN(), nil
	}
	return strconv.ParseFloat(s, 64)
}

// Label returns the value of label key in a rendered label set.
func Label(labels, key string) string {
	for labels != "" {
		eq := strings.IndexByte(labels, '=')
		if eq < 0 || eq+1 >= len(labels) || labels[eq+1] != '"' {
			return ""
		}
		k := strings.TrimSpace(labels[:eq])
		// Find the closing quote, skipping escaped characters.
		var val strings.Builder
		i := eq + 2
		for ; i < len(labels) && labels[i] != '"'; i++ {
			if labels[i] == '\\' && i+1 < len(labels) {
				i++
				switch labels[i] {
				case 'n':
					val.WriteByte('\n')
					continue
				}
			}
			val.WriteByte(labels[i])
		}
		if k == key {
			return val.String()
		}
		labels = strings.TrimLeft(labels[min(i+1, len(labels)):], ", ")
	}
	return ""
}

// Sum adds every series of a metric whose labels satisfy keep (nil keeps
// all).
func (m Metrics) Sum(name string, keep func(labels string) bool) float64 {
	var s float64
	for l, v := range m[name] {
		if keep == nil || keep(l) {
			s += v
		}
	}
	return s
}

// ByLabel sums a metric's series by the value of one label.
func (m Metrics) ByLabel(name, key string) map[string]float64 {
	out := map[string]float64{}
	for l, v := range m[name] {
		out[Label(l, key)] += v
	}
	return out
}
