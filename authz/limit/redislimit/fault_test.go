package redislimit

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"gatehouse/authz/limit"
	"gatehouse/authz/limit/redistest"
)

// TestRedisFaults stalls (SIGSTOP) or kills the real Redis under load and
// checks that every call is answered within the deadline by the configured
// fail mode, then brings Redis back on the same port and checks that the
// limiter returns to it by itself with the right counts.
func TestRedisFaults(t *testing.T) {
	const (
		deadline = 100 * time.Millisecond
		slack    = 150 * time.Millisecond // scheduling under -race on a busy machine
		quota    = 20
		replicas = 2
	)
	tests := []struct {
		name  string
		mode  FailMode
		fault string // "stall" or "down"
		// check inspects the decisions made during the outage.
		check func(t *testing.T, ds []limit.Decision)
	}{
		{"local stall", FailLocal, "stall", wantAdmitted(quota / replicas)},
		{"local down", FailLocal, "down", wantAdmitted(quota / replicas)},
		{"open stall", FailOpen, "stall", wantAll(limit.OK)},
		{"closed stall", FailClosed, "stall", wantAll(limit.LimiterUnavailable)},
		{"closed down", FailClosed, "down", wantAll(limit.LimiterUnavailable)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := redistest.Start(t)
			reg := prometheus.NewRegistry()
			metrics, err := limit.NewMetrics(reg)
			if err != nil {
				t.Fatal(err)
			}
			r := newReplica(t, srv.Addr, Config{
				Deadline: deadline, FailMode: tc.mode, Replicas: replicas,
				ProbeInterval: 50 * time.Millisecond, Metrics: metrics,
			})
			now := time.Date(2025, 3, 12, 10, 0, 0, 0, time.UTC)
			p := limit.Policy{ID: "p", Quota: &limit.Quota{Requests: quota, Window: limit.Day}}
			before := limit.Key{Profile: "before", Policy: "p"}
			if got := hammer(t, []limit.Limiter{r}, before, p, now, 1, 5); got != 5 {
				t.Fatalf("admitted %d before the fault, want 5", got)
			}

			switch tc.fault {
			case "stall":
				srv.Pause()
			case "down":
				srv.Kill()
			}
			ds := timedLoad(t, r, limit.Key{Profile: "during", Policy: "p"}, p, now, 8, 10, deadline+slack)
			tc.check(t, ds)
			if !r.Unavailable() || gauge(t, reg, "gatehouse_limit_fallback_active") != 1 {
				t.Error("the limiter does not report the outage")
			}
			if errs := sumCounter(t, reg, "gatehouse_limit_backend_errors_total"); errs == 0 {
				t.Error("no backend error counted")
			}

			// Bring Redis back on the same port: resumed with its data, or
			// restarted empty (no persistence).
			left := quota - 5
			switch tc.fault {
			case "stall":
				srv.Resume()
			case "down":
				srv.Restart()
				left = quota
			}
			waitFor(t, 5*time.Second, func() bool { return !r.Unavailable() })
			if gauge(t, reg, "gatehouse_limit_fallback_active") != 0 {
				t.Error("fallback gauge still set after recovery")
			}
			if got := hammer(t, []limit.Limiter{r}, before, p, now, 4, 10); got != left {
				t.Errorf("after recovery admitted %d for the profile counted before, want %d", got, left)
			}
			fresh := limit.Key{Profile: "after", Policy: "p"}
			if got := hammer(t, []limit.Limiter{r}, fresh, p, now, 4, 10); got != quota {
				t.Errorf("after recovery admitted %d for a new profile, want %d", got, quota)
			}
			if r.Unavailable() {
				t.Error("the counts after recovery were not decided by Redis")
			}
		})
	}
}

// timedLoad runs calls from several goroutines and fails the test for any
// error or any call slower than limit.
func timedLoad(t *testing.T, l limit.Limiter, key limit.Key, p limit.Policy, now time.Time, goroutines, calls int, limit_ time.Duration) []limit.Decision {
	t.Helper()
	var mu sync.Mutex
	var ds []limit.Decision
	var slowest time.Duration
	var wg sync.WaitGroup
	for range goroutines {
		wg.Go(func() {
			for range calls {
				start := time.Now()
				d, err := l.Allow(context.Background(), key, p, now)
				took := time.Since(start)
				mu.Lock()
				ds = append(ds, d)
				slowest = max(slowest, took)
				mu.Unlock()
				if err != nil {
					t.Errorf("Allow returned an error during the outage: %v", err)
				}
			}
		})
	}
	wg.Wait()
	if slowest > limit_ {
		t.Errorf("slowest call took %v, want at most %v", slowest, limit_)
	}
	return ds
}

func wantAdmitted(n int) func(*testing.T, []limit.Decision) {
	return func(t *testing.T, ds []limit.Decision) {
		t.Helper()
		admitted := 0
		for _, d := range ds {
			if d.Allowed {
				admitted++
			} else if d.Code != limit.QuotaExceeded {
				t.Errorf("refused with %v, want quota_exceeded from the local limiter", d.Code)
			}
		}
		if admitted != n {
			t.Errorf("admitted %d during the outage, want %d (the quota divided among replicas)", admitted, n)
		}
	}
}

func wantAll(c limit.Code) func(*testing.T, []limit.Decision) {
	return func(t *testing.T, ds []limit.Decision) {
		t.Helper()
		for _, d := range ds {
			if d.Code != c || d.Allowed != (c == limit.OK) {
				t.Fatalf("decision %+v during the outage, want %v", d, c)
			}
		}
	}
}

func waitFor(t *testing.T, within time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %v", within)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func gauge(t *testing.T, g prometheus.Gatherer, name string) float64 {
	t.Helper()
	fs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fs {
		if f.GetName() == name {
			return f.GetMetric()[0].GetGauge().GetValue()
		}
	}
	return -1
}

func sumCounter(t *testing.T, g prometheus.Gatherer, name string) float64 {
	t.Helper()
	fs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, f := range fs {
		if f.GetName() == name {
			for _, m := range f.GetMetric() {
				sum += m.GetCounter().GetValue()
			}
		}
	}
	return sum
}
