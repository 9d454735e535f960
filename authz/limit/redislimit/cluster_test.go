package redislimit

import (
	"testing"
	"time"

	"gatehouse/authz/limit"
	"gatehouse/authz/limit/redistest"
)

// TestRedisCluster runs two replicas in Cluster mode. Cluster refuses a
// script whose keys span slots, so this also proves the hash tags keep a
// profile's rate and quota keys together.
func TestRedisCluster(t *testing.T) {
	srv := redistest.StartCluster(t)
	var sidecars []limit.Limiter
	for range 2 {
		l, err := Open(t.Context(), Settings{Addrs: []string{srv.Addr}, Cluster: true, Deadline: 2 * time.Second, FailMode: FailClosed}, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if err := l.Close(); err != nil {
				t.Error(err)
			}
		})
		sidecars = append(sidecars, l)
	}
	p := limit.Policy{ID: "gold", Rate: &limit.Rate{Requests: 1000, Period: time.Second}, Quota: &limit.Quota{Requests: 123, Window: limit.Week}}
	key := limit.Key{Profile: "alice", Policy: "gold"}
	now := time.Date(2025, 3, 12, 10, 0, 0, 0, time.UTC)
	if got := hammer(t, sidecars, key, p, now, 8, 40); got != 123 {
		t.Errorf("admitted %d across 2 cluster replicas, want exactly 123", got)
	}
	for _, s := range sidecars {
		if s.(*Limiter).Unavailable() {
			t.Error("a replica fell back: the cluster refused the script")
		}
	}
}
