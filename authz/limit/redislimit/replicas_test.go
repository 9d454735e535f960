package redislimit

import (
	"testing"
	"time"

	"gatehouse/authz/limit"
	"gatehouse/authz/limit/redistest"
)

// TestRedisExactAcrossReplicas runs three sidecars (separate clients and
// limiters) against one Redis, with goroutines on every sidecar hammering
// one profile: the admitted count is exactly the policy's limit.
func TestRedisExactAcrossReplicas(t *testing.T) {
	srv := redistest.Start(t)
	var sidecars []limit.Limiter
	for range 3 {
		sidecars = append(sidecars, newReplica(t, srv.Addr, Config{Deadline: 2 * time.Second}))
	}
	now := time.Date(2025, 3, 12, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		p    limit.Policy
		want int
	}{
		{"quota", limit.Policy{ID: "quota", Quota: &limit.Quota{Requests: 500, Window: limit.Month}}, 500},
		{"burst", limit.Policy{ID: "burst", Rate: &limit.Rate{Requests: 10, Period: time.Hour, Burst: 77}}, 77},
		{"quota under a rate", limit.Policy{ID: "both", Rate: &limit.Rate{Requests: 1000, Period: time.Second}, Quota: &limit.Quota{Requests: 250, Window: limit.Day}}, 250},
		{"rate under a quota", limit.Policy{ID: "both2", Rate: &limit.Rate{Requests: 30, Period: time.Minute}, Quota: &limit.Quota{Requests: 250, Window: limit.Day}}, 30},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			key := limit.Key{Profile: "shared-profile", Policy: tc.p.ID}
			if got := hammer(t, sidecars, key, tc.p, now, 24, 50); got != tc.want {
				t.Errorf("admitted %d of 1200 across 3 replicas, want exactly %d", got, tc.want)
			}
		})
	}
	for _, s := range sidecars {
		if s.(*replica).Unavailable() {
			t.Error("a replica fell back during the run; the count was not decided by Redis")
		}
	}
}
