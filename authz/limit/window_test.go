package limit

import (
	"testing"
	"time"
)

func utc(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return t
}

func TestWindowBounds(t *testing.T) {
	tests := []struct {
		name       string
		w          Window
		now        string
		start, end string
	}{
		{"day start", Day, "2025-03-10T00:00:00Z", "2025-03-10T00:00:00Z", "2025-03-11T00:00:00Z"},
		{"day last nanosecond", Day, "2025-03-10T23:59:59.999999999Z", "2025-03-10T00:00:00Z", "2025-03-11T00:00:00Z"},
		{"day from another zone is UTC", Day, "2025-03-10T23:30:00-05:00", "2025-03-11T00:00:00Z", "2025-03-12T00:00:00Z"},
		{"leap day", Day, "2024-02-29T12:00:00Z", "2024-02-29T00:00:00Z", "2024-03-01T00:00:00Z"},
		{"week monday midnight", Week, "2025-03-10T00:00:00Z", "2025-03-10T00:00:00Z", "2025-03-17T00:00:00Z"},
		{"week sunday last second", Week, "2025-03-16T23:59:59Z", "2025-03-10T00:00:00Z", "2025-03-17T00:00:00Z"},
		{"ISO week 1 starts in December", Week, "2025-01-01T08:00:00Z", "2024-12-30T00:00:00Z", "2025-01-06T00:00:00Z"},
		{"week of the epoch", Week, "1970-01-01T00:00:00Z", "1969-12-29T00:00:00Z", "1970-01-05T00:00:00Z"},
		{"month last second", Month, "2025-01-31T23:59:59Z", "2025-01-01T00:00:00Z", "2025-02-01T00:00:00Z"},
		{"month first second", Month, "2025-02-01T00:00:00Z", "2025-02-01T00:00:00Z", "2025-03-01T00:00:00Z"},
		{"leap february", Month, "2024-02-29T23:59:59Z", "2024-02-01T00:00:00Z", "2024-03-01T00:00:00Z"},
		{"december into next year", Month, "2025-12-31T23:59:59Z", "2025-12-01T00:00:00Z", "2026-01-01T00:00:00Z"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			start, end := tc.w.Bounds(utc(tc.now))
			if got, want := time.Unix(start, 0).UTC(), utc(tc.start); !got.Equal(want) {
				t.Errorf("start = %v, want %v", got, want)
			}
			if got, want := time.Unix(end, 0).UTC(), utc(tc.end); !got.Equal(want) {
				t.Errorf("end = %v, want %v", got, want)
			}
		})
	}
}
