package lab

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"

	"github.com/patchgate/patchgate/dataplane/inline"
)

// netnsDir is where `ip netns add` bind-mounts named network namespaces.
const netnsDir = "/run/netns"

// nsPath returns the bind mount of a named network namespace.
func nsPath(ns string) string { return netnsDir + "/" + ns }

// InNS runs fn on a locked OS thread that has entered the named network
// namespace (a full name such as "pg1a2b-c1", as in Lab.NS). Sockets created
// inside fn (net.Listen, net.Dial, net.ListenPacket) stay in that namespace
// for their whole life, wherever they are used afterwards. fn must not start
// goroutines that create sockets: they may run on other threads.
//
// InNS is safe for concurrent use; each call gets its own thread. The thread
// returns to the caller's namespace afterwards, or is retired by the runtime
// when it cannot.
func InNS(ns string, fn func() error) error {
	if _, err := os.Stat(nsPath(ns)); err != nil {
		return fmt.Errorf("lab: netns %s: %w", ns, err)
	}
	return inline.InNetns(nsPath(ns), fn)
}

// Dialer returns a DialContext function that opens connections from inside
// the named namespace, for http.Transport.DialContext and the like. It is safe
// for concurrent use.
func Dialer(ns string) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		var c net.Conn
		err := InNS(ns, func() error {
			var d net.Dialer
			var err error
			c, err = d.DialContext(ctx, network, addr)
			return err
		})
		return c, err
	}
}

// Listen opens a listener inside the named namespace.
func Listen(ns, network, addr string) (net.Listener, error) {
	var ln net.Listener
	err := InNS(ns, func() error {
		var err error
		ln, err = net.Listen(network, addr)
		return err
	})
	return ln, err
}

// ListenPacket opens a packet listener (UDP) inside the named namespace.
func ListenPacket(ns, network, addr string) (net.PacketConn, error) {
	var pc net.PacketConn
	err := InNS(ns, func() error {
		var err error
		pc, err = net.ListenPacket(network, addr)
		return err
	})
	return pc, err
}

// Command returns a command that runs argv inside the named namespace
// (through `ip netns exec`, which also gives it the namespace's /sys).
// `ip netns exec` replaces itself with argv, so the process id is argv's.
func Command(ns string, argv ...string) *exec.Cmd {
	return exec.Command("ip", append([]string{"netns", "exec", ns}, argv...)...)
}

// run runs a command and returns its standard output; a failure carries
// the command line and its standard error.
func run(name string, args ...string) (string, error) { return inline.Command(name, args...) }

// runInput is run with standard input.
func runInput(stdin []byte, name string, args ...string) (string, error) {
	cmd := exec.Command(name, args...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(errb.String())
		if msg == "" {
			msg = strings.TrimSpace(out.String())
		}
		return out.String(), fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, msg)
	}
	return out.String(), nil
}

// writeSysctl writes a sysctl of the calling thread's network namespace
// (call inside InNS). key uses dots: net.ipv4.ip_forward.
func writeSysctl(key, value string) error {
	path := "/proc/sys/" + strings.ReplaceAll(key, ".", "/")
	if err := os.WriteFile(path, []byte(value), 0o644); err != nil {
		return fmt.Errorf("sysctl %s=%s: %w", key, value, err)
	}
	return nil
}

// sysctlExists reports whether this kernel has the sysctl.
func sysctlExists(key string) bool {
	_, err := os.Stat("/proc/sys/" + strings.ReplaceAll(key, ".", "/"))
	return err == nil
}
