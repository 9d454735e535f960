package configsource_test

import (
	"context"
	"log/slog"
	"path/filepath"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	bolt "go.etcd.io/bbolt"

	"gatehouse/authz/configsource"
	authzv1 "gatehouse/proto/gatehouse/authz/v1"
)

// The sidecar's wiring: serve the cached config at once, then follow the
// control plane. Readiness is "holds a config".
func Example() {
	ctx := context.Background()
	db, err := bolt.Open(filepath.Join(".data", "authz.db"), 0o600, nil)
	if err != nil {
		slog.Error("open data file", "err", err)
		return
	}
	defer func() {
		if err := db.Close(); err != nil {
			slog.Error("close data file", "err", err)
		}
	}()

	var current atomic.Pointer[authzv1.Config] // read by every check; nil means not ready
	apply := func(_ context.Context, cfg *authzv1.Config) error {
		// Build the lookup tables here; an error refuses cfg.
		current.Store(cfg)
		return nil
	}
	src, err := configsource.New(configsource.Config{
		Addr:       "controlplane:18000",
		NodeID:     "authz-1",
		DB:         db,
		Apply:      apply,
		Logger:     slog.Default(),
		Registerer: prometheus.NewRegistry(),
	})
	if err != nil {
		slog.Error("config source", "err", err)
		return
	}
	if cfg, err := src.LoadCached(ctx); err != nil {
		slog.Warn("cached config unreadable", "err", err)
	} else if cfg != nil {
		if err := apply(ctx, cfg); err != nil {
			slog.Warn("cached config refused", "err", err)
		}
	}
	if err := src.Run(ctx); err != nil {
		slog.Error("config source", "err", err)
	}
}
