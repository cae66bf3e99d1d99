package api

import (
	"context"
	"log/slog"
	"runtime/debug"

	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/auth"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/logging"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/ratelimit"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/recovery"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/validator"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// slogAdapter routes the logging interceptor to log/slog.
func slogAdapter(l *slog.Logger) logging.Logger {
	return logging.LoggerFunc(func(ctx context.Context, lvl logging.Level, msg string, fields ...any) {
		l.Log(ctx, slog.Level(lvl), msg, fields...)
	})
}

// serverOptions returns the interceptor chain, outermost first: recovery
// (so a panic anywhere below becomes codes.Internal), logging, auth, rate
// limiting (only authenticated callers consume tokens), validation.
func (c *Config) serverOptions(log *slog.Logger, limiter ratelimit.Limiter) []grpc.ServerOption {
	rec := recovery.WithRecoveryHandler(func(p any) error {
		log.Error("api: panic in handler", "panic", p, "stack", string(debug.Stack()))
		return status.Errorf(codes.Internal, "api: internal error")
	})
	lg := slogAdapter(log)
	lopts := []logging.Option{logging.WithLogOnEvents(logging.FinishCall)}
	af := c.authFunc()
	return []grpc.ServerOption{
		grpc.ChainUnaryInterceptor(
			recovery.UnaryServerInterceptor(rec),
			logging.UnaryServerInterceptor(lg, lopts...),
			auth.UnaryServerInterceptor(af),
			ratelimit.UnaryServerInterceptor(limiter),
			validator.UnaryServerInterceptor(),
		),
		grpc.ChainStreamInterceptor(
			recovery.StreamServerInterceptor(rec),
			logging.StreamServerInterceptor(lg, lopts...),
			auth.StreamServerInterceptor(af),
			ratelimit.StreamServerInterceptor(limiter),
			validator.StreamServerInterceptor(),
		),
	}
}
