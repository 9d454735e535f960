package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"gatehouse/controlplane/admin"
	"gatehouse/controlplane/calllog"
	"gatehouse/controlplane/compile"
	"gatehouse/controlplane/dashboard"
	"gatehouse/controlplane/store"
	"gatehouse/controlplane/xds"
	adminv1 "gatehouse/proto/gatehouse/admin/v1"
)

// Config is everything the control plane needs to run.
type Config struct {
	// DataDir holds the store file; created if missing.
	DataDir string
	// AdminHTTPAddr serves REST/JSON, /openapi.json, /healthz, /readyz, /metrics and the
	// dashboard at /dashboard/.
	AdminHTTPAddr string
	// AdminGRPCAddr serves the admin gRPC services.
	AdminGRPCAddr string
	// XDSAddr serves ADS (state of the world and delta) to gateways and authz sidecars, and
	// the access-log service Envoy streams call logs to.
	XDSAddr string
	// Compile holds the deployment facts compile needs: listener port, runtime addresses.
	Compile compile.Settings
	// AdminToken is the value of GATEHOUSE_ADMIN_TOKEN; empty creates one on the first start.
	AdminToken string
	// TLSCertFile and TLSKeyFile, when both set, serve the admin APIs over TLS, which
	// gatehousectl expects for any address that is not loopback.
	TLSCertFile, TLSKeyFile string
	// XDSTLSCertFile and XDSTLSKeyFile, when both set, serve xDS and the access-log service
	// over TLS: the port ships token hashes and JWT HMAC secrets. Empty serves plaintext.
	XDSTLSCertFile, XDSTLSKeyFile string
	// XDSClientCAFile, when set, makes xDS mutual TLS: every gateway and sidecar must present
	// a client certificate signed by one of these PEM CAs. Needs XDSTLSCertFile.
	XDSClientCAFile string
	// Logger receives the control plane's logs; nil discards them.
	Logger *slog.Logger
	// Out receives what an operator must read once: the addresses and a new admin token.
	Out io.Writer
	// ShutdownTimeout bounds the graceful stop of the servers.
	ShutdownTimeout time.Duration
	// OnListen, when set, is told each server's bound address once all are bound and the
	// banner is printed (tests listen on port 0).
	OnListen func(name, addr string)
}

// storeFile is the store's file name in the data directory.
const storeFile = "controlplane.db"

// Server names, as logged and passed to Config.OnListen.
const (
	serverAdminGRPC = "admin-grpc"
	serverAdminHTTP = "admin-http"
	serverXDS       = "xds"
)

// server is one listener the control plane runs. Adding a server (the xDS server, say) is one
// more entry in Run's list: serveAll listens on every address before any serves and stops
// them all when ctx ends or one fails.
type server struct {
	name  string
	addr  string
	serve func(net.Listener) error
	stop  func(context.Context)
}

// Run opens the store, makes sure an admin token exists, and serves until ctx is done, then
// stops every server gracefully.
func Run(ctx context.Context, cfg Config) error {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	out := cfg.Out
	if out == nil {
		out = io.Discard
	}
	if cfg.ShutdownTimeout <= 0 {
		cfg.ShutdownTimeout = 10 * time.Second
	}
	tlsCfg, err := loadTLS(cfg.TLSCertFile, cfg.TLSKeyFile)
	if err != nil {
		return err
	}
	xdsTLS, err := loadXDSTLS(cfg.XDSTLSCertFile, cfg.XDSTLSKeyFile, cfg.XDSClientCAFile)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("create data directory: %w", err)
	}
	dbPath := filepath.Join(cfg.DataDir, storeFile)
	st, err := store.Open(ctx, store.Config{Path: dbPath, Logger: log})
	if err != nil {
		return err
	}
	defer func() {
		if err := st.Close(); err != nil {
			log.Error("close store", "err", err)
		}
	}()

	secret, err := admin.Bootstrap(ctx, st, cfg.AdminToken, time.Now())
	if err != nil {
		return err
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	adm, err := admin.New(admin.Config{Store: st, Logger: log, Registry: reg})
	if err != nil {
		return err
	}

	// Check the compile settings now: a typo in a runtime address fails the start, not every
	// later publish.
	compiler, err := compile.NewCompiler(cfg.Compile)
	if err != nil {
		return fmt.Errorf("compile settings: %w", err)
	}
	if _, err := compiler.Compile(&store.Snapshot{}); err != nil {
		return fmt.Errorf("compile settings: %w", err)
	}
	xcfg := xds.Config{Logger: log, Registry: reg}
	if xdsTLS != nil {
		// The access-log service shares this gRPC server, so Envoy's call logs travel over the
		// same TLS (and client certificates) as its config.
		xcfg.GRPCServerOptions = []grpc.ServerOption{grpc.Creds(credentials.NewTLS(xdsTLS))}
	}
	xsrv, err := xds.New(ctx, xcfg)
	if err != nil {
		return err
	}
	calls, err := calllog.New(calllog.Config{Logger: log, Registry: reg})
	if err != nil {
		return err
	}
	calls.Register(xsrv.GRPCServer())
	callsAPI := calllog.NewService(calls)

	grpcOpts := []grpc.ServerOption{grpc.ChainUnaryInterceptor(adm.Interceptor())}
	if tlsCfg != nil {
		grpcOpts = append(grpcOpts, grpc.Creds(credentials.NewTLS(tlsCfg)))
	}
	grpcSrv := grpc.NewServer(grpcOpts...)
	adm.Register(grpcSrv)
	adminv1.RegisterStatusServiceServer(grpcSrv, xsrv)
	adminv1.RegisterCallLogServiceServer(grpcSrv, callsAPI)
	hs := health.NewServer()
	healthpb.RegisterHealthServer(grpcSrv, hs)

	handler, err := adm.HTTPHandler(ctx, admin.HTTPConfig{
		Gatherer: reg,
		Services: []func(context.Context, *runtime.ServeMux) error{
			func(ctx context.Context, m *runtime.ServeMux) error {
				return adminv1.RegisterStatusServiceHandlerServer(ctx, m, xsrv)
			},
			func(ctx context.Context, m *runtime.ServeMux) error {
				return adminv1.RegisterCallLogServiceHandlerServer(ctx, m, callsAPI)
			},
		},
	})
	if err != nil {
		return err
	}
	// The dashboard page is static and public; every byte of data it shows comes from the
	// authenticated /v1/ API above.
	httpSrv := &http.Server{Handler: dashboard.Mount(handler), ReadHeaderTimeout: 10 * time.Second, TLSConfig: tlsCfg}

	servers := []server{
		{
			name: serverAdminGRPC, addr: cfg.AdminGRPCAddr,
			serve: func(l net.Listener) error {
				// A stop that wins the race with Serve is a clean shutdown, not a failure.
				if err := grpcSrv.Serve(l); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
					return err
				}
				return nil
			},
			stop: func(ctx context.Context) { hs.Shutdown(); stopGRPC(ctx, grpcSrv) },
		},
		{
			name: serverAdminHTTP, addr: cfg.AdminHTTPAddr,
			serve: func(l net.Listener) error {
				serve := httpSrv.Serve
				if tlsCfg != nil {
					serve = func(l net.Listener) error { return httpSrv.ServeTLS(l, "", "") }
				}
				if err := serve(l); !errors.Is(err, http.ErrServerClosed) {
					return err
				}
				return nil
			},
			stop: func(ctx context.Context) {
				if err := httpSrv.Shutdown(ctx); err != nil {
					_ = httpSrv.Close()
				}
			},
		},
		{name: serverXDS, addr: cfg.XDSAddr, serve: xsrv.Serve, stop: xsrv.Stop},
	}
	// One writer: every committed revision is compiled and published, in order. Subscribing
	// before the first build means no revision falls between the two.
	revs := st.Subscribe(ctx)
	build := func(context.Context) (uint64, xds.Resources, error) {
		snap, err := st.Snapshot()
		if err != nil {
			return 0, nil, err
		}
		// The compiler reuses the routes of unchanged endpoints: one change rebuilds one route.
		out, err := compiler.Compile(snap)
		if err != nil {
			return 0, nil, fmt.Errorf("compile revision %d: %w", snap.Revision, err)
		}
		return snap.Revision, out.Resources(), nil
	}
	follow := func(ctx context.Context) error { return xsrv.Follow(ctx, revs, build) }
	return serveAll(ctx, log, out, servers, follow, cfg, dbPath, secret)
}

// serveAll listens on every server's address first, so a busy port fails the start before
// anything serves, prints how to reach the API, then serves until ctx is done or one fails.
func serveAll(ctx context.Context, log *slog.Logger, out io.Writer, servers []server, follow func(context.Context) error, cfg Config, dbPath, secret string) error {
	listeners := make([]net.Listener, 0, len(servers))
	addrs := make(map[string]string, len(servers))
	for _, s := range servers {
		l, err := net.Listen("tcp", s.addr)
		if err != nil {
			for _, l := range listeners {
				_ = l.Close()
			}
			return fmt.Errorf("%s: listen on %s: %w", s.name, s.addr, err)
		}
		listeners = append(listeners, l)
		addrs[s.name] = l.Addr().String()
		log.Info("listening", "server", s.name, "addr", l.Addr().String())
	}
	printBanner(out, addrs, cfg.TLSCertFile != "", xdsSecurity(cfg), dbPath, secret)
	if cfg.OnListen != nil {
		for _, s := range servers {
			cfg.OnListen(s.name, addrs[s.name])
		}
	}

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		// The store closes the revision channel once ctx is done, which can be seen before
		// the cancel has reached gctx: a stop, not a failure.
		if err := follow(gctx); err != nil && gctx.Err() == nil && ctx.Err() == nil {
			return fmt.Errorf("xds publisher: %w", err)
		}
		return nil
	})
	for i, s := range servers {
		g.Go(func() error {
			if err := s.serve(listeners[i]); err != nil {
				return fmt.Errorf("%s: %w", s.name, err)
			}
			return nil
		})
	}
	g.Go(func() error {
		<-gctx.Done()
		log.Info("shutting down")
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.ShutdownTimeout)
		defer cancel()
		for _, s := range servers {
			s.stop(sctx)
		}
		return nil
	})
	return g.Wait()
}

// stopGRPC drains in-flight calls, cutting them off when ctx ends first.
func stopGRPC(ctx context.Context, s *grpc.Server) {
	done := make(chan struct{})
	go func() { s.GracefulStop(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		s.Stop()
	}
}

// printBanner tells the operator where the API is and, once, the new admin token.
func printBanner(out io.Writer, addrs map[string]string, tls bool, xdsSec, dbPath, secret string) {
	scheme := "http://"
	if tls {
		scheme = "https://"
	}
	base := scheme + dialable(addrs[serverAdminHTTP])
	fmt.Fprintf(out, "gatehouse control plane\n")
	fmt.Fprintf(out, "  admin REST: %s/v1/ (OpenAPI at %s/openapi.json)\n", base, base)
	fmt.Fprintf(out, "  dashboard:  %s/dashboard/\n", base)
	fmt.Fprintf(out, "  admin gRPC: %s\n", dialable(addrs[serverAdminGRPC]))
	fmt.Fprintf(out, "  xDS + ALS:  %s (%s)\n", dialable(addrs[serverXDS]), xdsSec)
	fmt.Fprintf(out, "  store:      %s\n", dbPath)
	if secret != "" {
		fmt.Fprintf(out, "\nNew admin token (shown only this once; only its hash is stored):\n\n  %s\n\n", secret)
		fmt.Fprintf(out, "Use it as: curl -H \"Authorization: Bearer $%s\" %s/v1/collections\n", admin.EnvAdminToken, base)
		fmt.Fprintf(out, "     or:   export %s=<token> for gatehousectl\n", admin.EnvAdminToken)
	}
}

// dialable turns a listen address such as ":9080" or "[::]:9080" into one a client can use.
func dialable(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "localhost"
	}
	return net.JoinHostPort(host, port)
}
