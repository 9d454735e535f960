package server

import (
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// authzService is the health service name of the ext_authz API.
var authzService = authv3.Authorization_ServiceDesc.ServiceName

// Health is the grpc.health.v1 service: NOT_SERVING until a config is held, so that Envoy's
// health checks and Kubernetes probes keep traffic away from a sidecar that can only refuse.
type Health struct {
	srv *health.Server
}

// NewHealth returns a Health that reports NOT_SERVING.
func NewHealth() *Health {
	h := &Health{srv: health.NewServer()}
	h.SetReady(false)
	return h
}

// SetReady reports SERVING (true) or NOT_SERVING for the server and the ext_authz service.
func (h *Health) SetReady(ready bool) {
	st := healthpb.HealthCheckResponse_NOT_SERVING
	if ready {
		st = healthpb.HealthCheckResponse_SERVING
	}
	h.srv.SetServingStatus("", st)
	h.srv.SetServingStatus(authzService, st)
}

// Shutdown reports NOT_SERVING from now on, for a graceful stop.
func (h *Health) Shutdown() { h.srv.Shutdown() }

// NewGRPCServer returns a gRPC server with the ext_authz service and health registered.
// Check requests are decoded from the wire only as far as a decision needs (wireCodec).
func NewGRPCServer(cfg Config, h *Health, opts ...grpc.ServerOption) *grpc.Server {
	opts = append([]grpc.ServerOption{
		grpc.ForceServerCodecV2(newWireCodec()),
	}, opts...)
	s := grpc.NewServer(opts...)
	s.RegisterService(&wireServiceDesc, NewAuthorization(cfg))
	healthpb.RegisterHealthServer(s, h.srv)
	return s
}
