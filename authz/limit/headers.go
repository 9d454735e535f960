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
	first := true
	for _, it := range [...]struct {
		name string
		s    *Status
	}{{ratePolicyName, &d.Rate}, {quotaPolicyName, &d.Quota}} {
		if !it.s.Present {
			continue
		}
		dst = appendSep(dst, &first)
		dst = append(dst, it.name...)
		dst = append(dst, ";q="...)
		dst = strconv.AppendUint(dst, it.s.Limit, 10)
		dst = append(dst, ";w="...)
		dst = strconv.AppendInt(dst, ceilSeconds(it.s.Window), 10)
	}
	return dst
}

// AppendRateLimit appends the RateLimit value, for example
// `"rate";r=42;t=3, "quota";r=9000;t=3600`.
func (d *Decision) AppendRateLimit(dst []byte) []byte {
	first := true
	for _, it := range [...]struct {
		name string
		s    *Status
	}{{ratePolicyName, &d.Rate}, {quotaPolicyName, &d.Quota}} {
		if !it.s.Present {
			continue
		}
		dst = appendSep(dst, &first)
		dst = append(dst, it.name...)
		dst = append(dst, ";r="...)
		dst = strconv.AppendUint(dst, it.s.Remaining, 10)
		dst = append(dst, ";t="...)
		dst = strconv.AppendInt(dst, ceilSeconds(it.s.Reset), 10)
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

func appendSep(dst []byte, first *bool) []byte {
	if !*first {
		dst = append(dst, ", "...)
	}
	*first = false
	return dst
}

func ceilSeconds(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return int64((d + time.Second - 1) / time.Second)
}
