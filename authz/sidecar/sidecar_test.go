package sidecar

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"
	"sigs.k8s.io/yaml"

	"gatehouse/authz/check/checktest"
	"gatehouse/authz/configsource"
	"gatehouse/authz/limit/redislimit"
	"gatehouse/authz/limit/redistest"
	authzv1 "gatehouse/proto/gatehouse/authz/v1"
)

func TestParseFlags(t *testing.T) {
	def := Config{
		DataDir: ".data", GRPCAddr: ":9191", HTTPAddr: ":9192", XDSAddr: "localhost:18000",
		Limiter: LimiterMemory, ShutdownGrace: 10 * time.Second,
		Redis: redislimit.Settings{Deadline: redislimit.DefaultDeadline, FailMode: redislimit.FailLocal, Replicas: 1},
	}
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		want    func(c *Config)
		wantErr string
	}{
		{"defaults", nil, nil, func(*Config) {}, ""},
		{"flags", []string{"--grpc-addr=127.0.0.1:1", "--trusted-hops=2", "--config-file=c.yaml", "--node-id=n1"}, nil,
			func(c *Config) { c.GRPCAddr, c.TrustedHops, c.ConfigFile, c.NodeID = "127.0.0.1:1", 2, "c.yaml", "n1" }, ""},
		{"environment", nil, map[string]string{"GATEHOUSE_AUTHZ_DATA_DIR": "/var/lib/g", "GATEHOUSE_AUTHZ_XDS_ADDR": "cp:18000"},
			func(c *Config) { c.DataDir, c.XDSAddr = "/var/lib/g", "cp:18000" }, ""},
		{"flag wins over environment", []string{"--http-addr=:1"}, map[string]string{"GATEHOUSE_AUTHZ_HTTP_ADDR": ":2"},
			func(c *Config) { c.HTTPAddr = ":1" }, ""},
		{"redis", []string{"--limiter=redis", "--redis-addr=a:1, b:2", "--redis-fail-mode=closed", "--redis-replicas=3"}, nil,
			func(c *Config) {
				c.Limiter = LimiterRedis
				c.Redis.Addrs, c.Redis.FailMode, c.Redis.Replicas = []string{"a:1", "b:2"}, redislimit.FailClosed, 3
			}, ""},
		{"redis without address", []string{"--limiter=redis"}, nil, nil, "needs --redis-addr"},
		{"unknown limiter", []string{"--limiter=etcd"}, nil, nil, "want memory or redis"},
		{"bad fail mode", []string{"--limiter=redis", "--redis-addr=a:1", "--redis-fail-mode=maybe"}, nil, nil, "want local, open or closed"},
		{"negative hops", []string{"--trusted-hops=-1"}, nil, nil, "must not be negative"},
		{"bad environment value", nil, map[string]string{"GATEHOUSE_AUTHZ_TRUSTED_HOPS": "many"}, nil, "GATEHOUSE_AUTHZ_TRUSTED_HOPS"},
		{"stray argument", []string{"serve"}, nil, nil, "unexpected arguments"},
		{"xds mutual TLS", []string{"--xds-ca-file=ca.pem", "--xds-cert-file=c.pem", "--xds-key-file=k.pem", "--xds-server-name=cp.internal"}, nil,
			func(c *Config) {
				c.XDSTLS = &configsource.TLSConfig{CAFile: "ca.pem", CertFile: "c.pem", KeyFile: "k.pem", ServerName: "cp.internal"}
			}, ""},
		{"xds TLS from the environment", nil, map[string]string{"GATEHOUSE_AUTHZ_XDS_CA_FILE": "/run/ca.pem", "GATEHOUSE_AUTHZ_XDS_CERT_FILE": "/run/c.pem",
			"GATEHOUSE_AUTHZ_XDS_KEY_FILE": "/run/k.pem", "GATEHOUSE_AUTHZ_XDS_SERVER_NAME": "cp"},
			func(c *Config) {
				c.XDSTLS = &configsource.TLSConfig{CAFile: "/run/ca.pem", CertFile: "/run/c.pem", KeyFile: "/run/k.pem", ServerName: "cp"}
			}, ""},
		{"xds TLS with the system roots", []string{"--xds-server-name=cp.example.com"}, nil,
			func(c *Config) { c.XDSTLS = &configsource.TLSConfig{ServerName: "cp.example.com"} }, ""},
		{"xds client certificate without key", []string{"--xds-cert-file=c.pem"}, nil, nil, "--xds-cert-file and --xds-key-file go together"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, _, err := ParseFlags(tt.args, func(k string) string { return tt.env[k] })
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := def
			tt.want(&want)
			if diff := cmp.Diff(want, got, cmp.FilterPath(func(p cmp.Path) bool {
				return p.Last().String() == ".Logger" || p.Last().String() == ".OnListen"
			}, cmp.Ignore())); diff != "" {
				t.Errorf("config (-want +got):\n%s", diff)
			}
		})
	}
}

func TestLoadConfigFile(t *testing.T) {
	cfg := checktest.New(time.Now()).Config
	dir := t.TempDir()
	j, err := protojson.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	y, err := yaml.JSONToYAML(j)
	if err != nil {
		t.Fatal(err)
	}
	pb, err := proto.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{"c.json": j, "c.yaml": y, "c.yml": y, "c.pb": pb,
		"typo.json": []byte(`{"version":"1","endpionts":[]}`), "c.toml": j}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"c.json", "c.yaml", "c.yml", "c.pb"} {
		t.Run(name, func(t *testing.T) {
			got, err := LoadConfigFile(filepath.Join(dir, name))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(cfg, got, protocmp.Transform()); diff != "" {
				t.Errorf("config (-want +got):\n%s", diff)
			}
		})
	}
	for name, want := range map[string]string{"typo.json": "endpionts", "c.toml": "unknown extension", "missing.json": "no such file"} {
		t.Run(name, func(t *testing.T) {
			if _, err := LoadConfigFile(filepath.Join(dir, name)); err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("error = %v, want %q", err, want)
			}
		})
	}
}

// sidecar is a running Run for one test.
type sidecar struct {
	grpcAddr, httpAddr string
	client             authv3.AuthorizationClient
	health             healthpb.HealthClient
	stop               func() error
}

func start(t *testing.T, cfg Config) *sidecar {
	t.Helper()
	cfg.GRPCAddr, cfg.HTTPAddr = "127.0.0.1:0", "127.0.0.1:0"
	if cfg.Limiter == "" {
		cfg.Limiter = LimiterMemory
	}
	if cfg.ShutdownGrace == 0 {
		cfg.ShutdownGrace = 5 * time.Second
	}
	cfg.Logger = slog.New(slog.DiscardHandler)
	addrs := make(chan [2]net.Addr, 1)
	cfg.OnListen = func(g, h net.Addr) { addrs <- [2]net.Addr{g, h} }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, cfg) }()
	s := &sidecar{}
	select {
	case a := <-addrs:
		s.grpcAddr, s.httpAddr = a[0].String(), a[1].String()
	case err := <-done:
		cancel()
		t.Fatalf("Run returned at start: %v", err)
	case <-time.After(10 * time.Second):
		cancel()
		t.Fatal("Run did not listen")
	}
	conn, err := grpc.NewClient(s.grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	s.client, s.health = authv3.NewAuthorizationClient(conn), healthpb.NewHealthClient(conn)
	stopped := false
	var runErr error
	s.stop = func() error {
		if !stopped {
			stopped = true
			_ = conn.Close()
			cancel()
			runErr = <-done
		}
		return runErr
	}
	t.Cleanup(func() { _ = s.stop() })
	return s
}

func (s *sidecar) get(t *testing.T, path string) (int, string) {
	t.Helper()
	resp, err := http.Get("http://" + s.httpAddr + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func (s *sidecar) check(t *testing.T, path, token string) *authv3.CheckResponse {
	t.Helper()
	headers := map[string]string{":path": path, ":method": "GET"}
	if token != "" {
		headers["api-token"] = token
	}
	resp, err := s.client.Check(context.Background(), &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Source: &authv3.AttributeContext_Peer{Address: &corev3.Address{Address: &corev3.Address_SocketAddress{
			SocketAddress: &corev3.SocketAddress{Address: "198.51.100.7"}}}},
		Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{Method: "GET", Path: path, Headers: headers}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func problemCode(t *testing.T, r *authv3.CheckResponse) string {
	t.Helper()
	if r.GetOkResponse() != nil {
		return "ok"
	}
	var p struct{ Code string }
	if err := json.Unmarshal([]byte(r.GetDeniedResponse().GetBody()), &p); err != nil {
		t.Fatalf("denied body: %v", err)
	}
	return p.Code
}

func writeConfig(t *testing.T, cfg *authzv1.Config) string {
	t.Helper()
	j, err := protojson.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	y, err := yaml.JSONToYAML(j)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "authz.yaml")
	if err := os.WriteFile(p, y, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestRunWithConfigFile(t *testing.T) {
	fx := checktest.New(time.Now())
	s := start(t, Config{DataDir: t.TempDir(), ConfigFile: writeConfig(t, fx.Config)})
	if code := problemCode(t, s.check(t, "/sales/orders/o-1", fx.Secret(checktest.TokenSales))); code != "ok" {
		t.Fatalf("allowed token: %s", code)
	}
	if code := problemCode(t, s.check(t, "/sales/orders/o-1", "")); code != "missing_credentials" {
		t.Fatalf("no token: %s", code)
	}
	if code, _ := s.get(t, "/readyz"); code != 200 {
		t.Errorf("/readyz = %d, want 200", code)
	}
	if hr, err := s.health.Check(context.Background(), &healthpb.HealthCheckRequest{}); err != nil || hr.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Errorf("health = %v %v, want SERVING", hr, err)
	}
	code, metrics := s.get(t, "/metrics")
	for _, want := range []string{
		`gatehouse_authz_config_info{version="42"} 1`,
		`gatehouse_authz_decisions_total{code="ok",result="allow"} 1`,
		`gatehouse_authz_decisions_total{code="missing_credentials",result="deny"} 1`,
		"process_resident_memory_bytes",
	} {
		if code != 200 || !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if err := s.stop(); err != nil {
		t.Fatalf("Run after shutdown = %v", err)
	}
}

// A reload applies a changed file, and keeps the config in force when the file is broken.
func TestRunReloadsConfigFile(t *testing.T) {
	fx := checktest.New(time.Now())
	path := writeConfig(t, fx.Config)
	reload := make(chan struct{})
	s := start(t, Config{DataDir: t.TempDir(), ConfigFile: path, Reload: reload})
	old := fx.Secret(checktest.TokenSalesOld)
	if code := problemCode(t, s.check(t, "/sales/orders", old)); code != "ok" {
		t.Fatalf("before reload: %s", code)
	}
	if err := os.WriteFile(path, []byte("version: [broken"), 0o600); err != nil {
		t.Fatal(err)
	}
	reload <- struct{}{}
	reload <- struct{}{} // taken only once the first reload is done
	if code := problemCode(t, s.check(t, "/sales/orders", old)); code != "ok" {
		t.Fatalf("after a broken file: %s, want the config in force", code)
	}
	revoked := proto.Clone(fx.Config).(*authzv1.Config)
	revoked.Version = "43"
	a := revoked.Profiles[0].GetApiToken()
	a.Tokens = a.Tokens[:1]
	reload <- struct{}{} // the second broken reload is done before the file changes
	if err := os.Rename(writeConfig(t, revoked), path); err != nil {
		t.Fatal(err)
	}
	reload <- struct{}{}
	eventually(t, "the revocation", func() bool { return problemCode(t, s.check(t, "/sales/orders", old)) == "invalid_credentials" })
}

func TestRunRefusesBadConfigFile(t *testing.T) {
	fx := checktest.New(time.Now())
	fx.Config.Profiles[0].PolicyId = "missing"
	err := Run(context.Background(), Config{DataDir: t.TempDir(), ConfigFile: writeConfig(t, fx.Config),
		GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0", Limiter: LimiterMemory, Logger: slog.New(slog.DiscardHandler)})
	if err == nil || !strings.Contains(err.Error(), `policy "missing" does not exist`) {
		t.Fatalf("Run = %v, want the build error", err)
	}
}

// Without a config (control plane unreachable, nothing cached) the sidecar serves but is not
// ready, and refuses every request with 503.
func TestRunNotReadyWithoutConfig(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	unused := l.Addr().String()
	_ = l.Close()
	s := start(t, Config{DataDir: t.TempDir(), XDSAddr: unused, NodeID: "test"})
	if code, _ := s.get(t, "/readyz"); code != 503 {
		t.Errorf("/readyz = %d, want 503", code)
	}
	if code, _ := s.get(t, "/healthz"); code != 200 {
		t.Errorf("/healthz = %d, want 200", code)
	}
	if hr, err := s.health.Check(context.Background(), &healthpb.HealthCheckRequest{}); err != nil || hr.GetStatus() != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Errorf("health = %v %v, want NOT_SERVING", hr, err)
	}
	r := s.check(t, "/sales/orders", "")
	if r.GetDeniedResponse().GetStatus().GetCode() != 503 || problemCode(t, r) != "config_unavailable" {
		t.Errorf("check without config = %v, want 503 config_unavailable", r)
	}
}

// Quota counters live in the shared bbolt file: a restart does not hand out a new quota.
func TestQuotaSurvivesRestart(t *testing.T) {
	fx := checktest.New(time.Now())
	cfg := Config{DataDir: t.TempDir(), ConfigFile: writeConfig(t, fx.Config)}
	tok := fx.Secret(checktest.TokenQuota)
	s := start(t, cfg)
	if code := problemCode(t, s.check(t, "/sales/orders", tok)); code != "ok" {
		t.Fatalf("first call: %s", code)
	}
	if code := problemCode(t, s.check(t, "/sales/orders", tok)); code != "quota_exceeded" {
		t.Fatalf("second call: %s", code)
	}
	if err := s.stop(); err != nil {
		t.Fatal(err)
	}
	s = start(t, cfg)
	if code := problemCode(t, s.check(t, "/sales/orders", tok)); code != "quota_exceeded" {
		t.Fatalf("after restart: %s, want quota_exceeded", code)
	}
}

// The Redis limiter shares counters between replicas: two sidecars on one Redis together
// allow the policy's 2 calls, not 2 each.
func TestRedisLimiterAcrossReplicas(t *testing.T) {
	rs := redistest.Start(t)
	fx := checktest.New(time.Now())
	file := writeConfig(t, fx.Config)
	tok := fx.Secret(checktest.TokenLimited)
	var codes []string
	for range 2 {
		s := start(t, Config{DataDir: t.TempDir(), ConfigFile: file, Limiter: LimiterRedis,
			Redis: redislimit.Settings{Addrs: []string{rs.Addr}, FailMode: redislimit.FailClosed}})
		for range 2 {
			codes = append(codes, problemCode(t, s.check(t, "/sales/orders", tok)))
		}
	}
	if diff := cmp.Diff([]string{"ok", "ok", "rate_limited", "rate_limited"}, codes); diff != "" {
		t.Errorf("codes across replicas (-want +got):\n%s", diff)
	}
}
