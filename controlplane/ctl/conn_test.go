package ctl_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
)

// selfSigned returns a server certificate for 127.0.0.1 and the path of its PEM, which serves
// as the CA file.
func selfSigned(t *testing.T) (tls.Certificate, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "gatehouse test control plane"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, path
}

func TestTLS(t *testing.T) {
	cert, caFile := selfSigned(t)
	cp := startControlPlane(t, grpc.Creds(credentials.NewServerTLSFromCert(&cert)))

	if out := cp.mustCtl(t, "", "--ca-file", caFile, "get", "collections"); !strings.HasPrefix(out, "ID") {
		t.Errorf("get over TLS printed:\n%s", out)
	}
	tests := []struct {
		name string
		args []string
		code int
	}{
		{name: "plaintext is the loopback default and fails against TLS", args: []string{"get", "collections"}, code: 1},
		{name: "TLS without the CA does not trust the server", args: []string{"--tls", "get", "collections"}, code: 1},
		{name: "insecure with a CA file is a usage error", args: []string{"--insecure", "--ca-file", caFile, "get", "collections"}, code: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := cp.ctl(t, "", tt.args...)
			if r.code != tt.code {
				t.Errorf("exit %d, want %d\n%s%s", r.code, tt.code, r.stdout, r.stderr)
			}
		})
	}
}

func TestRequestTimeout(t *testing.T) {
	// A server that accepts connections and never answers.
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = lis.Close() })
	go func() {
		var held []net.Conn
		for {
			c, err := lis.Accept()
			if err != nil {
				for _, c := range held {
					_ = c.Close()
				}
				return
			}
			held = append(held, c)
		}
	}()
	cp := &controlPlane{addr: lis.Addr().String(), token: "gta_unused"}
	r := cp.ctl(t, "", "--request-timeout", "200ms", "get", "collections")
	if r.code != 1 || !strings.Contains(r.stderr, "DeadlineExceeded") {
		t.Errorf("against a silent server: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}
