package mapping

import "time"

// clampDate returns the created_at of a message dated after now, at most
// a day ahead (contract §9): now, in whole seconds, so that the date is
// not in the future when the request arrives (it leaves after the plan
// is made). ok is false for a date that needs no clamping.
//
// Clamping keeps the order of events: a thread's messages are sorted by
// their own dates, and min(date, now) never reverses two of them; clamped
// messages share the request's time and keep their own order among
// themselves.
func clampDate(date, now time.Time) (time.Time, bool) {
	limit := now.Truncate(time.Second)
	if !date.After(limit) {
		return time.Time{}, false
	}
	return limit.UTC(), true
}
