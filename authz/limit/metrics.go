package limit

import (
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the limiter's Prometheus metrics. A nil *Metrics records
// nothing, so backends and tests can run without a registry.
type Metrics struct {
	decisions [numCodes]prometheus.Counter
	latency   *prometheus.HistogramVec
	errors    *prometheus.CounterVec
	fallback  prometheus.Gauge
}

// NewMetrics creates the limiter metrics and registers them with reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	decisions := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "gatehouse", Subsystem: "limit", Name: "decisions_total",
		Help: "Limiter decisions by result (ok, rate_limited, quota_exceeded, limiter_unavailable).",
	}, []string{"result"})
	m := &Metrics{
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "gatehouse", Subsystem: "limit", Name: "backend_duration_seconds",
			Help:    "Round-trip time of a shared limiter backend call.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25},
		}, []string{"backend"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "gatehouse", Subsystem: "limit", Name: "backend_errors_total",
			Help: "Shared limiter backend calls that failed or timed out.",
		}, []string{"backend"}),
		fallback: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "gatehouse", Subsystem: "limit", Name: "fallback_active",
			Help: "1 while the shared backend is unreachable and the fail mode decides.",
		}),
	}
	for c := range numCodes {
		m.decisions[c] = decisions.WithLabelValues(c.String())
	}
	var errs []error
	for _, c := range []prometheus.Collector{decisions, m.latency, m.errors, m.fallback} {
		if err := reg.Register(c); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("register limit metrics: %w", err)
	}
	return m, nil
}

// Decided counts one decision.
func (m *Metrics) Decided(d *Decision) {
	if m == nil || d.Code >= numCodes {
		return
	}
	m.decisions[d.Code].Inc()
}

// BackendCall records the latency of one backend call and whether it failed.
func (m *Metrics) BackendCall(backend string, took time.Duration, err error) {
	if m == nil {
		return
	}
	m.latency.WithLabelValues(backend).Observe(took.Seconds())
	if err != nil {
		m.errors.WithLabelValues(backend).Inc()
	}
}

// SetFallback records whether the fail mode is in effect.
func (m *Metrics) SetFallback(active bool) {
	if m == nil {
		return
	}
	v := 0.0
	if active {
		v = 1
	}
	m.fallback.Set(v)
}
