package limit

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// hammer calls l from many goroutines at one frozen instant and returns how
// many calls were admitted.
func hammer(t testing.TB, l Limiter, key Key, p Policy, now time.Time, goroutines, calls int) int {
	t.Helper()
	var admitted atomic.Int64
	var wg sync.WaitGroup
	for range goroutines {
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

func TestMemoryExactUnderConcurrency(t *testing.T) {
	now := utc("2025-03-12T10:00:00Z")
	tests := []struct {
		name string
		p    Policy
		want int
	}{
		{"quota", Policy{ID: "q", Quota: &Quota{Requests: 777, Window: Day}}, 777},
		{"burst", Policy{ID: "r", Rate: &Rate{Requests: 10, Period: time.Hour, Burst: 33}}, 33},
		{"both, quota first", Policy{ID: "b", Rate: &Rate{Requests: 100, Period: time.Second}, Quota: &Quota{Requests: 40, Window: Month}}, 40},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := NewMemory(MemoryConfig{})
			if got := hammer(t, m, Key{"profile", tc.p.ID}, tc.p, now, 32, 100); got != tc.want {
				t.Errorf("admitted %d, want %d", got, tc.want)
			}
		})
	}
}

func TestMemoryRefusalConsumesNothing(t *testing.T) {
	m := NewMemory(MemoryConfig{})
	p := Policy{ID: "p", Rate: &Rate{Requests: 2, Period: time.Second}, Quota: &Quota{Requests: 5, Window: Day}}
	key := Key{"a", "p"}
	now := utc("2025-03-12T10:00:00Z")
	var got []Code
	for _, step := range []time.Duration{0, 0, 0, 0, time.Second, 0, 0, time.Second, 0, 10 * time.Second} {
		now = now.Add(step)
		got = append(got, m.Decide(key, p, now).Code)
	}
	want := []Code{OK, OK, RateLimited, RateLimited, OK, OK, RateLimited, OK, QuotaExceeded, QuotaExceeded}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("codes = %v, want %v", got, want)
		}
	}
}

func TestMemoryQuotaResetsAtWindowEnd(t *testing.T) {
	tests := []struct {
		name      string
		w         Window
		last, new string
	}{
		{"month", Month, "2025-01-31T23:59:59.999Z", "2025-02-01T00:00:00Z"},
		{"ISO week", Week, "2025-03-16T23:59:59Z", "2025-03-17T00:00:00Z"},
		{"leap day", Day, "2024-02-29T23:59:59Z", "2024-03-01T00:00:00Z"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := NewMemory(MemoryConfig{})
			p := Policy{ID: "p", Quota: &Quota{Requests: 3, Window: tc.w}}
			key := Key{"a", "p"}
			for i := range 3 {
				if d := m.Decide(key, p, utc(tc.last)); !d.Allowed {
					t.Fatalf("call %d refused: %+v", i, d)
				}
			}
			if d := m.Decide(key, p, utc(tc.last)); d.Code != QuotaExceeded {
				t.Fatalf("4th call: %v, want quota_exceeded", d.Code)
			}
			d := m.Decide(key, p, utc(tc.new))
			if !d.Allowed || d.Quota.Remaining != 2 {
				t.Fatalf("first call of the new window: %+v", d)
			}
		})
	}
}

func TestMemorySweep(t *testing.T) {
	m := NewMemory(MemoryConfig{Shards: 4})
	now := utc("2025-03-12T10:00:00Z")
	rate := Policy{ID: "r", Rate: &Rate{Requests: 1, Period: time.Minute}}
	quota := Policy{ID: "q", Quota: &Quota{Requests: 10, Window: Day}}
	m.Decide(Key{"busy", "r"}, rate, now)
	m.Decide(Key{"idle", "r"}, rate, now.Add(-time.Hour))
	m.Decide(Key{"counted", "q"}, quota, now)
	m.Decide(Key{"gone", "q"}, quota, now)
	m.Decide(Key{"yesterday", "q"}, quota, now.Add(-24*time.Hour))
	m.Decide(Key{"anon", "none"}, Policy{ID: "none"}, now) // no limits: no state

	if got := m.Len(); got != 5 {
		t.Fatalf("Len = %d, want 5", got)
	}
	dropped := m.Sweep(now, func(k Key) bool { return k.Profile != "gone" })
	if dropped != 3 || m.Len() != 2 {
		t.Fatalf("dropped %d, left %d; want 3 dropped (idle, gone, yesterday), 2 left", dropped, m.Len())
	}
	// The kept quota still counts.
	if d := m.Decide(Key{"counted", "q"}, quota, now); d.Quota.Remaining != 8 {
		t.Errorf("remaining after sweep = %d, want 8", d.Quota.Remaining)
	}
}

func TestMemoryAllowDoesNotAllocate(t *testing.T) {
	m := NewMemory(MemoryConfig{})
	p := Policy{ID: "p", Rate: &Rate{Requests: 1000, Period: time.Second}, Quota: &Quota{Requests: 1 << 40, Window: Month}}
	key := Key{"profile-1", "p"}
	now := time.Now()
	m.Decide(key, p, now)
	allocs := testing.AllocsPerRun(1000, func() {
		now = now.Add(time.Millisecond)
		if _, err := m.Allow(context.Background(), key, p, now); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("Allow allocates %v times per call, want 0", allocs)
	}
}

func TestMetricsCountDecisions(t *testing.T) {
	reg := prometheus.NewRegistry()
	metrics, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	m := NewMemory(MemoryConfig{Metrics: metrics})
	p := Policy{ID: "p", Quota: &Quota{Requests: 2, Window: Day}}
	now := time.Now()
	for range 5 {
		if _, err := m.Allow(context.Background(), Key{"a", "p"}, p, now); err != nil {
			t.Fatal(err)
		}
	}
	got := counterValues(t, reg, "gatehouse_limit_decisions_total", "result")
	if got["ok"] != 2 || got["quota_exceeded"] != 3 {
		t.Errorf("decisions = %v, want ok=2 quota_exceeded=3", got)
	}
	if _, err := NewMetrics(reg); err == nil {
		t.Error("registering twice succeeded, want an error")
	}
}

// counterValues returns the counter values of family name by label value.
func counterValues(t testing.TB, g prometheus.Gatherer, name, label string) map[string]float64 {
	t.Helper()
	families, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == label {
					out[l.GetValue()] = m.GetCounter().GetValue()
				}
			}
		}
	}
	return out
}
