// Package limit decides whether an authenticated caller still has room under
// its access policy: a GCRA rate limit (smooth, no fixed-window bursts) and a
// quota counted exactly per calendar window (UTC day, ISO week, month).
//
// The check pipeline depends only on the Limiter interface. Memory is the
// default backend (exact for one replica); package redislimit shares the
// counters between replicas through Redis.
package limit

import (
	"context"
	"time"
)

// Limiter decides one call. Implementations must not return an error for a
// backend outage: they answer with the configured fail mode instead, so the
// caller never turns a limiter problem into a 500. now is the caller's clock;
// every replica passes its own, which keeps backends free of server time.
type Limiter interface {
	Allow(ctx context.Context, key Key, p Policy, now time.Time) (Decision, error)
}

// LimiterFunc adapts a function to Limiter.
type LimiterFunc func(ctx context.Context, key Key, p Policy, now time.Time) (Decision, error)

// Allow calls f.
func (f LimiterFunc) Allow(ctx context.Context, key Key, p Policy, now time.Time) (Decision, error) {
	return f(ctx, key, p, now)
}

// Key identifies one counter set: an access profile under one access policy.
type Key struct {
	Profile string
	Policy  string
}

// Policy is the limiting part of an access policy. Rate and Quota are
// optional; a Policy with neither allows every call.
type Policy struct {
	ID    string
	Rate  *Rate
	Quota *Quota
}

// Rate is a GCRA rate limit: Requests per Period on average, with up to Burst
// calls at once. Burst 0 means Requests.
type Rate struct {
	Requests uint32
	Period   time.Duration
	Burst    uint32
}

// Quota is an exact count of calls per calendar window in UTC.
type Quota struct {
	Requests uint64
	Window   Window
}

// Code says why a call was refused. Its String is stable and used as a
// metric label and a problem+json code.
type Code uint8

// Decision codes.
const (
	// OK means the call is allowed.
	OK Code = iota
	// RateLimited means the rate limit refused the call (HTTP 429).
	RateLimited
	// QuotaExceeded means the quota of the current window is used up (HTTP 429).
	QuotaExceeded
	// LimiterUnavailable means the shared backend could not be reached and
	// the fail mode is closed (HTTP 503).
	LimiterUnavailable
	numCodes
)

// String returns the stable name of c.
func (c Code) String() string {
	switch c {
	case OK:
		return "ok"
	case RateLimited:
		return "rate_limited"
	case QuotaExceeded:
		return "quota_exceeded"
	case LimiterUnavailable:
		return "limiter_unavailable"
	}
	return "unknown"
}

// Status is the state of one limit after a decision, as the ratelimit
// headers report it.
type Status struct {
	// Present is false when the policy has no such limit.
	Present bool
	// Limit is the number of calls per Window (the q parameter).
	Limit uint64
	// Window is the policy window (the w parameter). For a month quota it
	// is the length of the current month.
	Window time.Duration
	// Remaining is how many calls fit right now (the r parameter).
	Remaining uint64
	// Reset is how long until the limit is whole again (the t parameter):
	// for a rate, until the burst is fully replenished; for a quota, until
	// the window ends.
	Reset time.Duration
}

// Decision is the answer for one call.
type Decision struct {
	Allowed bool
	// Code is OK when Allowed, else which limit refused.
	Code Code
	// RetryAfter is set on refusal: the earliest time a retry can succeed.
	RetryAfter time.Duration
	Rate       Status
	Quota      Status
}
