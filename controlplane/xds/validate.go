package xds

import (
	"fmt"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	router "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	hcm "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/envoyproxy/go-control-plane/pkg/wellknown"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
)

// Resource type URLs of the authz sidecar config.
const (
	TypeAuthzEndpoint = "type.googleapis.com/gatehouse.authz.v1.Endpoint"
	TypeAuthzProfile  = "type.googleapis.com/gatehouse.authz.v1.Profile"
	TypeAuthzPolicy   = "type.googleapis.com/gatehouse.authz.v1.Policy"
)

// Names the platform fixes.
const (
	// GRPCListener is the api_listener proxyless gRPC clients resolve as xds:///gatehouse-grpc.
	GRPCListener = "gatehouse-grpc"
	// RouteConfig is the route table the public listener and GRPCListener share.
	RouteConfig = "gatehouse"
)

// allValidator is what every generated Envoy and authz message offers through PGV.
type allValidator interface {
	ValidateAll() error
}

// consistent checks that listeners name existing route tables, routes name existing clusters and
// EDS clusters have endpoints. go-control-plane's Snapshot.Consistent cannot be used: it wants
// RDS names from listeners with filter chains only, and rejects an api_listener.
func consistent(res Resources) error {
	names := func(typeURL string) map[string]bool {
		out := map[string]bool{}
		for _, m := range res[typeURL] {
			out[cache.GetResourceName(m)] = true
		}
		return out
	}
	routes, clusters, loads := names(resource.RouteType), names(resource.ClusterType), names(resource.EndpointType)
	for _, m := range res[resource.ListenerType] {
		l := m.(*listener.Listener)
		for _, rds := range listenerRDS(l) {
			if !routes[rds] {
				return fmt.Errorf("listener %q: route config %q is not published", l.GetName(), rds)
			}
		}
	}
	for _, m := range res[resource.RouteType] {
		rc := m.(*route.RouteConfiguration)
		for _, vh := range rc.GetVirtualHosts() {
			for _, r := range vh.GetRoutes() {
				if c := r.GetRoute().GetCluster(); c != "" && !clusters[c] {
					return fmt.Errorf("route config %q route %q: cluster %q is not published", rc.GetName(), r.GetName(), c)
				}
			}
		}
	}
	for _, m := range res[resource.ClusterType] {
		c := m.(*cluster.Cluster)
		if c.GetType() != cluster.Cluster_EDS {
			continue
		}
		name := c.GetEdsClusterConfig().GetServiceName()
		if name == "" {
			name = c.GetName()
		}
		if !loads[name] {
			return fmt.Errorf("cluster %q: endpoints %q are not published", c.GetName(), name)
		}
	}
	return nil
}

// listenerRDS returns the route config names a listener's HTTP connection managers use.
func listenerRDS(l *listener.Listener) []string {
	var anys []*anypb.Any
	if a := l.GetApiListener().GetApiListener(); a != nil {
		anys = append(anys, a)
	}
	for _, fc := range l.GetFilterChains() {
		for _, f := range fc.GetFilters() {
			if f.GetName() == wellknown.HTTPConnectionManager || f.GetTypedConfig().MessageIs((*hcm.HttpConnectionManager)(nil)) {
				anys = append(anys, f.GetTypedConfig())
			}
		}
	}
	var out []string
	for _, a := range anys {
		var m hcm.HttpConnectionManager
		if a.UnmarshalTo(&m) != nil {
			continue
		}
		if n := m.GetRds().GetRouteConfigName(); n != "" {
			out = append(out, n)
		}
	}
	return out
}

// withGRPCListener adds the api_listener that proxyless gRPC clients resolve, when the route
// table it points at is published and compile did not add one itself.
func withGRPCListener(res Resources) (Resources, error) {
	if len(res[resource.RouteType]) == 0 {
		return res, nil
	}
	hasRoutes := false
	for _, m := range res[resource.RouteType] {
		if cache.GetResourceName(m) == RouteConfig {
			hasRoutes = true
		}
	}
	for _, m := range res[resource.ListenerType] {
		if cache.GetResourceName(m) == GRPCListener {
			return res, nil
		}
	}
	if !hasRoutes {
		return res, nil
	}
	l, err := grpcListener()
	if err != nil {
		return nil, err
	}
	out := make(Resources, len(res))
	for k, v := range res {
		out[k] = v
	}
	out[resource.ListenerType] = append(append(make([]proto.Message, 0, len(res[resource.ListenerType])+1), res[resource.ListenerType]...), l)
	return out, nil
}

// grpcListener builds the gatehouse-grpc api_listener: RDS over ADS for the shared route table
// and only the router filter, which is what grpc-go and grpc-js accept.
func grpcListener() (*listener.Listener, error) {
	routerCfg, err := anypb.New(&router.Router{})
	if err != nil {
		return nil, fmt.Errorf("router config: %w", err)
	}
	m := &hcm.HttpConnectionManager{
		StatPrefix: GRPCListener,
		RouteSpecifier: &hcm.HttpConnectionManager_Rds{Rds: &hcm.Rds{
			RouteConfigName: RouteConfig,
			ConfigSource: &core.ConfigSource{
				ResourceApiVersion:    core.ApiVersion_V3,
				ConfigSourceSpecifier: &core.ConfigSource_Ads{Ads: &core.AggregatedConfigSource{}},
			},
		}},
		HttpFilters: []*hcm.HttpFilter{{
			Name:       wellknown.Router,
			ConfigType: &hcm.HttpFilter_TypedConfig{TypedConfig: routerCfg},
		}},
	}
	a, err := anypb.New(m)
	if err != nil {
		return nil, fmt.Errorf("api listener config: %w", err)
	}
	return &listener.Listener{Name: GRPCListener, ApiListener: &listener.ApiListener{ApiListener: a}}, nil
}
