package xds

import (
	"fmt"
	"strings"

	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/prometheus/client_golang/prometheus"
)

// knownTypes bounds the type label: type URLs come from clients and must not grow the label set.
var knownTypes = map[string]bool{
	resource.ListenerType: true,
	resource.RouteType:    true,
	resource.ClusterType:  true,
	resource.EndpointType: true,
	TypeAuthzEndpoint:     true,
	TypeAuthzProfile:      true,
	TypeAuthzPolicy:       true,
}

type metrics struct {
	publishes       *prometheus.CounterVec
	publishDuration prometheus.Histogram
	snapshotBytes   prometheus.Gauge
	snapshotRev     prometheus.Gauge
	pushes          *prometheus.CounterVec
	nacks           *prometheus.CounterVec
	streams         prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		publishes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_xds_publishes_total",
			Help: "Snapshots offered for publishing, by result (ok, invalid).",
		}, []string{"result"}),
		publishDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "gatehouse_xds_publish_duration_seconds",
			Help:    "Time to index, validate and set one snapshot.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}),
		snapshotBytes: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "gatehouse_xds_snapshot_bytes",
			Help: "Encoded size of the resources of the served snapshot.",
		}),
		snapshotRev: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "gatehouse_xds_snapshot_revision",
			Help: "Store revision of the served snapshot.",
		}),
		pushes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_xds_pushes_total",
			Help: "Discovery responses sent, by resource type.",
		}, []string{"type"}),
		nacks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_xds_nacks_total",
			Help: "Configs rejected by xDS clients, by resource type.",
		}, []string{"type"}),
		streams: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "gatehouse_xds_connected_streams",
			Help: "Open xDS streams (one per connected node and protocol).",
		}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.publishes, m.publishDuration, m.snapshotBytes, m.snapshotRev, m.pushes, m.nacks, m.streams} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register xds metrics: %w", err)
		}
	}
	return m, nil
}

// typeLabel is the short type name ("RouteConfiguration", "authz.v1.Profile") or "other".
func (m *metrics) typeLabel(typeURL string) string {
	if !knownTypes[typeURL] {
		return "other"
	}
	name := strings.TrimPrefix(typeURL, resource.APITypePrefix)
	name = strings.TrimPrefix(name, "gatehouse.")
	if strings.HasPrefix(name, "envoy.") {
		name = name[strings.LastIndexByte(name, '.')+1:]
	}
	return name
}
