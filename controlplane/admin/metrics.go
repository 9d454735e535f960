package admin

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/status"
)

// metrics counts admin requests by transport, method and result.
type metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_admin_requests_total",
			Help: "Admin API requests by transport (grpc or rest), method and result code.",
		}, []string{"transport", "method", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "gatehouse_admin_request_duration_seconds",
			Help:    "Admin API request latency by transport and method.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}, []string{"transport", "method"}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.requests, m.duration} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register admin metrics: %w", err)
		}
	}
	return m, nil
}

func (m *metrics) observe(transport, method, code string, start time.Time) {
	m.requests.WithLabelValues(transport, method, code).Inc()
	m.duration.WithLabelValues(transport, method).Observe(time.Since(start).Seconds())
}

// grpcInterceptor records every gRPC call, including the ones authentication refuses.
func (m *metrics) grpcInterceptor() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		start := time.Now()
		resp, err := handler(ctx, req)
		m.observe("grpc", info.FullMethod, status.Code(err).String(), start)
		return resp, err
	}
}

// restMiddleware records every REST call that matched a route, labelled by its route template
// so that ids do not explode the label set.
func (m *metrics) restMiddleware(next runtime.HandlerFunc) runtime.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request, params map[string]string) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w, code: http.StatusOK}
		next(rec, r, params)
		route := r.URL.Path
		if p, ok := runtime.HTTPPattern(r.Context()); ok {
			route = p.String()
		}
		m.observe("rest", methodLabel(r.Method)+" "+route, strconv.Itoa(rec.code), start)
	}
}

// statusRecorder remembers the status code a handler writes.
type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (s *statusRecorder) WriteHeader(code int) {
	s.code = code
	s.ResponseWriter.WriteHeader(code)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }
