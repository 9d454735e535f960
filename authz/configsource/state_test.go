package configsource

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/google/go-cmp/cmp"
	bolt "go.etcd.io/bbolt"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/anypb"

	authzv1 "gatehouse/proto/gatehouse/authz/v1"
)

func mustAny(t testing.TB, m proto.Message) *anypb.Any {
	t.Helper()
	a, err := anypb.New(m)
	if err != nil {
		t.Fatalf("anypb.New: %v", err)
	}
	return a
}

func TestDecodeRefusesMalformedResponsesWhole(t *testing.T) {
	good := &discoveryv3.Resource{Name: "p1", Version: "v1", Resource: mustAny(t, profile("p1", "acme"))}
	tests := []struct {
		name    string
		resp    *discoveryv3.DeltaDiscoveryResponse
		wantErr string // empty: decodes
	}{
		{
			name: "profiles and a removal",
			resp: &discoveryv3.DeltaDiscoveryResponse{TypeUrl: ProfileTypeURL, Resources: []*discoveryv3.Resource{good},
				RemovedResources: []string{"p9"}},
		},
		{
			name:    "unknown type",
			resp:    &discoveryv3.DeltaDiscoveryResponse{TypeUrl: "type.googleapis.com/envoy.config.cluster.v3.Cluster"},
			wantErr: "unexpected resource type",
		},
		{
			name: "body of another type",
			resp: &discoveryv3.DeltaDiscoveryResponse{TypeUrl: ProfileTypeURL, Resources: []*discoveryv3.Resource{
				good, {Name: "e1", Resource: mustAny(t, endpoint("e1", "/x"))},
			}},
			wantErr: `body has type "type.googleapis.com/gatehouse.authz.v1.Endpoint"`,
		},
		{
			name: "no body",
			resp: &discoveryv3.DeltaDiscoveryResponse{TypeUrl: ProfileTypeURL, Resources: []*discoveryv3.Resource{
				good, {Name: "p2"},
			}},
			wantErr: "resource body missing",
		},
		{
			name: "name differs from the body's",
			resp: &discoveryv3.DeltaDiscoveryResponse{TypeUrl: ProfileTypeURL, Resources: []*discoveryv3.Resource{
				{Name: "p2", Resource: mustAny(t, profile("p1", "acme"))},
			}},
			wantErr: "does not match",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := decode(tt.resp)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("decode: %v", err)
				}
				if len(d.updates) != 1 || d.updates[0].name != "p1" || d.updates[0].item.version != "v1" {
					t.Errorf("updates = %+v, want p1@v1", d.updates)
				}
				if diff := cmp.Diff([]string{"p9"}, d.removed); diff != "" {
					t.Errorf("removed (-want +got):\n%s", diff)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("decode error = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestStateRollbackRestoresLastGood(t *testing.T) {
	s := newState()
	apply := func(typeURL, system string, res []*discoveryv3.Resource, removed ...string) {
		t.Helper()
		d, err := decode(&discoveryv3.DeltaDiscoveryResponse{TypeUrl: typeURL, SystemVersionInfo: system,
			Resources: res, RemovedResources: removed})
		if err != nil {
			t.Fatalf("decode: %v", err)
		}
		s.apply(d)
	}
	res := func(m named, version string) *discoveryv3.Resource {
		return &discoveryv3.Resource{Name: m.GetName(), Version: version, Resource: mustAny(t, m)}
	}
	apply(EndpointTypeURL, "1", []*discoveryv3.Resource{res(endpoint("e1", "/a"), "a1"), res(endpoint("e2", "/b"), "b1")})
	apply(ProfileTypeURL, "1", []*discoveryv3.Resource{res(profile("p1", "acme"), "p1")})
	apply(PolicyTypeURL, "1", nil)
	s.commit()
	good := s.assemble()

	apply(EndpointTypeURL, "2", []*discoveryv3.Resource{res(endpoint("e1", "/changed"), "a2"), res(endpoint("e3", "/c"), "c1")}, "e2")
	apply(ProfileTypeURL, "2", nil, "p1")
	if diff := cmp.Diff(map[resourceKey]string{
		{kindEndpoint, "e1"}: "a2", {kindEndpoint, "e2"}: removedVersion, {kindEndpoint, "e3"}: "c1",
		{kindProfile, "p1"}: removedVersion,
	}, s.pending(), cmp.AllowUnexported(resourceKey{})); diff != "" {
		t.Errorf("pending (-want +got):\n%s", diff)
	}
	if got := s.assemble().GetVersion(); got != "2" {
		t.Errorf("version with pending changes = %q, want the highest revision 2", got)
	}
	s.rollback()
	if diff := cmp.Diff(good, s.assemble(), protocmp.Transform()); diff != "" {
		t.Errorf("after rollback (-want +got):\n%s", diff)
	}
	if got := s.assemble().GetVersion(); got != "1" {
		t.Errorf("version after rollback = %q, want 1", got)
	}
	if s.dirty || len(s.pending()) != 0 {
		t.Errorf("after rollback: dirty %v, pending %v; want clean", s.dirty, s.pending())
	}
}

func TestBackoffIsJitteredAndCapped(t *testing.T) {
	base, limit := 100*time.Millisecond, 2*time.Second
	tests := []struct {
		name    string
		attempt int
		rnd     float64
		want    time.Duration
	}{
		{name: "first attempt, least jitter", attempt: 0, rnd: 0, want: 50 * time.Millisecond},
		{name: "first attempt, most jitter", attempt: 0, rnd: 1, want: 100 * time.Millisecond},
		{name: "doubles", attempt: 3, rnd: 1, want: 800 * time.Millisecond},
		{name: "capped", attempt: 10, rnd: 1, want: limit},
		{name: "capped, least jitter", attempt: 10, rnd: 0, want: limit / 2},
		{name: "no overflow far out", attempt: 200, rnd: 0.5, want: limit/2 + limit/4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := backoff(tt.attempt, base, limit, func() float64 { return tt.rnd }); got != tt.want {
				t.Errorf("backoff(%d) = %v, want %v", tt.attempt, got, tt.want)
			}
		})
	}
}

func cacheRecords(t testing.TB, version string, msgs ...named) []cacheRecord {
	t.Helper()
	var out []cacheRecord
	for _, m := range msgs {
		raw, err := proto.Marshal(m)
		if err != nil {
			t.Fatalf("marshal: %v", err)
		}
		k := kindEndpoint
		switch m.(type) {
		case *authzv1.Profile:
			k = kindProfile
		case *authzv1.Policy:
			k = kindPolicy
		}
		out = append(out, cacheRecord{kind: k, name: m.GetName(), version: version, raw: raw})
	}
	return out
}

// TestCacheIsNeverHalfWritten writes updates while readers load the cache:
// every load must see the config version and resources of one whole write.
func TestCacheIsNeverHalfWritten(t *testing.T) {
	db := openDB(t, newDBPath(t))
	t.Cleanup(func() { _ = db.Close() })
	// Write i holds endpoints e0..e(i%7), every one at version i: full
	// rewrites and deltas (puts of all, deletes of the rest) alternate.
	write := func(i int) cacheWrite {
		v := fmt.Sprint(i)
		w := cacheWrite{full: i%2 == 0, version: v}
		for j := range 7 {
			name := fmt.Sprintf("e%d", j)
			if j <= i%7 {
				w.put = append(w.put, cacheRecords(t, v, endpoint(name, "/"+name))...)
			} else if !w.full {
				w.del = append(w.del, resourceKey{kindEndpoint, name})
			}
		}
		return w
	}
	if err := saveCache(db, write(0)); err != nil {
		t.Fatalf("save: %v", err)
	}
	const saves = 200
	stop := make(chan struct{})
	errs := make(chan error, 2)
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				c, ok, err := loadCache(db)
				if err != nil || !ok {
					errs <- fmt.Errorf("load: ok %v, %w", ok, err)
					return
				}
				n, err := strconv.Atoi(c.version)
				if err != nil {
					errs <- fmt.Errorf("version %q: %w", c.version, err)
					return
				}
				if len(c.records) != n%7+1 {
					errs <- fmt.Errorf("version %s has %d endpoints, want %d", c.version, len(c.records), n%7+1)
					return
				}
				for _, r := range c.records {
					if r.version != c.version {
						errs <- fmt.Errorf("version %s holds %s at version %s", c.version, r.name, r.version)
						return
					}
				}
			}
		})
	}
	for i := 1; i <= saves; i++ {
		if err := saveCache(db, write(i)); err != nil {
			t.Fatalf("save %d: %v", i, err)
		}
	}
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	c, _, err := loadCache(db)
	if err != nil || c.version != fmt.Sprint(saves) {
		t.Errorf("last save: version %q, err %v; want %d", c.version, err, saves)
	}
}

// TestCacheWriteFailureLeavesPreviousConfig shows a failed write leaves the
// previous config whole: a read-only file refuses the transaction.
func TestCacheWriteFailureLeavesPreviousConfig(t *testing.T) {
	path := newDBPath(t)
	db := openDB(t, path)
	base := baseConfig()
	w := cacheWrite{full: true, version: base.GetVersion()}
	for _, m := range base.GetEndpoints() {
		w.put = append(w.put, cacheRecords(t, "v1", m)...)
	}
	for _, m := range base.GetProfiles() {
		w.put = append(w.put, cacheRecords(t, "v1", m)...)
	}
	for _, m := range base.GetPolicies() {
		w.put = append(w.put, cacheRecords(t, "v1", m)...)
	}
	if err := saveCache(db, w); err != nil {
		t.Fatalf("save: %v", err)
	}
	if err := db.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	ro, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		t.Fatalf("open read-only: %v", err)
	}
	t.Cleanup(func() { _ = ro.Close() })
	next := cacheWrite{version: "2", put: cacheRecords(t, "v2", profile("p1", "globex")),
		del: []resourceKey{{kindEndpoint, "e1"}}}
	if err := saveCache(ro, next); !errors.Is(err, bolt.ErrDatabaseReadOnly) {
		t.Errorf("save on a read-only file: %v, want ErrDatabaseReadOnly", err)
	}
	c, ok, err := loadCache(ro)
	if err != nil || !ok {
		t.Fatalf("load: ok %v, %v", ok, err)
	}
	if diff := cmp.Diff(base, c.config(), protocmp.Transform()); diff != "" {
		t.Errorf("config after a failed save (-want +got):\n%s", diff)
	}
}

func TestNewChecksConfig(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		wantErr string
	}{
		{name: "defaults", cfg: Config{Apply: (&applier{}).apply}},
		{name: "no Apply", cfg: Config{}, wantErr: "Apply is required"},
		{name: "client cert without key", cfg: Config{Apply: (&applier{}).apply, TLS: &TLSConfig{CertFile: "c.pem"}},
			wantErr: "given together"},
		{name: "missing CA file", cfg: Config{Apply: (&applier{}).apply, TLS: &TLSConfig{CAFile: "/nonexistent/ca.pem"}},
			wantErr: "read CA file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src, err := New(tt.cfg)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("New: %v", err)
				}
				if src.cfg.Addr != "localhost:18000" || src.cfg.Cluster != "gatehouse-authz" || src.cfg.NodeID == "" {
					t.Errorf("defaults: addr %q cluster %q node %q", src.cfg.Addr, src.cfg.Cluster, src.cfg.NodeID)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("New error = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}
