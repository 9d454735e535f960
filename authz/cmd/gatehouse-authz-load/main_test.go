package main

import (
	"context"
	"math/rand/v2"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"

	"gatehouse/authz/apitoken"
	"gatehouse/authz/check"
	"gatehouse/authz/check/checktest"
	"gatehouse/authz/limit"
	"gatehouse/authz/server"
)

func TestMarshalRequestPatchesToken(t *testing.T) {
	rnd := rand.New(rand.NewPCG(1, 2))
	tok := randomToken(rnd)
	b, at, err := marshalRequest("/sales/orders", checktest.EndpointListOrders, tok)
	if err != nil {
		t.Fatal(err)
	}
	fillRandomToken(rnd, b[at:at+len(tok)])
	var req authv3.CheckRequest
	if err := proto.Unmarshal(b, &req); err != nil {
		t.Fatal(err)
	}
	got := req.GetAttributes().GetRequest().GetHttp().GetHeaders()["api-token"]
	if got == tok || len(got) != apitoken.Len || !strings.HasPrefix(got, apitoken.APIPrefix) {
		t.Fatalf("patched token %q, want a new random token of the same shape", got)
	}
}

// A -rate-limit fixture sends every decision of the default token through the limiter with
// its policy: a high limit allows them all, a low one refuses beyond its burst.
func TestLimitSalesLimitsEveryDecision(t *testing.T) {
	for _, tc := range []struct {
		name      string
		perSecond uint32
		allowed   int64
	}{
		{name: "never refuses", perSecond: maxRateLimit, allowed: 200},
		{name: "burst of 10", perSecond: 10, allowed: 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fx := checktest.New(time.Now())
			limitSales(fx.Config, tc.perSecond)
			var calls atomic.Int64
			mem := limit.NewMemory(limit.MemoryConfig{})
			counted := limit.LimiterFunc(func(ctx context.Context, k limit.Key, p limit.Policy, now time.Time) (limit.Decision, error) {
				calls.Add(1)
				if p.Rate == nil || p.Quota == nil {
					t.Errorf("policy %+v, want a rate and a quota", p)
				}
				return mem.Allow(ctx, k, p, now)
			})
			// A fixed clock: the burst must not refill while 200 calls run under -race load.
			start := time.Now()
			conns := serve(t, check.Config{Limiter: counted, Now: func() time.Time { return start }}, fx)
			res := drive(context.Background(), time.Now().Add(time.Minute), conns, 4, 200, 0,
				fx.Secret(checktest.TokenSales), "/sales/orders/o-1/items/2", checktest.EndpointItem, false)
			if res.Requests != 200 || res.Allowed != tc.allowed || res.Errors != 0 {
				t.Errorf("got %+v, want 200 calls, %d allowed", res, tc.allowed)
			}
			if got := calls.Load(); got != 200 {
				t.Errorf("limiter decided %d calls, want all 200", got)
			}
		})
	}
}

// serve runs the Check service with cfg and fx's config on loopback and returns a connection.
func serve(t *testing.T, cfg check.Config, fx *checktest.Fixture) []*grpc.ClientConn {
	t.Helper()
	c := check.New(cfg)
	if err := c.Swap(context.Background(), fx.Config); err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer()
	authv3.RegisterAuthorizationServer(s, server.NewAuthorization(server.Config{Decider: c}))
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = s.Serve(lis) }()
	t.Cleanup(s.Stop)
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.ForceCodec(rawCodec{})))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return []*grpc.ClientConn{conn}
}

// The generator counts allowed and refused calls correctly against the real Check service.
func TestDriveCountsDecisions(t *testing.T) {
	fx := checktest.New(time.Now())
	conns := serve(t, check.Config{}, fx)
	ctx := context.Background()
	until := time.Now().Add(time.Minute)

	ok := drive(ctx, until, conns, 4, 200, 0, fx.Secret(checktest.TokenSales), "/sales/orders/o-1/items/2", checktest.EndpointItem, false)
	if ok.Requests != 200 || ok.Allowed != 200 || ok.Errors != 0 {
		t.Errorf("valid token: %+v, want 200 allowed", ok)
	}
	bad := drive(ctx, until, conns, 4, 200, 0, "", "/sales/orders/o-1/items/2", checktest.EndpointItem, true)
	if bad.Requests != 200 || bad.Allowed != 0 || bad.Errors != 0 {
		t.Errorf("random tokens: %+v, want 200 refused", bad)
	}
	paced := drive(ctx, time.Now().Add(300*time.Millisecond), conns, 2, 0, 100, fx.Secret(checktest.TokenSales), "/sales/orders", "", false)
	if paced.Requests == 0 || paced.Requests > 40 {
		t.Errorf("paced at 100/s for 0.3s: %d calls", paced.Requests)
	}
}
