package xds

import (
	"bytes"
	"context"
	"hash/maphash"
	"testing"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/proto"
)

// TestRouteTableEncodingEqualsMarshal checks that a route table put together from its routes'
// own encodings, new and reused, is byte-equal to marshaling the whole table: clients and
// versions must not depend on which routes were cached.
func TestRouteTableEncodingEqualsMarshal(t *testing.T) {
	r := func(name string) *route.Route {
		return &route.Route{Name: name, Match: &route.RouteMatch{PathSpecifier: &route.RouteMatch_Prefix{Prefix: "/" + name}},
			Action: &route.Route_Route{Route: &route.RouteAction{ClusterSpecifier: &route.RouteAction_Cluster{Cluster: "c"}}}}
	}
	shared := r("shared")
	tests := []struct {
		name string
		rc   *route.RouteConfiguration
	}{
		{name: "no virtual hosts", rc: &route.RouteConfiguration{Name: "rc"}},
		{name: "one host", rc: &route.RouteConfiguration{Name: "rc", VirtualHosts: []*route.VirtualHost{
			{Name: "a", Domains: []string{"*"}, Routes: []*route.Route{r("x"), shared, r("y")}},
		}}},
		{name: "fields after routes", rc: &route.RouteConfiguration{
			Name: "rc", InternalOnlyHeaders: []string{"x-internal"},
			VirtualHosts: []*route.VirtualHost{
				{Name: "a", Domains: []string{"a"}, Routes: []*route.Route{shared}, RequireTls: route.VirtualHost_ALL,
					RequestHeadersToAdd: []*core.HeaderValueOption{{Header: &core.HeaderValue{Key: "k", Value: "v"}}}},
				{Name: "empty", Domains: []string{"e"}, RequireTls: route.VirtualHost_ALL},
				{},
				{Routes: []*route.Route{r("z"), shared}},
			},
		}},
	}
	seed := maphash.MakeSeed()
	prev := map[*route.Route]*encodedRoute{}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			want, err := proto.MarshalOptions{Deterministic: true}.Marshal(tc.rc)
			if err != nil {
				t.Fatal(err)
			}
			next := map[*route.Route]*encodedRoute{}
			got, version, _, err := encodeRouteTable(tc.rc, seed, prev, next)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("encoding differs from proto.Marshal:\n got %x\nwant %x", got, want)
			}
			// Again with every route known (spliced) and with none (marshaled whole): the
			// same bytes and version either way.
			for _, p := range []map[*route.Route]*encodedRoute{next, nil} {
				b, v, _, err := encodeRouteTable(tc.rc, seed, p, map[*route.Route]*encodedRoute{})
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(b, want) || v != version {
					t.Errorf("with %d known routes: encoding equal %v, version %s, want %s", len(p), bytes.Equal(b, want), v, version)
				}
			}
			prev = next // the next case reuses "shared"
		})
	}
}

// TestUnchangedResourcesAreReused publishes twice with one authz endpoint and one route
// replaced, and checks that everything else is served from the first publish's encodings
// while the whole route table still matches a fresh encoding.
func TestUnchangedResourcesAreReused(t *testing.T) {
	s := startServer(t)
	ctx := context.Background()
	f := newFixture(5, "127.0.0.1:8081")
	first := f.resources(t)
	if err := s.Publish(ctx, 1, first); err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	before := s.current
	s.mu.Unlock()

	second := Resources{}
	for typ, ms := range first {
		second[typ] = append([]proto.Message(nil), ms...)
	}
	eps := second[TypeAuthzEndpoint]
	changed := proto.Clone(eps[2])
	eps[2] = changed
	rc := proto.CloneOf(second[resource.RouteType][0].(*route.RouteConfiguration))
	old := first[resource.RouteType][0].(*route.RouteConfiguration)
	// Share every route but one with the first table, as compile.Compiler does.
	for i, vh := range rc.GetVirtualHosts() {
		copy(vh.Routes, old.GetVirtualHosts()[i].GetRoutes())
	}
	rc.VirtualHosts[0].Routes[1] = proto.CloneOf(rc.VirtualHosts[0].Routes[1])
	rc.VirtualHosts[0].Routes[1].Name = "renamed"
	second[resource.RouteType] = []proto.Message{rc}
	if err := s.Publish(ctx, 2, second); err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	after := s.current
	s.mu.Unlock()

	for i, m := range eps {
		same := before.types[TypeAuthzEndpoint].byMsg[m] == after.types[TypeAuthzEndpoint].byMsg[m]
		if want := m != changed; same != want {
			t.Errorf("authz endpoint %d reused = %v, want %v", i, same, want)
		}
	}
	routes := after.types[resource.RouteType].routes
	for i, r := range rc.VirtualHosts[0].Routes {
		reused := before.types[resource.RouteType].routes[r] == routes[r]
		if want := i != 1; reused != want {
			t.Errorf("route %d reused = %v, want %v", i, reused, want)
		}
	}
	want, err := proto.MarshalOptions{Deterministic: true}.Marshal(rc)
	if err != nil {
		t.Fatal(err)
	}
	if got := after.types[resource.RouteType].byMsg[rc].b; !bytes.Equal(got, want) {
		t.Error("served route table differs from its encoding")
	}
}
