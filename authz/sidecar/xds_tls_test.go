package sidecar

import (
	"context"
	"crypto/tls"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"gatehouse/authz/check/checktest"
	"gatehouse/authz/configsource"
	"gatehouse/controlplane/xds"
	"gatehouse/controlplane/xds/xdstest"
)

// The sidecar configured with the --xds-* TLS flags follows a control plane that requires
// client certificates, and decides with the config it receives.
func TestRunFollowsControlPlaneOverMutualTLS(t *testing.T) {
	ca := xdstest.NewCA(t, "gatehouse test CA")
	server := ca.Issue(t, "controlplane", xdstest.Server("controlplane.test"))
	client := ca.Issue(t, "authz-sidecar", xdstest.Client())

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cp, err := xds.New(ctx, xds.Config{Listener: lis, Logger: slog.New(slog.DiscardHandler),
		GRPCServerOptions: []grpc.ServerOption{grpc.Creds(credentials.NewTLS(&tls.Config{
			Certificates: []tls.Certificate{server.Cert}, ClientCAs: ca.Pool(),
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
		"--xds-ca-file", ca.CertFile(), "--xds-cert-file", client.CertFile, "--xds-key-file", client.KeyFile, "--xds-server-name", "controlplane.test"}, func(string) string { return "" })
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
	ca := xdstest.NewCA(t, "gatehouse test CA")
	dir := t.TempDir()
	tests := []struct {
		name    string
		tls     configsource.TLSConfig
		wantErr string
	}{
		{name: "missing CA file", tls: configsource.TLSConfig{CAFile: filepath.Join(dir, "missing.pem")}, wantErr: "read CA file"},
		{name: "missing client certificate", tls: configsource.TLSConfig{CAFile: ca.CertFile(), CertFile: filepath.Join(dir, "nope.pem"), KeyFile: filepath.Join(dir, "nope-key.pem")},
			wantErr: "load client certificate"},
		{name: "certificate without key", tls: configsource.TLSConfig{CAFile: ca.CertFile(), CertFile: ca.CertFile()}, wantErr: "--xds-key-file"},
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
