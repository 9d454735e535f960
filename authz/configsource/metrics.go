package configsource

import (
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the config source's Prometheus metrics. They always exist;
// without a Registerer they are simply not exported.
type metrics struct {
	connected  prometheus.Gauge
	applied    prometheus.Counter
	nacks      prometheus.Counter
	persistErr prometheus.Counter
	streams    prometheus.Counter
	lastUpdate prometheus.Gauge
	version    *prometheus.GaugeVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	opts := func(name, help string) prometheus.Opts {
		return prometheus.Opts{Namespace: "gatehouse", Subsystem: "authz_config", Name: name, Help: help}
	}
	m := &metrics{
		connected: prometheus.NewGauge(prometheus.GaugeOpts(opts("connected",
			"1 while a config stream to the control plane is open and has answered."))),
		applied: prometheus.NewCounter(prometheus.CounterOpts(opts("updates_applied_total",
			"Configs accepted by Apply and acknowledged to the control plane."))),
		nacks: prometheus.NewCounter(prometheus.CounterOpts(opts("nacks_total",
			"Config updates refused (decode or Apply error) and NACKed; the last good config stayed."))),
		persistErr: prometheus.NewCounter(prometheus.CounterOpts(opts("persist_errors_total",
			"Applied configs that could not be written to the local cache."))),
		streams: prometheus.NewCounter(prometheus.CounterOpts(opts("streams_total",
			"Config streams opened to the control plane, reconnects included."))),
		lastUpdate: prometheus.NewGauge(prometheus.GaugeOpts(opts("last_update_timestamp_seconds",
			"Unix time of the last applied config."))),
		version: prometheus.NewGaugeVec(prometheus.GaugeOpts(opts("version_info",
			"The version of the config in effect, as a label with value 1.")), []string{"version"}),
	}
	if reg == nil {
		return m, nil
	}
	var errs []error
	for _, c := range []prometheus.Collector{m.connected, m.applied, m.nacks, m.persistErr, m.streams, m.lastUpdate, m.version} {
		if err := reg.Register(c); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("register config source metrics: %w", err)
	}
	return m, nil
}

// inEffect records the config that is now live.
func (m *metrics) inEffect(version string, at time.Time) {
	m.version.Reset()
	m.version.WithLabelValues(version).Set(1)
	m.lastUpdate.Set(float64(at.UnixNano()) / 1e9)
}
