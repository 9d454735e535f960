package server

import (
	"context"
	"net"
	"testing"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"

	"gatehouse/authz/check/checktest"
)

type noopAuthz struct {
	authv3.UnimplementedAuthorizationServer
}

func (noopAuthz) Check(context.Context, *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	return &authv3.CheckResponse{Status: &status.Status{},
		HttpResponse: &authv3.CheckResponse_OkResponse{OkResponse: &authv3.OkHttpResponse{}}}, nil
}

// BenchmarkGRPCCheck compares the sidecar's Check over loopback gRPC with a do-nothing
// ext_authz server, both driven by the same parallel client: the ratio of their ns/op is the
// throughput ratio of the targets (>= 0.85). The client sends and receives raw bytes so that
// its own cost does not grow with the size of the answer (Envoy decodes it, not Go).
func BenchmarkGRPCCheck(b *testing.B) {
	e := newEnv(b, true, 0)
	for _, bc := range []struct {
		name string
		srv  func() *grpc.Server
	}{
		{"noop", func() *grpc.Server {
			s := grpc.NewServer()
			authv3.RegisterAuthorizationServer(s, noopAuthz{})
			return s
		}},
		{"authz", func() *grpc.Server { return NewGRPCServer(e.cfg, e.health) }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			s := bc.srv()
			lis, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			go func() { _ = s.Serve(lis) }()
			defer s.Stop()
			conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()),
				grpc.WithDefaultCallOptions(grpc.ForceCodec(rawCodec{})))
			if err != nil {
				b.Fatal(err)
			}
			defer conn.Close()
			req, err := proto.Marshal(envoyRequest("GET", "/sales/orders/o-1/items/2", "198.51.100.7", ext(checktest.EndpointItem),
				map[string]string{"api-token": e.fx.Secret(checktest.TokenSales)}))
			if err != nil {
				b.Fatal(err)
			}
			b.SetParallelism(16)
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				var resp []byte
				for pb.Next() {
					if err := conn.Invoke(context.Background(), "/envoy.service.auth.v3.Authorization/Check", req, &resp); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}

// BenchmarkCheckInProcess is the whole Check handler without the network: request adapter,
// decision, response building, metrics.
func BenchmarkCheckInProcess(b *testing.B) {
	e := newEnv(b, true, 0)
	a := NewAuthorization(e.cfg)
	req := envoyRequest("GET", "/sales/orders/o-1/items/2", "198.51.100.7", ext(checktest.EndpointItem),
		map[string]string{"api-token": e.fx.Secret(checktest.TokenSales)})
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := a.Check(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
}

// rawCodec passes messages through as bytes.
type rawCodec struct{}

func (rawCodec) Marshal(v any) ([]byte, error) { return v.([]byte), nil }

func (rawCodec) Unmarshal(data []byte, v any) error {
	p := v.(*[]byte)
	*p = append((*p)[:0], data...)
	return nil
}

func (rawCodec) Name() string { return "proto" }
