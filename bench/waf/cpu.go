package waf

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc/<pid>/stat
// (100 on every Linux architecture Go supports).
const clockTicks = 100

// treeCPU returns the CPU time (user + system, in seconds) that process pid
// and its descendants (nginx's workers) have used so far. Descendants that
// exited are not counted, so it is read around a wrk run, while the
// processes live.
func treeCPU(pid int) (float64, error) {
	total := 0.0
	seen := map[int]bool{}
	queue := []int{pid}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		if seen[p] {
			continue
		}
		seen[p] = true
		data, err := os.ReadFile("/proc/" + strconv.Itoa(p) + "/stat")
		if err != nil {
			if p == pid {
				return 0, fmt.Errorf("bench/waf: cpu of %d: %w", pid, err)
			}
			continue // a child that just exited
		}
		secs, err := parseStatCPU(string(data))
		if err != nil {
			return 0, err
		}
		total += secs
		tasks, _ := filepath.Glob("/proc/" + strconv.Itoa(p) + "/task/*/children")
		for _, t := range tasks {
			b, err := os.ReadFile(t)
			if err != nil {
				continue
			}
			for _, f := range strings.Fields(string(b)) {
				if c, err := strconv.Atoi(f); err == nil {
					queue = append(queue, c)
				}
			}
		}
	}
	return total, nil
}

// parseStatCPU returns utime+stime in seconds from /proc/<pid>/stat. The
// command name (field 2) may hold spaces and parentheses, so the fields
// are counted from the last ')'.
func parseStatCPU(data string) (float64, error) {
	end := strings.LastIndexByte(data, ')')
	if end < 0 {
		return 0, fmt.Errorf("bench/waf: proc stat: no command name")
	}
	fs := strings.Fields(data[end+1:])
	if len(fs) < 13 {
		return 0, fmt.Errorf("bench/waf: proc stat: %d fields after the command name, want at least 13", len(fs))
	}
	u, err1 := strconv.ParseUint(fs[11], 10, 64)
	s, err2 := strconv.ParseUint(fs[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("bench/waf: proc stat: utime/stime: %q %q", fs[11], fs[12])
	}
	return float64(u+s) / clockTicks, nil
}
