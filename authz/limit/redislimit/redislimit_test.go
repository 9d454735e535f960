package redislimit

import (
	"context"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/redis/go-redis/v9"

	"gatehouse/authz/limit"
	"gatehouse/authz/limit/redistest"
)

// countHook counts round trips: every command or pipeline sent.
type countHook struct{ n atomic.Int64 }

func (h *countHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *countHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.n.Add(1)
		return next(ctx, cmd)
	}
}

func (h *countHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		h.n.Add(1)
		return next(ctx, cmds)
	}
}

// replica is one authz sidecar's view of Redis: its own client and limiter.
type replica struct {
	*Limiter
	client redis.UniversalClient
	trips  *countHook
}

func newReplica(t testing.TB, addr string, cfg Config) *replica {
	t.Helper()
	client, err := Settings{Addrs: []string{addr}, Deadline: cfg.Deadline}.NewClient()
	if err != nil {
		t.Fatal(err)
	}
	hook := &countHook{}
	client.AddHook(hook)
	cfg.Client = client
	l, err := New(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := l.Close(); err != nil {
			t.Error(err)
		}
		if err := client.Close(); err != nil {
			t.Error(err)
		}
	})
	return &replica{Limiter: l, client: client, trips: hook}
}

// hammer calls the limiters from many goroutines at one frozen instant and
// returns how many calls were admitted. Every call must return no error.
func hammer(t testing.TB, ls []limit.Limiter, key limit.Key, p limit.Policy, now time.Time, goroutines, calls int) int {
	t.Helper()
	var admitted atomic.Int64
	var wg sync.WaitGroup
	for g := range goroutines {
		l := ls[g%len(ls)]
		wg.Go(func() {
			for range calls {
				d, err := l.Allow(context.Background(), key, p, now)
				if err != nil {
					t.Errorf("Allow: %v", err)
					return
				}
				if d.Allowed {
					admitted.Add(1)
				}
			}
		})
	}
	wg.Wait()
	return int(admitted.Load())
}

// TestRedisMatchesMemory drives the same calls through Redis and the
// in-memory limiter: the Lua script and limit.Decide must agree on every
// decision, header values included, across window boundaries.
func TestRedisMatchesMemory(t *testing.T) {
	srv := redistest.Start(t)
	r := newReplica(t, srv.Addr, Config{Deadline: time.Second})
	mem := limit.NewMemory(limit.MemoryConfig{})
	policies := []limit.Policy{
		{ID: "rate", Rate: &limit.Rate{Requests: 3, Period: time.Second}},
		{ID: "burst", Rate: &limit.Rate{Requests: 10, Period: time.Minute, Burst: 2}},
		{ID: "day", Quota: &limit.Quota{Requests: 7, Window: limit.Day}},
		{ID: "both", Rate: &limit.Rate{Requests: 5, Period: time.Second}, Quota: &limit.Quota{Requests: 20, Window: limit.Month}},
		{ID: "week", Rate: &limit.Rate{Requests: 1000, Period: time.Hour}, Quota: &limit.Quota{Requests: 4, Window: limit.Week}},
		{ID: "none"},
	}
	steps := []time.Duration{0, 0, 0, time.Millisecond, 50 * time.Millisecond, 300 * time.Millisecond, time.Second, 7 * time.Hour}
	rng := rand.New(rand.NewPCG(1, 2))
	now := time.Date(2025, 1, 29, 20, 0, 0, 123456789, time.UTC) // crosses days, an ISO week and a month
	codes := map[limit.Code]int{}
	for i := range 2000 {
		now = now.Add(steps[rng.IntN(len(steps))])
		p := policies[rng.IntN(len(policies))]
		key := limit.Key{Profile: "alice", Policy: p.ID}
		got, err := r.Allow(t.Context(), key, p, now)
		if err != nil {
			t.Fatal(err)
		}
		want := mem.Decide(key, p, now)
		if diff := cmp.Diff(want, got); diff != "" {
			t.Fatalf("call %d (%s at %v): redis and memory differ (-memory +redis):\n%s", i, p.ID, now, diff)
		}
		codes[got.Code]++
	}
	if r.Unavailable() {
		t.Fatal("limiter fell back during the run")
	}
	// The run must have exercised every outcome, or it proves little.
	for _, c := range []limit.Code{limit.OK, limit.RateLimited, limit.QuotaExceeded} {
		if codes[c] == 0 {
			t.Errorf("no %v decision in the run: %v", c, codes)
		}
	}
}

// TestRedisOneRoundTrip counts commands: one per decision, also the first
// after Redis lost its script cache (the probe loads it), and two (EVALSHA,
// then EVAL) only if the cache was flushed under a running limiter.
func TestRedisOneRoundTrip(t *testing.T) {
	srv := redistest.Start(t)
	r := newReplica(t, srv.Addr, Config{Deadline: time.Second})
	p := limit.Policy{ID: "p", Rate: &limit.Rate{Requests: 100, Period: time.Second}, Quota: &limit.Quota{Requests: 1000, Window: limit.Day}}
	key := limit.Key{Profile: "alice", Policy: "p"}
	now := time.Now()

	trips := func(n int) int64 {
		before := r.trips.n.Load()
		for range n {
			if _, err := r.Allow(t.Context(), key, p, now); err != nil {
				t.Fatal(err)
			}
		}
		return r.trips.n.Load() - before
	}
	if got := trips(100); got != 100 {
		t.Errorf("100 decisions took %d round trips, want 100", got)
	}
	if err := r.client.ScriptFlush(t.Context()).Err(); err != nil {
		t.Fatal(err)
	}
	if got := trips(1); got != 2 {
		t.Errorf("first decision after SCRIPT FLUSH took %d round trips, want 2 (EVALSHA, EVAL)", got)
	}
	if got := trips(10); got != 10 {
		t.Errorf("10 decisions after reload took %d round trips, want 10", got)
	}
	if got := trips(0); got != 0 || r.Unavailable() {
		t.Errorf("limiter unavailable: %v", r.Unavailable())
	}
}

// TestRedisKeys checks the key layout Cluster relies on and that every key
// expires: the rate key once its TAT has passed, the quota key after its
// window ends.
func TestRedisKeys(t *testing.T) {
	srv := redistest.Start(t)
	r := newReplica(t, srv.Addr, Config{Deadline: time.Second})
	p := limit.Policy{ID: "gold", Rate: &limit.Rate{Requests: 10, Period: time.Minute}, Quota: &limit.Quota{Requests: 100, Window: limit.Day}}
	now := time.Now()
	if _, err := r.Allow(t.Context(), limit.Key{Profile: "alice", Policy: "gold"}, p, now); err != nil {
		t.Fatal(err)
	}
	start, end := limit.Day.Bounds(now)
	ctx := t.Context()
	rateKey := "{gh:alice:gold}:rate"
	quotaKey := "{gh:alice:gold}:quota:day:" + strconv.FormatInt(start, 10)
	keys, err := r.client.Keys(ctx, "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{quotaKey, rateKey}, slices.Sorted(slices.Values(keys))); diff != "" {
		t.Fatalf("keys (-want +got):\n%s", diff)
	}
	rateTTL := r.client.PTTL(ctx, rateKey).Val()
	if rateTTL <= 0 || rateTTL > 6*time.Second {
		t.Errorf("rate key TTL %v, want (0, 6s]: one emission interval", rateTTL)
	}
	quotaTTL := r.client.PTTL(ctx, quotaKey).Val()
	wantTTL := time.Unix(end, 0).Sub(now) + quotaKeyMargin
	if quotaTTL <= wantTTL-5*time.Second || quotaTTL > wantTTL {
		t.Errorf("quota key TTL %v, want about %v (window end + margin)", quotaTTL, wantTTL)
	}
}

// TestQuotaWindowChange checks that a policy changed from a daily to a
// monthly quota on the 1st, when both windows start at the same instant,
// starts the month with a fresh count instead of the day's.
func TestQuotaWindowChange(t *testing.T) {
	srv := redistest.Start(t)
	r := newReplica(t, srv.Addr, Config{Deadline: time.Second})
	key := limit.Key{Profile: "alice", Policy: "gold"}
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	daily := limit.Policy{ID: "gold", Quota: &limit.Quota{Requests: 1, Window: limit.Day}}
	if d, err := r.Allow(t.Context(), key, daily, now); err != nil || !d.Allowed {
		t.Fatalf("first daily call: allowed %v, err %v; want allowed", d.Allowed, err)
	}
	if d, err := r.Allow(t.Context(), key, daily, now); err != nil || d.Allowed {
		t.Fatalf("second daily call: allowed %v, err %v; want refused", d.Allowed, err)
	}
	monthly := limit.Policy{ID: "gold", Quota: &limit.Quota{Requests: 2, Window: limit.Month}}
	d, err := r.Allow(t.Context(), key, monthly, now)
	if err != nil {
		t.Fatal(err)
	}
	if !d.Allowed || d.Quota.Remaining != 1 {
		t.Errorf("first monthly call: allowed %v, remaining %d; want allowed with 1 left", d.Allowed, d.Quota.Remaining)
	}
}

func TestKeyPrefix(t *testing.T) {
	tests := []struct {
		key  limit.Key
		want string
	}{
		{limit.Key{Profile: "alice", Policy: "gold"}, "{gh:alice:gold}"},
		{limit.Key{Profile: "a:b", Policy: "c"}, "{gh:a%3Ab:c}"},
		{limit.Key{Profile: "a", Policy: "b:c"}, "{gh:a:b%3Ac}"},
		{limit.Key{Profile: "x}y", Policy: "{z"}, "{gh:x%7Dy:%7Bz}"},
		{limit.Key{Profile: "100%", Policy: "p"}, "{gh:100%25:p}"},
	}
	for _, tc := range tests {
		if got := keyPrefix(tc.key); got != tc.want {
			t.Errorf("keyPrefix(%+v) = %q, want %q", tc.key, got, tc.want)
		}
	}
}
