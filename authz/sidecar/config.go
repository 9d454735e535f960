// Package sidecar runs the gatehouse-authz process: it loads or subscribes to the compiled
// authz config, wires the check pipeline to the limiter, the JWT verifier and the servers,
// and shuts them down in order.
package sidecar

import (
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"time"

	"gatehouse/authz/configsource"
	"gatehouse/authz/limit/redislimit"
)

// Config is everything the sidecar is started with.
type Config struct {
	// DataDir holds authz.db: the config cache and the quota counters.
	DataDir string
	// GRPCAddr serves ext_authz and gRPC health.
	GRPCAddr string
	// HTTPAddr serves the HTTP check, /healthz, /readyz and /metrics.
	HTTPAddr string
	// ConfigFile, when set, is the compiled config (JSON, YAML or binary protobuf) used instead
	// of the control plane.
	ConfigFile string
	// XDSAddr is the control plane's xDS address.
	XDSAddr string
	// XDSTLS, when set, reaches the control plane over TLS (mutual TLS with a client
	// certificate); nil dials in plaintext.
	XDSTLS *configsource.TLSConfig
	// NodeID names this sidecar to the control plane; default the host name.
	NodeID string
	// TrustedHops is how many proxies in front of Envoy (or of the HTTP check) append to
	// X-Forwarded-For and are trusted; Envoy's own entry is not one of them.
	TrustedHops int
	// Limiter is "memory" (default) or "redis".
	Limiter string
	// Redis configures the Redis limiter.
	Redis redislimit.Settings
	// ShutdownGrace bounds the graceful stop of the servers.
	ShutdownGrace time.Duration
	// Logger receives the sidecar's logs. Default slog.Default().
	Logger *slog.Logger
	// OnListen, when set, is told the bound addresses (tests listen on port 0).
	OnListen func(grpcAddr, httpAddr net.Addr)
	// Reload, when set, rereads ConfigFile on every receive (main sends on SIGHUP); a file
	// that does not load or build is logged and the config in force stays.
	Reload <-chan struct{}
}

// Limiter backends.
const (
	LimiterMemory = "memory"
	LimiterRedis  = "redis"
)

// EnvPrefix starts the environment variable of each flag: --grpc-addr is
// GATEHOUSE_AUTHZ_GRPC_ADDR. A flag on the command line wins over its variable.
const EnvPrefix = "GATEHOUSE_AUTHZ_"

// ParseFlags reads the command line and the environment into a Config and the log level.
func ParseFlags(args []string, getenv func(string) string) (Config, slog.Level, error) {
	var c Config
	var level slog.Level
	var redisAddrs, failMode string
	var xdsTLS configsource.TLSConfig
	fs := flag.NewFlagSet("gatehouse-authz", flag.ContinueOnError)
	fs.StringVar(&c.DataDir, "data-dir", ".data", "directory of authz.db (config cache and quota counters)")
	fs.StringVar(&c.GRPCAddr, "grpc-addr", ":9191", "ext_authz gRPC and gRPC health address")
	fs.StringVar(&c.HTTPAddr, "http-addr", ":9192", "HTTP check, /healthz, /readyz and /metrics address")
	fs.StringVar(&c.ConfigFile, "config-file", "", "compiled authz config (.json, .yaml or .pb) to use instead of the control plane")
	fs.StringVar(&c.XDSAddr, "xds-addr", "localhost:18000", "control plane xDS address")
	fs.StringVar(&xdsTLS.CAFile, "xds-ca-file", "", "PEM CAs that sign the control plane's certificate; any --xds-* TLS flag turns TLS on (default: plaintext; with TLS, empty uses the system roots)")
	fs.StringVar(&xdsTLS.CertFile, "xds-cert-file", "", "client certificate for a control plane that requires one (mutual TLS); with --xds-key-file")
	fs.StringVar(&xdsTLS.KeyFile, "xds-key-file", "", "private key of --xds-cert-file")
	fs.StringVar(&xdsTLS.ServerName, "xds-server-name", "", "name checked in the control plane's certificate (default: the host of --xds-addr)")
	fs.StringVar(&c.NodeID, "node-id", "", "node id announced to the control plane (default: host name)")
	fs.IntVar(&c.TrustedHops, "trusted-hops", 0, "proxies in front of Envoy (or of the HTTP check) that append X-Forwarded-For and are trusted; the entry Envoy appends itself is not counted (0: use the source address)")
	fs.StringVar(&c.Limiter, "limiter", LimiterMemory, "limiter backend: memory or redis")
	fs.StringVar(&redisAddrs, "redis-addr", "", "Redis host:port, comma-separated for Cluster seeds or Sentinels")
	fs.BoolVar(&c.Redis.Cluster, "redis-cluster", false, "use Redis Cluster with a single address")
	fs.StringVar(&c.Redis.MasterName, "redis-master-name", "", "Sentinel master name")
	fs.IntVar(&c.Redis.DB, "redis-db", 0, "Redis database number")
	fs.StringVar(&c.Redis.Username, "redis-username", "", "Redis ACL user")
	fs.StringVar(&c.Redis.PasswordFile, "redis-password-file", "", "file holding the Redis password")
	fs.StringVar(&c.Redis.PasswordEnv, "redis-password-env", "", "environment variable holding the Redis password")
	fs.BoolVar(&c.Redis.TLS, "redis-tls", false, "connect to Redis with TLS")
	fs.StringVar(&c.Redis.CAFile, "redis-ca-file", "", "PEM bundle that verifies the Redis certificate")
	fs.IntVar(&c.Redis.PoolSize, "redis-pool-size", 0, "Redis connections per node (default: go-redis's)")
	fs.DurationVar(&c.Redis.Deadline, "redis-deadline", redislimit.DefaultDeadline, "bound of each Redis decision")
	fs.StringVar(&failMode, "redis-fail-mode", string(redislimit.FailLocal), "while Redis is unreachable: local, open or closed")
	fs.IntVar(&c.Redis.Replicas, "redis-replicas", 1, "authz replicas sharing Redis (the local fail mode divides limits by it)")
	fs.DurationVar(&c.ShutdownGrace, "shutdown-grace", 10*time.Second, "time to finish requests in flight on shutdown")
	fs.TextVar(&level, "log-level", slog.LevelInfo, "log level: debug, info, warn or error")

	var envErr error
	fs.VisitAll(func(f *flag.Flag) {
		name := EnvPrefix + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v := getenv(name); v != "" {
			if err := fs.Set(f.Name, v); err != nil {
				envErr = errors.Join(envErr, fmt.Errorf("%s: %w", name, err))
			}
		}
	})
	if envErr != nil {
		return Config{}, 0, envErr
	}
	if err := fs.Parse(args); err != nil {
		return Config{}, 0, err
	}
	if fs.NArg() > 0 {
		return Config{}, 0, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	for _, a := range strings.Split(redisAddrs, ",") {
		if a = strings.TrimSpace(a); a != "" {
			c.Redis.Addrs = append(c.Redis.Addrs, a)
		}
	}
	c.Redis.FailMode = redislimit.FailMode(failMode)
	if xdsTLS != (configsource.TLSConfig{}) {
		c.XDSTLS = &xdsTLS
	}
	return c, level, c.validate()
}

func (c Config) validate() error {
	switch c.Limiter {
	case LimiterMemory:
	case LimiterRedis:
		if len(c.Redis.Addrs) == 0 {
			return errors.New("--limiter=redis needs --redis-addr")
		}
		if !c.Redis.FailMode.Valid() {
			return fmt.Errorf("--redis-fail-mode %q: want local, open or closed", c.Redis.FailMode)
		}
	default:
		return fmt.Errorf("--limiter %q: want memory or redis", c.Limiter)
	}
	if c.TrustedHops < 0 {
		return errors.New("--trusted-hops must not be negative")
	}
	if c.DataDir == "" {
		return errors.New("--data-dir must be set")
	}
	if t := c.XDSTLS; t != nil && (t.CertFile == "") != (t.KeyFile == "") {
		return errors.New("--xds-cert-file and --xds-key-file go together")
	}
	return nil
}

// hostname is the default node id.
func hostname() string {
	h, err := os.Hostname()
	if err != nil {
		return "gatehouse-authz"
	}
	return h
}
