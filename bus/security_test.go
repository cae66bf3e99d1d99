package bus

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"
)

// testPKI writes a throwaway CA, a server certificate for 127.0.0.1 (used by
// every node for clients and routes) and a client certificate.
type testPKI struct {
	CA, Cert, Key, ClientCert, ClientKey string
}

func newTestPKI(t *testing.T) testPKI {
	t.Helper()
	dir := t.TempDir()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "patchgate test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	issue := func(name string, serial int64) (certFile, keyFile string) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name},
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
			KeyUsage:    x509.KeyUsageDigitalSignature,
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
			IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"},
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		kder, err := x509.MarshalECPrivateKey(key)
		if err != nil {
			t.Fatal(err)
		}
		certFile, keyFile = filepath.Join(dir, name+".pem"), filepath.Join(dir, name+"-key.pem")
		writePEM(t, certFile, "CERTIFICATE", der)
		writePEM(t, keyFile, "EC PRIVATE KEY", kder)
		return certFile, keyFile
	}
	p := testPKI{CA: filepath.Join(dir, "ca.pem")}
	writePEM(t, p.CA, "CERTIFICATE", caDER)
	p.Cert, p.Key = issue("node", 2)
	p.ClientCert, p.ClientKey = issue("client", 3)
	return p
}

func writePEM(t *testing.T, file, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// Embedded servers with TLS and user/password: the route cluster forms over
// mutual TLS with credentials, an external client with the right CA,
// certificate and credentials shares checkpoints, and clients without
// credentials, with a wrong password or without the CA are refused.
func TestTLSAndCredentials(t *testing.T) {
	pki := newTestPKI(t)
	secure := func(_ int, c *Config) {
		c.TLS = TLSConfig{CertFile: pki.Cert, KeyFile: pki.Key, CAFile: pki.CA}
		c.Auth = AuthConfig{User: "bus", Password: "s3cret-for-tests"}
	}
	buses := startCluster(t, 2, secure)
	url := buses[0].Server().ClientURL()
	// Reloading routes keeps working with TLS configured.
	if err := buses[1].SetRoutes([]string{buses[0].Server().ClusterAddr()}); err != nil {
		t.Fatalf("SetRoutes with TLS: %v", err)
	}

	ec := testConfig(t, "external")
	ec.URLs = []string{url}
	ec.TLS = TLSConfig{CertFile: pki.ClientCert, KeyFile: pki.ClientKey, CAFile: pki.CA}
	ec.Auth = AuthConfig{User: "bus", Password: "s3cret-for-tests"}
	ext := openBus(t, ec)
	if !ext.Health().Connected {
		t.Fatal("external TLS client with credentials not connected")
	}
	warmUp(t, []*Bus{ext, buses[1]})

	refused := []struct {
		name string
		opts []nats.Option
	}{
		{"no credentials", []nats.Option{nats.RootCAs(pki.CA)}},
		{"wrong password", []nats.Option{nats.RootCAs(pki.CA), nats.UserInfo("bus", "wrong")}},
		{"no CA (server unverifiable)", []nats.Option{nats.UserInfo("bus", "s3cret-for-tests")}},
	}
	for _, tc := range refused {
		nc, err := nats.Connect(url, append(tc.opts, nats.Timeout(2*time.Second), nats.MaxReconnects(0))...)
		if err == nil {
			nc.Close()
			t.Errorf("%s: connection accepted", tc.name)
		}
	}
}

// Token and nkey credentials on a single embedded server.
func TestTokenAndNKeyCredentials(t *testing.T) {
	seed := newNKeyUser(t)
	for _, tc := range []struct {
		name   string
		auth   AuthConfig
		client nats.Option
	}{
		{"token", AuthConfig{Token: "tok-for-tests"}, nats.Token("tok-for-tests")},
		{"nkey", AuthConfig{NKeyFile: seed}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := testConfig(t, "n-"+tc.name)
			c.Server.ClusterPort = 0
			c.Auth = tc.auth
			node := openBus(t, c)
			url := node.Server().ClientURL()

			ec := testConfig(t, "ext-"+tc.name)
			ec.URLs = []string{url}
			ec.Auth = tc.auth
			ext := openBus(t, ec)
			warmUp(t, []*Bus{node, ext})

			if nc, err := nats.Connect(url, nats.Timeout(2*time.Second), nats.MaxReconnects(0)); err == nil {
				nc.Close()
				t.Error("unauthenticated client accepted")
			}
			if tc.client != nil {
				nc, err := nats.Connect(url, tc.client, nats.MaxReconnects(0))
				if err != nil {
					t.Errorf("client with %s refused: %v", tc.name, err)
				} else {
					nc.Close()
				}
			}
		})
	}
}

func newNKeyUser(t *testing.T) (seedFile string) {
	t.Helper()
	kp, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	seed, err := kp.Seed()
	if err != nil {
		t.Fatal(err)
	}
	seedFile = filepath.Join(t.TempDir(), "user.nk")
	if err := os.WriteFile(seedFile, seed, 0o600); err != nil {
		t.Fatal(err)
	}
	return seedFile
}

// Validate names the wrong field.
func TestConfigValidate(t *testing.T) {
	pki := newTestPKI(t)
	for _, tc := range []struct {
		field  string
		mutate func(c *Config)
	}{
		{"NodeID", func(c *Config) { c.NodeID = "a.b" }},
		{"SubjectPrefix", func(c *Config) { c.SubjectPrefix = "pg.*" }},
		{"Shards", func(c *Config) { c.Shards = 0 }},
		{"BatchRecords", func(c *Config) { c.BatchRecords = 0 }},
		{"BatchBytes", func(c *Config) { c.BatchBytes = 1 << 30 }},
		{"FlushInterval", func(c *Config) { c.FlushInterval = 0 }},
		{"QueueLen", func(c *Config) { c.QueueLen = 0 }},
		{"CacheEntries", func(c *Config) { c.CacheEntries = 0 }},
		{"CacheBytes", func(c *Config) { c.CacheBytes = 0 }},
		{"IdleExpiry", func(c *Config) { c.IdleExpiry = 0 }},
		{"LookupTimeout", func(c *Config) { c.LookupTimeout = time.Minute }},
		{"Auth", func(c *Config) { c.Auth = AuthConfig{Token: "x", User: "u", Password: "p"} }},
		{"Auth.User", func(c *Config) { c.Auth = AuthConfig{User: "u"} }},
		{"Auth.CredsFile", func(c *Config) { c.Auth = AuthConfig{CredsFile: pki.CA} }},
		{"Auth.NKeyFile", func(c *Config) { c.Auth = AuthConfig{NKeyFile: pki.CA} }},
		{"TLS.CertFile", func(c *Config) { c.TLS = TLSConfig{CertFile: "/nonexistent/cert.pem"} }},
		{"TLS.CAFile", func(c *Config) { c.TLS = TLSConfig{CertFile: pki.Cert, KeyFile: pki.Key} }},
		{"URLs[0]", func(c *Config) { c.URLs = []string{"::bad"} }},
		{"Server.Port", func(c *Config) { c.Server.Port = 0 }},
		{"Server.ClusterName", func(c *Config) { c.Server.ClusterName = "" }},
		{"Server.Routes[0]", func(c *Config) { c.Server.Routes = []string{"no-port"} }},
	} {
		c := DefaultConfig()
		tc.mutate(&c)
		err := c.Validate()
		if err == nil {
			t.Errorf("%s: Validate accepted", tc.field)
			continue
		}
		if want := "bus: " + tc.field; len(err.Error()) < len(want) || err.Error()[:len(want)] != want {
			t.Errorf("%s: error %q does not name the field", tc.field, err)
		}
	}
	c := DefaultConfig()
	if err := c.Validate(); err != nil {
		t.Errorf("DefaultConfig invalid: %v", err)
	}
	c.URLs = []string{"nats://127.0.0.1:4222"}
	c.Auth = AuthConfig{CredsFile: pki.CA}
	if err := c.Validate(); err != nil {
		t.Errorf("external with creds file: %v", err)
	}
}
