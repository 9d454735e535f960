package xds

import (
	"context"
	"fmt"
	"sort"
	"testing"
	"time"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	"gatehouse/controlplane/store"
	adminv1 "gatehouse/proto/gatehouse/admin/v1"
	authzv1 "gatehouse/proto/gatehouse/authz/v1"
)

// BenchmarkPublish10k publishes a compile-shaped output of 10,000 endpoints in which one
// endpoint changed: indexing, hashing and validating every resource, and setting the snapshot.
func BenchmarkPublish10k(b *testing.B) {
	s := startServer(b)
	f := newFixture(10000, "127.0.0.1:8081")
	outs := [2]Resources{f.resources(b), nil}
	f.endpoints[5000].recipe = "changed"
	outs[1] = f.resources(b)
	ctx := context.Background()
	if err := s.Publish(ctx, 1, outs[0]); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if err := s.Publish(ctx, uint64(i+2), outs[(i+1)%2]); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	s.mu.Lock()
	b.ReportMetric(float64(s.current.bytes), "snapshot-bytes")
	s.mu.Unlock()
}

// BenchmarkAdminChangeToXDS measures, with 10,000 endpoints loaded, the time from an endpoint
// change through the admin API until a delta xDS client subscribed to the route table and the
// authz endpoints has received both updates. Run with -benchtime=1000x for 1,000 changes; it
// reports p50 and p99.
func BenchmarkAdminChangeToXDS(b *testing.B) {
	const n = 10000
	p := startPipeline(b, "127.0.0.1:8081")
	col, err := p.cols.CreateCollection(p.ctx, &adminv1.CreateCollectionRequest{Collection: &adminv1.Collection{
		Name: "Bench", Version: "v1", Path: "bench",
	}})
	if err != nil {
		b.Fatal(err)
	}
	// Loading 10,000 endpoints through the API would be 10,000 commits; one store transaction
	// gives the same state. Only the measured changes go through the admin API.
	if _, err := p.store.Update(func(tx *store.Tx) error {
		for i := range n {
			ep := &adminv1.Endpoint{
				Id: fmt.Sprintf("ep%05d", i), CollectionId: col.GetId(), Name: fmt.Sprintf("e%05d", i),
				Method: "POST", Path: fmt.Sprintf("/e%05d/{id}", i), RecipeId: "recipe", Active: proto.Bool(true),
			}
			if err := store.Put(tx, store.Endpoints, ep); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		b.Fatal(err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stream, err := adsClient(b, p.xds).DeltaAggregatedResources(ctx)
	if err != nil {
		b.Fatal(err)
	}
	node := &core.Node{Id: "bench"}
	for _, sub := range []struct{ typeURL, name string }{{resource.RouteType, RouteConfig}, {TypeAuthzEndpoint, "*"}} {
		if err := stream.Send(&discovery.DeltaDiscoveryRequest{Node: node, TypeUrl: sub.typeURL, ResourceNamesSubscribe: []string{sub.name}}); err != nil {
			b.Fatal(err)
		}
	}
	resps := make(chan *discovery.DeltaDiscoveryResponse, 16)
	go func() {
		defer close(resps)
		for {
			r, err := stream.Recv()
			if err != nil {
				return
			}
			// ACK at once, as a client that applies the update does.
			if err := stream.Send(&discovery.DeltaDiscoveryRequest{TypeUrl: r.GetTypeUrl(), ResponseNonce: r.GetNonce()}); err != nil {
				return
			}
			resps <- r
		}
	}()
	// wait reads responses until the authz endpoint id carries recipe and a route update came.
	wait := func(id, recipe string) {
		gotRoute, gotEndpoint := false, false
		for !gotRoute || !gotEndpoint {
			select {
			case r, ok := <-resps:
				if !ok {
					b.Fatal("stream ended")
				}
				if r.GetTypeUrl() == resource.RouteType && len(r.GetResources()) > 0 {
					gotRoute = true
				}
				for _, res := range r.GetResources() {
					if r.GetTypeUrl() != TypeAuthzEndpoint || res.GetName() != id {
						continue
					}
					var e authzv1.Endpoint
					if err := res.GetResource().UnmarshalTo(&e); err != nil {
						b.Fatal(err)
					}
					gotEndpoint = e.GetRecipeId() == recipe
				}
			case <-time.After(30 * time.Second):
				b.Fatalf("no update for %s", id)
			}
		}
	}
	wait("ep09999", "recipe")

	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := range b.N {
		id := fmt.Sprintf("ep%05d", (i*7919)%n)
		recipe := fmt.Sprintf("recipe-%d", i)
		start := time.Now()
		if _, err := p.eps.UpdateEndpoint(p.ctx, &adminv1.UpdateEndpointRequest{
			Endpoint:   &adminv1.Endpoint{Id: id, CollectionId: col.GetId(), RecipeId: recipe},
			UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"recipe_id"}},
		}); err != nil {
			b.Fatal(err)
		}
		wait(id, recipe)
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	pct := func(q float64) float64 { return float64(lat[int(q*float64(len(lat)-1))].Microseconds()) / 1000 }
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.90), "p90-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	b.ReportMetric(pct(1), "max-ms")
	b.ReportMetric(0, "ns/op")
}
