package redislimit

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"gatehouse/authz/limit"
)

// decideScript evaluates the GCRA rate and the quota of one key atomically
// and commits both or neither. It returns the state it found (TAT and quota
// count before this call); the caller derives the same decision from it with
// limit.Decide, which does the identical integer arithmetic.
//
// Time is the caller's clock in Unix microseconds (ARGV[1]), never Redis's
// TIME: replicas with synchronised clocks agree, and microseconds keep rates
// above 1,000/s exact. Lua numbers are doubles, exact for these magnitudes.
//
// KEYS[1] rate key, KEYS[2] quota key (same hash slot).
// ARGV: now, emission interval (0: no rate), burst tolerance, quota limit
// (-1: no quota), quota key TTL in ms.
const decideLua = `
local now = tonumber(ARGV[1])
local emission = tonumber(ARGV[2])
local tolerance = tonumber(ARGV[3])
local qlimit = tonumber(ARGV[4])
local ok = true
local tat = 0
local newtat = 0
if emission > 0 then
  tat = tonumber(redis.call('GET', KEYS[1]) or '0')
  newtat = math.max(tat, now) + emission
  if newtat - now > tolerance then ok = false end
end
local used = 0
if qlimit >= 0 then
  used = tonumber(redis.call('GET', KEYS[2]) or '0')
  if used >= qlimit then ok = false end
end
if ok then
  if emission > 0 then
    redis.call('SET', KEYS[1], string.format('%d', newtat), 'PX', math.ceil((newtat - now) / 1000))
  end
  if qlimit >= 0 then
    redis.call('INCR', KEYS[2])
    redis.call('PEXPIRE', KEYS[2], ARGV[5])
  end
end
return {tat, used}
`

// quotaKeyMargin keeps a quota key this long after its window ends, so a
// replica whose clock is a little behind still counts into the same key.
const quotaKeyMargin = time.Hour

// maxExact is the largest integer a Lua number holds exactly.
const maxExact = 1 << 53

// keyPrefix returns the hash-tagged prefix of a key's Redis keys: every key
// of one profile and policy lands in one Cluster slot. Ids are free-form, so
// the characters that would make two keys collide or move the hash tag are
// percent-encoded; ordinary ids appear as they are.
func keyPrefix(k limit.Key) string {
	return "{gh:" + escapeID(k.Profile) + ":" + escapeID(k.Policy) + "}"
}

const idSpecials = "%:{}"

func escapeID(id string) string {
	if !strings.ContainsAny(id, idSpecials) {
		return id
	}
	var b strings.Builder
	for i := 0; i < len(id); i++ {
		c := id[i]
		if strings.IndexByte(idSpecials, c) >= 0 {
			fmt.Fprintf(&b, "%%%02X", c)
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

// evalArgs builds the script's keys and arguments for p at now.
func evalArgs(k limit.Key, p limit.Policy, now time.Time) (keys []string, args []any) {
	prefix := keyPrefix(k)
	var emission, tolerance int64
	if p.Rate != nil {
		emission, tolerance, _ = p.Rate.Emission()
	}
	qlimit, qttl, qstart, qwindow := int64(-1), int64(0), int64(0), "none"
	if p.Quota != nil {
		var end int64
		qwindow = p.Quota.Window.String()
		qstart, end = p.Quota.Window.Bounds(now)
		qlimit = int64(min(p.Quota.Requests, maxExact))
		qttl = time.Unix(end, 0).Sub(now).Milliseconds() + quotaKeyMargin.Milliseconds()
	}
	// The window's name is part of the key: a day and a month both start on
	// the 1st, and a policy changed from one to the other must not inherit
	// the other's count.
	keys = []string{prefix + ":rate", prefix + ":quota:" + qwindow + ":" + strconv.FormatInt(qstart, 10)}
	args = []any{now.UnixMicro(), emission, tolerance, qlimit, qttl}
	return keys, args
}

// runScript makes the one round trip of a decision: EVALSHA, or EVAL when
// the server does not know the script yet.
func runScript(ctx context.Context, c redis.Scripter, s *redis.Script, k limit.Key, p limit.Policy, now time.Time) (limit.State, error) {
	keys, args := evalArgs(k, p, now)
	res, err := s.Run(ctx, c, keys, args...).Int64Slice()
	if err != nil {
		return limit.State{}, fmt.Errorf("run limit script: %w", err)
	}
	if len(res) != 2 || res[1] < 0 {
		return limit.State{}, fmt.Errorf("run limit script: unexpected reply %v", res)
	}
	return limit.State{TAT: res[0], Used: uint64(res[1])}, nil
}
