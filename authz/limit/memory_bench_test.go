package limit

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"
	"time"
)

func benchPolicy() Policy {
	return Policy{ID: "p", Rate: &Rate{Requests: 1_000_000, Period: time.Second}, Quota: &Quota{Requests: 1 << 62, Window: Month}}
}

// BenchmarkMemoryAllow is one profile calling in a loop: the hot path for an
// existing key.
func BenchmarkMemoryAllow(b *testing.B) {
	m := NewMemory(MemoryConfig{})
	p := benchPolicy()
	key := Key{"profile-1", "p"}
	now := time.Now()
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		now = now.Add(time.Microsecond)
		if d, err := m.Allow(ctx, key, p, now); err != nil || !d.Allowed {
			b.Fatalf("Allow = %+v, %v; the benchmark must measure admitted calls", d, err)
		}
	}
}

// BenchmarkMemoryAllowParallel spreads calls over 10,000 existing profiles.
func BenchmarkMemoryAllowParallel(b *testing.B) {
	m := NewMemory(MemoryConfig{})
	p := benchPolicy()
	keys := make([]Key, 10000)
	now := time.Now()
	for i := range keys {
		keys[i] = Key{"profile-" + strconv.Itoa(i), "p"}
		m.Decide(keys[i], p, now)
	}
	var seq atomic.Int64
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := int(seq.Add(7919))
		ctx := context.Background()
		for pb.Next() {
			i++
			if _, err := m.Allow(ctx, keys[i%len(keys)], p, now); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
