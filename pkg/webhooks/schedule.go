package webhooks

import (
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// MaxRetryAfter caps a Retry-After, so an endpoint cannot park its
// deliveries beyond the retry schedule's horizon.
const MaxRetryAfter = 24 * time.Hour

// ParseRetryAfter reads a Retry-After header value: delay-seconds (a
// non-negative integer) or an HTTP date, relative to now (a date in the
// past is 0). Values above [MaxRetryAfter] are capped to it. ok is false
// when v is empty or malformed.
func ParseRetryAfter(v string, now time.Time) (d time.Duration, ok bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if isDigits(v) {
		secs, err := strconv.ParseUint(v, 10, 64)
		if err != nil || secs > uint64(MaxRetryAfter/time.Second) { // too large to parse is large
			return MaxRetryAfter, true
		}
		return time.Duration(secs) * time.Second, true
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	return min(max(t.Sub(now), 0), MaxRetryAfter), true
}

// DefaultScheduleString is the default retry schedule
// (KYCPIPE_WEBHOOK_SCHEDULE), Standard Webhooks' recommendation: the first
// attempt is immediate, then 7 retries, about 28 hours in all.
const DefaultScheduleString = "5s,5m,30m,2h,5h,10h,10h"

// Schedule limits.
const (
	maxScheduleSteps = 64
	maxScheduleStep  = 7 * 24 * time.Hour
)

// Schedule is a retry schedule: step i is the wait after the (i+1)-th
// failed attempt before the next one; after the last step's attempt fails
// the delivery is dead-lettered. The zero Schedule allows one attempt and
// no retry. A Schedule is immutable.
type Schedule struct {
	steps []time.Duration
}

// DefaultSchedule returns the schedule of [DefaultScheduleString].
func DefaultSchedule() Schedule {
	return Schedule{steps: []time.Duration{
		5 * time.Second, 5 * time.Minute, 30 * time.Minute,
		2 * time.Hour, 5 * time.Hour, 10 * time.Hour, 10 * time.Hour,
	}}
}

// NewSchedule returns the schedule of the given waits; each must be
// greater than 0 and at most 7 days, and there may be at most 64.
func NewSchedule(steps ...time.Duration) (Schedule, error) {
	if len(steps) > maxScheduleSteps {
		return Schedule{}, fmt.Errorf("%w: at most %d entries", ErrInvalidSchedule, maxScheduleSteps)
	}
	for i, d := range steps {
		if d <= 0 || d > maxScheduleStep {
			return Schedule{}, fmt.Errorf("%w: entry %d must be greater than 0 and at most %s", ErrInvalidSchedule, i+1, maxScheduleStep)
		}
	}
	return Schedule{steps: slices.Clone(steps)}, nil
}

// ParseSchedule parses a comma-separated list of Go durations, such as
// [DefaultScheduleString]; spaces around entries are ignored. Errors wrap
// [ErrInvalidSchedule] and name the offending entry's position.
func ParseSchedule(s string) (Schedule, error) {
	if strings.TrimSpace(s) == "" {
		return Schedule{}, fmt.Errorf("%w: empty (give at least one wait, e.g. %q)", ErrInvalidSchedule, DefaultScheduleString)
	}
	parts := strings.Split(s, ",")
	steps := make([]time.Duration, 0, len(parts))
	for i, p := range parts {
		d, err := time.ParseDuration(strings.TrimSpace(p))
		if err != nil {
			return Schedule{}, fmt.Errorf("%w: entry %d is not a duration such as 30s, 5m or 2h", ErrInvalidSchedule, i+1)
		}
		steps = append(steps, d)
	}
	return NewSchedule(steps...)
}

// Steps returns a copy of the waits.
func (s Schedule) Steps() []time.Duration { return slices.Clone(s.steps) }

// MaxAttempts is the number of attempts a delivery gets: one plus one per
// step.
func (s Schedule) MaxAttempts() int { return len(s.steps) + 1 }

// Delay returns how long to wait after attempt number attempts (1 for the
// first) failed, before the next one; retry is false when that was the
// last attempt and the delivery must be dead-lettered. attempts <= 0
// means none was made yet: (0, true), attempt at once. A retryAfter (from
// [Result.RetryAfter]) longer than the step replaces it; a shorter one is
// ignored. Delay is a pure function.
func (s Schedule) Delay(attempts int, retryAfter time.Duration) (wait time.Duration, retry bool) {
	if attempts <= 0 {
		return 0, true
	}
	if attempts > len(s.steps) {
		return 0, false
	}
	return max(s.steps[attempts-1], min(retryAfter, MaxRetryAfter)), true
}

// String returns the schedule in [ParseSchedule]'s format.
func (s Schedule) String() string {
	parts := make([]string, len(s.steps))
	for i, d := range s.steps {
		parts[i] = formatDuration(d)
	}
	return strings.Join(parts, ",")
}

// formatDuration writes whole hours, minutes or seconds compactly ("2h",
// "5m", "5s"), anything else as time.Duration does.
func formatDuration(d time.Duration) string {
	switch {
	case d%time.Hour == 0:
		return strconv.FormatInt(int64(d/time.Hour), 10) + "h"
	case d%time.Minute == 0:
		return strconv.FormatInt(int64(d/time.Minute), 10) + "m"
	case d%time.Second == 0:
		return strconv.FormatInt(int64(d/time.Second), 10) + "s"
	}
	return d.String()
}
