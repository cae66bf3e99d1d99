package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/patchgate/patchgate/deploy/lab"
)

// workServer is the failover workload's keep-alive server: plain HTTP on
// :80 and HTTP over TLS on :443 (both families) in one server namespace. It
// keeps only counters per client address (a recordingServer would keep
// every byte of hundreds of thousands of requests), plus whether any request
// carried an exploit marker. Safe for concurrent use.
type workServer struct {
	// roots trusts the server's self-signed certificate.
	roots *x509.CertPool

	mu       sync.Mutex
	byRemote map[string]int // requests handled, by client address
	exploits map[string]int // requests with exploitMarker, by client address
	total    int
}

// exploitMarker is in every exploit the workload sends (shellshock's
// function definition); a request carrying it must never reach a server.
const exploitMarker = "() {"

// startWorkServer serves :80 and :443 in namespace ns until the test ends.
// The TLS certificate is self-signed, made here for the server's addresses.
func startWorkServer(t *testing.T, ns string, addrs ...netip.Addr) *workServer {
	t.Helper()
	s := &workServer{byRemote: map[string]int{}, exploits: map[string]int{}}
	cert, roots, err := selfSigned(addrs)
	if err != nil {
		t.Fatal(err)
	}
	s.roots = roots
	ln, err := lab.Listen(ns, "tcp", ":80")
	if err != nil {
		t.Fatal(err)
	}
	tln, err := lab.Listen(ns, "tcp", ":443")
	if err != nil {
		ln.Close()
		t.Fatal(err)
	}
	tlsLn := tls.NewListener(tln, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12,
		NextProtos: []string{"http/1.1"}})
	// The header timeout outlasts every test: the split probe leaves a
	// request's header half sent from before the event until after it.
	srv := &http.Server{Handler: http.HandlerFunc(s.handle), ReadHeaderTimeout: 3 * time.Minute,
		IdleTimeout: 2 * time.Minute, ErrorLog: nil}
	var wg sync.WaitGroup
	for _, l := range []net.Listener{ln, tlsLn} {
		wg.Add(1)
		go func(l net.Listener) {
			defer wg.Done()
			_ = srv.Serve(l)
		}(l)
	}
	t.Cleanup(func() {
		srv.Close()
		wg.Wait()
	})
	return s
}

func (s *workServer) handle(w http.ResponseWriter, r *http.Request) {
	n, _ := io.Copy(io.Discard, io.LimitReader(r.Body, 1<<20))
	bad := false
	for _, vs := range r.Header {
		for _, v := range vs {
			bad = bad || strings.Contains(v, exploitMarker)
		}
	}
	s.mu.Lock()
	s.byRemote[r.RemoteAddr]++
	s.total++
	if bad {
		s.exploits[r.RemoteAddr]++
	}
	s.mu.Unlock()
	fmt.Fprintf(w, "ok %d\n", n)
}

// requests returns how many requests came from the client address remote
// ("ip:port" as net/http writes it).
func (s *workServer) requests(remote string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.byRemote[remote]
}

// exploitsFrom returns how many requests carrying exploitMarker the handler
// got from the client address remote.
func (s *workServer) exploitsFrom(remote string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.exploits[remote]
}

// exploitsSeen returns how many requests carrying exploitMarker the handler
// got, from any client.
func (s *workServer) exploitsSeen() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, c := range s.exploits {
		n += c
	}
	return n
}

// handled returns the number of requests handled.
func (s *workServer) handled() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.total
}

// selfSigned makes an ECDSA P-256 certificate for the addresses, valid for an
// hour, and a pool that trusts it.
func selfSigned(addrs []netip.Addr) (tls.Certificate, *x509.CertPool, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("e2e: tls key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("e2e: tls serial: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "patchgate-e2e"},
		NotBefore:             time.Now().Add(-time.Minute),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	for _, a := range addrs {
		tmpl.IPAddresses = append(tmpl.IPAddresses, net.IP(a.AsSlice()))
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("e2e: tls certificate: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("e2e: tls certificate: %w", err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool, nil
}
