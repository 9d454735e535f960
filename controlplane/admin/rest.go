package admin

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"

	"gatehouse/controlplane/store"
	adminv1 "gatehouse/proto/gatehouse/admin/v1"
)

// maxBodyBytes bounds a REST request body; the largest resource (a profile with ten PEM keys)
// is far smaller.
const maxBodyBytes = 1 << 20

// HTTPConfig configures the admin HTTP handler.
type HTTPConfig struct {
	// Gatherer is served at /metrics; nil serves no /metrics.
	Gatherer prometheus.Gatherer
	// Ready reports whether the control plane is ready to serve, for /readyz; nil means ready.
	Ready func(context.Context) error
	// Services register more gatehouse.admin.v1 services on the REST gateway, e.g.
	// adminv1.RegisterStatusServiceHandlerServer for the xDS status. They are served under
	// /v1/ behind the same authentication, error mapping and metrics as the admin services.
	Services []func(context.Context, *runtime.ServeMux) error
}

// Interceptor returns the unary interceptor the gRPC server must install: it records metrics
// and authenticates every admin RPC.
func (s *Server) Interceptor() grpc.UnaryServerInterceptor {
	metrics, auth := s.metrics.grpcInterceptor(), s.auth.interceptor()
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		return metrics(ctx, req, info, func(ctx context.Context, req any) (any, error) {
			return auth(ctx, req, info, handler)
		})
	}
}

// HTTPHandler returns the control plane's admin HTTP surface: the REST/JSON API under /v1/
// (the same services, authentication, validation and audit as gRPC), the OpenAPI document at
// /openapi.json, /healthz, /readyz and /metrics.
//
// REST errors are the google.rpc.Status as JSON, details included. HTTP codes follow
// grpc-gateway's mapping except FAILED_PRECONDITION, which is 409 Conflict rather than 400: the
// request is valid but conflicts with what is stored (a delete of something still referenced).
func (s *Server) HTTPHandler(ctx context.Context, cfg HTTPConfig) (http.Handler, error) {
	gw := runtime.NewServeMux(
		runtime.WithMarshalerOption(runtime.MIMEWildcard, &runtime.JSONPb{
			MarshalOptions:   protojson.MarshalOptions{UseProtoNames: true, EmitUnpopulated: false},
			UnmarshalOptions: protojson.UnmarshalOptions{DiscardUnknown: false},
		}),
		runtime.WithErrorHandler(restError),
		runtime.WithRoutingErrorHandler(restRoutingError),
		runtime.WithMiddlewares(s.metrics.restMiddleware),
	)
	regs := []func(context.Context, *runtime.ServeMux) error{
		func(ctx context.Context, m *runtime.ServeMux) error {
			return adminv1.RegisterCollectionServiceHandlerServer(ctx, m, collections{s: s})
		},
		func(ctx context.Context, m *runtime.ServeMux) error {
			return adminv1.RegisterEndpointServiceHandlerServer(ctx, m, endpoints{s: s})
		},
		func(ctx context.Context, m *runtime.ServeMux) error {
			return adminv1.RegisterClientServiceHandlerServer(ctx, m, clients{s: s})
		},
		func(ctx context.Context, m *runtime.ServeMux) error {
			return adminv1.RegisterAccessProfileServiceHandlerServer(ctx, m, profiles{s: s})
		},
		func(ctx context.Context, m *runtime.ServeMux) error {
			return adminv1.RegisterTokenServiceHandlerServer(ctx, m, tokens{s: s})
		},
		func(ctx context.Context, m *runtime.ServeMux) error {
			return adminv1.RegisterPolicyServiceHandlerServer(ctx, m, policies{s: s})
		},
		func(ctx context.Context, m *runtime.ServeMux) error {
			return adminv1.RegisterAuditServiceHandlerServer(ctx, m, audits{s: s})
		},
	}
	for _, reg := range append(regs, cfg.Services...) {
		if err := reg(ctx, gw); err != nil {
			return nil, err
		}
	}

	mux := http.NewServeMux()
	mux.Handle("/v1/", s.restAuth(gw))
	mux.HandleFunc("GET /openapi.json", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(adminv1.OpenAPI())
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if err := s.ready(r.Context(), cfg.Ready); err != nil {
			http.Error(w, "not ready: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ok\n"))
	})
	if cfg.Gatherer != nil {
		mux.Handle("GET /metrics", promhttp.HandlerFor(cfg.Gatherer, promhttp.HandlerOpts{}))
	}
	return mux, nil
}

// ready checks the store answers and then asks the runner's check.
func (s *Server) ready(ctx context.Context, check func(context.Context) error) error {
	if err := s.store.View(func(*store.Tx) error { return nil }); err != nil {
		return errors.New("store unavailable")
	}
	if check != nil {
		return check(ctx)
	}
	return nil
}

// restAuth authenticates REST calls exactly as the gRPC interceptor does and bounds the body.
func (s *Server) restAuth(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		ctx, err := s.auth.authenticate(r.Context(), r.Header.Get("Authorization"))
		if err != nil {
			s.metrics.observe("rest", methodLabel(r.Method)+" "+routeHint(r.URL.Path), "401", start)
			writeStatus(w, status.Convert(err), 0)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, maxBodyBytes)
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// restError writes a gateway error as JSON with the HTTP code httpStatus picks.
func restError(ctx context.Context, mux *runtime.ServeMux, m runtime.Marshaler, w http.ResponseWriter, r *http.Request, err error) {
	code := 0
	var he *runtime.HTTPStatusError
	if errors.As(err, &he) {
		code, err = he.HTTPStatus, he.Err
	}
	st := status.Convert(err)
	// grpc-gateway flattens the body reader's *http.MaxBytesError into a message.
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) || (st.Code() == codes.InvalidArgument && strings.Contains(st.Message(), "request body too large")) {
		writeStatus(w, status.New(codes.InvalidArgument, "request body is larger than 1 MiB"), http.StatusRequestEntityTooLarge)
		return
	}
	if m := unknownField.FindStringSubmatch(st.Message()); m != nil && st.Code() == codes.InvalidArgument {
		var v violations
		v.add(m[1], "is not a field of this request; check its spelling (JSON names are snake_case)")
		st = status.Convert(v.err())
	}
	writeStatus(w, st, code)
}

// unknownField finds the field name in protojson's unknown-field error.
var unknownField = regexp.MustCompile(`unknown field "([^"]+)"`)

// restRoutingError answers requests no route matches with the HTTP code the router chose (404
// or 405), rather than grpc-gateway's 501 for a wrong method.
func restRoutingError(ctx context.Context, mux *runtime.ServeMux, m runtime.Marshaler, w http.ResponseWriter, r *http.Request, code int) {
	c := codes.NotFound
	switch code {
	case http.StatusMethodNotAllowed:
		c = codes.Unimplemented
	case http.StatusBadRequest:
		c = codes.InvalidArgument
	}
	writeStatus(w, status.New(c, fmt.Sprintf("%s %s: %s", r.Method, r.URL.Path, strings.ToLower(http.StatusText(code)))), code)
}

// writeStatus writes st as JSON; code overrides the HTTP code httpStatus picks when not 0.
func writeStatus(w http.ResponseWriter, st *status.Status, code int) {
	if code == 0 {
		code = httpStatus(st.Code())
	}
	body, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(st.Proto())
	if err != nil {
		body = []byte(`{"code":13,"message":"failed to encode the error"}`)
		code = http.StatusInternalServerError
	}
	w.Header().Set("Content-Type", "application/json")
	if st.Code() == codes.Unauthenticated {
		w.Header().Set("WWW-Authenticate", `Bearer realm="gatehouse-admin"`)
	}
	w.WriteHeader(code)
	_, _ = w.Write(body)
}

// httpStatus maps a gRPC code to HTTP: grpc-gateway's table, except FAILED_PRECONDITION is 409.
func httpStatus(c codes.Code) int {
	if c == codes.FailedPrecondition {
		return http.StatusConflict
	}
	return runtime.HTTPStatusFromCode(c)
}

// routeHint keeps unauthenticated REST calls from creating one metric series per path: it keeps
// only the collection name after /v1/.
func routeHint(path string) string {
	rest := strings.TrimPrefix(path, "/v1/")
	if i := strings.IndexAny(rest, "/:"); i >= 0 {
		rest = rest[:i]
	}
	switch rest {
	case "collections", "clients", "policies", "audit-events", "status", "calls":
		return "/v1/" + rest
	}
	return "/v1/other"
}

// methodLabel bounds the method in metric labels: anyone can send any method token, even
// without a credential, and each would otherwise become a new time series.
func methodLabel(method string) string {
	switch method {
	case http.MethodGet, http.MethodPost, http.MethodPatch, http.MethodDelete, http.MethodPut, http.MethodHead, http.MethodOptions:
		return method
	}
	return "OTHER"
}
