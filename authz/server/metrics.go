package server

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"gatehouse/authz/check"
)

// API names label the latency histogram.
const (
	apiGRPC = "grpc"
	apiHTTP = "http"
)

// Metrics are the sidecar's decision metrics. A nil *Metrics records nothing.
type Metrics struct {
	decisions [check.NumCodes]prometheus.Counter
	latency   map[string]prometheus.Observer
	version   *prometheus.GaugeVec
	ready     prometheus.Gauge

	mu      sync.Mutex
	current *string // version label currently set, nil before the first config
}

// NewMetrics creates the decision metrics and registers them with reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	decisions := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "gatehouse", Subsystem: "authz", Name: "decisions_total",
		Help: "Authorization decisions by result (allow, deny) and code.",
	}, []string{"result", "code"})
	latency := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: "gatehouse", Subsystem: "authz", Name: "decision_duration_seconds",
		Help:    "Time to decide one request, from the decoded request to the encoded response.",
		Buckets: []float64{1e-6, 2.5e-6, 5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 5e-3, 2.5e-2},
	}, []string{"api"})
	m := &Metrics{
		latency: map[string]prometheus.Observer{},
		version: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "gatehouse", Subsystem: "authz", Name: "config_info",
			Help: "1 for the version of the config in force.",
		}, []string{"version"}),
		ready: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "gatehouse", Subsystem: "authz", Name: "config_ready",
			Help: "1 once a config is held and requests are decided.",
		}),
	}
	for c := range check.NumCodes {
		result := "deny"
		if c == check.OK {
			result = "allow"
		}
		m.decisions[c] = decisions.WithLabelValues(result, c.String())
	}
	for _, api := range []string{apiGRPC, apiHTTP} {
		m.latency[api] = latency.WithLabelValues(api)
	}
	var errs []error
	for _, c := range []prometheus.Collector{decisions, latency, m.version, m.ready} {
		if err := reg.Register(c); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("register authz metrics: %w", err)
	}
	return m, nil
}

func (m *Metrics) decided(api string, code check.Code, took time.Duration) {
	if m == nil || code >= check.NumCodes {
		return
	}
	m.decisions[code].Inc()
	m.latency[api].Observe(took.Seconds())
}

// ConfigInForce records the version of the config now deciding.
func (m *Metrics) ConfigInForce(version string) {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.current != nil && *m.current != version {
		m.version.DeleteLabelValues(*m.current)
	}
	m.current = &version
	m.version.WithLabelValues(version).Set(1)
	m.ready.Set(1)
}
