// Package calllog receives Envoy's access logs over gRPC (envoy.service.accesslog.v3
// AccessLogService) and keeps one record per call in a bounded in-memory ring, dropping records
// past their retention, for the logs and dashboard views of the admin API.
package calllog

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	accesslogdata "github.com/envoyproxy/go-control-plane/envoy/data/accesslog/v3"
	alsv3 "github.com/envoyproxy/go-control-plane/envoy/service/accesslog/v3"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
)

// Headers the access log carries besides the standard fields (compile's accessLogHeaders).
const (
	headerClientID     = "x-gatehouse-client-id"
	headerProfileID    = "x-gatehouse-profile-id"
	headerEndpointID   = "x-gatehouse-endpoint-id"
	headerCollectionID = "x-gatehouse-collection-id"
)

// Defaults of Config.
const (
	DefaultCapacity  = 100_000
	DefaultRetention = 24 * time.Hour
)

// Limits on the strings a Record keeps, in bytes. The log holds up to Capacity records from
// whatever callers send, anonymous ones included, so unbounded strings would let long paths
// alone fill gigabytes (100,000 records of 60 KiB paths are about 6 GiB); capped, a record
// stays under about 2.5 KiB (about 250 MB at DefaultCapacity). Longer values are cut at a UTF-8 boundary, without a marker.
const (
	// MaxPathBytes bounds Record.Path: longer than any route (collection and endpoint paths
	// total under 600 bytes), so every routed path is kept whole.
	MaxPathBytes = 1024
	// MaxRequestIDBytes bounds Record.RequestID, which a caller may send itself.
	MaxRequestIDBytes = 256
	// MaxDetailsBytes bounds Record.Details.
	MaxDetailsBytes = 256
	// MaxIDBytes bounds Record.Node, ClientID, ProfileID, EndpointID, CollectionID and
	// RemoteIP; the admin API's ids are at most 64 bytes.
	MaxIDBytes = 128
	// MaxMethodBytes bounds Record.Method.
	MaxMethodBytes = 16
)

// Record is one call through a gateway. Its strings are cut to the Max*Bytes limits.
type Record struct {
	// Time is when the request started.
	Time time.Time
	// Node is the id of the gateway that logged the call.
	Node string
	// RequestID is the x-request-id callers see.
	RequestID string
	// Method is the HTTP method.
	Method string
	// Path is the request path without its query string, which may carry secrets.
	Path string
	// Status is the response status code; 0 when no response was sent.
	Status uint32
	// Duration is from the first request byte to the last response byte.
	Duration time.Duration
	// ClientID, ProfileID, EndpointID and CollectionID say who called what; empty when the
	// call was refused before they were known.
	ClientID, ProfileID, EndpointID, CollectionID string
	// RemoteIP is the caller's address as Envoy saw it.
	RemoteIP string
	// BytesIn and BytesOut are the request and response body sizes.
	BytesIn, BytesOut uint64
	// Details is Envoy's response code details, e.g. "ext_authz_denied" or "via_upstream".
	Details string
}

// Config configures a Log.
type Config struct {
	// Capacity bounds the records kept; the oldest are dropped first. Default DefaultCapacity.
	Capacity int
	// Retention drops records older than this; default DefaultRetention.
	Retention time.Duration
	// Now is the clock for retention; time.Now when nil.
	Now func() time.Time
	// Logger receives stream errors; slog.Default() when nil.
	Logger *slog.Logger
	// Registry receives the gatehouse_calllog_* metrics; none when nil.
	Registry prometheus.Registerer
}

// Log is the in-memory call log and the AccessLogService that fills it.
type Log struct {
	alsv3.UnimplementedAccessLogServiceServer

	retention time.Duration
	now       func() time.Time
	log       *slog.Logger
	records   prometheus.Counter
	dropped   *prometheus.CounterVec

	mu   sync.Mutex
	ring []Record // ring[head] is the oldest of n records
	head int
	n    int
}

// New returns an empty Log.
func New(cfg Config) (*Log, error) {
	if cfg.Capacity <= 0 {
		cfg.Capacity = DefaultCapacity
	}
	if cfg.Retention <= 0 {
		cfg.Retention = DefaultRetention
	}
	l := &Log{retention: cfg.Retention, now: cfg.Now, log: cfg.Logger, ring: make([]Record, cfg.Capacity)}
	if l.now == nil {
		l.now = time.Now
	}
	if l.log == nil {
		l.log = slog.Default()
	}
	l.records = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "gatehouse_calllog_records_total", Help: "Call records received from gateways.",
	})
	l.dropped = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "gatehouse_calllog_dropped_total", Help: "Call records dropped, by reason (capacity, retention).",
	}, []string{"reason"})
	if cfg.Registry != nil {
		for _, c := range []prometheus.Collector{l.records, l.dropped} {
			if err := cfg.Registry.Register(c); err != nil {
				return nil, fmt.Errorf("register calllog metrics: %w", err)
			}
		}
	}
	return l, nil
}

// Register serves the AccessLogService on g (the xDS server's port, where the bootstrap's
// gatehouse-controlplane cluster points).
func (l *Log) Register(g grpc.ServiceRegistrar) { alsv3.RegisterAccessLogServiceServer(g, l) }

// StreamAccessLogs implements alsv3.AccessLogServiceServer: Envoy sends its identity once, then
// batches of HTTP log entries.
func (l *Log) StreamAccessLogs(stream alsv3.AccessLogService_StreamAccessLogsServer) error {
	var node string
	for {
		msg, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return stream.SendAndClose(&alsv3.StreamAccessLogsResponse{})
		}
		if err != nil {
			if stream.Context().Err() == nil {
				l.log.Warn("access log stream ended", "node", node, "error", err)
			}
			return err
		}
		if id := msg.GetIdentifier(); id != nil {
			node = id.GetNode().GetId()
		}
		entries := msg.GetHttpLogs().GetLogEntry()
		if len(entries) == 0 {
			continue
		}
		recs := make([]Record, 0, len(entries))
		for _, e := range entries {
			recs = append(recs, record(node, e))
		}
		l.add(recs)
	}
}

func record(node string, e *accesslogdata.HTTPAccessLogEntry) Record {
	c, req, resp := e.GetCommonProperties(), e.GetRequest(), e.GetResponse()
	h := req.GetRequestHeaders()
	path, _, hasQuery := strings.Cut(req.GetPath(), "?")
	if hasQuery && len(path) <= MaxPathBytes {
		// The path is a prefix of the request line; a copy lets the query's memory go.
		path = strings.Clone(path)
	}
	r := Record{
		Node:         truncate(node, MaxIDBytes),
		RequestID:    truncate(req.GetRequestId(), MaxRequestIDBytes),
		Method:       truncate(req.GetRequestMethod().String(), MaxMethodBytes),
		Path:         truncate(path, MaxPathBytes),
		Status:       resp.GetResponseCode().GetValue(),
		Duration:     c.GetDuration().AsDuration(),
		ClientID:     truncate(h[headerClientID], MaxIDBytes),
		ProfileID:    truncate(h[headerProfileID], MaxIDBytes),
		EndpointID:   truncate(h[headerEndpointID], MaxIDBytes),
		CollectionID: truncate(h[headerCollectionID], MaxIDBytes),
		RemoteIP:     truncate(c.GetDownstreamRemoteAddress().GetSocketAddress().GetAddress(), MaxIDBytes),
		BytesIn:      req.GetRequestBodyBytes(),
		BytesOut:     resp.GetResponseBodyBytes(),
		Details:      truncate(resp.GetResponseCodeDetails(), MaxDetailsBytes),
	}
	if c.GetStartTime() != nil {
		r.Time = c.GetStartTime().AsTime()
	}
	if c.GetDuration() == nil && c.GetTimeToLastDownstreamTxByte() != nil {
		r.Duration = c.GetTimeToLastDownstreamTxByte().AsDuration()
	}
	return r
}

// truncate returns s cut to at most n bytes without splitting a UTF-8 sequence. A cut string
// is copied: a substring would keep the whole original, and so the received entry, alive.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return strings.Clone(s[:n])
}

func (l *Log) add(recs []Record) {
	l.mu.Lock()
	defer l.mu.Unlock()
	capacity := len(l.ring)
	overwritten := 0
	for _, r := range recs {
		if l.n == capacity {
			l.head = (l.head + 1) % capacity
			l.n--
			overwritten++
		}
		l.ring[(l.head+l.n)%capacity] = r
		l.n++
	}
	l.records.Add(float64(len(recs)))
	if overwritten > 0 {
		l.dropped.WithLabelValues("capacity").Add(float64(overwritten))
	}
	l.expireLocked()
}

// expireLocked drops records past retention from the oldest end. Records arrive roughly in
// time order, so the scan stops at the first one still retained.
func (l *Log) expireLocked() {
	cutoff := l.now().Add(-l.retention)
	expired := 0
	for l.n > 0 && l.ring[l.head].Time.Before(cutoff) {
		l.ring[l.head] = Record{}
		l.head = (l.head + 1) % len(l.ring)
		l.n--
		expired++
	}
	if expired > 0 {
		l.dropped.WithLabelValues("retention").Add(float64(expired))
	}
}

// Filter selects records; zero fields match everything.
type Filter struct {
	ClientID, ProfileID, EndpointID, CollectionID string
	// Since keeps records that started at or after it.
	Since time.Time
	// Limit bounds the result; default 100.
	Limit int
}

func (f Filter) match(r *Record) bool {
	return (f.ClientID == "" || r.ClientID == f.ClientID) &&
		(f.ProfileID == "" || r.ProfileID == f.ProfileID) &&
		(f.EndpointID == "" || r.EndpointID == f.EndpointID) &&
		(f.CollectionID == "" || r.CollectionID == f.CollectionID) &&
		(f.Since.IsZero() || !r.Time.Before(f.Since))
}

// Query returns the newest records matching f, newest first.
func (l *Log) Query(_ context.Context, f Filter) []Record {
	if f.Limit <= 0 {
		f.Limit = 100
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.expireLocked()
	var out []Record
	for i := l.n - 1; i >= 0 && len(out) < f.Limit; i-- {
		r := &l.ring[(l.head+i)%len(l.ring)]
		if f.match(r) {
			out = append(out, *r)
		}
	}
	return out
}

// each calls fn, newest first, for every kept record that matches f, ignoring f.Limit. fn runs
// under the lock and must not keep r.
func (l *Log) each(f Filter, fn func(r *Record)) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.expireLocked()
	for i := l.n - 1; i >= 0; i-- {
		r := &l.ring[(l.head+i)%len(l.ring)]
		if f.match(r) {
			fn(r)
		}
	}
}

// Retention is how long records are kept.
func (l *Log) Retention() time.Duration { return l.retention }

// Len is the number of records kept.
func (l *Log) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.n
}
