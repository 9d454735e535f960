package limit

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestHeaders(t *testing.T) {
	rate := Status{Present: true, Limit: 100, Window: time.Minute, Remaining: 42, Reset: 2100 * time.Millisecond}
	quota := Status{Present: true, Limit: 10000, Window: 24 * time.Hour, Remaining: 9000, Reset: time.Hour}
	tests := []struct {
		name string
		d    Decision
		want Headers
	}{
		{"no limits", Decision{Allowed: true}, Headers{}},
		{"rate only", Decision{Allowed: true, Rate: rate}, Headers{
			RateLimit:       `"rate";r=42;t=3`,
			RateLimitPolicy: `"rate";q=100;w=60`,
		}},
		{"both", Decision{Allowed: true, Rate: rate, Quota: quota}, Headers{
			RateLimit:       `"rate";r=42;t=3, "quota";r=9000;t=3600`,
			RateLimitPolicy: `"rate";q=100;w=60, "quota";q=10000;w=86400`,
		}},
		{"refused rounds Retry-After up", Decision{Code: RateLimited, RetryAfter: 1500 * time.Millisecond, Quota: quota}, Headers{
			RateLimit:       `"quota";r=9000;t=3600`,
			RateLimitPolicy: `"quota";q=10000;w=86400`,
			RetryAfter:      "2",
		}},
		{"refused never says zero", Decision{Code: LimiterUnavailable}, Headers{RetryAfter: "1"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, tc.d.Headers()); diff != "" {
				t.Errorf("headers (-want +got):\n%s", diff)
			}
		})
	}
}

func TestCodeString(t *testing.T) {
	seen := map[string]bool{}
	for c := range numCodes {
		s := c.String()
		if s == "unknown" || seen[s] {
			t.Errorf("code %d has name %q", c, s)
		}
		seen[s] = true
	}
}

// TestAppendHeadersDoNotAllocate keeps the header values free of allocations
// when the caller appends into a stack buffer, as the check path does.
func TestAppendHeadersDoNotAllocate(t *testing.T) {
	d := Decision{Allowed: true,
		Rate:  Status{Present: true, Limit: 100, Window: time.Minute, Remaining: 42, Reset: time.Second},
		Quota: Status{Present: true, Limit: 10000, Window: 24 * time.Hour, Remaining: 9000, Reset: time.Hour}}
	n := 0
	allocs := testing.AllocsPerRun(1000, func() {
		var buf [128]byte
		n = len(d.AppendRateLimit(buf[:0])) + len(d.AppendPolicy(buf[:0]))
	})
	if allocs != 0 {
		t.Errorf("AppendRateLimit and AppendPolicy allocate %v times, want 0", allocs)
	}
	if n == 0 {
		t.Error("nothing appended")
	}
}

func BenchmarkAppendHeaders(b *testing.B) {
	d := Decision{Allowed: true,
		Rate:  Status{Present: true, Limit: 100, Window: time.Minute, Remaining: 42, Reset: time.Second},
		Quota: Status{Present: true, Limit: 10000, Window: 24 * time.Hour, Remaining: 9000, Reset: time.Hour}}
	b.ReportAllocs()
	var buf [128]byte
	for b.Loop() {
		_ = d.AppendRateLimit(buf[:0])
		_ = d.AppendPolicy(buf[:0])
	}
}
