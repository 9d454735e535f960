package xds

import (
	"fmt"
	"net"
	"strconv"
	"testing"
	"time"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpoint "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	extauthz "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_authz/v3"
	router "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	hcm "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	matcher "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/envoyproxy/go-control-plane/pkg/wellknown"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	authzv1 "gatehouse/proto/gatehouse/authz/v1"
)

// The fixture builds what compile emits for a set of endpoints, in the same shapes: one route
// table "gatehouse" with a route per active endpoint (":method" header plus exact path, per-route
// ext_authz context), the EDS cluster "gatehouse-runtime" and its endpoints, the public listener
// and one authz Endpoint per endpoint.

type fixtureEndpoint struct {
	id, method, path, recipe string
	active                   bool
}

type fixture struct {
	endpoints []fixtureEndpoint
	runtime   []string // host:port of the recipe runtime
	lbPolicy  cluster.Cluster_LbPolicy
}

func newFixture(n int, runtime ...string) *fixture {
	f := &fixture{runtime: runtime}
	for i := range n {
		f.endpoints = append(f.endpoints, fixtureEndpoint{
			id: fmt.Sprintf("ep-%05d", i), method: "POST", path: fmt.Sprintf("/echo/Call%d", i),
			recipe: "recipe-" + strconv.Itoa(i), active: true,
		})
	}
	return f
}

func mustAny(t testing.TB, m proto.Message) *anypb.Any {
	t.Helper()
	a, err := anypb.New(m)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func adsSource() *core.ConfigSource {
	return &core.ConfigSource{
		ResourceApiVersion:    core.ApiVersion_V3,
		ConfigSourceSpecifier: &core.ConfigSource_Ads{Ads: &core.AggregatedConfigSource{}},
	}
}

func (f *fixture) resources(t testing.TB) Resources {
	t.Helper()
	res := Resources{}
	vh := &route.VirtualHost{Name: "gatehouse", Domains: []string{"*"}}
	for _, e := range f.endpoints {
		res[TypeAuthzEndpoint] = append(res[TypeAuthzEndpoint], &authzv1.Endpoint{
			Name: e.id, CollectionId: "col-1", CollectionPath: "echo", Method: e.method,
			PathTemplate: e.path, RecipeId: e.recipe, Active: e.active, Timeout: durationpb.New(30 * time.Second),
		})
		if !e.active {
			continue
		}
		perRoute := mustAny(t, &route.FilterConfig{IsOptional: true, Config: mustAny(t, &extauthz.ExtAuthzPerRoute{
			Override: &extauthz.ExtAuthzPerRoute_CheckSettings{CheckSettings: &extauthz.CheckSettings{
				ContextExtensions: map[string]string{"endpoint_id": e.id},
			}},
		})})
		vh.Routes = append(vh.Routes, &route.Route{
			Name: e.id,
			Match: &route.RouteMatch{
				PathSpecifier: &route.RouteMatch_Path{Path: e.path},
				Headers: []*route.HeaderMatcher{{
					Name: ":method",
					HeaderMatchSpecifier: &route.HeaderMatcher_StringMatch{StringMatch: &matcher.StringMatcher{
						MatchPattern: &matcher.StringMatcher_Exact{Exact: e.method},
					}},
				}},
			},
			Action: &route.Route_Route{Route: &route.RouteAction{
				ClusterSpecifier: &route.RouteAction_Cluster{Cluster: "gatehouse-runtime"},
				Timeout:          durationpb.New(30 * time.Second),
			}},
			TypedPerFilterConfig: map[string]*anypb.Any{wellknown.HTTPExternalAuthorization: perRoute},
		})
	}
	res[resource.RouteType] = []proto.Message{&route.RouteConfiguration{Name: RouteConfig, VirtualHosts: []*route.VirtualHost{vh}}}
	res[resource.ClusterType] = []proto.Message{&cluster.Cluster{
		Name:                 "gatehouse-runtime",
		ClusterDiscoveryType: &cluster.Cluster_Type{Type: cluster.Cluster_EDS},
		EdsClusterConfig:     &cluster.Cluster_EdsClusterConfig{EdsConfig: adsSource()},
		ConnectTimeout:       durationpb.New(5 * time.Second),
		LbPolicy:             f.lbPolicy,
	}}
	cla := &endpoint.ClusterLoadAssignment{ClusterName: "gatehouse-runtime"}
	var lbs []*endpoint.LbEndpoint
	for _, hp := range f.runtime {
		host, port, err := net.SplitHostPort(hp)
		if err != nil {
			t.Fatal(err)
		}
		p, _ := strconv.Atoi(port)
		lbs = append(lbs, &endpoint.LbEndpoint{HostIdentifier: &endpoint.LbEndpoint_Endpoint{Endpoint: &endpoint.Endpoint{
			Address: &core.Address{Address: &core.Address_SocketAddress{SocketAddress: &core.SocketAddress{
				Address: host, PortSpecifier: &core.SocketAddress_PortValue{PortValue: uint32(p)},
			}}},
		}}})
	}
	// grpc-go drops localities without a weight.
	cla.Endpoints = []*endpoint.LocalityLbEndpoints{{
		Locality: &core.Locality{}, LoadBalancingWeight: wrapperspb.UInt32(1), LbEndpoints: lbs,
	}}
	res[resource.EndpointType] = []proto.Message{cla}

	manager := &hcm.HttpConnectionManager{
		StatPrefix:     "gatehouse-public",
		RouteSpecifier: &hcm.HttpConnectionManager_Rds{Rds: &hcm.Rds{RouteConfigName: RouteConfig, ConfigSource: adsSource()}},
		HttpFilters: []*hcm.HttpFilter{{
			Name:       wellknown.Router,
			ConfigType: &hcm.HttpFilter_TypedConfig{TypedConfig: mustAny(t, &router.Router{})},
		}},
	}
	res[resource.ListenerType] = []proto.Message{&listener.Listener{
		Name: "gatehouse-public",
		Address: &core.Address{Address: &core.Address_SocketAddress{SocketAddress: &core.SocketAddress{
			Address: "0.0.0.0", PortSpecifier: &core.SocketAddress_PortValue{PortValue: 10000},
		}}},
		FilterChains: []*listener.FilterChain{{Filters: []*listener.Filter{{
			Name:       wellknown.HTTPConnectionManager,
			ConfigType: &listener.Filter_TypedConfig{TypedConfig: mustAny(t, manager)},
		}}}},
	}}
	res[TypeAuthzProfile] = []proto.Message{&authzv1.Profile{Name: "prof-1", ClientId: "cli-1", ClientActive: true, Active: true, CollectionIds: []string{"col-1"}}}
	res[TypeAuthzPolicy] = []proto.Message{&authzv1.Policy{Name: "pol-1"}}
	return res
}
