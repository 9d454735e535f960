package limit

import (
	"fmt"
	"time"
)

// Window is a calendar quota window in UTC.
type Window uint8

// Quota windows.
const (
	// Day runs from 00:00 UTC to the next 00:00 UTC.
	Day Window = iota + 1
	// Week is the ISO week: Monday 00:00 UTC to the next Monday.
	Week
	// Month is the calendar month: the 1st 00:00 UTC to the next 1st.
	Month
)

// String returns the window's name.
func (w Window) String() string {
	switch w {
	case Day:
		return "day"
	case Week:
		return "week"
	case Month:
		return "month"
	}
	return fmt.Sprintf("window(%d)", uint8(w))
}

// Valid reports whether w is one of the defined windows.
func (w Window) Valid() bool { return w >= Day && w <= Month }

const secondsPerDay = 24 * 60 * 60

// Bounds returns the window containing now as [start, end) in Unix seconds.
// Day and week are plain arithmetic; month goes through the calendar.
func (w Window) Bounds(now time.Time) (start, end int64) {
	sec := now.Unix()
	day := floorDiv(sec, secondsPerDay)
	switch w {
	case Day:
		return day * secondsPerDay, (day + 1) * secondsPerDay
	case Week:
		// 1970-01-01 was a Thursday: day+3 counts from the Monday before.
		monday := day - mod(day+3, 7)
		return monday * secondsPerDay, (monday + 7) * secondsPerDay
	case Month:
		y, m, _ := now.UTC().Date()
		s := time.Date(y, m, 1, 0, 0, 0, 0, time.UTC)
		return s.Unix(), s.AddDate(0, 1, 0).Unix()
	}
	return sec, sec + 1
}

// windowEnd returns the end of the window that starts at start.
func (w Window) windowEnd(start int64) int64 {
	_, end := w.Bounds(time.Unix(start, 0))
	return end
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

func mod(a, b int64) int64 {
	r := a % b
	if r < 0 {
		r += b
	}
	return r
}
