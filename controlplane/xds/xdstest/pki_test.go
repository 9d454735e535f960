package xdstest

import (
	"crypto/tls"
	"crypto/x509"
	"testing"
)

func TestIssuedCertificatesVerify(t *testing.T) {
	ca, other := NewCA(t, "test CA"), NewCA(t, "other CA")
	server := ca.Issue(t, "server", Server("127.0.0.1", "controlplane.test"))
	client := ca.Issue(t, "client", Client())
	intruder := other.Issue(t, "intruder", Client())

	tests := []struct {
		name    string
		leaf    Leaf
		roots   *CA
		opts    x509.VerifyOptions
		wantErr bool
	}{
		{name: "server by IP", leaf: server, roots: ca, opts: x509.VerifyOptions{DNSName: "127.0.0.1"}},
		{name: "server by DNS name", leaf: server, roots: ca, opts: x509.VerifyOptions{DNSName: "controlplane.test"}},
		{name: "server by another name", leaf: server, roots: ca, opts: x509.VerifyOptions{DNSName: "elsewhere.test"}, wantErr: true},
		{name: "client", leaf: client, roots: ca, opts: x509.VerifyOptions{KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}},
		{name: "client used as server", leaf: client, roots: ca, opts: x509.VerifyOptions{}, wantErr: true},
		{name: "client from another CA", leaf: intruder, roots: ca, opts: x509.VerifyOptions{KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pair, err := tls.LoadX509KeyPair(tt.leaf.CertFile, tt.leaf.KeyFile)
			if err != nil {
				t.Fatalf("load written files: %v", err)
			}
			cert, err := x509.ParseCertificate(pair.Certificate[0])
			if err != nil {
				t.Fatal(err)
			}
			tt.opts.Roots = tt.roots.Pool()
			if _, err := cert.Verify(tt.opts); (err != nil) != tt.wantErr {
				t.Fatalf("Verify = %v, want error %v", err, tt.wantErr)
			}
		})
	}
}
