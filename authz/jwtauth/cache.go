package jwtauth

import (
	"sync"
	"sync/atomic"
)

// cacheShards spreads lock traffic over cores; a power of two.
const cacheShards = 64

// cache holds verified tokens by the SHA-256 of the token, so a repeat token
// skips parsing and signature checks. Only tokens that verified are added, so
// random tokens cannot grow it, and it is bounded by entry count: each shard
// is a fixed ring evicted by the CLOCK algorithm (second chance), whose hits
// only set a bit under a read lock.
type cache struct {
	shards [cacheShards]shard
}

type shard struct {
	mu    sync.RWMutex
	idx   map[[32]byte]int32
	slots []slot
	cap   int
	hand  int
}

type slot struct {
	key    [32]byte
	entry  cacheEntry
	recent atomic.Bool
}

// cacheEntry is a verified token and what its verification depended on.
type cacheEntry struct {
	res Result
	// expires is Result.Expiry in Unix nanoseconds.
	expires int64
	// prof is the profile the token verified against; once a new config
	// changes or removes it, the entry is void.
	prof *profile
	// epoch is the key set epoch of prof.src when the token verified.
	epoch uint64
}

// valid reports whether e still stands at now.
func (e *cacheEntry) valid(now int64) bool {
	if now >= e.expires || e.prof.dead.Load() {
		return false
	}
	return e.prof.src == nil || e.epoch >= e.prof.src.revoked.Load()
}

// newCache returns a cache of about entries entries, or nil (no caching) when
// entries is not positive.
func newCache(entries int) *cache {
	if entries <= 0 {
		return nil
	}
	per := (entries + cacheShards - 1) / cacheShards
	c := &cache{}
	for i := range c.shards {
		c.shards[i] = shard{idx: make(map[[32]byte]int32), cap: per}
	}
	return c
}

func (c *cache) shard(key *[32]byte) *shard { return &c.shards[key[0]%cacheShards] }

// get returns the valid entry for key at now.
func (c *cache) get(key *[32]byte, now int64) (Result, bool) {
	s := c.shard(key)
	s.mu.RLock()
	i, ok := s.idx[*key]
	if !ok {
		s.mu.RUnlock()
		return Result{}, false
	}
	sl := &s.slots[i]
	e := sl.entry
	if !e.valid(now) {
		s.mu.RUnlock()
		return Result{}, false
	}
	if !sl.recent.Load() {
		sl.recent.Store(true)
	}
	s.mu.RUnlock()
	return e.res, true
}

// put adds or replaces the entry for key.
func (c *cache) put(key *[32]byte, e cacheEntry, now int64) {
	s := c.shard(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	if i, ok := s.idx[*key]; ok {
		s.slots[i].entry = e
		return
	}
	if len(s.slots) < s.cap {
		s.slots = append(s.slots, slot{key: *key, entry: e})
		s.idx[*key] = int32(len(s.slots) - 1)
		return
	}
	// Sweep for a slot not used since the hand last passed it. Void entries
	// go first. Two turns always find one, since the first clears every bit.
	for range 2 * s.cap {
		sl := &s.slots[s.hand]
		if !sl.entry.valid(now) || !sl.recent.Load() {
			break
		}
		sl.recent.Store(false)
		s.hand = (s.hand + 1) % s.cap
	}
	sl := &s.slots[s.hand]
	delete(s.idx, sl.key)
	sl.key, sl.entry = *key, e
	sl.recent.Store(false)
	s.idx[*key] = int32(s.hand)
	s.hand = (s.hand + 1) % s.cap
}

// len returns the number of entries, valid or not.
func (c *cache) len() int {
	n := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.RLock()
		n += len(s.slots)
		s.mu.RUnlock()
	}
	return n
}
