package jwtauth

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the verifier's Prometheus metrics. A nil *metrics records
// nothing, so a Verifier runs without a registry.
type metrics struct {
	results     [numCodes]prometheus.Counter
	cacheHits   prometheus.Counter
	cacheMisses prometheus.Counter
	fetchOK     prometheus.Counter
	fetchErr    prometheus.Counter
}

func newMetrics(reg prometheus.Registerer, c *cache) (*metrics, error) {
	if reg == nil {
		return nil, nil
	}
	results := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "gatehouse", Subsystem: "jwt", Name: "verifications_total",
		Help: "JWT verifications by result: ok or the refusal code.",
	}, []string{"result"})
	cacheLookups := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "gatehouse", Subsystem: "jwt", Name: "cache_lookups_total",
		Help: "Lookups in the verified-token cache by result (hit, miss).",
	}, []string{"result"})
	fetches := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "gatehouse", Subsystem: "jwt", Name: "key_fetches_total",
		Help: "JWKS and OIDC discovery fetches by result (ok, error).",
	}, []string{"result"})
	collectors := []prometheus.Collector{results, cacheLookups, fetches}
	if c != nil {
		collectors = append(collectors, prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: "gatehouse", Subsystem: "jwt", Name: "cache_entries",
			Help: "Entries in the verified-token cache.",
		}, func() float64 { n, _ := c.stats(); return float64(n) }),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Namespace: "gatehouse", Subsystem: "jwt", Name: "cache_bytes",
				Help: "Approximate memory held by the verified-token cache.",
			}, func() float64 { _, b := c.stats(); return float64(b) }))
	}
	m := &metrics{
		cacheHits:   cacheLookups.WithLabelValues("hit"),
		cacheMisses: cacheLookups.WithLabelValues("miss"),
		fetchOK:     fetches.WithLabelValues("ok"),
		fetchErr:    fetches.WithLabelValues("error"),
	}
	for code := range numCodes {
		m.results[code] = results.WithLabelValues(code.String())
	}
	var errs []error
	for _, col := range collectors {
		if err := reg.Register(col); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("register jwt metrics: %w", err)
	}
	return m, nil
}

func (m *metrics) verified(c Code) {
	if m != nil && c < numCodes {
		m.results[c].Inc()
	}
}

func (m *metrics) cacheLookup(hit bool) {
	if m == nil {
		return
	}
	if hit {
		m.cacheHits.Inc()
	} else {
		m.cacheMisses.Inc()
	}
}

func (m *metrics) fetched(ok bool) {
	if m == nil {
		return
	}
	if ok {
		m.fetchOK.Inc()
	} else {
		m.fetchErr.Inc()
	}
}
