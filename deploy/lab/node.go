package lab

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"gopkg.in/yaml.v3"
)

// Node lifecycle bounds.
const (
	// NodeReadyTimeout bounds how long StartNode waits for /readyz.
	NodeReadyTimeout = 20 * time.Second
	// NodeStopTimeout bounds how long StopNode and KillNode wait for the
	// process to exit.
	NodeStopTimeout = 20 * time.Second
	// logTail is how much of a node's log an error quotes.
	logTail = 2048
)

// nodeProc is a node process started by this process.
type nodeProc struct {
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited and been reaped
	err  error         // Wait's result, valid after done
}

func (p *nodeProc) running() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// StartNode starts `patchgate node --config n<i>.yaml` inside node i's
// namespace (writing the default configuration first when there is none)
// and waits until it reports ready on /readyz. In the L2 variant it first
// removes the lab's kernel bridge, so that patchgate's bridge is the only
// path (the node itself removes a fallback bridge an earlier run left).
// The node keeps running after this process exits; its pid is in n<i>.pid,
// its output in n<i>.log.
func (l *Lab) StartNode(i int) error {
	n, err := l.Node(i)
	if err != nil {
		return err
	}
	if pid := l.NodePID(i); pid != 0 {
		return fmt.Errorf("lab: node %d: already running (pid %d)", i, pid)
	}
	l.mu.Lock()
	binary := l.cfg.Binary
	l.mu.Unlock()
	if binary == "" {
		return fmt.Errorf("lab: node %d: no patchgate binary configured", i)
	}
	cfgPath := l.NodeConfigPath(i)
	if _, err := os.Stat(cfgPath); errors.Is(err, os.ErrNotExist) {
		if _, err := l.NodeConfig(i); err != nil {
			return err
		}
	}
	if l.Variant == L2 && l.hasKernelBridge(n) {
		if err := l.kernelBridge(n, false); err != nil {
			return fmt.Errorf("lab: %w", err)
		}
	}
	logf, err := os.OpenFile(l.NodeLogPath(i), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("lab: node %d: log: %w", i, err)
	}
	defer logf.Close() // the child has its own descriptor
	cmd := Command(n.NS, binary, "node", "--config", cfgPath)
	cmd.Stdout, cmd.Stderr = logf, logf
	// A session of its own: the node outlives a `patchgate lab node start`
	// and ignores the terminal's signals.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("lab: node %d: start: %w", i, err)
	}
	p := &nodeProc{cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	l.mu.Lock()
	if l.procs == nil {
		l.procs = map[int]*nodeProc{}
	}
	l.procs[i] = p
	l.mu.Unlock()
	if err := os.WriteFile(l.nodePath(i, "pid"), []byte(strconv.Itoa(cmd.Process.Pid)+"\n"), 0o644); err != nil {
		return fmt.Errorf("lab: node %d: pid file: %w", i, err)
	}
	if err := l.waitReady(i, p); err != nil {
		return err
	}
	return nil
}

// waitReady polls node i's /readyz until it answers 200, the process exits
// or NodeReadyTimeout passes.
func (l *Lab) waitReady(i int, p *nodeProc) error {
	deadline := time.Now().Add(NodeReadyTimeout)
	for {
		select {
		case <-p.done:
			return fmt.Errorf("lab: node %d exited while starting (%v): %s", i, p.err, l.logTail(i))
		default:
		}
		if code, _, err := l.NodeGet(i, "/readyz"); err == nil && code == http.StatusOK {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("lab: node %d not ready after %v: %s", i, NodeReadyTimeout, l.logTail(i))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// logTail returns the end of node i's log for error messages.
func (l *Lab) logTail(i int) string {
	data, err := os.ReadFile(l.NodeLogPath(i))
	if err != nil {
		return "(no log)"
	}
	if len(data) > logTail {
		data = data[len(data)-logTail:]
	}
	return strings.TrimSpace(string(data))
}

// NodePID returns the pid of node i's running patchgate process, or 0. It
// recognises nodes started by other processes through the pid file, and
// only when the process still runs node i's configuration.
func (l *Lab) NodePID(i int) int {
	l.mu.Lock()
	p := l.procs[i]
	l.mu.Unlock()
	if p != nil {
		if p.running() {
			return p.cmd.Process.Pid
		}
		return 0
	}
	data, err := os.ReadFile(l.nodePath(i, "pid"))
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || pid <= 1 || !alive(pid) {
		return 0
	}
	cmdline, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil || !strings.Contains(string(cmdline), l.NodeConfigPath(i)) {
		return 0
	}
	return pid
}

// StopNode sends SIGTERM to node i and waits until it has exited: the
// daemon removes its rules and leaves traffic flowing (fail open) or
// blocked (fail closed), as its configuration says.
func (l *Lab) StopNode(i int) error { return l.signalNode(i, syscall.SIGTERM) }

// KillNode sends SIGKILL to node i (a crash: the daemon cleans nothing up)
// and waits until it has exited.
func (l *Lab) KillNode(i int) error { return l.signalNode(i, syscall.SIGKILL) }

func (l *Lab) signalNode(i int, sig syscall.Signal) error {
	if _, err := l.Node(i); err != nil {
		return err
	}
	pid := l.NodePID(i)
	if pid == 0 {
		return fmt.Errorf("lab: node %d: not running", i)
	}
	if err := syscall.Kill(pid, sig); err != nil {
		return fmt.Errorf("lab: node %d: %v: %w", i, sig, err)
	}
	l.mu.Lock()
	p := l.procs[i]
	l.mu.Unlock()
	if p != nil {
		select {
		case <-p.done:
		case <-time.After(NodeStopTimeout):
			return fmt.Errorf("lab: node %d: still running %v after %v", i, NodeStopTimeout, sig)
		}
	} else if err := waitGone([]int{pid}, NodeStopTimeout); err != nil {
		return fmt.Errorf("lab: node %d: %w", i, err)
	}
	_ = os.Remove(l.nodePath(i, "pid"))
	return nil
}

// NodeExit returns how node i's process (started by this process) ended:
// nil for exit status 0, the exit error otherwise. It reports an error when
// the node was not started here or still runs.
func (l *Lab) NodeExit(i int) error {
	l.mu.Lock()
	p := l.procs[i]
	l.mu.Unlock()
	if p == nil {
		return fmt.Errorf("lab: node %d: not started by this process", i)
	}
	if p.running() {
		return fmt.Errorf("lab: node %d: still running", i)
	}
	return p.err
}

// Bypass returns node i, which must not be running, to kernel forwarding:
// in the L2 variant it recreates the kernel bridge unless a bridge (such as
// the one a fail-open node leaves) already joins the interfaces; in both
// variants it flushes iptables-legacy rules a node left behind in its
// namespace.
func (l *Lab) Bypass(i int) error {
	n, err := l.Node(i)
	if err != nil {
		return err
	}
	if pid := l.NodePID(i); pid != 0 {
		return fmt.Errorf("lab: node %d: running (pid %d); stop it first", i, pid)
	}
	if _, err := exec.LookPath("iptables-legacy"); err == nil {
		for _, bin := range []string{"iptables-legacy", "ip6tables-legacy"} {
			if _, err := l.Exec(n.Role, bin, "-t", "filter", "-F"); err != nil {
				return err
			}
		}
	}
	if l.Variant == L2 && !l.bridged(n) {
		if err := l.kernelBridge(n, true); err != nil {
			return fmt.Errorf("lab: %w", err)
		}
	}
	return nil
}

// nodeHTTPAddr is node i's http.listen from its configuration file
// (DefaultMetricsAddr when the file does not say).
func (l *Lab) nodeHTTPAddr(i int) string {
	data, err := os.ReadFile(l.NodeConfigPath(i))
	if err != nil {
		return DefaultMetricsAddr
	}
	var f NodeFile
	if yaml.Unmarshal(data, &f) != nil || f.HTTP.Listen == "" {
		return DefaultMetricsAddr
	}
	return f.HTTP.Listen
}

// NodeGet sends GET path to node i's HTTP endpoint (http.listen of its
// configuration, inside the node's namespace) and returns the status code
// and body.
func (l *Lab) NodeGet(i int, path string) (int, []byte, error) {
	n, err := l.Node(i)
	if err != nil {
		return 0, nil, err
	}
	c := &http.Client{
		Transport: &http.Transport{DialContext: Dialer(n.NS), DisableKeepAlives: true},
		Timeout:   2 * time.Second,
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+l.nodeHTTPAddr(i)+path, nil)
	if err != nil {
		return 0, nil, fmt.Errorf("lab: node %d: %w", i, err)
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("lab: node %d: GET %s: %w", i, path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return resp.StatusCode, body, fmt.Errorf("lab: node %d: GET %s: %w", i, path, err)
	}
	return resp.StatusCode, body, nil
}
