// Package configsource keeps the authz sidecar's config in step with the
// control plane. It subscribes over delta ADS to the three authz resource
// types (Endpoint, Profile, Policy), assembles them into one authzv1.Config,
// hands each new config to Apply, and caches the last applied config in the
// sidecar's bbolt file so that a restart while the control plane is away
// still serves.
//
// Rules a reader of the sidecar should know:
//
//   - First config: on every stream, nothing is applied until each of the
//     three types has answered at least once (go-control-plane answers the
//     first wildcard request of a type even when it has no resources), so a
//     partial config (say endpoints without profiles) never goes live. The
//     responses that arrive earlier are held and acknowledged together with
//     the update they made up.
//   - One update, one Apply: responses that arrive within Coalesce of each
//     other are applied together. The control plane sends the types one
//     publish changed back to back, so a change spanning types (a profile
//     and the new policy it names) goes live at once; only a gap longer than
//     Coalesce between them would split it.
//   - ACK means applied: a response is ACKed only after Apply accepted the
//     config it completes and the config was written to the cache (a failed
//     write is logged and counted, and still ACKed: the config is live).
//     A response that does not decode, or whose config Apply refuses, is
//     NACKed with the error as error_detail; its changes are rolled back, so
//     the last good config stays and later updates build on it. The same
//     refused update arriving again (a resend after reconnecting) is NACKed
//     without calling Apply.
//   - Resync: a NACK leaves the stream out of step, since the delta server
//     counts the refused resources, valid ones among them, as delivered.
//     The stream ends after the next update is ACKed, and the new one
//     resumes from the last good versions, so the server resends what the
//     client lacks; a valid change refused together with a bad one goes live
//     once the bad one is fixed.
//   - Resume: a new stream declares the last good resources and their
//     versions in initial_resource_versions, so the control plane sends only
//     what changed; the versions are cached with the config so this also
//     holds across restarts.
//   - Version: Config.version is the highest of the per-type system
//     versions when they are revision numbers (the control plane versions a
//     type by the revision that last changed it), else the common one, else
//     "endpoints=…,profiles=…,policies=…".
//   - Reconnect: after a stream ends, the next attempt waits a jittered,
//     capped, exponential backoff that starts over once a stream answered.
package configsource

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"sync/atomic"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/prometheus/client_golang/prometheus"
	bolt "go.etcd.io/bbolt"
	"google.golang.org/grpc"

	authzv1 "gatehouse/proto/gatehouse/authz/v1"
)

// Config configures a Source.
type Config struct {
	// Addr is the control plane's xDS address. Default "localhost:18000".
	Addr string
	// NodeID identifies this sidecar to the control plane. Default: the host name.
	NodeID string
	// Cluster is the node's cluster. Default "gatehouse-authz".
	Cluster string
	// TLS secures the connection; nil dials in plaintext (loopback, or a mesh that encrypts).
	TLS *TLSConfig
	// DialOptions are added after the defaults, so they can override them.
	DialOptions []grpc.DialOption
	// DB is the sidecar's shared bbolt file; the config is cached in bucket
	// "config". Nil disables the cache. The Source never closes it.
	DB *bolt.DB
	// Apply makes a config live. It is called from Run's goroutine, one call at
	// a time; cfg must be treated as read-only (configs share resource messages).
	// An error refuses the config: it is NACKed and the previous one stays.
	Apply func(ctx context.Context, cfg *authzv1.Config) error
	// Logger receives connection and update events. Default slog.Default().
	Logger *slog.Logger
	// Registerer receives the metrics; nil keeps them unexported.
	Registerer prometheus.Registerer
	// Coalesce is how long to wait after a response for the next one of the
	// same update before applying: the cost of applying a change spanning
	// types at once. Default 25ms.
	Coalesce time.Duration
	// BackoffBase is the first reconnect delay. Default 250ms.
	BackoffBase time.Duration
	// BackoffMax caps the reconnect delay. Default 30s.
	BackoffMax time.Duration
}

// Source is the sidecar's client of the control plane's authz resources.
type Source struct {
	cfg      Config
	dialOpts []grpc.DialOption
	node     *corev3.Node
	m        *metrics
	running  atomic.Bool

	// Owned by the goroutine in Run.
	st       *state
	seeded   bool
	synced   bool        // the cache holds the good state, so deltas suffice
	applied  bool        // Apply has accepted a config in this process
	rejected []rejection // recently refused updates, newest last
}

// rejection remembers a refused update so that a resend is not applied again.
type rejection struct {
	fingerprint string
	err         string
}

const maxRejections = 8

// New checks the config and prepares a Source; it does not connect.
func New(cfg Config) (*Source, error) {
	if cfg.Apply == nil {
		return nil, errors.New("config source: Apply is required")
	}
	if cfg.Addr == "" {
		cfg.Addr = "localhost:18000"
	}
	if cfg.NodeID == "" {
		host, err := os.Hostname()
		if err != nil {
			return nil, fmt.Errorf("config source: node id not set and host name unknown: %w", err)
		}
		cfg.NodeID = host
	}
	if cfg.Cluster == "" {
		cfg.Cluster = "gatehouse-authz"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Coalesce <= 0 {
		cfg.Coalesce = 25 * time.Millisecond
	}
	if cfg.BackoffBase <= 0 {
		cfg.BackoffBase = 250 * time.Millisecond
	}
	if cfg.BackoffMax <= 0 {
		cfg.BackoffMax = 30 * time.Second
	}
	if cfg.BackoffMax < cfg.BackoffBase {
		cfg.BackoffMax = cfg.BackoffBase
	}
	dialOpts, err := dialOptions(cfg)
	if err != nil {
		return nil, fmt.Errorf("config source: %w", err)
	}
	m, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, fmt.Errorf("config source: %w", err)
	}
	return &Source{
		cfg:      cfg,
		dialOpts: dialOpts,
		node:     &corev3.Node{Id: cfg.NodeID, Cluster: cfg.Cluster, UserAgentName: "gatehouse-authz"},
		m:        m,
		st:       newState(),
	}, nil
}

// LoadCached returns the last config Apply accepted, as cached in the bbolt
// file, or nil and no error when there is none (or no file). The sidecar
// applies it at start so it can serve before the control plane answers.
func (s *Source) LoadCached(ctx context.Context) (*authzv1.Config, error) {
	if s.cfg.DB == nil {
		return nil, nil
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	c, ok, err := loadCache(s.cfg.DB)
	if err != nil || !ok {
		return nil, err
	}
	return c.config(), nil
}

// ForgetCached stops Run from resuming from the cached config, for a caller
// whose Apply refused it: resuming would declare the refused resources as
// held, and the control plane would never send them again. The first stream
// then fetches the whole config, and the first config applied replaces the
// cache. Call it before Run.
func (s *Source) ForgetCached() {
	s.seeded = true
}

// Run keeps a stream to the control plane open, reconnecting with backoff,
// until ctx is done; it then returns nil. It returns an error only when it
// cannot start. Run must not be called twice at once.
func (s *Source) Run(ctx context.Context) error {
	if !s.running.CompareAndSwap(false, true) {
		return errors.New("config source: already running")
	}
	defer s.running.Store(false)

	conn, err := grpc.NewClient(s.cfg.Addr, s.dialOpts...)
	if err != nil {
		return fmt.Errorf("config source: dial %s: %w", s.cfg.Addr, err)
	}
	defer func() {
		if err := conn.Close(); err != nil {
			s.cfg.Logger.Debug("close control plane connection", "err", err)
		}
	}()
	client := discoveryv3.NewAggregatedDiscoveryServiceClient(conn)
	s.seed()

	log := s.cfg.Logger.With("control_plane", s.cfg.Addr)
	attempt := 0
	for {
		answered, err := s.stream(ctx, client)
		s.m.connected.Set(0)
		// Changes held for a first apply that never came are dropped; the
		// next stream resumes from the last good state.
		s.st.rollback()
		if ctx.Err() != nil {
			return nil
		}
		if answered {
			attempt = 0
		}
		delay := backoff(attempt, s.cfg.BackoffBase, s.cfg.BackoffMax, rand.Float64)
		attempt++
		level := slog.LevelWarn
		if errors.Is(err, errResync) {
			level = slog.LevelInfo // expected after a NACK, not a failure
		}
		log.Log(ctx, level, "config stream ended; keeping the last good config", "err", err, "retry_in", delay)
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

// seed starts the state from the cache, once, so that the first stream
// resumes instead of fetching everything.
func (s *Source) seed() {
	if s.seeded || s.cfg.DB == nil {
		return
	}
	s.seeded = true
	c, ok, err := loadCache(s.cfg.DB)
	if err != nil {
		s.cfg.Logger.Warn("config cache unreadable; fetching the whole config", "err", err)
		return
	}
	if ok {
		s.st.seed(c)
		s.synced = true
	}
}

// backoff is the delay before reconnect attempt n: exponential from base,
// capped at limit, with equal jitter (half fixed, half random) so that many
// sidecars spread out after a control plane restart yet never retry at once.
func backoff(attempt int, base, limit time.Duration, rnd func() float64) time.Duration {
	d := limit
	if attempt < 32 {
		if b := base << attempt; b > 0 && b < limit {
			d = b
		}
	}
	return d/2 + time.Duration(rnd()*float64(d/2))
}
