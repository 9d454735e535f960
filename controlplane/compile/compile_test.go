package compile

import (
	"bytes"
	"slices"
	"strings"
	"testing"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	cachev3 "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"

	"gatehouse/controlplane/store"
	adminv1 "gatehouse/proto/gatehouse/admin/v1"
	authzv1 "gatehouse/proto/gatehouse/authz/v1"
)

// settingsCases are the deployments the tests compile for.
var settingsCases = []struct {
	name string
	s    Settings
}{
	{"default", Settings{}},
	{"dns", Settings{
		RuntimeAddresses:    []string{"runtime:8081", "10.0.0.7:8081"},
		RuntimePathPrefix:   "/api",
		AuthzAddress:        "authz:9191",
		ControlPlaneAddress: "controlplane:18000",
		ListenerAddress:     "::",
		ListenerPort:        8443,
	}},
}

// validateAll runs the PGV rules of m and of every message packed in an Any inside it, so that
// the filter configs in typed_config fields are checked too.
func validateAll(t *testing.T, where string, m proto.Message) {
	t.Helper()
	if v, ok := m.(interface{ ValidateAll() error }); ok {
		if err := v.ValidateAll(); err != nil {
			t.Errorf("%s: %T.ValidateAll: %v", where, m, err)
		}
	} else {
		t.Errorf("%s: %T has no ValidateAll", where, m)
	}
	var walk func(protoreflect.Message)
	walk = func(pm protoreflect.Message) {
		if a, ok := pm.Interface().(*anypb.Any); ok {
			inner, err := a.UnmarshalNew()
			if err != nil {
				t.Errorf("%s: unpack %s: %v", where, a.GetTypeUrl(), err)
				return
			}
			validateAll(t, where+" > "+a.GetTypeUrl(), inner)
			return
		}
		pm.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
			switch {
			case fd.IsList() && fd.Message() != nil:
				for i := range v.List().Len() {
					walk(v.List().Get(i).Message())
				}
			case fd.IsMap() && fd.MapValue().Message() != nil:
				v.Map().Range(func(_ protoreflect.MapKey, mv protoreflect.Value) bool {
					walk(mv.Message())
					return true
				})
			case !fd.IsList() && !fd.IsMap() && fd.Message() != nil:
				walk(v.Message())
			}
			return true
		})
	}
	walk(m.ProtoReflect())
}

func TestEnvoyResourcesValidate(t *testing.T) {
	for _, tc := range settingsCases {
		t.Run(tc.name, func(t *testing.T) {
			out := mustCompile(t, fixture(), tc.s)
			for typ, rs := range out.Envoy {
				for _, r := range rs {
					validateAll(t, typ+"/"+ResourceName(r), r)
				}
			}
			for typ, rs := range out.Authz {
				for _, r := range rs {
					validateAll(t, typ+"/"+ResourceName(r), r)
				}
			}
			// go-control-plane accepts the output as one consistent snapshot: every cluster
			// load assignment and route configuration that is referenced exists. It does not
			// look at clusters, so check those here: each referenced one is emitted or
			// defined by the default Envoy bootstrap.
			snap, err := cachev3.NewSnapshot(out.Version, out.Envoy)
			if err != nil {
				t.Fatalf("NewSnapshot: %v", err)
			}
			if err := snap.Consistent(); err != nil {
				t.Errorf("Consistent: %v", err)
			}
			static := defaultBootstrapClusters(t)
			for _, name := range fromBootstrap(t, out) {
				if static[name] == nil {
					t.Errorf("cluster %q is referenced but neither emitted nor in the bootstrap", name)
				}
			}
		})
	}
}

// marshalAll is every resource's deterministic wire form by "type/name".
func marshalAll(t *testing.T, out *Output) map[string][]byte {
	t.Helper()
	m := map[string][]byte{}
	for k, r := range allResources(out) {
		b, err := proto.MarshalOptions{Deterministic: true}.Marshal(r)
		if err != nil {
			t.Fatalf("marshal %s: %v", k, err)
		}
		m[k] = b
	}
	return m
}

func TestCompileIsDeterministic(t *testing.T) {
	want := marshalAll(t, mustCompile(t, fixture(), Settings{}))
	for name, snap := range map[string]*store.Snapshot{
		"again":      fixture(),
		"shuffled-1": shuffled(fixture(), 1),
		"shuffled-2": shuffled(fixture(), 2),
		"shuffled-3": shuffled(fixture(), 3),
	} {
		t.Run(name, func(t *testing.T) {
			got := marshalAll(t, mustCompile(t, snap, Settings{}))
			if diff := cmp.Diff(want, got, cmp.Comparer(bytes.Equal)); diff != "" {
				t.Errorf("output differs (-first +this):\n%s", diff)
			}
		})
	}
}

func TestLargeCompileIsDeterministic(t *testing.T) {
	snap := largeSnapshot(2000)
	want := marshalAll(t, mustCompile(t, snap, Settings{}))
	got := marshalAll(t, mustCompile(t, shuffled(snap, 7), Settings{}))
	if diff := cmp.Diff(want, got, cmp.Comparer(bytes.Equal)); diff != "" {
		t.Errorf("shuffled input changes output:\n%s", diff)
	}
}

// TestOneChangeIsOneResource checks that one changed store object changes one authz resource
// and, for an endpoint, one route. The routes all live in the one RouteConfiguration, so that
// resource changes as a whole (RDS has no smaller unit); every other resource stays byte-equal.
func TestOneChangeIsOneResource(t *testing.T) {
	routeCfg := resource.RouteType + "/" + RouteConfigName
	tests := []struct {
		name        string
		change      func(*store.Snapshot)
		wantChanged []string
		wantRoutes  []string
	}{
		{
			name: "endpoint timeout",
			change: func(s *store.Snapshot) {
				s.Endpoints[4] = proto.Clone(s.Endpoints[4]).(*adminv1.Endpoint)
				s.Endpoints[4].Timeout = durationpb.New(5e9)
			},
			wantChanged: []string{AuthzEndpointType + "/ep-get-invoice", routeCfg},
			wantRoutes:  []string{"ep-get-invoice"},
		},
		{
			name: "endpoint deactivated",
			change: func(s *store.Snapshot) {
				s.Endpoints[6] = proto.Clone(s.Endpoints[6]).(*adminv1.Endpoint)
				s.Endpoints[6].Active = proto.Bool(false)
			},
			wantChanged: []string{AuthzEndpointType + "/ep-list-invoices", routeCfg},
			wantRoutes:  []string{"ep-list-invoices"},
		},
		{
			name: "token revoked",
			change: func(s *store.Snapshot) {
				s.Tokens[0] = proto.Clone(s.Tokens[0]).(*adminv1.ApiToken)
				s.Tokens[0].RevokeTime = s.Tokens[3].GetRevokeTime()
			},
			wantChanged: []string{AuthzProfileType + "/pr-acme-tokens"},
		},
		{
			name: "client disabled changes its profiles only",
			change: func(s *store.Snapshot) {
				s.Clients[0] = proto.Clone(s.Clients[0]).(*adminv1.Client)
				s.Clients[0].Active = proto.Bool(false)
			},
			wantChanged: []string{AuthzProfileType + "/pr-acme-jwt", AuthzProfileType + "/pr-acme-tokens"},
		},
		{
			name: "policy quota",
			change: func(s *store.Snapshot) {
				s.Policies[1] = proto.Clone(s.Policies[1]).(*adminv1.AccessPolicy)
				s.Policies[1].Quota = &adminv1.Quota{Requests: 10, Per: "day"}
			},
			wantChanged: []string{AuthzPolicyType + "/po-silver"},
		},
	}
	before := mustCompile(t, fixture(), Settings{})
	a := marshalAll(t, before)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			snap := fixture()
			snap.Revision++
			tc.change(snap)
			after := mustCompile(t, snap, Settings{})
			b := marshalAll(t, after)
			if len(a) != len(b) {
				t.Errorf("resource count %d -> %d", len(a), len(b))
			}
			var changed []string
			for k := range a {
				if !bytes.Equal(a[k], b[k]) {
					changed = append(changed, k)
				}
			}
			slices.Sort(changed)
			slices.Sort(tc.wantChanged)
			if diff := cmp.Diff(tc.wantChanged, changed); diff != "" {
				t.Errorf("changed resources (-want +got):\n%s", diff)
			}
			rb, ra := routesOf(t, before), routesOf(t, after)
			if len(rb) != len(ra) {
				t.Fatalf("route count %d -> %d", len(rb), len(ra))
			}
			var changedRoutes []string
			for i := range rb {
				if !proto.Equal(rb[i], ra[i]) {
					changedRoutes = append(changedRoutes, ra[i].GetName())
				}
			}
			if diff := cmp.Diff(tc.wantRoutes, changedRoutes); diff != "" {
				t.Errorf("changed routes (-want +got):\n%s", diff)
			}
		})
	}
}

func TestClustersFollowSettings(t *testing.T) {
	tests := []struct {
		name         string
		s            Settings
		wantClusters map[string]clusterv3.Cluster_DiscoveryType
		wantLoads    []string
	}{
		{
			name: "defaults use EDS for the runtime and the bootstrap's authz and control plane clusters",
			s:    Settings{},
			wantClusters: map[string]clusterv3.Cluster_DiscoveryType{
				RuntimeCluster: clusterv3.Cluster_EDS,
			},
			wantLoads: []string{RuntimeCluster},
		},
		{
			name: "an authz address adds its cluster",
			s:    Settings{AuthzAddress: "127.0.0.1:9191"},
			wantClusters: map[string]clusterv3.Cluster_DiscoveryType{
				AuthzCluster: clusterv3.Cluster_STATIC, RuntimeCluster: clusterv3.Cluster_EDS,
			},
			wantLoads: []string{RuntimeCluster},
		},
		{
			name: "host names resolve by DNS and both addresses add their clusters",
			s: Settings{RuntimeAddresses: []string{"runtime:8081"}, AuthzAddress: "localhost:9191",
				ControlPlaneAddress: "127.0.0.1:18000"},
			wantClusters: map[string]clusterv3.Cluster_DiscoveryType{
				AuthzCluster: clusterv3.Cluster_STRICT_DNS, ControlPlaneCluster: clusterv3.Cluster_STATIC,
				RuntimeCluster: clusterv3.Cluster_STRICT_DNS,
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out := mustCompile(t, fixture(), tc.s)
			got := map[string]clusterv3.Cluster_DiscoveryType{}
			var names []string
			for _, r := range out.Envoy[resource.ClusterType] {
				c := r.(*clusterv3.Cluster)
				got[c.GetName()] = c.GetType()
				names = append(names, c.GetName())
				h2 := c.GetTypedExtensionProtocolOptions()[httpProtocolOptionsKey] != nil
				if wantH2 := c.GetName() != RuntimeCluster; h2 != wantH2 {
					t.Errorf("cluster %s: HTTP/2 options %v, want %v", c.GetName(), h2, wantH2)
				}
			}
			if diff := cmp.Diff(tc.wantClusters, got); diff != "" {
				t.Errorf("clusters (-want +got):\n%s", diff)
			}
			if !slices.IsSorted(names) {
				t.Errorf("clusters not sorted: %v", names)
			}
			var loads []string
			for _, r := range out.Envoy[resource.EndpointType] {
				loads = append(loads, ResourceName(r))
			}
			if diff := cmp.Diff(tc.wantLoads, loads); diff != "" {
				t.Errorf("load assignments (-want +got):\n%s", diff)
			}
		})
	}
}

func TestCompileRefusesBrokenInput(t *testing.T) {
	tests := []struct {
		name    string
		mutate  func(*store.Snapshot, *Settings)
		wantErr string
	}{
		{"endpoint without collection", func(s *store.Snapshot, _ *Settings) { s.Collections = s.Collections[1:] }, `unknown collection "col-hr"`},
		{"profile without client", func(s *store.Snapshot, _ *Settings) { s.Clients = s.Clients[1:] }, `unknown client "cl-acme"`},
		{"profile without policy", func(s *store.Snapshot, _ *Settings) { s.Policies = s.Policies[1:] }, `unknown access policy "po-gold"`},
		{"token without profile", func(s *store.Snapshot, _ *Settings) { s.Profiles = s.Profiles[:1] }, `unknown access profile "pr-acme-tokens"`},
		{"bad rate period", func(s *store.Snapshot, _ *Settings) {
			s.Policies[0] = &adminv1.AccessPolicy{Id: "po-gold", RateLimit: &adminv1.RateLimit{Requests: 1, Per: "fortnight"}}
		}, `rate limit period "fortnight"`},
		{"runtime address without port", func(_ *store.Snapshot, s *Settings) { s.RuntimeAddresses = []string{"runtime"} }, "runtime address"},
		{"authz port out of range", func(_ *store.Snapshot, s *Settings) { s.AuthzAddress = "127.0.0.1:70000" }, "authz address"},
		{"listener host name", func(_ *store.Snapshot, s *Settings) { s.ListenerAddress = "localhost" }, "not an IP"},
		{"path prefix with trailing slash", func(_ *store.Snapshot, s *Settings) { s.RuntimePathPrefix = "/api/" }, "runtime path prefix"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			snap, s := fixture(), Settings{}
			tc.mutate(snap, &s)
			_, err := Compile(snap, s)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("Compile error = %v, want one containing %q", err, tc.wantErr)
			}
		})
	}
}

func TestAuthzProfiles(t *testing.T) {
	out := mustCompile(t, fixture(), Settings{})
	got := map[string]*authzv1.Profile{}
	for _, r := range out.Authz[AuthzProfileType] {
		got[ResourceName(r)] = r.(*authzv1.Profile)
	}
	tests := []struct {
		name string
		id   string
	}{
		{"api token profile keeps unrevoked tokens with hash and expiry", "pr-acme-tokens"},
		{"jwt defaults the claim to sub and the value to the profile id", "pr-acme-jwt"},
		{"disabled client and profile are carried, not dropped", "pr-globex-keys"},
	}
	cfg := out.AuthzConfig()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, ok := got[tc.id]
			if !ok {
				t.Fatalf("profile %s missing", tc.id)
			}
			switch tc.id {
			case "pr-acme-tokens":
				var ids []string
				for _, tk := range p.GetApiToken().GetTokens() {
					ids = append(ids, tk.GetId())
					if len(tk.GetSecretSha256()) != 32 {
						t.Errorf("token %s hash length %d", tk.GetId(), len(tk.GetSecretSha256()))
					}
				}
				if diff := cmp.Diff([]string{"tk-1", "tk-2", "tk-3"}, ids); diff != "" {
					t.Errorf("tokens (-want +got):\n%s", diff)
				}
				if p.GetApiToken().GetTokens()[1].GetExpireTime() == nil {
					t.Errorf("rotated token lost its expiry")
				}
				if !p.GetClientActive() || !p.GetActive() {
					t.Errorf("active flags = %v/%v, want true/true", p.GetClientActive(), p.GetActive())
				}
			case "pr-acme-jwt":
				if p.GetJwt().GetClaim() != "sub" || p.GetJwt().GetClaimValue() != "pr-acme-jwt" {
					t.Errorf("claim = %q=%q", p.GetJwt().GetClaim(), p.GetJwt().GetClaimValue())
				}
				if p.GetJwt().GetHmacSecret() == "" {
					t.Errorf("hmac secret missing")
				}
			case "pr-globex-keys":
				if p.GetClientActive() || p.GetActive() {
					t.Errorf("active flags = %v/%v, want false/false", p.GetClientActive(), p.GetActive())
				}
			}
			var inCfg *authzv1.Profile
			for _, cp := range cfg.GetProfiles() {
				if cp.GetName() == tc.id {
					inCfg = cp
				}
			}
			if diff := cmp.Diff(p, inCfg, protocmp.Transform()); diff != "" {
				t.Errorf("AuthzConfig profile differs (-resource +config):\n%s", diff)
			}
		})
	}
}
