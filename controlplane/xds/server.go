// Package xds serves the compiled configuration to Envoy gateways, authz sidecars and proxyless
// gRPC clients over ADS (state of the world and delta). One writer publishes a snapshot per
// store revision; every node gets the same resources (gateways without the proxyless
// api_listener); a config a node rejects is never re-sent to it in a loop.
//
// Decisions: the snapshot cache runs with ads=false, since in ADS mode it answers a SotW request
// only when it names every resource of the type, and gateways and proxyless clients name
// different subsets. Versions are per type and per resource content, so a revision sends only
// the types (SotW) or resources (delta) it changed. Each resource is encoded once and that
// encoding is served on every stream; a message published again (compile.Compiler passes the
// same message for an unchanged resource, and the same route for an unchanged endpoint) keeps
// its encoding, version and validation from the publish before.
package xds

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	serverv3 "github.com/envoyproxy/go-control-plane/pkg/server/v3"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/keepalive"

	adminv1 "gatehouse/proto/gatehouse/admin/v1"
)

// DefaultAddr is the platform's xDS (ADS) port.
const DefaultAddr = ":18000"

// Snapshot groups. Every node gets the same config, except that Envoy gateways are not sent the
// api_listener for proxyless gRPC clients: Envoy accepts an api_listener only from its
// bootstrap and warns on every LDS update that carries one. The NACK guard works per node on
// top of the groups.
const (
	groupProxyless = "proxyless"
	groupGateway   = "gateway"
)

// ErrInvalidSnapshot is wrapped by Publish when a snapshot fails validation; the last good
// snapshot stays served.
var ErrInvalidSnapshot = errors.New("invalid xds snapshot")

// Config configures a Server.
type Config struct {
	// Addr is the TCP address to listen on; DefaultAddr when empty. Ignored when Listener is set.
	Addr string
	// Listener, when set, is served instead of listening on Addr (tests pass 127.0.0.1:0).
	Listener net.Listener
	// Logger receives NACKs and rejected snapshots; slog.Default() when nil.
	Logger *slog.Logger
	// Registry receives the gatehouse_xds_* metrics; none are registered when nil.
	Registry prometheus.Registerer
	// Now is the clock for status times; time.Now when nil.
	Now func() time.Time
	// GRPCServerOptions are added to the server's own options (keepalive, stream limits).
	GRPCServerOptions []grpc.ServerOption
}

// Server is the xDS server. Its methods are safe for concurrent use, but Publish is meant to
// be called by one goroutine in revision order.
type Server struct {
	adminv1.UnimplementedStatusServiceServer

	log     *slog.Logger
	metrics *metrics
	now     func() time.Time
	addr    string
	grpc    *grpc.Server
	cache   cache.SnapshotCache
	tracker *tracker
	stop    context.CancelFunc

	mu           sync.Mutex // guards the fields below and orders publishes
	lis          net.Listener
	current      *snapshot // what proxyless clients and sidecars get
	gateway      *snapshot // current without the api_listener
	rejected     uint64
	lastRejected string
}

// New builds the server. It listens when Run is called, or serves a listener the caller opened
// through Serve.
func New(ctx context.Context, cfg Config) (*Server, error) {
	s := &Server{log: cfg.Logger, now: cfg.Now, lis: cfg.Listener, addr: cfg.Addr}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.addr == "" {
		s.addr = DefaultAddr
	}
	var err error
	if s.metrics, err = newMetrics(cfg.Registry); err != nil {
		return nil, err
	}
	s.tracker = newTracker(s.log, s.metrics, s.now)
	// ads=false: in ADS mode the snapshot cache holds a SotW answer until the request names every
	// resource of the type, and gateways and proxyless clients ask for different subsets of the
	// one snapshot. Envoy orders its own updates (clusters warm before listeners use them).
	s.cache = cache.NewSnapshotCache(false, groupHash{}, logAdapter{s.log})
	streamCtx, stop := context.WithCancel(ctx)
	s.stop = stop
	xdsServer := serverv3.NewServer(streamCtx, &guardedCache{SnapshotCache: s.cache, pins: s.tracker}, s.tracker)

	opts := []grpc.ServerOption{
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: 30 * time.Second, Timeout: 10 * time.Second}),
		// Envoy's ADS cluster pings every 30s; allow clients down to 10s without streams.
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 10 * time.Second, PermitWithoutStream: true}),
		// One ADS stream per node and protocol is normal; this bounds a misbehaving client.
		grpc.MaxConcurrentStreams(1000),
	}
	s.grpc = grpc.NewServer(append(opts, cfg.GRPCServerOptions...)...)
	discovery.RegisterAggregatedDiscoveryServiceServer(s.grpc, xdsServer)
	return s, nil
}

// Addr is the address the server listens on; nil before Run or Serve.
func (s *Server) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lis == nil {
		return nil
	}
	return s.lis.Addr()
}

// GRPCServer is the underlying gRPC server, for services that share the xDS port (the access
// log receiver). Register before serving.
func (s *Server) GRPCServer() *grpc.Server { return s.grpc }

// Serve serves xDS on lis until Stop.
func (s *Server) Serve(lis net.Listener) error {
	s.mu.Lock()
	s.lis = lis
	s.mu.Unlock()
	if err := s.grpc.Serve(lis); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
		return fmt.Errorf("xds serve: %w", err)
	}
	return nil
}

// Stop ends every xDS stream, then stops the server, at once when ctx ends first.
func (s *Server) Stop(ctx context.Context) {
	// xDS streams never end by themselves: end them first so GracefulStop can return.
	s.stop()
	done := make(chan struct{})
	go func() { s.grpc.GracefulStop(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		s.grpc.Stop()
	}
}

// Run listens on Config.Listener or Config.Addr and serves until ctx ends, then stops within
// five seconds.
func (s *Server) Run(ctx context.Context) error {
	s.mu.Lock()
	lis := s.lis
	s.mu.Unlock()
	if lis == nil {
		var err error
		if lis, err = net.Listen("tcp", s.addr); err != nil {
			return fmt.Errorf("xds listen %s: %w", s.addr, err)
		}
	}
	errc := make(chan error, 1)
	go func() { errc <- s.Serve(lis) }()
	select {
	case err := <-errc:
		s.stop()
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	s.Stop(sctx)
	return <-errc
}

// Publish validates one compile output and serves it to every node. An invalid output is logged,
// counted and refused with an error wrapping ErrInvalidSnapshot; the last good snapshot stays.
// Types whose content did not change keep their version, so clients are only sent what changed.
// The messages of res are read-only once published: one passed again is taken to be unchanged.
func (s *Server) Publish(ctx context.Context, rev uint64, res Resources) error {
	start := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	res, err := withGRPCListener(res)
	var snap *snapshot
	if err == nil {
		snap, err = buildSnapshot(rev, res, s.current)
	}
	if err == nil {
		err = consistent(res)
	}
	if err != nil {
		s.rejected++
		s.lastRejected = fmt.Sprintf("revision %d: %v", rev, err)
		s.metrics.publishes.WithLabelValues("invalid").Inc()
		s.log.Error("xds snapshot refused; serving the last good one", "revision", rev, "error", err)
		return fmt.Errorf("publish revision %d: %w: %w", rev, ErrInvalidSnapshot, err)
	}
	gw := snap.without(resource.ListenerType, GRPCListener, s.gateway)
	// Gateways first: a proxyless client of a route change can wait a moment longer than the
	// proxy that carries the traffic.
	if err := s.cache.SetSnapshot(ctx, groupGateway, gw); err != nil {
		return fmt.Errorf("publish revision %d: %w", rev, err)
	}
	if err := s.cache.SetSnapshot(ctx, groupProxyless, snap); err != nil {
		return fmt.Errorf("publish revision %d: %w", rev, err)
	}
	s.current, s.gateway = snap, gw
	s.metrics.publishes.WithLabelValues("ok").Inc()
	s.metrics.snapshotBytes.Set(float64(snap.bytes))
	s.metrics.snapshotRev.Set(float64(rev))
	s.metrics.publishDuration.Observe(time.Since(start).Seconds())
	return nil
}

// ListNodes implements adminv1.StatusServiceServer: the connected streams, what they accepted
// and rejected, and the published versions.
func (s *Server) ListNodes(context.Context, *adminv1.ListNodesRequest) (*adminv1.ListNodesResponse, error) {
	out := &adminv1.ListNodesResponse{Nodes: s.tracker.nodes()}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.current != nil {
		out.PublishedRevision = s.current.revision
		out.PublishedVersions = s.current.versionsByType()
	}
	out.RejectedPublishes = s.rejected
	out.LastRejectedError = s.lastRejected
	return out, nil
}

// groupHash maps Envoy nodes to the gateway snapshot and every other node to the full one.
type groupHash struct{}

// ID implements cache.NodeHash.
func (groupHash) ID(n *core.Node) string {
	if n.GetUserAgentName() == "envoy" {
		return groupGateway
	}
	return groupProxyless
}

// logAdapter feeds go-control-plane's logger interface into slog. Its info lines are per watch
// and go to debug.
type logAdapter struct{ l *slog.Logger }

func (a logAdapter) Debugf(format string, args ...any) {
	a.logf(slog.LevelDebug, format, args...)
}
func (a logAdapter) Infof(format string, args ...any) {
	a.logf(slog.LevelDebug, format, args...)
}
func (a logAdapter) Warnf(format string, args ...any) {
	a.logf(slog.LevelWarn, format, args...)
}
func (a logAdapter) Errorf(format string, args ...any) {
	a.logf(slog.LevelError, format, args...)
}

func (a logAdapter) logf(level slog.Level, format string, args ...any) {
	if !a.l.Enabled(context.Background(), level) {
		return
	}
	a.l.Log(context.Background(), level, fmt.Sprintf(format, args...), "component", "go-control-plane")
}
