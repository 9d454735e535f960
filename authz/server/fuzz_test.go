package server

import (
	"context"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/protobuf/proto"

	"gatehouse/authz/check"
	"gatehouse/authz/check/checktest"
)

// FuzzCheckRequest decodes arbitrary bytes as a CheckRequest, as the gRPC server would, and
// decides it: no panic, always a decision, and never an allow without a fixture token.
func FuzzCheckRequest(f *testing.F) {
	fx := checktest.New(time.Now())
	c := check.New(check.Config{TrustedHops: 1})
	if err := c.Swap(context.Background(), fx.Config); err != nil {
		f.Fatal(err)
	}
	a := NewAuthorization(Config{Decider: c})
	for _, r := range []*authv3.CheckRequest{
		envoyRequest("GET", "/sales/orders/1", "198.51.100.7", ext(checktest.EndpointGetOrder), map[string]string{"api-token": fx.Secret(checktest.TokenSales)}),
		envoyRequest("POST", "/sales/orders?x", "::1", nil, map[string]string{"authorization": "Bearer a.b.c"}),
		envoyRequest("GET", "/hr/people", "garbage", nil, map[string]string{"x-forwarded-for": "1.2.3.4, ::ffff:1.2.3.4"}),
		{},
	} {
		b, err := proto.Marshal(r)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var req authv3.CheckRequest
		if proto.Unmarshal(b, &req) != nil {
			return // the gRPC server refuses undecodable messages before Check
		}
		resp, err := a.Check(context.Background(), &req)
		if err != nil || resp == nil || resp.GetStatus() == nil {
			t.Fatalf("Check = %v, %v; want a decision", resp, err)
		}
		if resp.GetStatus().GetCode() == 0 {
			tok := req.GetAttributes().GetRequest().GetHttp().GetHeaders()["api-token"]
			known := false
			for _, s := range fx.Secrets {
				known = known || s == tok
			}
			if !known && resp.GetOkResponse() != nil {
				// Basic auth may carry a fixture token too; anything else is a hole.
				if az := req.GetAttributes().GetRequest().GetHttp().GetHeaders()["authorization"]; az == "" {
					t.Fatalf("allowed without a credential: %v", &req)
				}
			}
		} else if resp.GetDeniedResponse().GetBody() == "" {
			t.Fatal("refusal without a body")
		}
	})
}
