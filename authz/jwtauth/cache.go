package jwtauth

import (
	"sync"
	"sync/atomic"
)

const (
	// cacheShards spreads lock traffic over cores; a power of two.
	cacheShards = 64
	// entryOverhead approximates an entry's fixed cost: its slot and its
	// index map entry.
	entryOverhead = 160
)

// cache holds verified tokens by the SHA-256 of the token, so a repeat token
// skips parsing and signature checks. Only tokens that verified are added, so
// random tokens cannot grow it. It is bounded twice: by entries, and by bytes,
// since the holder of an HMAC secret can mint any number of valid tokens of up
// to MaxTokenBytes each. Each shard evicts by the CLOCK algorithm (second
// chance), whose hits only set a bit under a read lock.
type cache struct {
	shards [cacheShards]shard
}

type shard struct {
	mu       sync.RWMutex
	idx      map[[32]byte]int32
	slots    []slot
	free     []int32 // slots emptied by eviction
	maxLen   int
	maxBytes int
	bytes    int
	hand     int
}

type slot struct {
	used   bool
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

func (e *cacheEntry) size() int {
	return entryOverhead + len(e.res.ClaimsJSON) + len(e.res.ClaimsBase64)
}

// valid reports whether e still stands at now.
func (e *cacheEntry) valid(now int64) bool {
	if now >= e.expires || e.prof.dead.Load() {
		return false
	}
	return e.prof.src == nil || e.epoch >= e.prof.src.revoked.Load()
}

// newCache returns a cache of at most entries entries and about maxBytes
// bytes, or nil (no caching) when either is not positive.
func newCache(entries, maxBytes int) *cache {
	if entries <= 0 || maxBytes <= 0 {
		return nil
	}
	c := &cache{}
	for i := range c.shards {
		c.shards[i] = shard{
			idx:      make(map[[32]byte]int32),
			maxLen:   max(1, entries/cacheShards),
			maxBytes: max(1, maxBytes/cacheShards),
		}
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

// put adds or replaces the entry for key. An entry larger than a shard's
// byte budget is not cached.
func (c *cache) put(key *[32]byte, e cacheEntry, now int64) {
	size := e.size()
	s := c.shard(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	if size > s.maxBytes {
		return
	}
	if i, ok := s.idx[*key]; ok {
		s.remove(i)
	}
	for len(s.idx) >= s.maxLen || s.bytes+size > s.maxBytes {
		s.evictOne(now)
	}
	var i int32
	if n := len(s.free); n > 0 {
		i, s.free = s.free[n-1], s.free[:n-1]
	} else {
		s.slots = append(s.slots, slot{})
		i = int32(len(s.slots) - 1)
	}
	sl := &s.slots[i]
	sl.used, sl.key, sl.entry = true, *key, e
	sl.recent.Store(false)
	s.idx[*key] = i
	s.bytes += size
}

// evictOne frees one slot: the first void entry or the first not used since
// the hand last passed it. Two turns always find one, since the first clears
// every bit. The shard must hold at least one entry.
func (s *shard) evictOne(now int64) {
	for range 2*len(s.slots) + 1 {
		if s.hand >= len(s.slots) {
			s.hand = 0
		}
		i := s.hand
		s.hand++
		sl := &s.slots[i]
		if !sl.used {
			continue
		}
		if !sl.entry.valid(now) || !sl.recent.Load() {
			s.remove(int32(i))
			return
		}
		sl.recent.Store(false)
	}
}

func (s *shard) remove(i int32) {
	sl := &s.slots[i]
	delete(s.idx, sl.key)
	s.bytes -= sl.entry.size()
	sl.used, sl.entry = false, cacheEntry{}
	s.free = append(s.free, i)
}

// stats returns the number of entries, valid or not, and their bytes.
func (c *cache) stats() (entries, bytes int) {
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.RLock()
		entries += len(s.idx)
		bytes += s.bytes
		s.mu.RUnlock()
	}
	return entries, bytes
}
