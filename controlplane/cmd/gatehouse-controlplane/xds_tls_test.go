package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"gatehouse/authz/configsource"
	"gatehouse/controlplane/admin"
	"gatehouse/controlplane/bootstrap"
	"gatehouse/controlplane/xds/xdstest"
	adminv1 "gatehouse/proto/gatehouse/admin/v1"
	authzv1 "gatehouse/proto/gatehouse/authz/v1"
)

// xdsPKI is a test CA with a server certificate for 127.0.0.1 and a client certificate, as
// PEM files: what a platform team issues for the control plane and its gateways.
type xdsPKI struct {
	ca             *xdstest.CA
	server, client xdstest.Leaf
	otherClient    xdstest.Leaf // from a second CA the control plane does not trust
}

func newXDSPKI(t *testing.T) *xdsPKI {
	t.Helper()
	ca, other := xdstest.NewCA(t, "gatehouse test CA"), xdstest.NewCA(t, "someone else's CA")
	return &xdsPKI{
		ca:          ca,
		server:      ca.Issue(t, "controlplane", xdstest.Server("127.0.0.1")),
		client:      ca.Issue(t, "authz-sidecar", xdstest.Client()),
		otherClient: other.Issue(t, "intruder", xdstest.Client()),
	}
}

// TestRunServesXDSOverMutualTLS runs the control plane with mutual TLS on xDS: a sidecar's
// config source with a client certificate from the trusted CA receives the config an admin
// change published, and clients without one, with one from another CA, or in plaintext are
// refused at the handshake and never see a resource.
func TestRunServesXDSOverMutualTLS(t *testing.T) {
	pki := newXDSPKI(t)
	token, err := admin.NewAdminToken()
	if err != nil {
		t.Fatal(err)
	}
	addrs, out, stop := startAll(t, Config{
		DataDir: t.TempDir(), AdminToken: token,
		XDSTLSCertFile: pki.server.CertFile, XDSTLSKeyFile: pki.server.KeyFile, XDSClientCAFile: pki.ca.CertFile(),
	})
	defer func() {
		if err := stop(); err != nil {
			t.Error(err)
		}
	}()
	if !strings.Contains(out.String(), addrs[serverXDS]+" (mutual TLS)") {
		t.Errorf("banner does not say xDS is mutual TLS:\n%s", out.String())
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	epID := createEndpoint(ctx, t, addrs[serverAdminGRPC], token)

	t.Run("client certificate from the trusted CA", func(t *testing.T) {
		got := make(chan *authzv1.Config, 16)
		src, err := configsource.New(configsource.Config{
			Addr: addrs[serverXDS], NodeID: "sidecar-mtls",
			TLS:    &configsource.TLSConfig{CAFile: pki.ca.CertFile(), CertFile: pki.client.CertFile, KeyFile: pki.client.KeyFile},
			Apply:  func(_ context.Context, c *authzv1.Config) error { got <- c; return nil },
			Logger: slog.New(slog.DiscardHandler),
		})
		if err != nil {
			t.Fatal(err)
		}
		sctx, scancel := context.WithCancel(ctx)
		var wg sync.WaitGroup
		wg.Go(func() { _ = src.Run(sctx) })
		defer func() { scancel(); wg.Wait() }()
		for {
			select {
			case c := <-got:
				for _, ep := range c.GetEndpoints() {
					if ep.GetName() == epID {
						return
					}
				}
			case <-ctx.Done():
				t.Fatal("no config with the endpoint arrived over mutual TLS")
			}
		}
	})

	t.Run("gateway with the rendered bootstrap's TLS", func(t *testing.T) {
		tc := bootstrapTLS(t, addrs[serverXDS], pki)
		// What Envoy offers is what the server must accept: the handshake, ALPN included,
		// succeeds and the server speaks HTTP/2 first.
		conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addrs[serverXDS], tc)
		if err != nil {
			t.Fatalf("TLS handshake with the bootstrap's settings: %v", err)
		}
		defer conn.Close()
		if p := conn.ConnectionState().NegotiatedProtocol; p != "h2" {
			t.Errorf("negotiated protocol %q, want h2", p)
		}
		if err := conn.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
			t.Fatal(err)
		}
		if _, err := conn.Read(make([]byte, 1)); err != nil {
			t.Fatalf("server refused the bootstrap's client certificate: %v", err)
		}
		resp, err := firstDelta(ctx, addrs[serverXDS], credentials.NewTLS(tc))
		if err != nil || len(resp.GetResources()) == 0 {
			t.Fatalf("xDS with the bootstrap's TLS: %v, %v", resp, err)
		}
	})

	tests := []struct {
		name string
		tls  *tls.Config // nil: plaintext
	}{
		{name: "no client certificate", tls: clientTLS(t, pki.ca.CertFile(), "", "")},
		{name: "client certificate from another CA", tls: clientTLS(t, pki.ca.CertFile(), pki.otherClient.CertFile, pki.otherClient.KeyFile)},
		{name: "plaintext"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			creds := insecure.NewCredentials()
			if tt.tls != nil {
				creds = credentials.NewTLS(tt.tls)
			}
			resp, err := firstDelta(ctx, addrs[serverXDS], creds)
			if err == nil {
				t.Fatalf("got %d resources without a trusted client certificate", len(resp.GetResources()))
			}
			if status.Code(err) != codes.Unavailable {
				t.Fatalf("err = %v, want Unavailable: the connection fails before any RPC", err)
			}
			if tt.tls == nil {
				return
			}
			// gRPC reports whichever of its reads and writes hit the closed connection first;
			// a bare TLS client that only reads sees the server's alert itself.
			if err := handshakeAlert(addrs[serverXDS], tt.tls); err == nil || !strings.Contains(err.Error(), "remote error: tls:") {
				t.Fatalf("TLS connection without a trusted client certificate: %v, want a TLS alert from the server", err)
			}
		})
	}
}

// bootstrapTLS renders a gateway bootstrap for the control plane at addr with the test PKI's
// files and turns its UpstreamTlsContext into the Go TLS configuration it describes.
func bootstrapTLS(t *testing.T, addr string, pki *xdsPKI) *tls.Config {
	t.Helper()
	y, err := bootstrap.Render(bootstrap.Config{ControlPlaneAddr: addr, XDSCAFile: pki.ca.CertFile(), XDSCertFile: pki.client.CertFile, XDSKeyFile: pki.client.KeyFile})
	if err != nil {
		t.Fatal(err)
	}
	b, err := bootstrap.Parse(y)
	if err != nil {
		t.Fatal(err)
	}
	var up tlsv3.UpstreamTlsContext
	for _, c := range b.GetStaticResources().GetClusters() {
		if c.GetName() == "gatehouse-controlplane" {
			if err := c.GetTransportSocket().GetTypedConfig().UnmarshalTo(&up); err != nil {
				t.Fatal(err)
			}
		}
	}
	common := up.GetCommonTlsContext()
	vc := common.GetValidationContext()
	tc := clientTLS(t, vc.GetTrustedCa().GetFilename(), common.GetTlsCertificates()[0].GetCertificateChain().GetFilename(),
		common.GetTlsCertificates()[0].GetPrivateKey().GetFilename())
	tc.NextProtos = common.GetAlpnProtocols()
	// Envoy checks the name in match_typed_subject_alt_names; Go checks ServerName.
	tc.ServerName = vc.GetMatchTypedSubjectAltNames()[0].GetMatcher().GetExact()
	return tc
}

// clientTLS is a client TLS configuration that trusts caFile and presents certFile when set.
func clientTLS(t *testing.T, caFile, certFile, keyFile string) *tls.Config {
	t.Helper()
	b, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(b)
	tc := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	if certFile != "" {
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			t.Fatal(err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc
}

// handshakeAlert connects with tc, completes the client's side of the handshake and reads
// until the server answers: with TLS 1.3 a refused client certificate arrives as an alert on
// the first read.
func handshakeAlert(addr string, tc *tls.Config) error {
	tc = tc.Clone()
	tc.NextProtos = []string{"h2"}
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, tc)
	if err != nil {
		return err
	}
	defer conn.Close()
	if err := conn.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
		return err
	}
	_, err = conn.Read(make([]byte, 1))
	return err
}

// firstDelta subscribes to the authz endpoints over delta ADS and returns the first answer.
func firstDelta(ctx context.Context, addr string, creds credentials.TransportCredentials) (*discoveryv3.DeltaDiscoveryResponse, error) {
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	stream, err := discoveryv3.NewAggregatedDiscoveryServiceClient(conn).DeltaAggregatedResources(ctx)
	if err != nil {
		return nil, err
	}
	err = stream.Send(&discoveryv3.DeltaDiscoveryRequest{
		Node:                   &corev3.Node{Id: "intruder", Cluster: "gatehouse-authz"},
		TypeUrl:                "type.googleapis.com/gatehouse.authz.v1.Endpoint",
		ResourceNamesSubscribe: []string{"*"},
	})
	if err != nil && err != io.EOF {
		return nil, err
	}
	return stream.Recv()
}

// createEndpoint makes a collection with one active endpoint through the admin gRPC API and
// returns the endpoint's id.
func createEndpoint(ctx context.Context, t *testing.T, addr, token string) string {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	actx := metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token)
	col, err := adminv1.NewCollectionServiceClient(conn).CreateCollection(actx, &adminv1.CreateCollectionRequest{
		Collection: &adminv1.Collection{Name: "Sales", Version: "v1", Path: "sales-v1"},
	})
	if err != nil {
		t.Fatal(err)
	}
	ep, err := adminv1.NewEndpointServiceClient(conn).CreateEndpoint(actx, &adminv1.CreateEndpointRequest{
		CollectionId: col.GetId(),
		Endpoint:     &adminv1.Endpoint{Name: "get", Method: "GET", Path: "/invoices/{id}", RecipeId: "rcp_1", Active: proto.Bool(true)},
	})
	if err != nil {
		t.Fatal(err)
	}
	return ep.GetId()
}

func TestXDSTLSSettings(t *testing.T) {
	pki := newXDSPKI(t)
	tests := []struct {
		name          string
		args          []string
		wantErr       string // from Run; empty: it starts
		wantBanner    string
		cert, key, ca string
	}{
		{name: "plaintext by default", wantBanner: "(plaintext)"},
		{name: "TLS without client certificates", cert: pki.server.CertFile, key: pki.server.KeyFile, wantBanner: "(TLS)"},
		{name: "certificate without key", cert: pki.server.CertFile, wantErr: "--xds-tls-key-file"},
		{name: "key without certificate", key: pki.server.KeyFile, wantErr: "--xds-tls-cert-file"},
		{name: "client CA without TLS", ca: pki.ca.CertFile(), wantErr: "--xds-client-ca-file needs"},
		{name: "client CA file that holds no certificate", cert: pki.server.CertFile, key: pki.server.KeyFile, ca: pki.server.KeyFile, wantErr: "holds no PEM certificate"},
		{name: "unreadable certificate", cert: filepath.Join(t.TempDir(), "missing.pem"), key: pki.server.KeyFile, wantErr: "load xDS TLS certificate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := Config{DataDir: t.TempDir(), XDSTLSCertFile: tt.cert, XDSTLSKeyFile: tt.key, XDSClientCAFile: tt.ca}
			if tt.wantErr != "" {
				cfg.AdminHTTPAddr, cfg.AdminGRPCAddr, cfg.XDSAddr = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
				if err := Run(t.Context(), cfg); err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Run = %v, want an error naming %q", err, tt.wantErr)
				}
				return
			}
			_, out, stop := startAll(t, cfg)
			if err := stop(); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(out.String(), tt.wantBanner) {
				t.Errorf("banner lacks %q:\n%s", tt.wantBanner, out.String())
			}
		})
	}

	cfg, _, err := parseFlags([]string{"--xds-tls-cert-file", "c.pem", "--xds-tls-key-file", "k.pem", "--xds-client-ca-file", "ca.pem"}, io.Discard)
	if err != nil || cfg.XDSTLSCertFile != "c.pem" || cfg.XDSTLSKeyFile != "k.pem" || cfg.XDSClientCAFile != "ca.pem" {
		t.Errorf("parsed %+v, %v", cfg, err)
	}
}
