package sidecar

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"gatehouse/authz/check/checktest"
	"gatehouse/authz/configsource"
	"gatehouse/controlplane/xds"
)

// testCA issues certificates and writes them as PEM files in dir.
type testCA struct {
	t    *testing.T
	dir  string
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
	file string
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	ca := &testCA{t: t, dir: t.TempDir(), pool: x509.NewCertPool()}
	tmpl := &x509.Certificate{Subject: pkix.Name{CommonName: "gatehouse test CA"}, IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, key := ca.sign(tmpl, nil, nil)
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	ca.cert, ca.key = cert, key
	ca.pool.AddCert(cert)
	ca.file = ca.write("ca.pem", "CERTIFICATE", der)
	return ca
}

func (ca *testCA) sign(tmpl, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) ([]byte, *ecdsa.PrivateKey) {
	ca.t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		ca.t.Fatal(err)
	}
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	if err != nil {
		ca.t.Fatal(err)
	}
	tmpl.SerialNumber = serial
	tmpl.NotBefore, tmpl.NotAfter = time.Now().Add(-time.Hour), time.Now().Add(time.Hour)
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		ca.t.Fatal(err)
	}
	return der, key
}

// issue returns a leaf certificate for tmpl and the paths of its PEM files.
func (ca *testCA) issue(name string, tmpl *x509.Certificate) (tls.Certificate, string, string) {
	ca.t.Helper()
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	der, key := ca.sign(tmpl, ca.cert, ca.key)
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		ca.t.Fatal(err)
	}
	certFile, keyFile := ca.write(name+".pem", "CERTIFICATE", der), ca.write(name+"-key.pem", "PRIVATE KEY", keyDER)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, certFile, keyFile
}

func (ca *testCA) write(name, blockType string, der []byte) string {
	ca.t.Helper()
	path := filepath.Join(ca.dir, name)
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: blockType, Bytes: der}), 0o600); err != nil {
		ca.t.Fatal(err)
	}
	return path
}

// The sidecar configured with the --xds-* TLS flags follows a control plane that requires
// client certificates, and decides with the config it receives.
func TestRunFollowsControlPlaneOverMutualTLS(t *testing.T) {
	ca := newTestCA(t)
	server, _, _ := ca.issue("controlplane", &x509.Certificate{
		Subject: pkix.Name{CommonName: "controlplane"}, DNSNames: []string{"controlplane.test"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	_, clientCert, clientKey := ca.issue("sidecar", &x509.Certificate{
		Subject: pkix.Name{CommonName: "authz-sidecar"}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cp, err := xds.New(ctx, xds.Config{Listener: lis, Logger: slog.New(slog.DiscardHandler),
		GRPCServerOptions: []grpc.ServerOption{grpc.Creds(credentials.NewTLS(&tls.Config{
			Certificates: []tls.Certificate{server}, ClientCAs: ca.pool,
			ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS12,
		}))}})
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = cp.Serve(lis) }()
	defer func() {
		stopCtx, stopCancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer stopCancel()
		cp.Stop(stopCtx)
	}()
	fx := checktest.New(time.Now())
	if err := cp.Publish(ctx, 7, resources(fx.Config)); err != nil {
		t.Fatal(err)
	}

	// The control plane's certificate names a DNS name, not the loopback IP the sidecar dials:
	// --xds-server-name is how a sidecar checks such a certificate.
	cfg, _, err := ParseFlags([]string{"--data-dir", t.TempDir(), "--xds-addr", lis.Addr().String(), "--node-id", "authz-mtls",
		"--xds-ca-file", ca.file, "--xds-cert-file", clientCert, "--xds-key-file", clientKey, "--xds-server-name", "controlplane.test"}, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	s := start(t, cfg)
	defer func() {
		if err := s.stop(); err != nil {
			t.Error(err)
		}
	}()
	eventually(t, "ready with the config received over mutual TLS", func() bool { code, _ := s.get(t, "/readyz"); return code == 200 })
	if code := problemCode(t, s.check(t, "/sales/orders", fx.Secret(checktest.TokenSales))); code != "ok" {
		t.Fatalf("check with the config from the control plane: %s", code)
	}
}

func TestRunRefusesUnusableXDSTLSFiles(t *testing.T) {
	ca := newTestCA(t)
	tests := []struct {
		name    string
		tls     configsource.TLSConfig
		wantErr string
	}{
		{name: "missing CA file", tls: configsource.TLSConfig{CAFile: filepath.Join(ca.dir, "missing.pem")}, wantErr: "read CA file"},
		{name: "missing client certificate", tls: configsource.TLSConfig{CAFile: ca.file, CertFile: filepath.Join(ca.dir, "nope.pem"), KeyFile: filepath.Join(ca.dir, "nope-key.pem")},
			wantErr: "load client certificate"},
		{name: "certificate without key", tls: configsource.TLSConfig{CAFile: ca.file, CertFile: ca.file}, wantErr: "--xds-key-file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := Config{DataDir: t.TempDir(), GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0", XDSAddr: "127.0.0.1:1",
				Limiter: LimiterMemory, XDSTLS: &tt.tls, Logger: slog.New(slog.DiscardHandler)}
			if err := Run(t.Context(), cfg); err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Run = %v, want a start failure naming %q", err, tt.wantErr)
			}
		})
	}
}
