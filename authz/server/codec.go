package server

import (
	"context"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
)

// wireCodec is the server's codec: it hands a CheckRequest to the handler as wire bytes
// (see wireRequest) and is the standard protobuf codec for every other message.
type wireCodec struct {
	proto encoding.CodecV2
}

func newWireCodec() wireCodec { return wireCodec{proto: encoding.GetCodecV2(proto.Name)} }

func (c wireCodec) Marshal(v any) (mem.BufferSlice, error) { return c.proto.Marshal(v) }

func (c wireCodec) Unmarshal(data mem.BufferSlice, v any) error {
	if w, ok := v.(*wireRequest); ok {
		return w.decode(data.Materialize())
	}
	return c.proto.Unmarshal(data, v)
}

func (wireCodec) Name() string { return proto.Name }

// wireChecker is the handler type of wireServiceDesc.
type wireChecker interface {
	checkWire(ctx context.Context, w *wireRequest) *authv3.CheckResponse
}

// wireServiceDesc serves envoy.service.auth.v3.Authorization/Check with requests decoded by
// wireCodec; the method, its messages and its wire format are those of the generated service.
var wireServiceDesc = grpc.ServiceDesc{
	ServiceName: authv3.Authorization_ServiceDesc.ServiceName,
	HandlerType: (*wireChecker)(nil),
	Methods:     []grpc.MethodDesc{{MethodName: "Check", Handler: checkWireHandler}},
	Metadata:    authv3.Authorization_ServiceDesc.Metadata,
}

func checkWireHandler(srv any, ctx context.Context, dec func(any) error, interceptor grpc.UnaryServerInterceptor) (any, error) {
	w := new(wireRequest)
	if err := dec(w); err != nil {
		return nil, err
	}
	c := srv.(wireChecker)
	if interceptor == nil {
		return c.checkWire(ctx, w), nil
	}
	info := &grpc.UnaryServerInfo{Server: srv, FullMethod: authv3.Authorization_Check_FullMethodName}
	return interceptor(ctx, w, info, func(ctx context.Context, req any) (any, error) {
		return c.checkWire(ctx, req.(*wireRequest)), nil
	})
}
