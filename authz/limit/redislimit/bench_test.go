package redislimit

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"gatehouse/authz/limit"
	"gatehouse/authz/limit/redistest"
)

func benchPolicy() limit.Policy {
	return limit.Policy{ID: "p", Rate: &limit.Rate{Requests: 1_000_000, Period: time.Second}, Quota: &limit.Quota{Requests: 1 << 50, Window: limit.Month}}
}

// BenchmarkRedisAllow is one decision at a time against Redis on loopback;
// it reports the round trips each decision took.
func BenchmarkRedisAllow(b *testing.B) {
	srv := redistest.Start(b)
	r := newReplica(b, srv.Addr, Config{Deadline: time.Second})
	p := benchPolicy()
	key := limit.Key{Profile: "profile-1", Policy: "p"}
	ctx := context.Background()
	before := r.trips.n.Load()
	b.ReportAllocs()
	for b.Loop() {
		if d, err := r.Allow(ctx, key, p, time.Now()); err != nil || !d.Allowed {
			b.Fatalf("Allow = %+v, %v; the benchmark must measure admitted calls", d, err)
		}
	}
	b.ReportMetric(float64(r.trips.n.Load()-before)/float64(b.N), "roundtrips/op")
	if r.Unavailable() {
		b.Fatal("limiter fell back during the benchmark")
	}
}

// BenchmarkRedisAllowParallel spreads concurrent decisions over 1,000
// profiles.
func BenchmarkRedisAllowParallel(b *testing.B) {
	srv := redistest.Start(b)
	r := newReplica(b, srv.Addr, Config{Deadline: time.Second})
	p := benchPolicy()
	keys := make([]limit.Key, 1000)
	for i := range keys {
		keys[i] = limit.Key{Profile: "profile-" + strconv.Itoa(i), Policy: "p"}
	}
	var seq atomic.Int64
	before := r.trips.n.Load()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := int(seq.Add(7919))
		ctx := context.Background()
		for pb.Next() {
			i++
			if _, err := r.Allow(ctx, keys[i%len(keys)], p, time.Now()); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(r.trips.n.Load()-before)/float64(b.N), "roundtrips/op")
	if r.Unavailable() {
		b.Fatal("limiter fell back during the benchmark")
	}
}
