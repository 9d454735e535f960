// Package xdstest makes throwaway CAs and certificates for xDS TLS tests: an
// ECDSA CA per call, leaf certificates for servers (with DNS or IP SANs) and
// clients, each written as PEM files to the test's temporary directory, so a
// test can hand file paths to the flags and configs that take them.
//
// It is imported only by tests; nothing it makes outlives the test.
package xdstest

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
	"testing"
	"time"
)

// CA is a self-signed certificate authority whose certificate is a PEM file.
// Two CAs never trust each other's certificates, which is how a test builds
// the "certificate from another CA" case.
type CA struct {
	dir      string
	cert     *x509.Certificate
	key      *ecdsa.PrivateKey
	certFile string
}

// NewCA makes a CA with the common name name and writes its certificate to
// ca.pem in a fresh temporary directory of t.
func NewCA(t testing.TB, name string) *CA {
	t.Helper()
	ca := &CA{dir: t.TempDir()}
	tmpl := &x509.Certificate{
		Subject: pkix.Name{CommonName: name}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign,
	}
	der, key := sign(t, tmpl, nil, nil)
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	ca.cert, ca.key = cert, key
	ca.certFile = write(t, ca.dir, "ca.pem", "CERTIFICATE", der)
	return ca
}

// CertFile is the path of the CA certificate's PEM file: what a peer trusts.
func (ca *CA) CertFile() string { return ca.certFile }

// Pool is a certificate pool holding only this CA, for in-process TLS configs.
func (ca *CA) Pool() *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(ca.cert)
	return pool
}

// Leaf is a certificate issued by a CA: its PEM files and the same pair loaded.
type Leaf struct {
	CertFile string // PEM "CERTIFICATE"
	KeyFile  string // PEM "PRIVATE KEY" (PKCS #8)
	// Cert is the certificate and key for a tls.Config in the same process.
	Cert tls.Certificate
}

// Option sets what an issued certificate is for.
type Option func(*x509.Certificate)

// Server makes the certificate valid for TLS servers named by sans: each one
// that parses as an IP address becomes an IP SAN, any other a DNS SAN.
func Server(sans ...string) Option {
	return func(c *x509.Certificate) {
		c.ExtKeyUsage = append(c.ExtKeyUsage, x509.ExtKeyUsageServerAuth)
		for _, s := range sans {
			if ip := net.ParseIP(s); ip != nil {
				c.IPAddresses = append(c.IPAddresses, ip)
			} else {
				c.DNSNames = append(c.DNSNames, s)
			}
		}
	}
}

// Client makes the certificate valid for TLS client authentication.
func Client() Option {
	return func(c *x509.Certificate) {
		c.ExtKeyUsage = append(c.ExtKeyUsage, x509.ExtKeyUsageClientAuth)
	}
}

// Issue signs a certificate with the common name name and writes it to
// name.pem and its key to name-key.pem next to the CA certificate. Without
// options the certificate has no extended key usage, which Go accepts for any
// purpose; pass Server or Client to restrict it as real deployments do.
func (ca *CA) Issue(t testing.TB, name string, opts ...Option) Leaf {
	t.Helper()
	tmpl := &x509.Certificate{Subject: pkix.Name{CommonName: name}, KeyUsage: x509.KeyUsageDigitalSignature}
	for _, o := range opts {
		o(tmpl)
	}
	der, key := sign(t, tmpl, ca.cert, ca.key)
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return Leaf{
		CertFile: write(t, ca.dir, name+".pem", "CERTIFICATE", der),
		KeyFile:  write(t, ca.dir, name+"-key.pem", "PRIVATE KEY", keyDER),
		Cert:     tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key},
	}
}

// sign makes a fresh P-256 key and a certificate for it from tmpl, signed by
// parent, or self-signed when parent is nil. Validity spans an hour either
// side of now so clock skew between steps of a test never matters.
func sign(t testing.TB, tmpl, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) ([]byte, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	if err != nil {
		t.Fatal(err)
	}
	tmpl.SerialNumber = serial
	tmpl.NotBefore, tmpl.NotAfter = time.Now().Add(-time.Hour), time.Now().Add(time.Hour)
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	return der, key
}

func write(t testing.TB, dir, name, blockType string, der []byte) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: blockType, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
