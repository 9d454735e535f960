package configsource

import (
	"context"
	"fmt"
	"log/slog"
	"testing"

	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"

	authzv1 "gatehouse/proto/gatehouse/authz/v1"
)

// BenchmarkUpdateOneProfile measures what one changed profile costs the
// sidecar once it arrived: decode, assemble the whole config, Apply (a no-op
// here) and, with the cache, the bbolt write of the whole config.
func BenchmarkUpdateOneProfile(b *testing.B) {
	for _, endpoints := range []int{1_000, 100_000} {
		for _, withCache := range []bool{false, true} {
			b.Run(fmt.Sprintf("endpoints=%d/cache=%v", endpoints, withCache), func(b *testing.B) {
				benchUpdate(b, endpoints, withCache)
			})
		}
	}
}

func benchUpdate(b *testing.B, endpoints int, withCache bool) {
	cfg := Config{NodeID: testNode, Logger: slog.New(slog.DiscardHandler),
		Apply: func(context.Context, *authzv1.Config) error { return nil }}
	if withCache {
		db := openDB(b, newDBPath(b))
		b.Cleanup(func() { _ = db.Close() })
		cfg.DB = db
	}
	src, err := New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	resp := func(typeURL, system string, msgs ...named) *discoveryv3.DeltaDiscoveryResponse {
		r := &discoveryv3.DeltaDiscoveryResponse{TypeUrl: typeURL, SystemVersionInfo: system}
		for _, m := range msgs {
			r.Resources = append(r.Resources, &discoveryv3.Resource{Name: m.GetName(), Version: system, Resource: mustAny(b, m)})
		}
		return r
	}
	eps := make([]named, endpoints)
	for i := range eps {
		eps[i] = endpoint(fmt.Sprintf("e%06d", i), fmt.Sprintf("/r%d", i))
	}
	var ready [numKinds]bool
	for _, r := range []*discoveryv3.DeltaDiscoveryResponse{
		resp(EndpointTypeURL, "1", eps...),
		resp(ProfileTypeURL, "1", profile("p1", "acme")),
		resp(PolicyTypeURL, "1", policy("pol1", 10)),
	} {
		if _, err := src.take(r, &ready); err != nil {
			b.Fatal(err)
		}
	}
	if msg := src.decide(context.Background()); msg != "" {
		b.Fatal(msg)
	}
	updates := [2]*discoveryv3.DeltaDiscoveryResponse{
		resp(ProfileTypeURL, "2", profile("p1", "globex")),
		resp(ProfileTypeURL, "3", profile("p1", "acme")),
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if _, err := src.take(updates[i%2], &ready); err != nil {
			b.Fatal(err)
		}
		if msg := src.decide(context.Background()); msg != "" {
			b.Fatal(msg)
		}
	}
}
