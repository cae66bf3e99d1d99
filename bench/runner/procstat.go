package runner

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc/<pid>/stat.
// It is 100 on every Linux architecture Go supports.
const clockTicks = 100

// ProcCPU is a process's CPU time so far (all its threads).
type ProcCPU struct {
	// UserTicks and SysTicks are utime and stime in clock ticks (USER_HZ).
	UserTicks, SysTicks uint64
}

// Seconds returns utime+stime in seconds.
func (c ProcCPU) Seconds() float64 { return float64(c.UserTicks+c.SysTicks) / clockTicks }

// ParseProcStat parses the contents of /proc/<pid>/stat. The command name
// (field 2) is in parentheses and may itself contain spaces and
// parentheses, so the fields are counted from the last ')'.
func ParseProcStat(data string) (ProcCPU, error) {
	end := strings.LastIndexByte(data, ')')
	if end < 0 {
		return ProcCPU{}, fmt.Errorf("runner: proc stat: no command name")
	}
	// After ")": field 3 (state) onwards; utime is field 14, stime 15.
	fs := strings.Fields(data[end+1:])
	if len(fs) < 13 {
		return ProcCPU{}, fmt.Errorf("runner: proc stat: %d fields after the command name, want at least 13", len(fs))
	}
	u, err := strconv.ParseUint(fs[11], 10, 64)
	if err != nil {
		return ProcCPU{}, fmt.Errorf("runner: proc stat: utime: %w", err)
	}
	s, err := strconv.ParseUint(fs[12], 10, 64)
	if err != nil {
		return ProcCPU{}, fmt.Errorf("runner: proc stat: stime: %w", err)
	}
	return ProcCPU{UserTicks: u, SysTicks: s}, nil
}

// readProcCPU reads a process's CPU time.
func readProcCPU(pid int) (ProcCPU, error) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return ProcCPU{}, fmt.Errorf("runner: proc stat: %w", err)
	}
	return ParseProcStat(string(data))
}

// MachineCPU is the machine-wide CPU time of /proc/stat's "cpu" line, in
// clock ticks: Busy is everything but idle and iowait.
type MachineCPU struct {
	Busy, Total uint64
}

// ParseMachineStat parses /proc/stat's aggregate "cpu" line.
func ParseMachineStat(data string) (MachineCPU, error) {
	for _, line := range strings.Split(data, "\n") {
		fs := strings.Fields(line)
		if len(fs) < 5 || fs[0] != "cpu" {
			continue
		}
		var m MachineCPU
		for i, f := range fs[1:] {
			v, err := strconv.ParseUint(f, 10, 64)
			if err != nil {
				return MachineCPU{}, fmt.Errorf("runner: /proc/stat: cpu field %d: %w", i+1, err)
			}
			// guest and guest_nice (fields 9, 10) are already in user and nice.
			if i >= 8 {
				break
			}
			m.Total += v
			if i != 3 && i != 4 { // idle, iowait
				m.Busy += v
			}
		}
		return m, nil
	}
	return MachineCPU{}, fmt.Errorf("runner: /proc/stat: no cpu line")
}

func readMachineCPU() (MachineCPU, error) {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return MachineCPU{}, fmt.Errorf("runner: %w", err)
	}
	return ParseMachineStat(string(data))
}
