package api

import (
	"context"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"

	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/auth"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
)

type actorKey struct{}

// Actor returns who made the call: "cert:CN" for a client certificate,
// "token" for the bearer token, "insecure" when authentication is off.
func Actor(ctx context.Context) string {
	if a, ok := ctx.Value(actorKey{}).(string); ok {
		return a
	}
	return "unknown"
}

// authFunc returns the authentication step of the interceptor chain. A call is
// let through when its client certificate verified against the cluster CA, or
// when it carries the bearer token; otherwise it fails with
// codes.Unauthenticated. With Insecure (and neither token nor CA) every call
// passes.
func (c *Config) authFunc() auth.AuthFunc {
	open := c.Insecure && c.Token == "" && c.TLS.CAFile == ""
	return func(ctx context.Context) (context.Context, error) {
		if open {
			return context.WithValue(ctx, actorKey{}, "insecure"), nil
		}
		if c.TLS.CAFile != "" {
			if p, ok := peer.FromContext(ctx); ok {
				if ti, ok := p.AuthInfo.(credentials.TLSInfo); ok && len(ti.State.VerifiedChains) > 0 {
					return context.WithValue(ctx, actorKey{}, "cert:"+ti.State.VerifiedChains[0][0].Subject.CommonName), nil
				}
			}
		}
		if c.Token == "" {
			return nil, status.Error(codes.Unauthenticated, "api: a client certificate signed by the cluster CA is required")
		}
		tok, err := auth.AuthFromMD(ctx, "bearer")
		if err != nil {
			return nil, err
		}
		if subtle.ConstantTimeCompare([]byte(tok), []byte(c.Token)) != 1 {
			return nil, status.Error(codes.Unauthenticated, "api: invalid bearer token")
		}
		return context.WithValue(ctx, actorKey{}, "token"), nil
	}
}

// serverTLS builds the server's TLS configuration (nil without a
// certificate). Client certificates are verified when presented; whether one
// is required is decided by authFunc (a token is the alternative).
func (c *Config) serverTLS() (*tls.Config, error) {
	if !c.TLS.Enabled() {
		return nil, nil
	}
	cert, err := tls.LoadX509KeyPair(c.TLS.CertFile, c.TLS.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("api: tls: %w", err)
	}
	tc := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if c.TLS.CAFile != "" {
		pool, err := loadPool(c.TLS.CAFile)
		if err != nil {
			return nil, err
		}
		tc.ClientCAs, tc.ClientAuth = pool, tls.VerifyClientCertIfGiven
	}
	return tc, nil
}

func loadPool(path string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("api: tls: ca: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("api: tls: ca: %s holds no PEM certificate", path)
	}
	return pool, nil
}

// tokenCreds sends the bearer token with every call.
type tokenCreds struct {
	token  string
	secure bool
}

var _ credentials.PerRPCCredentials = tokenCreds{}

func (t tokenCreds) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "bearer " + t.token}, nil
}

// RequireTransportSecurity is false when the client was configured for a
// plaintext connection (loopback labs and tests): the token then travels in
// clear text, which ClientConfig documents.
func (t tokenCreds) RequireTransportSecurity() bool { return t.secure }
