package jwtauth

import (
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"testing"
	"time"
)

// TestPEMForms accepts the PEM forms operators paste: PKIX public keys,
// PKCS#1 RSA public keys and certificates, several in one entry.
func TestPEMForms(t *testing.T) {
	k := keys(t)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "issuer"}, NotBefore: testNow.Add(-time.Hour), NotAfter: testNow.Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.rsa.PublicKey, k.rsa)
	if err != nil {
		t.Fatal(err)
	}
	cert := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	pkcs1 := string(pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(&k.rsa2.PublicKey)}))
	tests := []struct {
		name string
		pem  string
		want int
	}{
		{"certificate", cert, 1},
		{"PKCS#1", pkcs1, 1},
		{"two blocks in one entry", pemOf(t, &k.p256.PublicKey) + pkcs1, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			keys, err := parsePEMKeys([]string{tt.pem})
			if err != nil {
				t.Fatalf("parsePEMKeys: %v", err)
			}
			if len(keys) != tt.want || keys[len(keys)-1].algs != rsaAlgs {
				t.Errorf("got %d keys, want %d with an RSA key last", len(keys), tt.want)
			}
		})
	}
}
