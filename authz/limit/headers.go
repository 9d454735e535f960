package limit

import (
	"strconv"
	"time"
)

// Response header names, from the IETF httpapi ratelimit-headers draft and
// RFC 9110 (Retry-After).
const (
	HeaderRateLimit       = "RateLimit"
	HeaderRateLimitPolicy = "RateLimit-Policy"
	HeaderRetryAfter      = "Retry-After"
)

// Policy names used in the structured header lists.
const (
	ratePolicyName  = `"rate"`
	quotaPolicyName = `"quota"`
)

// Headers holds rendered header values; an empty value means the header is
// not sent.
type Headers struct {
	RateLimit       string
	RateLimitPolicy string
	RetryAfter      string
}

// Headers renders the response header values for d.
func (d *Decision) Headers() Headers {
	var buf [128]byte
	var h Headers
	h.RateLimit = string(d.AppendRateLimit(buf[:0]))
	h.RateLimitPolicy = string(d.AppendPolicy(buf[:0]))
	if s := d.RetryAfterSeconds(); s > 0 {
		h.RetryAfter = strconv.FormatInt(s, 10)
	}
	return h
}

// AppendPolicy appends the RateLimit-Policy value, for example
// `"rate";q=100;w=60, "quota";q=10000;w=86400`.
func (d *Decision) AppendPolicy(dst []byte) []byte {
	return d.appendList(dst, policyList)
}

// AppendRateLimit appends the RateLimit value, for example
// `"rate";r=42;t=3, "quota";r=9000;t=3600`.
func (d *Decision) AppendRateLimit(dst []byte) []byte {
	return d.appendList(dst, stateList)
}

// list chooses the parameters a header gives each limit; the two headers
// differ in nothing else.
type list uint8

const (
	stateList  list = iota // RateLimit: r remaining calls, t seconds to reset
	policyList             // RateLimit-Policy: q calls allowed, w window seconds
)

// appendList appends one list member per limit present in d, in the order
// rate, quota.
func (d *Decision) appendList(dst []byte, l list) []byte {
	first := true
	for _, it := range [...]struct {
		name string
		s    *Status
	}{{ratePolicyName, &d.Rate}, {quotaPolicyName, &d.Quota}} {
		if !it.s.Present {
			continue
		}
		if !first {
			dst = append(dst, ", "...)
		}
		first = false
		countKey, count, secondsKey, span := ";r=", it.s.Remaining, ";t=", it.s.Reset
		if l == policyList {
			countKey, count, secondsKey, span = ";q=", it.s.Limit, ";w=", it.s.Window
		}
		dst = append(dst, it.name...)
		dst = append(dst, countKey...)
		dst = strconv.AppendUint(dst, count, 10)
		dst = append(dst, secondsKey...)
		dst = strconv.AppendInt(dst, ceilSeconds(span), 10)
	}
	return dst
}

// RetryAfterSeconds returns the Retry-After value in whole seconds, rounded
// up and at least 1 for a refused call; 0 for an allowed one.
func (d *Decision) RetryAfterSeconds() int64 {
	if d.Allowed {
		return 0
	}
	return max(ceilSeconds(d.RetryAfter), 1)
}

func ceilSeconds(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return int64((d + time.Second - 1) / time.Second)
}
