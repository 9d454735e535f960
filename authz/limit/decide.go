package limit

import "time"

// State is what a backend keeps per Key between calls. All backends do the
// arithmetic in whole microseconds so that the Redis script (Lua numbers are
// doubles, exact below 2^53) and the in-memory path agree to the unit.
type State struct {
	// TAT is the GCRA theoretical arrival time in Unix microseconds; any
	// value at or before now means an idle, fully replenished rate.
	TAT int64
	// Used is the number of calls counted in the quota window containing now.
	Used uint64
}

// Decide evaluates p at now against s. It returns the decision and the state
// to store. A refused call returns s unchanged: nothing is consumed, neither
// rate nor quota, whichever limit refused.
func Decide(p Policy, now time.Time, s State) (Decision, State) {
	var qStart, qEnd int64
	if p.Quota != nil {
		qStart, qEnd = p.Quota.Window.Bounds(now)
	}
	return decide(p, now.UnixMicro(), s, qStart, qEnd)
}

// Emission returns the GCRA emission interval and burst tolerance of r in
// microseconds. ok is false when r admits nothing (no requests or no
// period). Rates above one million per second are held to that.
func (r Rate) Emission() (emission, tolerance int64, ok bool) {
	if r.Requests == 0 || r.Period <= 0 {
		return 0, 0, false
	}
	emission = max(r.Period.Microseconds()/int64(r.Requests), 1)
	burst := r.Burst
	if burst == 0 {
		burst = r.Requests
	}
	return emission, emission * int64(burst), true
}

// decide is Decide with the clock in microseconds and the quota window
// bounds (Unix seconds) already known, so backends can cache them.
func decide(p Policy, now int64, s State, qStart, qEnd int64) (Decision, State) {
	next := s
	rateOK, quotaOK := true, true
	var rateRetry int64
	var emission, tolerance int64
	if p.Rate != nil {
		var ok bool
		emission, tolerance, ok = p.Rate.Emission()
		if !ok {
			rateOK, rateRetry = false, max(p.Rate.Period.Microseconds(), 1)
		} else {
			tat := max(s.TAT, now)
			newTAT := tat + emission
			if over := newTAT - now - tolerance; over > 0 {
				rateOK, rateRetry = false, over
			} else {
				next.TAT = newTAT
			}
		}
	}
	endUs := qEnd * 1e6
	if p.Quota != nil {
		if s.Used >= p.Quota.Requests {
			quotaOK = false
		} else {
			next.Used = s.Used + 1
		}
	}

	var d Decision
	switch {
	case !quotaOK:
		d.Code, d.RetryAfter = QuotaExceeded, micros(endUs-now)
	case !rateOK:
		d.Code, d.RetryAfter = RateLimited, micros(rateRetry)
	default:
		d.Allowed = true
	}
	if !d.Allowed {
		next = s
	}
	if p.Rate != nil {
		d.Rate = Status{Present: true, Limit: uint64(p.Rate.Requests), Window: p.Rate.Period}
		if emission > 0 {
			ahead := max(next.TAT-now, 0)
			d.Rate.Remaining = uint64(max(tolerance-ahead, 0) / emission)
			d.Rate.Reset = micros(ahead)
		}
	}
	if p.Quota != nil {
		d.Quota = Status{
			Present: true,
			Limit:   p.Quota.Requests,
			Window:  time.Duration(qEnd-qStart) * time.Second,
			Reset:   micros(endUs - now),
		}
		if next.Used < p.Quota.Requests {
			d.Quota.Remaining = p.Quota.Requests - next.Used
		}
	}
	return d, next
}

func micros(us int64) time.Duration { return time.Duration(us) * time.Microsecond }
