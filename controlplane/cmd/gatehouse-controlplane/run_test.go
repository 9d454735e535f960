package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"

	"gatehouse/authz/apitoken"
	"gatehouse/controlplane/admin"
	adminv1 "gatehouse/proto/gatehouse/admin/v1"
)

// syncBuffer is a bytes.Buffer safe for the server goroutine and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// start runs the control plane on loopback ports and returns its addresses and output.
func start(t *testing.T, dataDir, envToken string) (httpAddr, grpcAddr string, out *syncBuffer, stop func() error) {
	t.Helper()
	return startWith(t, Config{DataDir: dataDir, AdminToken: envToken})
}

// startWith runs the control plane with cfg on loopback ports.
func startWith(t *testing.T, cfg Config) (httpAddr, grpcAddr string, out *syncBuffer, stop func() error) {
	t.Helper()
	addrs, out, stop := startAll(t, cfg)
	return addrs[serverAdminHTTP], addrs[serverAdminGRPC], out, stop
}

// startAll runs the control plane with cfg on loopback ports and returns every server's
// address by name.
func startAll(t *testing.T, cfg Config) (addrs map[string]string, out *syncBuffer, stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	out = &syncBuffer{}
	bound := make(chan [2]string, 3)
	done := make(chan error, 1)
	cfg.AdminHTTPAddr, cfg.AdminGRPCAddr, cfg.XDSAddr, cfg.Out = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0", out
	cfg.OnListen = func(name, addr string) { bound <- [2]string{name, addr} }
	go func() { done <- Run(ctx, cfg) }()
	addrs = map[string]string{}
	for range 3 {
		select {
		case a := <-bound:
			addrs[a[0]] = a[1]
		case err := <-done:
			cancel()
			t.Fatalf("Run ended early: %v", err)
		}
	}
	stop = func() error {
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(30 * time.Second):
			t.Fatal("Run did not stop after cancel")
			return nil
		}
	}
	return addrs, out, stop
}

func TestRunServesBothAPIsWithTheBootstrapToken(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data") // created by Run
	httpAddr, grpcAddr, out, stop := start(t, dir, "")

	// The banner shows the addresses and, once, the token.
	token := regexp.MustCompile(`gta_[0-9A-Za-z]+`).FindString(out.String())
	if apitoken.Check(apitoken.AdminPrefix, token) != nil {
		t.Fatalf("no admin token in the output:\n%s", out.String())
	}
	if !strings.Contains(out.String(), "http://"+httpAddr+"/v1/") || !strings.Contains(out.String(), grpcAddr) {
		t.Errorf("banner does not show the addresses:\n%s", out.String())
	}

	req, _ := http.NewRequest("POST", "http://"+httpAddr+"/v1/collections", strings.NewReader(`{"name":"s","version":"v1","path":"s"}`))
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("REST create: %d %s", resp.StatusCode, body)
	}

	conn, err := grpc.NewClient(grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+token)
	list, err := adminv1.NewCollectionServiceClient(conn).ListCollections(ctx, &adminv1.ListCollectionsRequest{})
	if err != nil || len(list.Collections) != 1 {
		t.Fatalf("gRPC list after REST create: %v, %v", list, err)
	}
	hc, err := healthpb.NewHealthClient(conn).Check(context.Background(), &healthpb.HealthCheckRequest{})
	if err != nil || hc.Status != healthpb.HealthCheckResponse_SERVING {
		t.Errorf("gRPC health without a token: %v, %v", hc, err)
	}
	for _, path := range []string{"/healthz", "/readyz", "/openapi.json", "/metrics"} {
		resp, err := http.Get("http://" + httpAddr + path)
		if err != nil || resp.StatusCode != 200 {
			t.Errorf("GET %s: %v %v", path, resp, err)
		}
		if resp != nil {
			resp.Body.Close()
		}
	}
	if err := stop(); err != nil {
		t.Fatalf("graceful stop: %v", err)
	}

	// A restart keeps the data and prints no new token.
	_, _, out2, stop2 := start(t, dir, "")
	if strings.Contains(out2.String(), "gta_") {
		t.Error("a restart printed a new admin token")
	}
	if err := stop2(); err != nil {
		t.Fatal(err)
	}
}

func TestRunRefusesAMalformedEnvironmentToken(t *testing.T) {
	err := Run(context.Background(), Config{DataDir: t.TempDir(), AdminHTTPAddr: "127.0.0.1:0", AdminGRPCAddr: "127.0.0.1:0", AdminToken: "secret123"})
	if err == nil || !strings.Contains(err.Error(), "gatehouse-controlplane admin-token") {
		t.Fatalf("Run = %v, want a refusal that says how to make a token", err)
	}
}

func TestRunFailsOnABusyPort(t *testing.T) {
	httpAddr, _, _, stop := start(t, t.TempDir(), "")
	defer stop()
	err := Run(context.Background(), Config{DataDir: t.TempDir(), AdminHTTPAddr: httpAddr, AdminGRPCAddr: "127.0.0.1:0"})
	if err == nil || !strings.Contains(err.Error(), "listen") {
		t.Fatalf("Run on a busy port = %v", err)
	}
}

func TestCommandLine(t *testing.T) {
	var out, errOut bytes.Buffer
	if err := run([]string{"admin-token"}, &out, &errOut); err != nil {
		t.Fatal(err)
	}
	if tok := strings.TrimSpace(out.String()); apitoken.Check(apitoken.AdminPrefix, tok) != nil {
		t.Errorf("admin-token printed %q", tok)
	}
	out.Reset()
	if err := run([]string{"bootstrap", "--node-id=gw-1"}, &out, &errOut); err != nil || !strings.Contains(out.String(), `id: "gw-1"`) {
		t.Errorf("bootstrap: %v\n%s", err, out.String())
	}
	if err := run([]string{"frobnicate"}, &out, &errOut); err == nil {
		t.Error("an unknown command was accepted")
	}
	if _, _, err := parseFlags([]string{"--log-level", "loud"}, &errOut); err == nil {
		t.Error("a bad log level was accepted")
	}
	cfg, _, err := parseFlags(nil, &errOut)
	if err != nil || cfg.DataDir != ".data" || cfg.AdminHTTPAddr != ":9080" || cfg.AdminGRPCAddr != ":9090" {
		t.Errorf("defaults = %+v, %v", cfg, err)
	}
}

func TestRunServesTLS(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, pool := selfSigned(t, dir)
	token, err := admin.NewAdminToken()
	if err != nil {
		t.Fatal(err)
	}
	httpAddr, grpcAddr, out, stop := startWith(t, Config{DataDir: dir, AdminToken: token, TLSCertFile: certFile, TLSKeyFile: keyFile})
	defer stop()
	if !strings.Contains(out.String(), "https://"+httpAddr) {
		t.Errorf("banner does not show https:\n%s", out.String())
	}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	req, _ := http.NewRequest("GET", "https://"+httpAddr+"/v1/clients", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("REST over TLS: %d", resp.StatusCode)
	}
	conn, err := grpc.NewClient(grpcAddr, grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{RootCAs: pool})))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+token)
	if _, err := adminv1.NewClientServiceClient(conn).ListClients(ctx, &adminv1.ListClientsRequest{}); err != nil {
		t.Errorf("gRPC over TLS: %v", err)
	}
	if err := Run(context.Background(), Config{DataDir: t.TempDir(), TLSCertFile: certFile}); err == nil || !strings.Contains(err.Error(), "tls-key-file") {
		t.Errorf("a certificate without a key: %v", err)
	}
}

// selfSigned writes a certificate for 127.0.0.1 and its key, and returns a pool trusting it.
func selfSigned(t *testing.T, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "gatehouse test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, IsCA: true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}
