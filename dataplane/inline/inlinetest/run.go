package inlinetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/patchgate/patchgate/dataplane/inline"
)

// Run starts b.Run on its own goroutine, waits until b is Ready (failing the
// test if it stops first or is not ready within 5 s), and returns a stop
// function that cancels it and returns Run's error. Stop is idempotent and
// also runs at test cleanup.
func Run(t testing.TB, b inline.Backend) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	stopped := false
	stop = func() error {
		if stopped {
			return nil
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(10 * time.Second):
			t.Fatal("backend did not stop")
			return nil
		}
	}
	t.Cleanup(func() { _ = stop() })
	CheckFor(t, 5*time.Second, func() error {
		select {
		case err := <-done:
			t.Fatalf("backend stopped: %v", err)
		default:
		}
		if !b.Ready() {
			return errors.New("not ready")
		}
		return nil
	})
	return stop
}
