package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"gatehouse/controlplane/store"
	adminv1 "gatehouse/proto/gatehouse/admin/v1"
)

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// env is a running admin API: real gRPC and real HTTP servers on 127.0.0.1:0 over a store in a
// temporary directory, with the admin token Bootstrap printed.
type env struct {
	t        testing.TB
	store    *store.Store
	srv      *Server
	reg      *prometheus.Registry
	clock    *clock
	token    string
	handler  http.Handler
	base     string
	conn     *grpc.ClientConn
	cols     adminv1.CollectionServiceClient
	eps      adminv1.EndpointServiceClient
	clis     adminv1.ClientServiceClient
	prfs     adminv1.AccessProfileServiceClient
	toks     adminv1.TokenServiceClient
	pols     adminv1.PolicyServiceClient
	auditLog adminv1.AuditServiceClient
}

func newEnv(t testing.TB) *env {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, store.Config{Path: filepath.Join(t.TempDir(), "cp.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	clk := &clock{t: time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)}
	token, err := Bootstrap(ctx, st, "", clk.now())
	if err != nil || token == "" {
		t.Fatalf("Bootstrap: %q, %v", token, err)
	}
	reg := prometheus.NewRegistry()
	srv, err := New(Config{Store: st, Registry: reg, Now: clk.now})
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, store: st, srv: srv, reg: reg, clock: clk, token: token}

	gs := grpc.NewServer(grpc.ChainUnaryInterceptor(srv.Interceptor()))
	srv.Register(gs)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = gs.Serve(l) }()
	t.Cleanup(gs.Stop)

	e.handler, err = srv.HTTPHandler(ctx, HTTPConfig{Gatherer: reg})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(e.handler)
	t.Cleanup(hs.Close)
	e.base = hs.URL

	e.conn, err = grpc.NewClient(l.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.conn.Close() })
	e.cols = adminv1.NewCollectionServiceClient(e.conn)
	e.eps = adminv1.NewEndpointServiceClient(e.conn)
	e.clis = adminv1.NewClientServiceClient(e.conn)
	e.prfs = adminv1.NewAccessProfileServiceClient(e.conn)
	e.toks = adminv1.NewTokenServiceClient(e.conn)
	e.pols = adminv1.NewPolicyServiceClient(e.conn)
	e.auditLog = adminv1.NewAuditServiceClient(e.conn)
	return e
}

// ctx returns a context that authenticates gRPC calls with the admin token.
func (e *env) ctx() context.Context {
	return metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+e.token)
}

// restResult is a REST response.
type restResult struct {
	code   int
	header http.Header
	body   []byte
}

// json decodes the body into a generic map.
func (r restResult) json(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("decode %s: %v", r.body, err)
	}
	return m
}

// rest sends a REST request with the admin token; body is JSON text or "".
func (e *env) rest(method, path, body string) restResult {
	e.t.Helper()
	return e.restAs(method, path, body, "Bearer "+e.token)
}

func (e *env) restAs(method, path, body, authorization string) restResult {
	e.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = bytes.NewBufferString(body)
	}
	req, err := http.NewRequest(method, e.base+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return restResult{code: resp.StatusCode, header: resp.Header, body: b}
}

// restViolations returns the field names of the BadRequest detail of a REST error body.
func restViolations(t testing.TB, r restResult) []string {
	t.Helper()
	var fields []string
	details, _ := r.json(t)["details"].([]any)
	for _, d := range details {
		m, _ := d.(map[string]any)
		if m["@type"] != "type.googleapis.com/google.rpc.BadRequest" {
			continue
		}
		fvs, _ := m["field_violations"].([]any)
		for _, fv := range fvs {
			fields = append(fields, fv.(map[string]any)["field"].(string))
		}
	}
	return fields
}

// violationFields returns the fields of a status error's BadRequest detail.
func violationFields(err error) []string {
	var fields []string
	for _, d := range status.Convert(err).Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			for _, fv := range br.GetFieldViolations() {
				fields = append(fields, fv.GetField())
			}
		}
	}
	return fields
}

// wantCode fails unless err has code want.
func wantCode(t testing.TB, err error, want codes.Code) {
	t.Helper()
	if got := status.Code(err); got != want {
		t.Fatalf("code = %v (%v), want %v", got, err, want)
	}
}

// must fails the test on err and returns v.
func must[T any](t testing.TB) func(v T, err error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

func diff(t testing.TB, want, got any, opts ...cmp.Option) {
	t.Helper()
	if d := cmp.Diff(want, got, opts...); d != "" {
		t.Errorf("mismatch (-want +got):\n%s", d)
	}
}

// fixtures creates a collection, a policy, a client and an API-token profile granting the
// collection.
type fixture struct {
	col *adminv1.Collection
	pol *adminv1.AccessPolicy
	cli *adminv1.Client
	prf *adminv1.AccessProfile
}

func (e *env) fixture(name string) fixture {
	e.t.Helper()
	ctx := e.ctx()
	var f fixture
	f.col = must[*adminv1.Collection](e.t)(e.cols.CreateCollection(ctx, &adminv1.CreateCollectionRequest{
		Collection: &adminv1.Collection{Name: name, Version: "v1", Path: name + "-api"},
	}))
	f.pol = must[*adminv1.AccessPolicy](e.t)(e.pols.CreatePolicy(ctx, &adminv1.CreatePolicyRequest{
		Policy: &adminv1.AccessPolicy{Name: name + "-policy", RateLimit: &adminv1.RateLimit{Requests: 10, Per: "second"}},
	}))
	f.cli = must[*adminv1.Client](e.t)(e.clis.CreateClient(ctx, &adminv1.CreateClientRequest{
		Client: &adminv1.Client{Name: name + "-client"},
	}))
	f.prf = must[*adminv1.AccessProfile](e.t)(e.prfs.CreateAccessProfile(ctx, &adminv1.CreateAccessProfileRequest{
		ClientId: f.cli.Id,
		AccessProfile: &adminv1.AccessProfile{
			Name: "tokens", CollectionIds: []string{f.col.Id}, PolicyId: f.pol.Id,
			Auth: &adminv1.AccessProfile_ApiToken{ApiToken: &adminv1.ApiTokenAuth{}},
		},
	}))
	return f
}

// cmpSegments compares template segments by their fields.
var cmpSegments = cmp.AllowUnexported(segment{})

// fixedNow is a fixed time for tests that need one.
var fixedNow = time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
