package lab

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"sync"
	"testing"
	"time"
)

// requireRoot skips a test that builds namespaces when it cannot.
func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("lab tests need root (network namespaces); run as root, as CI does")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("iproute2 missing in CI: %v", err)
		}
		t.Skipf("lab tests need iproute2: %v", err)
	}
}

// testConfig is a config whose state lives in the test's temporary directory.
func testConfig(t *testing.T, v Variant, nodes int) Config {
	cfg := DefaultConfig()
	cfg.Variant = v
	cfg.Nodes = nodes
	cfg.StateRoot = t.TempDir()
	return cfg
}

// up builds a lab and tears it down when the test ends, failed or not.
func up(t *testing.T, cfg Config) *Lab {
	t.Helper()
	l, err := Up(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := l.Down(); err != nil {
			t.Errorf("down: %v", err)
		}
	})
	return l
}

// echoTCP serves a TCP echo on addr inside ns until the test ends.
func echoTCP(t *testing.T, ns, addr string) {
	t.Helper()
	ln, err := Listen(ns, "tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(10 * time.Second))
				_, _ = io.Copy(c, c)
			}()
		}
	}()
}

// echoUDP echoes datagrams on addr inside ns until the test ends.
func echoUDP(t *testing.T, ns, addr string) {
	t.Helper()
	pc, err := ListenPacket(ns, "udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() { pc.Close(); <-done })
	go func() {
		defer close(done)
		buf := make([]byte, 2048)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				if errors.Is(err, net.ErrClosed) {
					return
				}
				continue
			}
			_, _ = pc.WriteTo(buf[:n], from)
		}
	}()
}

// tcpRoundTrip dials addr from ns, sends msg and expects it echoed.
func tcpRoundTrip(ns, addr, msg string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	c, err := Dialer(ns)(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(3 * time.Second))
	if _, err := c.Write([]byte(msg)); err != nil {
		return err
	}
	buf := make([]byte, len(msg))
	if _, err := io.ReadFull(c, buf); err != nil {
		return err
	}
	if string(buf) != msg {
		return errors.New("echo mismatch: " + string(buf))
	}
	return nil
}
