package limit

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestDecide(t *testing.T) {
	now := utc("2025-03-12T10:00:00Z") // a Wednesday
	us := now.UnixMicro()
	sec := int64(time.Second / time.Microsecond)
	perSecond10 := &Rate{Requests: 10, Period: time.Second}      // T = 100ms, tolerance 1s
	burst3 := &Rate{Requests: 60, Period: time.Minute, Burst: 3} // T = 1s, tolerance 3s
	daily := &Quota{Requests: 5, Window: Day}
	tests := []struct {
		name     string
		p        Policy
		now      time.Time
		in       State
		want     Decision
		wantNext State
	}{{
		name: "no limits",
		p:    Policy{ID: "p"},
		now:  now,
		want: Decision{Allowed: true},
	}, {
		name:     "fresh rate allows and reports the burst left",
		p:        Policy{Rate: perSecond10},
		now:      now,
		want:     Decision{Allowed: true, Rate: Status{Present: true, Limit: 10, Window: time.Second, Remaining: 9, Reset: 100 * time.Millisecond}},
		wantNext: State{TAT: us + sec/10},
	}, {
		name:     "TAT in the past counts as now",
		p:        Policy{Rate: perSecond10},
		now:      now,
		in:       State{TAT: us - 5*sec},
		want:     Decision{Allowed: true, Rate: Status{Present: true, Limit: 10, Window: time.Second, Remaining: 9, Reset: 100 * time.Millisecond}},
		wantNext: State{TAT: us + sec/10},
	}, {
		name:     "last call of the burst",
		p:        Policy{Rate: burst3},
		now:      now,
		in:       State{TAT: us + 2*sec},
		want:     Decision{Allowed: true, Rate: Status{Present: true, Limit: 60, Window: time.Minute, Remaining: 0, Reset: 3 * time.Second}},
		wantNext: State{TAT: us + 3*sec},
	}, {
		name: "burst used up: refused until one emission interval passes",
		p:    Policy{Rate: burst3},
		now:  now,
		in:   State{TAT: us + 3*sec},
		want: Decision{Code: RateLimited, RetryAfter: time.Second,
			Rate: Status{Present: true, Limit: 60, Window: time.Minute, Remaining: 0, Reset: 3 * time.Second}},
		wantNext: State{TAT: us + 3*sec},
	}, {
		name:     "one emission interval later it fits again",
		p:        Policy{Rate: burst3},
		now:      now.Add(time.Second),
		in:       State{TAT: us + 3*sec},
		want:     Decision{Allowed: true, Rate: Status{Present: true, Limit: 60, Window: time.Minute, Remaining: 0, Reset: 3 * time.Second}},
		wantNext: State{TAT: us + 4*sec},
	}, {
		name: "zero requests refuses",
		p:    Policy{Rate: &Rate{Requests: 0, Period: time.Minute}},
		now:  now,
		want: Decision{Code: RateLimited, RetryAfter: time.Minute,
			Rate: Status{Present: true, Limit: 0, Window: time.Minute}},
	}, {
		name:     "rates above a million per second are held to it",
		p:        Policy{Rate: &Rate{Requests: 2_000_000, Period: time.Second}},
		now:      now,
		want:     Decision{Allowed: true, Rate: Status{Present: true, Limit: 2_000_000, Window: time.Second, Remaining: 1_999_999, Reset: time.Microsecond}},
		wantNext: State{TAT: us + 1},
	}, {
		name:     "quota counts",
		p:        Policy{Quota: daily},
		now:      now,
		in:       State{Used: 3},
		want:     Decision{Allowed: true, Quota: Status{Present: true, Limit: 5, Window: 24 * time.Hour, Remaining: 1, Reset: 14 * time.Hour}},
		wantNext: State{Used: 4},
	}, {
		name: "quota exhausted: retry at the window end",
		p:    Policy{Quota: daily},
		now:  now,
		in:   State{Used: 5},
		want: Decision{Code: QuotaExceeded, RetryAfter: 14 * time.Hour,
			Quota: Status{Present: true, Limit: 5, Window: 24 * time.Hour, Remaining: 0, Reset: 14 * time.Hour}},
		wantNext: State{Used: 5},
	}, {
		name: "quota refusal consumes no rate",
		p:    Policy{Rate: burst3, Quota: daily},
		now:  now,
		in:   State{TAT: us + sec, Used: 5},
		want: Decision{Code: QuotaExceeded, RetryAfter: 14 * time.Hour,
			Rate:  Status{Present: true, Limit: 60, Window: time.Minute, Remaining: 2, Reset: time.Second},
			Quota: Status{Present: true, Limit: 5, Window: 24 * time.Hour, Remaining: 0, Reset: 14 * time.Hour}},
		wantNext: State{TAT: us + sec, Used: 5},
	}, {
		name: "rate refusal consumes no quota",
		p:    Policy{Rate: burst3, Quota: daily},
		now:  now,
		in:   State{TAT: us + 3*sec, Used: 1},
		want: Decision{Code: RateLimited, RetryAfter: time.Second,
			Rate:  Status{Present: true, Limit: 60, Window: time.Minute, Remaining: 0, Reset: 3 * time.Second},
			Quota: Status{Present: true, Limit: 5, Window: 24 * time.Hour, Remaining: 4, Reset: 14 * time.Hour}},
		wantNext: State{TAT: us + 3*sec, Used: 1},
	}, {
		name:     "last second of a month",
		p:        Policy{Quota: &Quota{Requests: 100, Window: Month}},
		now:      utc("2025-01-31T23:59:59Z"),
		in:       State{Used: 99},
		want:     Decision{Allowed: true, Quota: Status{Present: true, Limit: 100, Window: 31 * 24 * time.Hour, Remaining: 0, Reset: time.Second}},
		wantNext: State{Used: 100},
	}, {
		name:     "leap february is 29 days",
		p:        Policy{Quota: &Quota{Requests: 100, Window: Month}},
		now:      utc("2024-02-29T00:00:00Z"),
		want:     Decision{Allowed: true, Quota: Status{Present: true, Limit: 100, Window: 29 * 24 * time.Hour, Remaining: 99, Reset: 24 * time.Hour}},
		wantNext: State{Used: 1},
	}, {
		name: "ISO week ends on Monday",
		p:    Policy{Quota: &Quota{Requests: 1, Window: Week}},
		now:  utc("2025-03-16T23:59:00Z"),
		in:   State{Used: 1},
		want: Decision{Code: QuotaExceeded, RetryAfter: time.Minute,
			Quota: Status{Present: true, Limit: 1, Window: 7 * 24 * time.Hour, Remaining: 0, Reset: time.Minute}},
		wantNext: State{Used: 1},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d, next := Decide(tc.p, tc.now, tc.in)
			if diff := cmp.Diff(tc.want, d); diff != "" {
				t.Errorf("decision (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantNext, next); diff != "" {
				t.Errorf("next state (-want +got):\n%s", diff)
			}
		})
	}
}

// TestGCRASmooth checks the property that distinguishes GCRA from a fixed
// window: after the burst, calls are admitted at exactly the emission rate,
// and there is no second burst at a window edge.
func TestGCRASmooth(t *testing.T) {
	tests := []struct {
		name     string
		rate     Rate
		step     time.Duration
		steps    int
		admitted int
	}{
		{"burst defaults to requests", Rate{Requests: 5, Period: time.Second}, 0, 20, 5},
		{"explicit burst", Rate{Requests: 5, Period: time.Second, Burst: 2}, 0, 20, 2},
		{"steady at the emission rate", Rate{Requests: 5, Period: time.Second, Burst: 1}, 200 * time.Millisecond, 50, 50},
		{"twice the rate gets half", Rate{Requests: 5, Period: time.Second, Burst: 1}, 100 * time.Millisecond, 50, 25},
		// 10 at once, then one per 100ms while 1.99s pass.
		{"burst then the rate", Rate{Requests: 10, Period: time.Second}, 10 * time.Millisecond, 200, 10 + 19},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := Policy{Rate: &tc.rate}
			now := utc("2025-03-12T10:00:00Z")
			var s State
			admitted := 0
			for i := 0; i < tc.steps; i++ {
				var d Decision
				d, s = Decide(p, now, s)
				if d.Allowed {
					admitted++
				}
				now = now.Add(tc.step)
			}
			if admitted != tc.admitted {
				t.Errorf("admitted %d, want %d", admitted, tc.admitted)
			}
		})
	}
}
