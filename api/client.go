package api

import (
	"crypto/tls"
	"fmt"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
)

// ClientConfig says how to reach and authenticate to a node's API.
//
// Without CAFile and CertFile the connection is plaintext and a token travels
// in clear text: acceptable on loopback only. With CAFile the server's
// certificate is verified against the cluster CA; CertFile/KeyFile add a
// client certificate (mutual TLS, which authenticates without a token).
type ClientConfig struct {
	Server     string
	Token      string
	CAFile     string
	CertFile   string
	KeyFile    string
	ServerName string
}

// Dial opens a client connection (lazily: the first call connects).
func Dial(c ClientConfig) (*grpc.ClientConn, error) {
	var opts []grpc.DialOption
	secure := c.CAFile != "" || c.CertFile != ""
	if secure {
		tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: c.ServerName}
		if c.CAFile != "" {
			pool, err := loadPool(c.CAFile)
			if err != nil {
				return nil, err
			}
			tc.RootCAs = pool
		}
		if c.CertFile != "" {
			cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
			if err != nil {
				return nil, fmt.Errorf("api: client tls: %w", err)
			}
			tc.Certificates = []tls.Certificate{cert}
		}
		opts = append(opts, grpc.WithTransportCredentials(credentials.NewTLS(tc)))
	} else {
		opts = append(opts, grpc.WithTransportCredentials(insecure.NewCredentials()))
	}
	if c.Token != "" {
		opts = append(opts, grpc.WithPerRPCCredentials(tokenCreds{token: c.Token, secure: secure}))
	}
	opts = append(opts, grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(64<<20), grpc.MaxCallSendMsgSize(64<<20)))
	conn, err := grpc.NewClient(c.Server, opts...)
	if err != nil {
		return nil, fmt.Errorf("api: dial %s: %w", c.Server, err)
	}
	return conn, nil
}

// peerClientConfig is how a node calls its peers: its own token and
// certificate, the cluster CA.
func (c *Config) peerClientConfig(addr string) ClientConfig {
	return ClientConfig{Server: addr, Token: c.Token, CAFile: c.TLS.CAFile, CertFile: c.TLS.CertFile, KeyFile: c.TLS.KeyFile}
}
