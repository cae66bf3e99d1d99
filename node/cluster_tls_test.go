package node

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/patchgate/patchgate/api"
	"github.com/patchgate/patchgate/api/pb"
	"github.com/patchgate/patchgate/consensus"
	"github.com/patchgate/patchgate/consensus/patchset"
)

// testPKI writes a CA and certificates it signed (name → cert, key files).
type testPKI struct {
	dir    string
	ca     *x509.Certificate
	caKey  *ecdsa.PrivateKey
	caFile string
}

func newPKI(t *testing.T) *testPKI {
	t.Helper()
	p := &testPKI{dir: t.TempDir()}
	p.caKey, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "patchgate test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true,
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &p.caKey.PublicKey, p.caKey)
	if err != nil {
		t.Fatal(err)
	}
	p.ca, _ = x509.ParseCertificate(der)
	p.caFile = filepath.Join(p.dir, "ca.pem")
	os.WriteFile(p.caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	return p
}

func (p *testPKI) issue(t *testing.T, cn string, serial int64) (certFile, keyFile string) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.ca, &key.PublicKey, p.caKey)
	if err != nil {
		t.Fatal(err)
	}
	kd, _ := x509.MarshalECPrivateKey(key)
	certFile, keyFile = filepath.Join(p.dir, cn+".pem"), filepath.Join(p.dir, cn+".key")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kd}), 0o600)
	return certFile, keyFile
}

// With a cluster CA and no token, a client certificate signed by the CA is
// the only way in: calls without one, or with one from another CA, fail with
// codes.Unauthenticated.
func TestAPIMutualTLS(t *testing.T) {
	pki := newPKI(t)
	nodeCert, nodeKey := pki.issue(t, "node", 2)
	opCert, opKey := pki.issue(t, "operator", 3)
	other := newPKI(t)
	rogueCert, rogueKey := other.issue(t, "rogue", 4)

	cc := DefaultClusterConfig()
	tun := consensus.FastConfig()
	cc.Tuning = &tun
	cc.NodeID, cc.ClusterName = "tls", fmt.Sprintf("tls-%d", os.Getpid())
	cc.DataDir = t.TempDir()
	cc.RaftAddr, cc.GossipAddr = "127.0.0.1:0", "127.0.0.1:0"
	cc.BootstrapExpect, cc.Voters = 1, 1
	cc.Keys = patchset.NewKeySet(clusterKey(t).Public())
	cc.API.Listen = "127.0.0.1:0"
	cc.API.TLS = api.TLSConfig{CertFile: nodeCert, KeyFile: nodeKey, CAFile: pki.caFile}
	ag, err := StartAgent(cc, "tls", nil, nil, nil, quietLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ag.Stop(false) })
	call := func(c api.ClientConfig) error {
		c.Server = ag.APIAddr()
		conn, err := api.Dial(c)
		if err != nil {
			return err
		}
		defer conn.Close()
		_, err = pb.NewPatchGateClient(conn).ListPatchSets(ctxT(t), &pb.ListPatchSetsRequest{})
		return err
	}
	if err := call(api.ClientConfig{CAFile: pki.caFile, CertFile: opCert, KeyFile: opKey}); err != nil {
		t.Fatalf("operator certificate refused: %v", err)
	}
	wantCode(t, "TLS without a client certificate", call(api.ClientConfig{CAFile: pki.caFile}), codes.Unauthenticated)
	if err := call(api.ClientConfig{CAFile: pki.caFile, CertFile: rogueCert, KeyFile: rogueKey}); err == nil {
		t.Fatal("certificate from another CA accepted")
	}
	if err := call(api.ClientConfig{}); err == nil {
		t.Fatal("plaintext call accepted by a TLS server")
	}
}
