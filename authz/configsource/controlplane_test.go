package configsource

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"path/filepath"
	"sync"
	"testing"
	"time"

	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	cachev3 "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	serverv3 "github.com/envoyproxy/go-control-plane/pkg/server/v3"
	"github.com/prometheus/client_golang/prometheus"
	bolt "go.etcd.io/bbolt"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	authzv1 "gatehouse/proto/gatehouse/authz/v1"
)

// This file holds the test doubles' real parts: a go-control-plane v0.14 ADS
// server with its snapshot cache, serving the three authz types on loopback.

const testNode = "authz-test"

// authzSnapshot is a go-control-plane ResourceSnapshot of the authz types;
// the library's own Snapshot only knows Envoy's types.
type authzSnapshot struct {
	version    string
	resources  map[string]map[string]types.Resource
	versionMap map[string]map[string]string
}

var _ cachev3.ResourceSnapshot = (*authzSnapshot)(nil)

func newAuthzSnapshot(t *testing.T, cfg *authzv1.Config) *authzSnapshot {
	t.Helper()
	s := &authzSnapshot{
		version:    cfg.GetVersion(),
		resources:  map[string]map[string]types.Resource{EndpointTypeURL: {}, ProfileTypeURL: {}, PolicyTypeURL: {}},
		versionMap: map[string]map[string]string{EndpointTypeURL: {}, ProfileTypeURL: {}, PolicyTypeURL: {}},
	}
	add := func(typeURL, name string, m proto.Message) {
		b, err := cachev3.MarshalResource(m)
		if err != nil {
			t.Fatalf("marshal %s: %v", name, err)
		}
		s.resources[typeURL][name] = m
		s.versionMap[typeURL][name] = cachev3.HashResource(b)
	}
	for _, m := range cfg.GetEndpoints() {
		add(EndpointTypeURL, m.GetName(), m)
	}
	for _, m := range cfg.GetProfiles() {
		add(ProfileTypeURL, m.GetName(), m)
	}
	for _, m := range cfg.GetPolicies() {
		add(PolicyTypeURL, m.GetName(), m)
	}
	return s
}

func (s *authzSnapshot) GetVersion(string) string { return s.version }

func (s *authzSnapshot) GetResourcesAndTTL(typeURL string) map[string]types.ResourceWithTTL {
	out := make(map[string]types.ResourceWithTTL, len(s.resources[typeURL]))
	for name, r := range s.resources[typeURL] {
		out[name] = types.ResourceWithTTL{Resource: r}
	}
	return out
}

func (s *authzSnapshot) GetResources(typeURL string) map[string]types.Resource {
	return s.resources[typeURL]
}

// ConstructVersionMap is a no-op: the versions are computed up front, which
// keeps concurrent calls race-free.
func (s *authzSnapshot) ConstructVersionMap() error { return nil }

func (s *authzSnapshot) GetVersionMap(typeURL string) map[string]string {
	return s.versionMap[typeURL]
}

// controlPlane is a real go-control-plane ADS server that records what the
// client sends and what it is sent.
type controlPlane struct {
	t     *testing.T
	addr  string
	cache cachev3.SnapshotCache
	srv   *grpc.Server
	opts  []grpc.ServerOption
	done  chan struct{}

	mu    sync.Mutex
	reqs  []*discoveryv3.DeltaDiscoveryRequest
	resps []*discoveryv3.DeltaDiscoveryResponse
	// onRequest, when set, runs before the server handles a request; it may
	// block to hold back a type.
	onRequest func(*discoveryv3.DeltaDiscoveryRequest)
}

func startControlPlane(t *testing.T, opts ...grpc.ServerOption) *controlPlane {
	t.Helper()
	cp := &controlPlane{t: t, cache: cachev3.NewSnapshotCache(true, cachev3.IDHash{}, nil), opts: opts}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	cp.addr = lis.Addr().String()
	cp.serve(lis)
	t.Cleanup(cp.stop)
	return cp
}

func (cp *controlPlane) serve(lis net.Listener) {
	cb := serverv3.CallbackFuncs{
		StreamDeltaRequestFunc: func(_ int64, req *discoveryv3.DeltaDiscoveryRequest) error {
			cp.mu.Lock()
			cp.reqs = append(cp.reqs, proto.Clone(req).(*discoveryv3.DeltaDiscoveryRequest))
			hook := cp.onRequest
			cp.mu.Unlock()
			if hook != nil {
				hook(req)
			}
			return nil
		},
		StreamDeltaResponseFunc: func(_ int64, _ *discoveryv3.DeltaDiscoveryRequest, resp *discoveryv3.DeltaDiscoveryResponse) {
			cp.mu.Lock()
			cp.resps = append(cp.resps, proto.Clone(resp).(*discoveryv3.DeltaDiscoveryResponse))
			cp.mu.Unlock()
		},
	}
	cp.srv = grpc.NewServer(cp.opts...)
	discoveryv3.RegisterAggregatedDiscoveryServiceServer(cp.srv, serverv3.NewServer(context.Background(), cp.cache, cb))
	cp.done = make(chan struct{})
	go func(srv *grpc.Server, done chan struct{}) {
		defer close(done)
		if err := srv.Serve(lis); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			cp.t.Errorf("serve: %v", err)
		}
	}(cp.srv, cp.done)
}

// stop ends the server and every stream, as a control plane crash would.
func (cp *controlPlane) stop() {
	if cp.srv == nil {
		return
	}
	cp.srv.Stop()
	<-cp.done
	cp.srv = nil
}

// restart serves again on the same address, with the same snapshots.
func (cp *controlPlane) restart() {
	cp.t.Helper()
	var lis net.Listener
	var err error
	for range 100 { // the port may linger for a moment after Stop
		if lis, err = net.Listen("tcp", cp.addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		cp.t.Fatalf("listen again on %s: %v", cp.addr, err)
	}
	cp.serve(lis)
}

// hold installs a hook that runs before the server handles each request.
func (cp *controlPlane) hold(hook func(*discoveryv3.DeltaDiscoveryRequest)) {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	cp.onRequest = hook
}

func (cp *controlPlane) set(cfg *authzv1.Config) {
	cp.t.Helper()
	if err := cp.cache.SetSnapshot(context.Background(), testNode, newAuthzSnapshot(cp.t, cfg)); err != nil {
		cp.t.Fatalf("set snapshot %q: %v", cfg.GetVersion(), err)
	}
}

func (cp *controlPlane) requests() []*discoveryv3.DeltaDiscoveryRequest {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	return append([]*discoveryv3.DeltaDiscoveryRequest(nil), cp.reqs...)
}

func (cp *controlPlane) responses() []*discoveryv3.DeltaDiscoveryResponse {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	return append([]*discoveryv3.DeltaDiscoveryResponse(nil), cp.resps...)
}

func (cp *controlPlane) nacks() []*discoveryv3.DeltaDiscoveryRequest {
	var out []*discoveryv3.DeltaDiscoveryRequest
	for _, r := range cp.requests() {
		if r.GetErrorDetail() != nil {
			out = append(out, r)
		}
	}
	return out
}

// applier records every config handed to Apply and refuses those reject names.
type applier struct {
	mu      sync.Mutex
	calls   []*authzv1.Config
	current *authzv1.Config
	reject  func(*authzv1.Config) error
}

func (a *applier) apply(_ context.Context, cfg *authzv1.Config) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.calls = append(a.calls, cfg)
	if a.reject != nil {
		if err := a.reject(cfg); err != nil {
			return err
		}
	}
	a.current = cfg
	return nil
}

func (a *applier) snapshot() (calls []*authzv1.Config, current *authzv1.Config) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]*authzv1.Config(nil), a.calls...), a.current
}

// eventually polls cond until it holds; the limit only bounds a failing test.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func openDB(t testing.TB, path string) *bolt.DB {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		t.Fatalf("open bbolt: %v", err)
	}
	return db
}

// client is a running Source with its recorder.
type client struct {
	src  *Source
	app  *applier
	reg  *prometheus.Registry
	stop func()
}

func startClient(t *testing.T, addr string, db *bolt.DB, app *applier) *client {
	t.Helper()
	return startClientConfig(t, Config{Addr: addr, DB: db}, app)
}

// startClientConfig runs a Source with cfg plus the test node, app, a fresh
// registry and short backoffs.
func startClientConfig(t *testing.T, cfg Config, app *applier) *client {
	t.Helper()
	reg := prometheus.NewRegistry()
	cfg.NodeID, cfg.Apply, cfg.Registerer = testNode, app.apply, reg
	cfg.BackoffBase, cfg.BackoffMax = 10*time.Millisecond, 50*time.Millisecond
	// A wide window keeps a multi-type update whole on a loaded CI machine.
	cfg.Coalesce = 100 * time.Millisecond
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	src, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- src.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return &client{src: src, app: app, reg: reg, stop: stop}
}

// metric reads one unlabelled gauge or counter from the client's registry.
func (c *client) metric(t *testing.T, name string) float64 {
	t.Helper()
	mfs, err := c.reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		m := mf.GetMetric()[0]
		if g := m.GetGauge(); g != nil {
			return g.GetValue()
		}
		return m.GetCounter().GetValue()
	}
	t.Fatalf("metric %s not found", name)
	return 0
}

// versionInfo returns the version label of the version_info gauge.
func (c *client) versionInfo(t *testing.T) []string {
	t.Helper()
	mfs, err := c.reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	var out []string
	for _, mf := range mfs {
		if mf.GetName() != "gatehouse_authz_config_version_info" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "version" && m.GetGauge().GetValue() == 1 {
					out = append(out, l.GetValue())
				}
			}
		}
	}
	return out
}

func newDBPath(t testing.TB) string { return filepath.Join(t.TempDir(), "authz.db") }

// Fixtures.

func endpoint(name, path string) *authzv1.Endpoint {
	return &authzv1.Endpoint{Name: name, CollectionId: "c1", CollectionPath: "sales", Method: "GET",
		PathTemplate: "/sales" + path, RecipeId: "r-" + name, Active: true}
}

func profile(name, client string) *authzv1.Profile {
	return &authzv1.Profile{Name: name, ClientId: client, ClientActive: true, Active: true,
		CollectionIds: []string{"c1"},
		Auth: &authzv1.Profile_ApiToken{ApiToken: &authzv1.ApiTokenAuth{Tokens: []*authzv1.Token{
			{Id: "t-" + name, SecretSha256: make([]byte, 32)},
		}}}}
}

func policy(name string, rps uint32) *authzv1.Policy {
	return &authzv1.Policy{Name: name, RateLimit: &authzv1.RateLimit{Requests: rps, Burst: 1}}
}

// baseConfig is version 1 of the test platform, already in Apply's order.
func baseConfig() *authzv1.Config {
	return &authzv1.Config{
		Version:   "1",
		Endpoints: []*authzv1.Endpoint{endpoint("e1", "/orders"), endpoint("e2", "/orders/{id}")},
		Profiles:  []*authzv1.Profile{profile("p1", "acme"), profile("p2", "globex")},
		Policies:  []*authzv1.Policy{policy("pol1", 10)},
	}
}
