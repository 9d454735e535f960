package compile

import (
	"slices"
	"testing"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/anypb"

	"gatehouse/controlplane/bootstrap"
)

// referencedClusters is every cluster name the Envoy resources of out use: gRPC services on an
// Envoy cluster (ext_authz, the access log, config sources) and route targets, looked up inside
// typed configs too.
func referencedClusters(t *testing.T, out *Output) []string {
	t.Helper()
	seen := map[string]bool{}
	var walk func(protoreflect.Message)
	walk = func(pm protoreflect.Message) {
		switch m := pm.Interface().(type) {
		case *anypb.Any:
			inner, err := m.UnmarshalNew()
			if err != nil {
				t.Fatalf("unpack %s: %v", m.GetTypeUrl(), err)
			}
			walk(inner.ProtoReflect())
			return
		case *corev3.GrpcService_EnvoyGrpc:
			seen[m.GetClusterName()] = true
		case *routev3.RouteAction:
			if c := m.GetCluster(); c != "" {
				seen[c] = true
			}
			for _, w := range m.GetWeightedClusters().GetClusters() {
				seen[w.GetName()] = true
			}
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
	for _, typ := range []resource.Type{resource.ListenerType, resource.RouteType, resource.ClusterType} {
		for _, r := range out.Envoy[typ] {
			walk(proto.Message(r).ProtoReflect())
		}
	}
	names := make([]string, 0, len(seen))
	for n := range seen {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// emittedClusters is the names of the clusters out serves over CDS.
func emittedClusters(out *Output) []string {
	var names []string
	for _, r := range out.Envoy[resource.ClusterType] {
		names = append(names, ResourceName(r))
	}
	return names
}

// fromBootstrap is the clusters out references but does not emit: the Envoy bootstrap must
// define them.
func fromBootstrap(t *testing.T, out *Output) []string {
	t.Helper()
	emitted := emittedClusters(out)
	var missing []string
	for _, c := range referencedClusters(t, out) {
		if !slices.Contains(emitted, c) {
			missing = append(missing, c)
		}
	}
	return missing
}

// defaultBootstrapClusters is the static clusters of the bootstrap users run Envoy with.
func defaultBootstrapClusters(t *testing.T) map[string]*clusterv3.Cluster {
	t.Helper()
	y, err := bootstrap.Render(bootstrap.Defaults())
	if err != nil {
		t.Fatalf("render bootstrap: %v", err)
	}
	b, err := bootstrap.Parse(y)
	if err != nil {
		t.Fatalf("parse bootstrap: %v", err)
	}
	out := map[string]*clusterv3.Cluster{}
	for _, c := range b.GetStaticResources().GetClusters() {
		out[c.GetName()] = c
	}
	return out
}

// TestBootstrapOwnedClusters checks which clusters compile leaves to the Envoy bootstrap for
// each deployment: by default the control plane and authz clusters, none once their addresses
// are set.
func TestBootstrapOwnedClusters(t *testing.T) {
	tests := []struct {
		name string
		s    Settings
		want []string
	}{
		{"defaults rely on the bootstrap for both", Settings{}, []string{AuthzCluster, ControlPlaneCluster}},
		{"authz address emits the authz cluster", Settings{AuthzAddress: "authz:9191"}, []string{ControlPlaneCluster}},
		{"control plane address emits its cluster", Settings{ControlPlaneAddress: "10.0.0.1:18000"}, []string{AuthzCluster}},
		{"both addresses need nothing from the bootstrap",
			Settings{AuthzAddress: "127.0.0.1:9191", ControlPlaneAddress: "controlplane:18000"}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := fromBootstrap(t, mustCompile(t, fixture(), tc.s))
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("clusters left to the bootstrap (-want +got):\n%s", diff)
			}
		})
	}
}

// TestDefaultBootstrapFitsDefaultOutput checks the default Envoy bootstrap against the default
// compile output: it defines every cluster the listener references that compile does not emit,
// and no cluster that compile emits too (Envoy refuses a CDS cluster named like a static one).
func TestDefaultBootstrapFitsDefaultOutput(t *testing.T) {
	static := defaultBootstrapClusters(t)
	out := mustCompile(t, fixture(), Settings{})
	for _, name := range fromBootstrap(t, out) {
		c, ok := static[name]
		if !ok {
			t.Errorf("cluster %q is referenced, not emitted and not in the bootstrap", name)
			continue
		}
		if c.GetTypedExtensionProtocolOptions()[httpProtocolOptionsKey] == nil {
			t.Errorf("bootstrap cluster %q does not speak HTTP/2, which gRPC needs", name)
		}
	}
	for _, name := range emittedClusters(out) {
		if _, ok := static[name]; ok {
			t.Errorf("cluster %q is both emitted over CDS and static in the bootstrap", name)
		}
	}
}
