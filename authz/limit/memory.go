package limit

import (
	"context"
	"hash/maphash"
	"math/bits"
	"sync"
	"sync/atomic"
	"time"
)

// MemoryConfig configures a Memory limiter.
type MemoryConfig struct {
	// Shards is the number of independently locked maps, rounded up to a
	// power of two. Default 64.
	Shards int
	// Metrics, when set, counts decisions.
	Metrics *Metrics
}

// Memory is the in-process limiter: exact for a single replica. It keeps
// state only for the keys callers pass (authenticated profiles); Sweep drops
// idle entries and profiles that no longer exist.
type Memory struct {
	seed    maphash.Seed
	mask    uint64
	shards  []shard
	metrics *Metrics
	// track is set by a Persister: quota changes are then queued for it.
	track atomic.Bool
}

type shard struct {
	mu    sync.Mutex
	m     map[Key]*entry
	dirty []Key // keys whose quota changed since the last drain, when tracked
	_     [64]byte
}

type entry struct {
	tat    int64 // GCRA TAT, Unix microseconds
	window Window
	start  int64 // quota window [start, end), Unix seconds
	end    int64
	used   uint64
	dirty  bool
}

// NewMemory returns an empty in-memory limiter.
func NewMemory(cfg MemoryConfig) *Memory {
	n := cfg.Shards
	if n <= 0 {
		n = 64
	}
	n = 1 << bits.Len(uint(n-1))
	m := &Memory{seed: maphash.MakeSeed(), mask: uint64(n - 1), shards: make([]shard, n), metrics: cfg.Metrics}
	for i := range m.shards {
		m.shards[i].m = make(map[Key]*entry)
	}
	return m
}

// Allow decides one call; it never returns an error.
func (m *Memory) Allow(_ context.Context, key Key, p Policy, now time.Time) (Decision, error) {
	d := m.Decide(key, p, now)
	m.metrics.Decided(&d)
	return d, nil
}

// Decide decides one call and commits it when allowed. It allocates only
// when key is seen for the first time.
func (m *Memory) Decide(key Key, p Policy, now time.Time) Decision {
	if p.Rate == nil && p.Quota == nil {
		return Decision{Allowed: true}
	}
	nowUs := now.UnixMicro()
	sh := m.shard(key)
	sh.mu.Lock()
	e := sh.m[key]
	if e == nil {
		e = &entry{}
		sh.m[key] = e
	}
	s := State{TAT: e.tat}
	if q := p.Quota; q != nil {
		// A clock that steps back stays in the current window rather than
		// resetting it, which would lose counts.
		if e.window != q.Window || floorDiv(nowUs, 1e6) >= e.end {
			e.window = q.Window
			e.start, e.end = q.Window.Bounds(now)
			e.used = 0
		}
		s.Used = e.used
	}
	d, next := decide(p, nowUs, s, e.start, e.end)
	if d.Allowed {
		e.tat = next.TAT
		if p.Quota != nil {
			e.used = next.Used
			if !e.dirty && m.track.Load() {
				sh.dirty = append(sh.dirty, key)
			}
			e.dirty = true
		}
	}
	sh.mu.Unlock()
	return d
}

// Sweep drops the state of keys that keep rejects (profiles or policies that
// no longer exist; keep may be nil) and of idle keys: a rate that is fully
// replenished and no quota count in a current window. It returns how many
// entries it dropped. Run it when the configuration changes and every few
// minutes; it holds one shard lock at a time.
func (m *Memory) Sweep(now time.Time, keep func(Key) bool) int {
	nowUs, nowSec := now.UnixMicro(), now.Unix()
	dropped := 0
	for i := range m.shards {
		sh := &m.shards[i]
		sh.mu.Lock()
		for k, e := range sh.m {
			idle := e.tat <= nowUs && (e.used == 0 || nowSec >= e.end)
			if idle || (keep != nil && !keep(k)) {
				delete(sh.m, k)
				dropped++
			}
		}
		sh.mu.Unlock()
	}
	return dropped
}

// Len returns the number of keys with state.
func (m *Memory) Len() int {
	n := 0
	for i := range m.shards {
		sh := &m.shards[i]
		sh.mu.Lock()
		n += len(sh.m)
		sh.mu.Unlock()
	}
	return n
}

func (m *Memory) shard(k Key) *shard {
	h := maphash.String(m.seed, k.Profile)
	h = h*31 ^ maphash.String(m.seed, k.Policy)
	return &m.shards[h&m.mask]
}

// quotaCount is one quota counter as it is persisted.
type quotaCount struct {
	Key    Key
	Window Window
	Start  int64 // Unix seconds
	Used   uint64
}

// drainDirty appends the quota counters changed since the last drain.
func (m *Memory) drainDirty(dst []quotaCount) []quotaCount {
	for i := range m.shards {
		sh := &m.shards[i]
		sh.mu.Lock()
		for _, k := range sh.dirty {
			if e := sh.m[k]; e != nil && e.dirty {
				e.dirty = false
				dst = append(dst, quotaCount{Key: k, Window: e.window, Start: e.start, Used: e.used})
			}
		}
		clear(sh.dirty)
		sh.dirty = sh.dirty[:0]
		sh.mu.Unlock()
	}
	return dst
}

// restore loads a persisted counter unless its window has ended by now.
// It reports whether the counter was current.
func (m *Memory) restore(c quotaCount, now time.Time) bool {
	if !c.Window.Valid() {
		return false
	}
	end := c.Window.windowEnd(c.Start)
	if now.Unix() >= end {
		return false
	}
	sh := m.shard(c.Key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	e := sh.m[c.Key]
	if e == nil {
		e = &entry{}
		sh.m[c.Key] = e
	}
	if e.window == c.Window && e.start == c.Start {
		e.used = max(e.used, c.Used)
	} else {
		e.window, e.start, e.end, e.used = c.Window, c.Start, end, c.Used
	}
	return true
}
