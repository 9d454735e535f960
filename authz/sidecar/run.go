package sidecar

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	bolt "go.etcd.io/bbolt"
	"golang.org/x/sync/errgroup"

	"gatehouse/authz/check"
	"gatehouse/authz/configsource"
	"gatehouse/authz/jwtauth"
	"gatehouse/authz/limit"
	"gatehouse/authz/limit/redislimit"
	"gatehouse/authz/server"
	authzv1 "gatehouse/proto/gatehouse/authz/v1"
)

// DBFile is the sidecar's bbolt file inside the data directory.
const DBFile = "authz.db"

// QuotaBucket holds the in-memory limiter's quota counters in DBFile; the config source
// keeps the config in bucket "config".
const QuotaBucket = "quota"

// sweepEvery is how often idle limiter state is dropped.
const sweepEvery = time.Minute

// sweeper is a limiter that can drop the state of idle and removed profiles.
type sweeper interface {
	Sweep(now time.Time, keep func(limit.Key) bool) int
}

// Run starts the sidecar and blocks until ctx ends, then stops gracefully. It returns an
// error when it cannot start or a server fails.
func Run(ctx context.Context, cfg Config) (err error) {
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	if err := cfg.validate(); err != nil {
		return err
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("create data directory: %w", err)
	}
	db, err := bolt.Open(filepath.Join(cfg.DataDir, DBFile), 0o600, &bolt.Options{Timeout: 2 * time.Second})
	if err != nil {
		return fmt.Errorf("open %s (is another sidecar using %s?): %w", DBFile, cfg.DataDir, err)
	}
	defer func() { err = errors.Join(err, db.Close()) }()

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	limitMetrics, err := limit.NewMetrics(reg)
	if err != nil {
		return err
	}
	lim, sweep, closeLimiter, err := openLimiter(ctx, cfg, db, limitMetrics, log)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, closeLimiter()) }()

	verifier, err := jwtauth.New(ctx, jwtauth.Config{Logger: log.With("component", "jwt"), Registerer: reg})
	if err != nil {
		return err
	}
	defer verifier.Close()

	checker := check.New(check.Config{Limiter: lim, JWT: jwtAdapter{verifier}, TrustedHops: cfg.TrustedHops})
	metrics, err := server.NewMetrics(reg)
	if err != nil {
		return err
	}
	health := server.NewHealth()
	apply := func(_ context.Context, c *authzv1.Config) error {
		x, err := check.Build(c)
		if err != nil {
			return err
		}
		if err := verifier.SetProfiles(x.JWTProfiles()); err != nil {
			return fmt.Errorf("JWT profiles: %w", err)
		}
		checker.Store(x)
		metrics.ConfigInForce(x.Version())
		health.SetReady(true)
		if sweep != nil {
			sweep.Sweep(time.Now(), x.KeepsLimitKey)
		}
		log.Info("authz config in force", "version", x.Version(), "endpoints", len(c.GetEndpoints()),
			"profiles", len(c.GetProfiles()), "policies", len(c.GetPolicies()))
		return nil
	}

	g, gctx := errgroup.WithContext(ctx)
	if cfg.ConfigFile != "" {
		c, err := LoadConfigFile(cfg.ConfigFile)
		if err != nil {
			return err
		}
		if err := apply(ctx, c); err != nil {
			return fmt.Errorf("authz config %s: %w", cfg.ConfigFile, err)
		}
		if cfg.Reload != nil {
			g.Go(func() error { reloadLoop(gctx, cfg, apply, log); return nil })
		}
	} else {
		nodeID := cfg.NodeID
		if nodeID == "" {
			nodeID = hostname()
		}
		src, err := configsource.New(configsource.Config{
			Addr: cfg.XDSAddr, NodeID: nodeID, TLS: cfg.XDSTLS, DB: db, Apply: apply,
			Logger: log.With("component", "configsource"), Registerer: reg,
		})
		if err != nil {
			return err
		}
		// The cached config serves until the control plane answers.
		if c, err := src.LoadCached(ctx); err != nil {
			log.Warn("config cache unreadable; waiting for the control plane", "err", err)
		} else if c != nil {
			if err := apply(ctx, c); err != nil {
				log.Warn("cached config refused; fetching the whole config from the control plane", "err", err)
				src.ForgetCached()
			}
		}
		g.Go(func() error { return src.Run(gctx) })
	}
	if sweep != nil {
		g.Go(func() error { sweepLoop(gctx, sweep, checker); return nil })
	}

	scfg := server.Config{Decider: checker, Metrics: metrics, Logger: log.With("component", "check")}
	grpcLis, err := net.Listen("tcp", cfg.GRPCAddr)
	if err != nil {
		return fmt.Errorf("listen gRPC: %w", err)
	}
	httpLis, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		_ = grpcLis.Close()
		return fmt.Errorf("listen HTTP: %w", err)
	}
	grpcSrv := server.NewGRPCServer(scfg, health)
	httpSrv := &http.Server{Handler: server.NewHTTPHandler(scfg, reg), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	if cfg.OnListen != nil {
		cfg.OnListen(grpcLis.Addr(), httpLis.Addr())
	}
	log.Info("authz sidecar serving", "grpc", grpcLis.Addr().String(), "http", httpLis.Addr().String(),
		"limiter", cfg.Limiter, "config_file", cfg.ConfigFile, "xds", cfg.XDSAddr, "xds_tls", xdsSecurity(cfg.XDSTLS))

	g.Go(func() error {
		if err := grpcSrv.Serve(grpcLis); err != nil {
			return fmt.Errorf("serve gRPC: %w", err)
		}
		return nil
	})
	g.Go(func() error {
		if err := httpSrv.Serve(httpLis); err != nil && !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("serve HTTP: %w", err)
		}
		return nil
	})
	g.Go(func() error {
		<-gctx.Done()
		log.Info("authz sidecar stopping")
		health.Shutdown()
		stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.ShutdownGrace)
		defer cancel()
		done := make(chan struct{})
		go func() { grpcSrv.GracefulStop(); close(done) }()
		select {
		case <-done:
		case <-stopCtx.Done():
			grpcSrv.Stop()
		}
		return httpSrv.Shutdown(stopCtx)
	})
	return g.Wait()
}

// xdsSecurity names how the sidecar reaches the control plane, for the start log.
func xdsSecurity(t *configsource.TLSConfig) string {
	switch {
	case t == nil:
		return "plaintext"
	case t.CertFile == "":
		return "TLS"
	default:
		return "mutual TLS"
	}
}

// openLimiter returns the limiter, its sweeper (nil when it keeps no local state worth
// sweeping) and how to close it.
func openLimiter(ctx context.Context, cfg Config, db *bolt.DB, m *limit.Metrics, log *slog.Logger) (limit.Limiter, sweeper, func() error, error) {
	if cfg.Limiter == LimiterRedis {
		l, err := redislimit.Open(ctx, cfg.Redis, m, log.With("component", "limit"))
		if err != nil {
			return nil, nil, nil, err
		}
		return l, l, l.Close, nil
	}
	mem := limit.NewMemory(limit.MemoryConfig{Metrics: m})
	p, err := limit.OpenPersister(ctx, limit.PersisterConfig{DB: db, Bucket: QuotaBucket, Memory: mem, Logger: log.With("component", "limit")})
	if err != nil {
		return nil, nil, nil, err
	}
	return mem, mem, p.Close, nil
}

// reloadLoop rereads the config file on every signal until ctx ends.
func reloadLoop(ctx context.Context, cfg Config, apply func(context.Context, *authzv1.Config) error, log *slog.Logger) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-cfg.Reload:
			c, err := LoadConfigFile(cfg.ConfigFile)
			if err == nil {
				err = apply(ctx, c)
			}
			if err != nil {
				log.Error("authz config not reloaded; the config in force stays", "file", cfg.ConfigFile, "err", err)
			}
		}
	}
}

func sweepLoop(ctx context.Context, s sweeper, c *check.Checker) {
	t := time.NewTicker(sweepEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			if x := c.Index(); x != nil {
				s.Sweep(now, x.KeepsLimitKey)
			}
		}
	}
}

// jwtAdapter turns the JWT verifier's results and refusal codes into the pipeline's.
type jwtAdapter struct{ v *jwtauth.Verifier }

func (a jwtAdapter) Verify(ctx context.Context, token string, now time.Time) (check.JWTResult, error) {
	r, err := a.v.Verify(ctx, token, now)
	if err != nil {
		code := jwtauth.CodeOf(err)
		if code == jwtauth.KeyUnavailable {
			return check.JWTResult{}, fmt.Errorf("%w: %w", check.ErrKeyUnavailable, err)
		}
		return check.JWTResult{}, jwtRefusal{code}
	}
	return check.JWTResult{ProfileID: r.ProfileID, ClaimsJSON: r.ClaimsJSON}, nil
}

// jwtRefusal names the refusal class, which never holds the token.
type jwtRefusal struct{ code jwtauth.Code }

func (e jwtRefusal) Error() string { return e.code.Error() }
func (e jwtRefusal) Class() string { return e.code.String() }
