package check

import (
	"context"
	"net/netip"
	"testing"

	"gatehouse/authz/check/checktest"
)

// BenchmarkDecideAPIToken is the in-process decision for an allowed API token with a path
// parameter; the target is < 2 µs and <= 5 allocations per decision.
func BenchmarkDecideAPIToken(b *testing.B) {
	f := checktest.New(testNow)
	c := newTestChecker(b, f, 0)
	req := &Request{
		Method: "GET", Path: "/sales/orders/o-17?expand=items",
		Headers: MapHeaders{
			"api-token": f.Secret(checktest.TokenSales), "user-agent": "bench", "x-request-id": "r-1",
			":path": "/sales/orders/o-17?expand=items", ":method": "GET", "accept": "application/json",
		},
		Source: netip.MustParseAddr("198.51.100.7"), RequestID: "r-1",
	}
	ctx := context.Background()
	b.ReportAllocs()
	var d Decision
	for b.Loop() {
		c.Decide(ctx, req, &d)
		if d.Code != OK {
			b.Fatalf("code %v", d.Code)
		}
	}
}

// BenchmarkDecideAPITokenParallel is the same decision on every core at once: the Index is
// shared and read-only, so it scales.
func BenchmarkDecideAPITokenParallel(b *testing.B) {
	f := checktest.New(testNow)
	c := newTestChecker(b, f, 0)
	req := &Request{Method: "GET", Path: "/sales/orders/o-17", Headers: MapHeaders{"api-token": f.Secret(checktest.TokenSales)}}
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		var d Decision
		for pb.Next() {
			c.Decide(ctx, req, &d)
		}
	})
}

// BenchmarkDecideAPITokenLimited adds a rate limit decided by the in-memory limiter.
func BenchmarkDecideAPITokenLimited(b *testing.B) {
	f := checktest.New(testNow)
	f.Config.Policies[0].RateLimit.Requests = 1 << 30
	f.Config.Policies[0].RateLimit.Burst = 1 << 30
	c := newTestChecker(b, f, 0)
	req := &Request{Method: "GET", Path: "/sales/orders/o-17", Headers: MapHeaders{"api-token": f.Secret(checktest.TokenLimited)}}
	ctx := context.Background()
	b.ReportAllocs()
	var d Decision
	for b.Loop() {
		c.Decide(ctx, req, &d)
		if d.Code != OK {
			b.Fatalf("code %v", d.Code)
		}
	}
}

// BenchmarkDecideInvalidToken is a refused random-looking token: no lookup, no state.
func BenchmarkDecideInvalidToken(b *testing.B) {
	f := checktest.New(testNow)
	c := newTestChecker(b, f, 0)
	req := &Request{Method: "GET", Path: "/sales/orders/o-17", Headers: MapHeaders{"api-token": "gth_notavalidtokenatall"}, RequestID: "r-1"}
	ctx := context.Background()
	b.ReportAllocs()
	var d Decision
	for b.Loop() {
		c.Decide(ctx, req, &d)
	}
}
