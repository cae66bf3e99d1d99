package runner

import (
	"bufio"
	"os"
	"os/exec"
	"runtime"
	"strings"
)

// describeMachine collects the machine description of the report.
func describeMachine() Machine {
	m := Machine{Cores: runtime.NumCPU(), GoVersion: goVersion()}
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
		f.Close()
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		m.LoadAvg = strings.TrimSpace(string(b))
	}
	m.Hostname, _ = os.Hostname()
	m.Tcpreplay = firstLine("tcpreplay", "--version")
	m.Valgrind = firstLine("valgrind", "--version")
	return m
}

// goVersion is the go toolchain's version (the one that builds the
// binaries), else the runner's own.
func goVersion() string {
	if v := firstLine("go", "env", "GOVERSION"); v != "" {
		return v
	}
	return runtime.Version()
}

func firstLine(name string, args ...string) string {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil && len(out) == 0 {
		return ""
	}
	line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	return strings.TrimSpace(line)
}
