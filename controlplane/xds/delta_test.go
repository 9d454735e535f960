package xds

import (
	"context"
	"sort"
	"testing"
	"time"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/testing/protocmp"

	authzv1 "gatehouse/proto/gatehouse/authz/v1"
)

func adsClient(t testing.TB, s *Server) discovery.AggregatedDiscoveryServiceClient {
	t.Helper()
	cc, err := grpc.NewClient(s.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(64<<20)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cc.Close() })
	return discovery.NewAggregatedDiscoveryServiceClient(cc)
}

// recvDelta receives the next delta response, failing the test after d.
func recvDelta(t testing.TB, stream discovery.AggregatedDiscoveryService_DeltaAggregatedResourcesClient, d time.Duration) *discovery.DeltaDiscoveryResponse {
	t.Helper()
	type result struct {
		r   *discovery.DeltaDiscoveryResponse
		err error
	}
	ch := make(chan result, 1)
	go func() {
		r, err := stream.Recv()
		ch <- result{r, err}
	}()
	select {
	case res := <-ch:
		if res.err != nil {
			t.Fatalf("delta recv: %v", res.err)
		}
		return res.r
	case <-time.After(d):
		t.Fatalf("no delta response in %v", d)
		return nil
	}
}

// TestAuthzTypes subscribes to the authz types as the sidecars do, over SotW and delta.
func TestAuthzTypes(t *testing.T) {
	s := startServer(t)
	res := newFixture(3, "127.0.0.1:1").resources(t)
	if err := s.Publish(context.Background(), 7, res); err != nil {
		t.Fatal(err)
	}
	client := adsClient(t, s)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	node := &core.Node{Id: "authz-1", Cluster: "gatehouse-authz"}

	for _, typeURL := range []string{TypeAuthzEndpoint, TypeAuthzProfile, TypeAuthzPolicy} {
		t.Run("sotw/"+typeURL, func(t *testing.T) {
			stream, err := client.StreamAggregatedResources(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if err := stream.Send(&discovery.DiscoveryRequest{Node: node, TypeUrl: typeURL}); err != nil {
				t.Fatal(err)
			}
			resp, err := stream.Recv()
			if err != nil {
				t.Fatal(err)
			}
			if resp.GetVersionInfo() != "7" || len(resp.GetResources()) != len(res[typeURL]) {
				t.Fatalf("version %q, %d resources; want 7, %d", resp.GetVersionInfo(), len(resp.GetResources()), len(res[typeURL]))
			}
			var got []string
			for _, a := range resp.GetResources() {
				m, err := a.UnmarshalNew()
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, m.(interface{ GetName() string }).GetName())
			}
			sort.Strings(got)
			var want []string
			for _, m := range res[typeURL] {
				want = append(want, m.(interface{ GetName() string }).GetName())
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("names (-want +got):\n%s", diff)
			}
		})
		t.Run("delta/"+typeURL, func(t *testing.T) {
			stream, err := client.DeltaAggregatedResources(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if err := stream.Send(&discovery.DeltaDiscoveryRequest{Node: node, TypeUrl: typeURL, ResourceNamesSubscribe: []string{"*"}}); err != nil {
				t.Fatal(err)
			}
			resp := recvDelta(t, stream, 5*time.Second)
			if len(resp.GetResources()) != len(res[typeURL]) {
				t.Fatalf("%d resources, want %d", len(resp.GetResources()), len(res[typeURL]))
			}
			if typeURL == TypeAuthzProfile {
				var p authzv1.Profile
				if err := resp.GetResources()[0].GetResource().UnmarshalTo(&p); err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(res[typeURL][0], &p, protocmp.Transform()); diff != "" {
					t.Errorf("profile (-want +got):\n%s", diff)
				}
			}
		})
	}
}

// TestDeltaSendsOnlyChanges changes one endpoint of 1,000 and expects a delta stream to be sent
// that endpoint's authz resource and the route table, and nothing else.
func TestDeltaSendsOnlyChanges(t *testing.T) {
	s := startServer(t)
	f := newFixture(1000, "127.0.0.1:1")
	if err := s.Publish(context.Background(), 1, f.resources(t)); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stream, err := adsClient(t, s).DeltaAggregatedResources(ctx)
	if err != nil {
		t.Fatal(err)
	}
	node := &core.Node{Id: "delta-1"}
	subs := []struct {
		typeURL string
		names   []string
	}{
		{resource.ListenerType, []string{"*"}},
		{resource.ClusterType, []string{"*"}},
		{resource.RouteType, []string{RouteConfig}},
		{resource.EndpointType, []string{"gatehouse-runtime"}},
		{TypeAuthzEndpoint, []string{"*"}},
		{TypeAuthzProfile, []string{"*"}},
		{TypeAuthzPolicy, []string{"*"}},
	}
	for _, sub := range subs {
		if err := stream.Send(&discovery.DeltaDiscoveryRequest{Node: node, TypeUrl: sub.typeURL, ResourceNamesSubscribe: sub.names}); err != nil {
			t.Fatal(err)
		}
	}
	initial := map[string]int{}
	for range subs {
		r := recvDelta(t, stream, 5*time.Second)
		initial[r.GetTypeUrl()] = len(r.GetResources())
		if err := stream.Send(&discovery.DeltaDiscoveryRequest{TypeUrl: r.GetTypeUrl(), ResponseNonce: r.GetNonce()}); err != nil {
			t.Fatal(err)
		}
	}
	if initial[TypeAuthzEndpoint] != 1000 || initial[resource.ListenerType] != 2 {
		t.Fatalf("initial resources = %v", initial)
	}

	f.endpoints[500].recipe = "recipe-changed"
	f.endpoints[500].path = "/echo/Changed"
	if err := s.Publish(context.Background(), 2, f.resources(t)); err != nil {
		t.Fatal(err)
	}
	got := map[string][]string{}
	for range 2 {
		r := recvDelta(t, stream, 5*time.Second)
		for _, res := range r.GetResources() {
			got[r.GetTypeUrl()] = append(got[r.GetTypeUrl()], res.GetName())
		}
		got[r.GetTypeUrl()] = append(got[r.GetTypeUrl()], r.GetRemovedResources()...)
		if err := stream.Send(&discovery.DeltaDiscoveryRequest{TypeUrl: r.GetTypeUrl(), ResponseNonce: r.GetNonce()}); err != nil {
			t.Fatal(err)
		}
	}
	want := map[string][]string{TypeAuthzEndpoint: {"ep-00500"}, resource.RouteType: {RouteConfig}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("delta update (-want +got):\n%s", diff)
	}
	// Nothing else follows: the next message on the stream would be a third response.
	extra := make(chan *discovery.DeltaDiscoveryResponse, 1)
	go func() {
		if r, err := stream.Recv(); err == nil {
			extra <- r
		}
	}()
	select {
	case r := <-extra:
		t.Errorf("unexpected extra response for %s with %d resources", r.GetTypeUrl(), len(r.GetResources()))
	case <-time.After(500 * time.Millisecond):
	}
}
