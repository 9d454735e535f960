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
