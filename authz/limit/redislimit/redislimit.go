// Package redislimit is the shared limiter backend: every authz replica
// decides against the same counters in Redis (single node, Sentinel or
// Cluster), exact across replicas, one round trip per decision.
//
// When Redis is unreachable or slower than the deadline, calls are answered
// by the fail mode and Redis is probed in the background until it answers.
// A call that timed out may still have been counted once by a stalled Redis
// that later resumes; the excess is bounded by the calls in flight at the
// moment of the stall.
package redislimit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"gatehouse/authz/limit"
)

// Config configures a Limiter around an existing client. The limiting
// fields have the same meaning and defaults as in Settings.
type Config struct {
	Client        redis.UniversalClient
	Deadline      time.Duration
	FailMode      FailMode
	Replicas      int
	ProbeInterval time.Duration
	// Metrics, when set, records decisions, backend latency and errors,
	// and whether the fail mode is in effect.
	Metrics *limit.Metrics
	// Logger reports outages and recoveries. Default slog.Default().
	Logger *slog.Logger
}

// Limiter implements limit.Limiter on Redis.
type Limiter struct {
	client    redis.UniversalClient
	ownClient bool
	script    *redis.Script
	set       Settings
	metrics   *limit.Metrics
	log       *slog.Logger
	local     *limit.Memory // FailLocal's limiter during outages

	down   atomic.Bool
	stop   context.CancelFunc
	done   chan struct{}
	closed sync.Once
}

const backendName = "redis"

// Open builds the client from s and returns a Limiter that owns it.
func Open(ctx context.Context, s Settings, metrics *limit.Metrics, logger *slog.Logger) (*Limiter, error) {
	client, err := s.NewClient()
	if err != nil {
		return nil, err
	}
	l, err := New(ctx, Config{
		Client: client, Deadline: s.Deadline, FailMode: s.FailMode, Replicas: s.Replicas,
		ProbeInterval: s.ProbeInterval, Metrics: metrics, Logger: logger,
	})
	if err != nil {
		return nil, errors.Join(err, client.Close())
	}
	l.ownClient = true
	return l, nil
}

// New returns a Limiter using cfg.Client. It loads the script (best effort:
// an unreachable Redis starts the limiter in its fail mode) and probes Redis
// in the background until ctx ends or Close is called.
func New(ctx context.Context, cfg Config) (*Limiter, error) {
	if cfg.Client == nil {
		return nil, errors.New("redis limiter: no client")
	}
	set := Settings{
		Deadline: cfg.Deadline, FailMode: cfg.FailMode, Replicas: cfg.Replicas,
		ProbeInterval: cfg.ProbeInterval,
	}.withDefaults()
	if !set.FailMode.Valid() {
		return nil, fmt.Errorf("redis limiter: unknown fail mode %q", set.FailMode)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	l := &Limiter{
		client:  cfg.Client,
		script:  redis.NewScript(decideLua),
		set:     set,
		metrics: cfg.Metrics,
		log:     cfg.Logger,
		local:   limit.NewMemory(limit.MemoryConfig{}),
		done:    make(chan struct{}),
	}
	if err := l.probe(ctx); err != nil {
		l.markDown(err)
	}
	ctx, l.stop = context.WithCancel(ctx)
	go l.probeLoop(ctx)
	return l, nil
}

// Allow decides one call in one round trip. It never returns an error: when
// Redis fails or misses the deadline, the fail mode answers.
func (l *Limiter) Allow(ctx context.Context, key limit.Key, p limit.Policy, now time.Time) (limit.Decision, error) {
	var d limit.Decision
	if l.down.Load() {
		d = l.failed(key, p, now)
	} else {
		var err error
		d, err = l.decide(ctx, key, p, now)
		if err != nil {
			// A caller that gave up says nothing about Redis.
			if ctx.Err() == nil {
				l.markDown(err)
			}
			d = l.failed(key, p, now)
		}
	}
	l.metrics.Decided(&d)
	return d, nil
}

func (l *Limiter) decide(ctx context.Context, key limit.Key, p limit.Policy, now time.Time) (limit.Decision, error) {
	if p.Rate == nil && p.Quota == nil {
		return limit.Decision{Allowed: true}, nil
	}
	if p.Rate != nil {
		if _, _, ok := p.Rate.Emission(); !ok {
			// A rate that admits nothing refuses without touching the quota.
			d, _ := limit.Decide(p, now, limit.State{})
			return d, nil
		}
	}
	ctx, cancel := context.WithTimeout(ctx, l.set.Deadline)
	defer cancel()
	start := time.Now()
	s, err := runScript(ctx, l.client, l.script, key, p, now)
	l.metrics.BackendCall(backendName, time.Since(start), err)
	if err != nil {
		return limit.Decision{}, err
	}
	d, _ := limit.Decide(p, now, s)
	return d, nil
}

// failed answers a call by the fail mode.
func (l *Limiter) failed(key limit.Key, p limit.Policy, now time.Time) limit.Decision {
	switch l.set.FailMode {
	case FailOpen:
		return limit.Decision{Allowed: true}
	case FailClosed:
		return limit.Decision{Code: limit.LimiterUnavailable, RetryAfter: l.set.ProbeInterval}
	}
	return l.local.Decide(key, share(p, l.set.Replicas), now)
}

// share returns p with every limit divided among n replicas, keeping at
// least one call for each so that no replica refuses everything.
func share(p limit.Policy, n int) limit.Policy {
	if n <= 1 {
		return p
	}
	if p.Rate != nil {
		r := *p.Rate
		burst := r.Burst
		if burst == 0 {
			burst = r.Requests
		}
		r.Requests = max(r.Requests/uint32(n), 1)
		r.Burst = max(burst/uint32(n), 1)
		p.Rate = &r
	}
	if p.Quota != nil && p.Quota.Requests > 0 {
		q := *p.Quota
		q.Requests = max(q.Requests/uint64(n), 1)
		p.Quota = &q
	}
	return p
}

func (l *Limiter) markDown(err error) {
	if l.down.Swap(true) {
		return
	}
	l.metrics.SetFallback(true)
	l.log.Warn("redis limiter unavailable, deciding by fail mode",
		"fail_mode", string(l.set.FailMode), "err", err)
}

// probe loads the script, which both checks that Redis answers and spares
// the first decision after a restart its EVAL fallback.
func (l *Limiter) probe(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, max(l.set.Deadline, l.set.ProbeInterval))
	defer cancel()
	if err := l.script.Load(ctx, l.client).Err(); err != nil {
		return fmt.Errorf("load limit script: %w", err)
	}
	return nil
}

func (l *Limiter) probeLoop(ctx context.Context) {
	defer close(l.done)
	t := time.NewTicker(l.set.ProbeInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if !l.down.Load() {
			continue
		}
		if err := l.probe(ctx); err != nil {
			continue
		}
		l.down.Store(false)
		l.metrics.SetFallback(false)
		l.log.Info("redis limiter available again")
	}
}

// Unavailable reports whether the fail mode is deciding calls right now.
func (l *Limiter) Unavailable() bool { return l.down.Load() }

// Sweep drops idle state of the in-memory limiter used during outages; see
// limit.Memory.Sweep. Redis expires its own keys.
func (l *Limiter) Sweep(now time.Time, keep func(limit.Key) bool) int {
	return l.local.Sweep(now, keep)
}

// Close stops probing and, when the Limiter built the client, closes it.
func (l *Limiter) Close() error {
	var err error
	l.closed.Do(func() {
		l.stop()
		<-l.done
		if l.ownClient {
			if cerr := l.client.Close(); cerr != nil {
				err = fmt.Errorf("close redis client: %w", cerr)
			}
		}
	})
	return err
}
