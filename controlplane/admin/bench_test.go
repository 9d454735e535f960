package admin

import (
	"fmt"
	"sync/atomic"
	"testing"

	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"gatehouse/controlplane/store"
	adminv1 "gatehouse/proto/gatehouse/admin/v1"
)

// BenchmarkWrites measures admin writes over gRPC on loopback: each is one durable store
// transaction with validation and an audit event.
func BenchmarkWrites(b *testing.B) {
	e := newEnv(b)
	ctx := e.ctx()
	b.Run("create-client", func(b *testing.B) {
		for b.Loop() {
			if _, err := e.clis.CreateClient(ctx, &adminv1.CreateClientRequest{Client: &adminv1.Client{Name: newID("bench-")}}); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "writes/s")
	})
	b.Run("update-endpoint", func(b *testing.B) {
		f := e.fixture(newID("upd-")[:12])
		ep, err := e.eps.CreateEndpoint(ctx, &adminv1.CreateEndpointRequest{CollectionId: f.col.Id,
			Endpoint: &adminv1.Endpoint{Name: "e", Method: "GET", Path: "/e/{id}", RecipeId: "r"}})
		if err != nil {
			b.Fatal(err)
		}
		i := 0
		for b.Loop() {
			i++
			_, err := e.eps.UpdateEndpoint(ctx, &adminv1.UpdateEndpointRequest{
				Endpoint:   &adminv1.Endpoint{Id: ep.Id, CollectionId: f.col.Id, Description: fmt.Sprint(i)},
				UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"description"}},
			})
			if err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "writes/s")
	})
}

// BenchmarkWritesParallel measures concurrent admin writes: the store serialises them, so
// this shows how well concurrent callers share one writer.
func BenchmarkWritesParallel(b *testing.B) {
	e := newEnv(b)
	ctx := e.ctx()
	f := e.fixture("par")
	var n atomic.Int64
	b.RunParallel(func(pb *testing.PB) {
		g := n.Add(1)
		ep, err := e.eps.CreateEndpoint(ctx, &adminv1.CreateEndpointRequest{CollectionId: f.col.Id,
			Endpoint: &adminv1.Endpoint{Name: fmt.Sprint("e", g), Method: "GET", Path: fmt.Sprint("/e", g), RecipeId: "r"}})
		if err != nil {
			b.Error(err)
			return
		}
		i := 0
		for pb.Next() {
			i++
			_, err := e.eps.UpdateEndpoint(ctx, &adminv1.UpdateEndpointRequest{
				Endpoint:   &adminv1.Endpoint{Id: ep.Id, CollectionId: f.col.Id, Description: fmt.Sprint(i)},
				UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"description"}},
			})
			if err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "writes/s")
}

// seedEndpoints stores n endpoints in one collection in a single transaction.
func seedEndpoints(b *testing.B, e *env, n int) *adminv1.Collection {
	b.Helper()
	col, err := e.cols.CreateCollection(e.ctx(), &adminv1.CreateCollectionRequest{Collection: &adminv1.Collection{Name: "big", Version: "v1", Path: "big"}})
	if err != nil {
		b.Fatal(err)
	}
	_, err = e.store.Update(func(tx *store.Tx) error {
		for i := range n {
			ep := &adminv1.Endpoint{
				Id: newID(prefixEndpoint), CollectionId: col.Id, Name: fmt.Sprint("endpoint-", i), Method: "GET",
				Path: fmt.Sprintf("/resources-%d/{id}", i), RecipeId: "recipe", Active: new(bool),
				Timeout: durationpb.New(defaultEndpointTimeout), CreateTime: timestamppb.Now(), UpdateTime: timestamppb.Now(), Etag: "1",
			}
			if err := store.Put(tx, store.Endpoints, ep); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	return col
}

// BenchmarkListEndpoints measures the latency of one page of a 10,000-endpoint collection
// over gRPC.
func BenchmarkListEndpoints(b *testing.B) {
	e := newEnv(b)
	col := seedEndpoints(b, e, 10000)
	ctx := e.ctx()
	for _, size := range []int32{100, 1000} {
		b.Run(fmt.Sprintf("page-%d", size), func(b *testing.B) {
			token := ""
			for b.Loop() {
				resp, err := e.eps.ListEndpoints(ctx, &adminv1.ListEndpointsRequest{CollectionId: col.Id, PageSize: size, PageToken: token})
				if err != nil {
					b.Fatal(err)
				}
				if len(resp.Endpoints) == 0 {
					b.Fatal("empty page")
				}
				token = resp.NextPageToken // walk the whole collection, then start again
			}
		})
	}
}

// BenchmarkCreateEndpointIn10k measures an endpoint create in a collection of 10,000, which
// checks the new route against every endpoint of the collection.
func BenchmarkCreateEndpointIn10k(b *testing.B) {
	e := newEnv(b)
	col := seedEndpoints(b, e, 10000)
	ctx := e.ctx()
	i := 0
	for b.Loop() {
		i++
		_, err := e.eps.CreateEndpoint(ctx, &adminv1.CreateEndpointRequest{CollectionId: col.Id,
			Endpoint: &adminv1.Endpoint{Name: fmt.Sprint("new-", i), Method: "POST", Path: fmt.Sprintf("/new-%d", i), RecipeId: "r"}})
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "writes/s")
}
