package api

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/ratelimit"
)

// TokenBucket is a rate limiter: it holds up to Burst tokens, refilled at
// Rate per second; each call takes one or is refused. It is safe for
// concurrent use.
type TokenBucket struct {
	mu     sync.Mutex
	rate   float64
	burst  float64
	tokens float64
	last   time.Time
	now    func() time.Time
}

var _ ratelimit.Limiter = (*TokenBucket)(nil)

// NewTokenBucket returns a full bucket.
func NewTokenBucket(rate float64, burst int) *TokenBucket {
	return &TokenBucket{rate: rate, burst: float64(burst), tokens: float64(burst), now: time.Now}
}

// Allow takes a token if one is available.
func (b *TokenBucket) Allow() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now()
	if !b.last.IsZero() {
		b.tokens = min(b.burst, b.tokens+now.Sub(b.last).Seconds()*b.rate)
	}
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// Limit implements ratelimit.Limiter: an error refuses the call with
// codes.ResourceExhausted.
func (b *TokenBucket) Limit(context.Context) error {
	if !b.Allow() {
		return fmt.Errorf("api: rate limit of %.0f calls/s (burst %.0f) exceeded", b.rate, b.burst)
	}
	return nil
}
