package pipeline

import (
	"cmp"
	"math/rand/v2"
	"time"

	"github.com/cenkalti/backoff/v4"
)

// Backoff is an exponential backoff policy for redeliveries: the n-th retry
// waits about Initial·Multiplier^(n-1), capped at Max, randomized by ±Jitter.
type Backoff struct {
	Initial    time.Duration // default 1s
	Max        time.Duration // default 5m
	Multiplier float64       // default 2
	Jitter     float64       // default 0.2 (±20%)
}

// WithDefaults fills unset fields.
func (b Backoff) WithDefaults() Backoff {
	b.Initial = cmp.Or(b.Initial, time.Second)
	b.Max = cmp.Or(b.Max, 5*time.Minute)
	b.Multiplier = cmp.Or(b.Multiplier, 2)
	if b.Jitter == 0 {
		b.Jitter = 0.2
	}
	if b.Jitter < 0 {
		b.Jitter = 0
	}
	return b
}

// Delay returns the wait before retry number attempt (1 for the first
// retry). It is stateless: the attempt count lives in the job record or in
// JetStream's delivery count, so a crash during the wait loses nothing.
func (b Backoff) Delay(attempt int) time.Duration {
	b = b.WithDefaults()
	if attempt < 1 {
		attempt = 1
	}
	eb := &backoff.ExponentialBackOff{
		InitialInterval:     b.Initial,
		RandomizationFactor: 0,
		Multiplier:          b.Multiplier,
		MaxInterval:         b.Max,
		MaxElapsedTime:      0,
		Stop:                backoff.Stop,
		Clock:               backoff.SystemClock,
	}
	eb.Reset()
	d := b.Initial
	for i := 0; i < attempt && i < 64; i++ {
		d = eb.NextBackOff()
		if d >= b.Max {
			d = b.Max
			break
		}
	}
	if b.Jitter > 0 {
		d = time.Duration(float64(d) * (1 - b.Jitter + 2*b.Jitter*rand.Float64()))
	}
	return min(d, b.Max)
}

// JumioRetrievalSchedule is Jumio's recommended retrieval schedule: retries
// at 40, 60, 100, 160, 240, 340, 460, 600, 760 and 940 seconds after the
// first attempt (cumulative offsets).
var JumioRetrievalSchedule = []time.Duration{
	40 * time.Second, 60 * time.Second, 100 * time.Second, 160 * time.Second, 240 * time.Second,
	340 * time.Second, 460 * time.Second, 600 * time.Second, 760 * time.Second, 940 * time.Second,
}

// DefaultPollTailEvery is how often an execution is polled once Jumio's
// retrieval schedule is over (jumio-api.md §10.8).
const DefaultPollTailEvery = 20 * time.Minute

// PollDelay returns how long to wait before poll number n (1-based): the
// schedule's steps (see [ScheduleDelay]), then tail between polls.
func PollDelay(schedule []time.Duration, tail time.Duration, n int) time.Duration {
	if n > len(schedule) && tail > 0 {
		return tail
	}
	return ScheduleDelay(schedule, n)
}

// ScheduleDelay returns how long to wait before poll number n (1-based) of
// a schedule of cumulative offsets: the difference between consecutive
// offsets. Past the end of the schedule, the last difference repeats.
func ScheduleDelay(schedule []time.Duration, n int) time.Duration {
	if len(schedule) == 0 {
		return time.Minute
	}
	if n < 1 {
		n = 1
	}
	if n > len(schedule) {
		if len(schedule) == 1 {
			return schedule[0]
		}
		return schedule[len(schedule)-1] - schedule[len(schedule)-2]
	}
	if n == 1 {
		return schedule[0]
	}
	return schedule[n-1] - schedule[n-2]
}

func (b Backoff) validate(errs *fieldErrors) {
	nonNegative(errs, "Backoff.Initial", b.Initial)
	nonNegative(errs, "Backoff.Max", b.Max)
	nonNegative(errs, "Backoff.Multiplier", b.Multiplier)
	if b.Initial > 0 && b.Max > 0 && b.Max < b.Initial {
		errs.add("Backoff.Max", "must not be less than Backoff.Initial")
	}
	if b.Multiplier > 0 && b.Multiplier < 1 {
		errs.add("Backoff.Multiplier", "must be at least 1")
	}
}
