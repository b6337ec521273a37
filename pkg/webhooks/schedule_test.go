package webhooks_test

import (
	"errors"
	"math"
	"net/http"
	"testing"
	"time"

	"github.com/kycpipe/kycpipe/pkg/webhooks"
)

func TestParseSchedule(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want []time.Duration // nil: error
	}{
		{webhooks.DefaultScheduleString, webhooks.DefaultSchedule().Steps()},
		{"5s,5m,30m,2h,5h,10h,10h", []time.Duration{5 * time.Second, 5 * time.Minute, 30 * time.Minute, 2 * time.Hour, 5 * time.Hour, 10 * time.Hour, 10 * time.Hour}},
		{" 1s , 1m30s ,100ms", []time.Duration{time.Second, 90 * time.Second, 100 * time.Millisecond}},
		{"168h", []time.Duration{168 * time.Hour}},
		{"", nil},
		{"  ", nil},
		{"5s,,5m", nil},
		{"5s,5m,", nil},
		{"5", nil},
		{"5s,abc", nil},
		{"0s", nil},
		{"-5s", nil},
		{"169h", nil},
		{"5s;5m", nil},
	}
	for _, tt := range tests {
		got, err := webhooks.ParseSchedule(tt.in)
		if tt.want == nil {
			if !errors.Is(err, webhooks.ErrInvalidSchedule) {
				t.Errorf("ParseSchedule(%q): err = %v, want ErrInvalidSchedule", tt.in, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseSchedule(%q): %v", tt.in, err)
			continue
		}
		if steps := got.Steps(); !equalDurations(steps, tt.want) {
			t.Errorf("ParseSchedule(%q) = %v, want %v", tt.in, steps, tt.want)
		}
	}
	long := "1s"
	for range 64 {
		long += ",1s"
	}
	if _, err := webhooks.ParseSchedule(long); !errors.Is(err, webhooks.ErrInvalidSchedule) {
		t.Errorf("65 entries: err = %v, want ErrInvalidSchedule", err)
	}
}

func equalDurations(a, b []time.Duration) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestScheduleString(t *testing.T) {
	t.Parallel()
	if got := webhooks.DefaultSchedule().String(); got != webhooks.DefaultScheduleString {
		t.Fatalf("String = %q, want %q", got, webhooks.DefaultScheduleString)
	}
	s, _ := webhooks.NewSchedule(90*time.Second, 1500*time.Millisecond)
	back, err := webhooks.ParseSchedule(s.String())
	if err != nil || !equalDurations(back.Steps(), s.Steps()) {
		t.Fatalf("round trip of %q: %v, %v", s.String(), back.Steps(), err)
	}
	steps := s.Steps()
	steps[0] = time.Hour
	if s.Steps()[0] != 90*time.Second {
		t.Fatal("Steps returns shared state")
	}
}

func TestScheduleDelay(t *testing.T) {
	t.Parallel()
	def := webhooks.DefaultSchedule()
	if def.MaxAttempts() != 8 {
		t.Fatalf("MaxAttempts = %d, want 8 (the first attempt and 7 retries)", def.MaxAttempts())
	}
	tests := []struct {
		attempts   int
		retryAfter time.Duration
		wait       time.Duration
		retry      bool
	}{
		{0, 0, 0, true}, // nothing attempted yet: go now
		{-1, 0, 0, true},
		{1, 0, 5 * time.Second, true},
		{2, 0, 5 * time.Minute, true},
		{3, 0, 30 * time.Minute, true},
		{4, 0, 2 * time.Hour, true},
		{5, 0, 5 * time.Hour, true},
		{6, 0, 10 * time.Hour, true},
		{7, 0, 10 * time.Hour, true},
		{8, 0, 0, false}, // the 8th attempt failed: dead-letter
		{9, 0, 0, false},
		{math.MaxInt, 0, 0, false},
		{1, 2 * time.Minute, 2 * time.Minute, true},   // a longer Retry-After wins
		{2, 2 * time.Minute, 5 * time.Minute, true},   // a shorter one is ignored
		{1, -time.Hour, 5 * time.Second, true},        // nonsense is ignored
		{1, 48 * time.Hour, 24 * time.Hour, true},     // capped at MaxRetryAfter
		{7, 11 * time.Hour, 11 * time.Hour, true},     //
		{8, time.Minute, 0, false},                    // Retry-After does not add attempts
		{3, 30 * time.Minute, 30 * time.Minute, true}, // equal
	}
	for _, tt := range tests {
		wait, retry := def.Delay(tt.attempts, tt.retryAfter)
		if wait != tt.wait || retry != tt.retry {
			t.Errorf("Delay(%d, %s) = %s, %v; want %s, %v", tt.attempts, tt.retryAfter, wait, retry, tt.wait, tt.retry)
		}
	}
	var zero webhooks.Schedule
	if w, ok := zero.Delay(1, time.Minute); ok || w != 0 || zero.MaxAttempts() != 1 {
		t.Errorf("zero Schedule: Delay(1) = %s, %v, MaxAttempts %d; want no retry and 1 attempt", w, ok, zero.MaxAttempts())
	}
}

func TestParseRetryAfter(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"120", 2 * time.Minute, true},
		{" 5 ", 5 * time.Second, true},
		{"0", 0, true},
		{"86400", 24 * time.Hour, true},
		{"86401", webhooks.MaxRetryAfter, true},
		{"99999999999999999999999", webhooks.MaxRetryAfter, true},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second, true}, // IMF-fixdate
		{"Sun, 06 Dec 2026 10:30:00 GMT", 30 * time.Minute, true},                   // IMF-fixdate
		{"Sunday, 06-Dec-26 10:00:10 GMT", 10 * time.Second, true},                  // RFC 850
		{"Sun Dec  6 11:00:00 2026", time.Hour, true},                               // ANSI C asctime
		{"Sun, 06 Dec 2026 09:00:00 GMT", 0, true},                                  // in the past
		{"Wed, 06 Dec 2028 10:00:00 GMT", webhooks.MaxRetryAfter, true},             // capped
		{"", 0, false},
		{"-5", 0, false},
		{"+5", 0, false},
		{"1.5", 0, false},
		{"5s", 0, false},
		{"soon", 0, false},
		{"2026-12-06T10:30:00Z", 0, false},
	}
	for _, tt := range tests {
		got, ok := webhooks.ParseRetryAfter(tt.in, now)
		if got != tt.want || ok != tt.ok {
			t.Errorf("ParseRetryAfter(%q) = %s, %v; want %s, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}
