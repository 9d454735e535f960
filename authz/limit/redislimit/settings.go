package redislimit

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// FailMode says how decisions are made while Redis is unreachable or slower
// than the deadline.
type FailMode string

// Fail modes.
const (
	// FailLocal decides with an in-memory limiter on each replica, every
	// limit divided by Replicas, until Redis answers again. The default.
	FailLocal FailMode = "local"
	// FailOpen allows every call during the outage.
	FailOpen FailMode = "open"
	// FailClosed refuses every call with limit.LimiterUnavailable (HTTP 503).
	FailClosed FailMode = "closed"
)

// Valid reports whether m is a known fail mode.
func (m FailMode) Valid() bool { return m == FailLocal || m == FailOpen || m == FailClosed }

// Settings configure the Redis limiter backend. The zero value of each field
// is its default.
type Settings struct {
	// Addrs are Redis addresses as host:port. One address is a single
	// server; several are the seed nodes of a cluster; with MasterName they
	// are Sentinel addresses. Required.
	Addrs []string
	// Cluster forces Redis Cluster mode with a single address (a managed
	// cluster's configuration endpoint). Several Addrs without MasterName
	// already mean Cluster.
	Cluster bool
	// MasterName is the Sentinel master name; set it to use Sentinel. The
	// Sentinels themselves are reached without authentication; Username and
	// password apply to the master.
	MasterName string
	// DB is the database number; it must be 0 with Cluster.
	DB int
	// Username is the ACL user; empty means the default user.
	Username string
	// PasswordFile is a file whose content (trailing newline trimmed) is the
	// password. It wins over PasswordEnv.
	PasswordFile string
	// PasswordEnv names an environment variable that holds the password.
	// The password itself is never part of Settings, so Settings can be
	// logged.
	PasswordEnv string
	// TLS connects with TLS (minimum TLS 1.2).
	TLS bool
	// CAFile is a PEM bundle that verifies the server certificate instead
	// of the system roots. Only with TLS.
	CAFile string
	// PoolSize is the number of connections per node. Default: go-redis's
	// (10 per CPU).
	PoolSize int
	// Deadline bounds each decision's Redis call, connection included.
	// When it passes, the call is answered by FailMode. Default 50ms.
	Deadline time.Duration
	// FailMode decides calls while Redis is unreachable: "local" (default),
	// "open" or "closed".
	FailMode FailMode
	// Replicas is the number of authz replicas sharing Redis; FailLocal
	// divides each limit by it. Default 1.
	Replicas int
	// ProbeInterval is how often an unreachable Redis is tried again; it is
	// used again as soon as one probe succeeds. Default 500ms.
	ProbeInterval time.Duration
}

// Defaults.
const (
	DefaultDeadline      = 50 * time.Millisecond
	DefaultProbeInterval = 500 * time.Millisecond
)

func (s Settings) withDefaults() Settings {
	if s.Deadline <= 0 {
		s.Deadline = DefaultDeadline
	}
	if s.FailMode == "" {
		s.FailMode = FailLocal
	}
	if s.Replicas <= 0 {
		s.Replicas = 1
	}
	if s.ProbeInterval <= 0 {
		s.ProbeInterval = DefaultProbeInterval
	}
	return s
}

// NewClient builds the go-redis client the settings describe: a single-node,
// Sentinel-backed or Cluster client. Retries are off: a lost reply must not
// run the script twice, and the deadline leaves no time for them anyway.
func (s Settings) NewClient() (redis.UniversalClient, error) {
	s = s.withDefaults()
	if len(s.Addrs) == 0 {
		return nil, errors.New("redis limiter: no address")
	}
	if !s.FailMode.Valid() {
		return nil, fmt.Errorf("redis limiter: unknown fail mode %q", s.FailMode)
	}
	cluster := s.Cluster || (len(s.Addrs) > 1 && s.MasterName == "")
	if cluster && s.DB != 0 {
		return nil, errors.New("redis limiter: Redis Cluster has only database 0")
	}
	password, err := s.password()
	if err != nil {
		return nil, err
	}
	opts := &redis.UniversalOptions{
		Addrs:                 s.Addrs,
		IsClusterMode:         s.Cluster,
		MasterName:            s.MasterName,
		DB:                    s.DB,
		Username:              s.Username,
		Password:              password,
		PoolSize:              s.PoolSize,
		MaxRetries:            -1,
		DialTimeout:           max(s.Deadline, time.Second),
		ReadTimeout:           s.Deadline,
		WriteTimeout:          s.Deadline,
		PoolTimeout:           s.Deadline,
		ContextTimeoutEnabled: true,
		DisableIdentity:       true,
	}
	if s.TLS {
		opts.TLSConfig, err = tlsConfig(s.CAFile)
		if err != nil {
			return nil, err
		}
	} else if s.CAFile != "" {
		return nil, errors.New("redis limiter: CAFile is set but TLS is off")
	}
	return redis.NewUniversalClient(opts), nil
}

func (s Settings) password() (string, error) {
	switch {
	case s.PasswordFile != "":
		b, err := os.ReadFile(s.PasswordFile)
		if err != nil {
			return "", fmt.Errorf("redis limiter: read password file: %w", err)
		}
		return strings.TrimRight(string(b), "\r\n"), nil
	case s.PasswordEnv != "":
		p, ok := os.LookupEnv(s.PasswordEnv)
		if !ok {
			return "", fmt.Errorf("redis limiter: environment variable %s is not set", s.PasswordEnv)
		}
		return p, nil
	}
	return "", nil
}

func tlsConfig(caFile string) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile == "" {
		return cfg, nil
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("redis limiter: read CA file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("redis limiter: no certificate in CA file %s", caFile)
	}
	cfg.RootCAs = pool
	return cfg, nil
}
