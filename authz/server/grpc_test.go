package server

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"sort"
	"strings"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"

	"gatehouse/authz/check"
	"gatehouse/authz/check/checktest"
	authzv1 "gatehouse/proto/gatehouse/authz/v1"
)

// syncBuffer collects log output from concurrent handlers.
type syncBuffer struct {
	mu chanMutex
	b  bytes.Buffer
}

type chanMutex chan struct{}

func (m chanMutex) lock()   { m <- struct{}{} }
func (m chanMutex) unlock() { <-m }

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.lock()
	defer s.mu.unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.lock()
	defer s.mu.unlock()
	return s.b.String()
}

// env is a running sidecar core: checker, gRPC server on 127.0.0.1:0 and a client.
type env struct {
	fx      *checktest.Fixture
	checker *check.Checker
	health  *Health
	metrics *Metrics
	reg     *prometheus.Registry
	logs    *syncBuffer
	client  authv3.AuthorizationClient
	hc      healthpb.HealthClient
	cfg     Config
}

func newEnv(t testing.TB, withConfig bool, hops int) *env {
	t.Helper()
	e := &env{fx: checktest.New(time.Now()), reg: prometheus.NewRegistry(), logs: &syncBuffer{mu: make(chanMutex, 1)}}
	e.checker = check.New(check.Config{TrustedHops: hops})
	var err error
	if e.metrics, err = NewMetrics(e.reg); err != nil {
		t.Fatal(err)
	}
	e.health = NewHealth()
	e.cfg = Config{Decider: e.checker, Metrics: e.metrics,
		Logger: slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	if withConfig {
		e.swap(t, e.fx.Config)
	}
	srv := NewGRPCServer(e.cfg, e.health)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	e.client = authv3.NewAuthorizationClient(conn)
	e.hc = healthpb.NewHealthClient(conn)
	return e
}

// swap applies cfg as the sidecar's config callback does.
func (e *env) swap(t testing.TB, cfg *authzv1.Config) {
	t.Helper()
	if err := e.checker.Swap(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	e.metrics.ConfigInForce(cfg.GetVersion())
	e.health.SetReady(true)
}

// envoyRequest builds a CheckRequest the way Envoy sends it: lower-case headers including
// pseudo-headers, the path with its query, the downstream source address and the route's
// context extensions.
func envoyRequest(method, path, source string, ext map[string]string, headers map[string]string) *authv3.CheckRequest {
	h := map[string]string{
		":authority": "api.example.com", ":method": method, ":path": path, ":scheme": "https",
		"user-agent": "curl/8.5.0", "x-forwarded-proto": "https", "x-request-id": "7f3c0e4a-envoy",
	}
	for k, v := range headers {
		h[k] = v
	}
	return &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Source: &authv3.AttributeContext_Peer{Address: &corev3.Address{Address: &corev3.Address_SocketAddress{
			SocketAddress: &corev3.SocketAddress{Address: source, PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: 51234}}}}},
		Destination: &authv3.AttributeContext_Peer{Address: &corev3.Address{Address: &corev3.Address_SocketAddress{
			SocketAddress: &corev3.SocketAddress{Address: "10.0.0.1", PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: 10000}}}}},
		Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
			Id: "7f3c0e4a-envoy", Method: method, Path: path, Host: "api.example.com", Scheme: "https",
			Protocol: "HTTP/1.1", Headers: h,
		}},
		ContextExtensions: ext,
	}}
}

func ext(endpoint string) map[string]string {
	return map[string]string{ExtEndpointID: endpoint, ExtCollectionID: "col-sales", ExtRecipeID: "recipe-" + endpoint}
}

func overwrite(kv ...string) []*corev3.HeaderValueOption {
	var out []*corev3.HeaderValueOption
	for i := 0; i < len(kv); i += 2 {
		out = append(out, &corev3.HeaderValueOption{
			Header:       &corev3.HeaderValue{Key: kv[i], Value: kv[i+1]},
			AppendAction: corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD,
		})
	}
	return out
}

// sortRemove makes headers_to_remove comparable; its order follows a map.
func sortRemove(r *authv3.CheckResponse) {
	if ok := r.GetOkResponse(); ok != nil {
		sort.Strings(ok.HeadersToRemove)
	}
}

func TestCheckAllowsWithIdentityHeaders(t *testing.T) {
	e := newEnv(t, true, 0)
	tok := e.fx.Secret(checktest.TokenSales)
	resp, err := e.client.Check(context.Background(), envoyRequest("GET", "/sales/orders/o-42/items/7?expand=all", "198.51.100.7",
		ext(checktest.EndpointItem), map[string]string{"api-token": tok}))
	if err != nil {
		t.Fatal(err)
	}
	sortRemove(resp)
	want := &authv3.CheckResponse{
		Status: resp.GetStatus(),
		HttpResponse: &authv3.CheckResponse_OkResponse{OkResponse: &authv3.OkHttpResponse{
			Headers: overwrite(
				"x-gatehouse-client-id", "cl-acme",
				"x-gatehouse-profile-id", "prof-sales",
				"x-gatehouse-auth-method", "api_token",
				"x-gatehouse-endpoint-id", checktest.EndpointItem,
				"x-gatehouse-collection-id", "col-sales",
				"x-gatehouse-recipe-id", "recipe-"+checktest.EndpointItem,
				"x-gatehouse-token-id", checktest.TokenSales,
				"x-gatehouse-param-id", "o-42",
				"x-gatehouse-param-item", "7",
			),
			HeadersToRemove: []string{"api-token", "authorization", "x-gatehouse-jwt-claims"},
		}},
	}
	if resp.GetStatus().GetCode() != 0 {
		t.Fatalf("status %v, want OK", resp.GetStatus())
	}
	if diff := cmp.Diff(want, resp, protocmp.Transform()); diff != "" {
		t.Errorf("response (-want +got):\n%s", diff)
	}
}

func TestCheckDenials(t *testing.T) {
	e := newEnv(t, true, 0)
	sec := e.fx.Secret
	tests := []struct {
		name       string
		req        *authv3.CheckRequest
		wantStatus int
		wantCode   string
		wantHeader map[string]string
	}{
		{"no credentials", envoyRequest("GET", "/sales/orders", "198.51.100.7", ext(checktest.EndpointListOrders), nil),
			401, "missing_credentials", map[string]string{"www-authenticate": `API-Token realm="gatehouse", Bearer realm="gatehouse"`}},
		{"random token", envoyRequest("GET", "/sales/orders", "198.51.100.7", ext(checktest.EndpointListOrders), map[string]string{"api-token": "gth_0000"}),
			401, "invalid_credentials", map[string]string{"www-authenticate": `API-Token realm="gatehouse"`}},
		{"token for another collection", envoyRequest("GET", "/sales/orders", "198.51.100.7", ext(checktest.EndpointListOrders), map[string]string{"api-token": sec(checktest.TokenHR)}),
			403, "collection_not_allowed", nil},
		{"unknown route without context extensions", envoyRequest("GET", "/nowhere", "198.51.100.7", nil, nil),
			404, "endpoint_not_found", nil},
		{"spoofed x-forwarded-for", envoyRequest("GET", "/sales/orders", "192.0.2.1", ext(checktest.EndpointListOrders),
			map[string]string{"api-token": sec(checktest.TokenIP), "x-forwarded-for": "203.0.113.5"}),
			403, "ip_not_allowed", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := e.client.Check(context.Background(), tt.req)
			if err != nil {
				t.Fatal(err)
			}
			den := resp.GetDeniedResponse()
			if resp.GetStatus().GetCode() == 0 || den == nil {
				t.Fatalf("not denied: %v", resp)
			}
			if int(den.GetStatus().GetCode()) != tt.wantStatus {
				t.Errorf("HTTP status %d, want %d", den.GetStatus().GetCode(), tt.wantStatus)
			}
			var problem map[string]any
			if err := json.Unmarshal([]byte(den.GetBody()), &problem); err != nil {
				t.Fatalf("body: %v", err)
			}
			if problem["code"] != tt.wantCode || problem["request_id"] != "7f3c0e4a-envoy" || problem["status"] != float64(tt.wantStatus) {
				t.Errorf("problem = %v, want code %s with Envoy's request id", problem, tt.wantCode)
			}
			got := map[string]string{}
			for _, h := range den.GetHeaders() {
				got[h.GetHeader().GetKey()] = h.GetHeader().GetValue()
			}
			if got["content-type"] != "application/problem+json" {
				t.Errorf("content-type = %q", got["content-type"])
			}
			for k, v := range tt.wantHeader {
				if got[k] != v {
					t.Errorf("header %s = %q, want %q", k, got[k], v)
				}
			}
		})
	}
}

func TestCheckRateLimitHeaders(t *testing.T) {
	e := newEnv(t, true, 0)
	req := envoyRequest("GET", "/sales/orders", "198.51.100.7", ext(checktest.EndpointListOrders),
		map[string]string{"api-token": e.fx.Secret(checktest.TokenLimited)})
	var last *authv3.CheckResponse
	for i := 0; i < 3; i++ {
		resp, err := e.client.Check(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		if i < 2 && resp.GetOkResponse() == nil {
			t.Fatalf("call %d refused: %v", i+1, resp)
		}
		if i == 0 {
			got := map[string]string{}
			for _, h := range resp.GetOkResponse().GetResponseHeadersToAdd() {
				got[h.GetHeader().GetKey()] = h.GetHeader().GetValue()
			}
			if got["RateLimit-Policy"] != `"rate";q=2;w=60` || got["RateLimit"] == "" {
				t.Errorf("OK response headers to add = %v", got)
			}
		}
		last = resp
	}
	den := last.GetDeniedResponse()
	if den.GetStatus().GetCode() != 429 {
		t.Fatalf("third call: %v, want 429", last)
	}
	got := map[string]string{}
	for _, h := range den.GetHeaders() {
		got[h.GetHeader().GetKey()] = h.GetHeader().GetValue()
	}
	for _, k := range []string{"Retry-After", "RateLimit", "RateLimit-Policy"} {
		if got[k] == "" {
			t.Errorf("429 without %s: %v", k, got)
		}
	}
}

// Spoofed identity headers never reach the runtime: the ones the decision sets are
// overwritten, every other x-gatehouse-* header is removed.
func TestCheckRemovesSpoofedHeaders(t *testing.T) {
	e := newEnv(t, true, 0)
	resp, err := e.client.Check(context.Background(), envoyRequest("GET", "/sales/orders/o-1", "198.51.100.7", ext(checktest.EndpointGetOrder),
		map[string]string{
			"api-token":               e.fx.Secret(checktest.TokenSales),
			"x-gatehouse-client-id":   "cl-admin",
			"x-gatehouse-jwt-claims":  "eyJhZG1pbiI6dHJ1ZX0",
			"x-gatehouse-param-admin": "1",
		}))
	if err != nil {
		t.Fatal(err)
	}
	sortRemove(resp)
	ok := resp.GetOkResponse()
	if diff := cmp.Diff([]string{"api-token", "authorization", "x-gatehouse-jwt-claims", "x-gatehouse-param-admin"}, ok.GetHeadersToRemove()); diff != "" {
		t.Errorf("headers to remove (-want +got):\n%s", diff)
	}
	for _, h := range ok.GetHeaders() {
		if h.GetHeader().GetKey() == "x-gatehouse-client-id" {
			if h.GetHeader().GetValue() != "cl-acme" || h.GetAppendAction() != corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD {
				t.Errorf("client id header = %v, want overwritten with cl-acme", h)
			}
		}
	}
}

// A rotated token in its grace period stops at once when revoked.
func TestCheckRevokedDuringGrace(t *testing.T) {
	e := newEnv(t, true, 0)
	req := envoyRequest("GET", "/sales/orders", "198.51.100.7", ext(checktest.EndpointListOrders),
		map[string]string{"api-token": e.fx.Secret(checktest.TokenSalesOld)})
	if resp, err := e.client.Check(context.Background(), req); err != nil || resp.GetOkResponse() == nil {
		t.Fatalf("in grace: %v %v", resp, err)
	}
	revoked := proto.Clone(e.fx.Config).(*authzv1.Config)
	revoked.Version = "43"
	a := revoked.Profiles[0].GetApiToken()
	a.Tokens = a.Tokens[:1]
	e.swap(t, revoked)
	resp, err := e.client.Check(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetDeniedResponse().GetStatus().GetCode() != 401 {
		t.Fatalf("after revoke: %v, want 401", resp)
	}
}

func TestHealthAndMetricsFollowConfig(t *testing.T) {
	e := newEnv(t, false, 0)
	ctx := context.Background()
	hr, err := e.hc.Check(ctx, &healthpb.HealthCheckRequest{Service: authzService})
	if err != nil || hr.GetStatus() != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Fatalf("health before config = %v %v, want NOT_SERVING", hr, err)
	}
	resp, err := e.client.Check(ctx, envoyRequest("GET", "/sales/orders", "198.51.100.7", nil, nil))
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetDeniedResponse().GetStatus().GetCode() != 503 || !strings.Contains(resp.GetDeniedResponse().GetBody(), "config_unavailable") {
		t.Fatalf("before config: %v, want 503 config_unavailable", resp)
	}
	e.swap(t, e.fx.Config)
	hr, err = e.hc.Check(ctx, &healthpb.HealthCheckRequest{})
	if err != nil || hr.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health after config = %v %v, want SERVING", hr, err)
	}
	if _, err := e.client.Check(ctx, envoyRequest("GET", "/sales/orders", "198.51.100.7", nil,
		map[string]string{"api-token": e.fx.Secret(checktest.TokenSales)})); err != nil {
		t.Fatal(err)
	}
	const want = `
# HELP gatehouse_authz_config_info 1 for the version of the config in force.
# TYPE gatehouse_authz_config_info gauge
gatehouse_authz_config_info{version="42"} 1
`
	if err := testutil.GatherAndCompare(e.reg, strings.NewReader(want), "gatehouse_authz_config_info"); err != nil {
		t.Error(err)
	}
	for code, n := range map[string]float64{"ok": 1, "config_unavailable": 1} {
		if got := testutil.ToFloat64(e.metrics.decisions[codeByName(t, code)]); got != n {
			t.Errorf("decisions{code=%s} = %v, want %v", code, got, n)
		}
	}
}

func codeByName(t *testing.T, name string) check.Code {
	for c := range check.NumCodes {
		if c.String() == name {
			return c
		}
	}
	t.Fatalf("no code %s", name)
	return 0
}

// No log line, at any level, ever holds a token: not for refusals, not in the debug dump of
// the request headers.
func TestLogsNeverHoldTokens(t *testing.T) {
	e := newEnv(t, true, 0)
	secrets := []string{}
	for _, id := range []string{checktest.TokenSales, checktest.TokenHR, checktest.TokenSalesGone, checktest.TokenNotInConfig} {
		secrets = append(secrets, e.fx.Secret(id))
	}
	ctx := context.Background()
	for _, s := range secrets {
		for _, h := range []map[string]string{
			{"api-token": s},
			{"authorization": "Basic " + b64("api-token:"+s)},
			{"authorization": "Bearer " + s},
			{"api-token": s[:20]},
		} {
			if _, err := e.client.Check(ctx, envoyRequest("GET", "/sales/orders", "198.51.100.7", nil, h)); err != nil {
				t.Fatal(err)
			}
		}
	}
	logs := e.logs.String()
	if !strings.Contains(logs, "request refused") {
		t.Fatal("no refusal was logged")
	}
	for _, s := range secrets {
		for _, leak := range []string{s, s[:20], b64("api-token:" + s)} {
			if strings.Contains(logs, leak) {
				t.Fatalf("log holds a credential %q...:\n%s", leak[:8], logs)
			}
		}
	}
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// Responses share the identity header messages of a config; concurrent calls must each get
// a whole, correct answer (run with -race).
func TestConcurrentChecksShareHeaders(t *testing.T) {
	e := newEnv(t, true, 0)
	tok := e.fx.Secret(checktest.TokenSales)
	errs := make(chan error, 8)
	for w := range 8 {
		go func() {
			for i := range 50 {
				id := fmt.Sprintf("o-%d-%d", w, i)
				resp, err := e.client.Check(context.Background(), envoyRequest("GET", "/sales/orders/"+id, "198.51.100.7",
					ext(checktest.EndpointGetOrder), map[string]string{"api-token": tok}))
				if err != nil {
					errs <- err
					return
				}
				got := map[string]string{}
				for _, h := range resp.GetOkResponse().GetHeaders() {
					got[h.GetHeader().GetKey()] = h.GetHeader().GetValue()
				}
				if got["x-gatehouse-param-id"] != id || got["x-gatehouse-profile-id"] != "prof-sales" || got["x-gatehouse-endpoint-id"] != checktest.EndpointGetOrder {
					errs <- fmt.Errorf("call %s got headers %v", id, got)
					return
				}
			}
			errs <- nil
		}()
	}
	for range 8 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}

// TestHeadersToRemoveOwnedHeaders checks that an allowed call removes every fixed owned
// header it does not set even when Envoy did not send it to ext_authz, so a spoofed copy
// cannot reach the runtime without the header_mutation filter.
func TestHeadersToRemoveOwnedHeaders(t *testing.T) {
	tests := []struct {
		name    string
		d       check.Decision
		inbound []string
		want    []string
	}{
		{"api token call removes claims", check.Decision{TokenID: "tok-1"}, nil,
			[]string{"api-token", "authorization", "x-gatehouse-jwt-claims"}},
		{"jwt call removes token id", check.Decision{Claims: "e30"}, nil,
			[]string{"api-token", "authorization", "x-gatehouse-token-id"}},
		{"inbound parameter of another endpoint", check.Decision{TokenID: "tok-1", Params: []check.Param{{Header: "x-gatehouse-param-id", Value: "1"}}},
			[]string{"x-gatehouse-param-id", "x-gatehouse-param-admin", "x-gatehouse-jwt-claims", "accept"},
			[]string{"api-token", "authorization", "x-gatehouse-jwt-claims", "x-gatehouse-param-admin"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := headersToRemove(&tt.d, func(f func(string)) {
				for _, k := range tt.inbound {
					f(k)
				}
			})
			sort.Strings(got)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("headers to remove (-want +got):\n%s", diff)
			}
		})
	}
}

// TestCheckTrustedHopBehindEnvoy runs the sidecar with one trusted hop, a load balancer in
// front of Envoy: Envoy appends the load balancer's address, which it also reports as the
// source, so the caller is the entry the load balancer appended, whatever the caller wrote.
func TestCheckTrustedHopBehindEnvoy(t *testing.T) {
	e := newEnv(t, true, 1)
	tok := e.fx.Secret(checktest.TokenIP)
	tests := []struct {
		name string
		xff  string
		want int32
	}{
		{"caller in allow list", "203.0.113.5, 10.0.0.9", int32(codes.OK)},
		{"caller outside allow list", "198.51.100.7, 10.0.0.9", int32(codes.PermissionDenied)},
		{"spoofed entry left of the load balancer's", "203.0.113.5, 198.51.100.7, 10.0.0.9", int32(codes.PermissionDenied)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := e.client.Check(context.Background(), envoyRequest("GET", "/sales/orders", "10.0.0.9",
				ext(checktest.EndpointListOrders), map[string]string{"api-token": tok, "x-forwarded-for": tt.xff}))
			if err != nil {
				t.Fatal(err)
			}
			if got := resp.GetStatus().GetCode(); got != tt.want {
				t.Errorf("status %v, want %v", codes.Code(got), codes.Code(tt.want))
			}
		})
	}
}
