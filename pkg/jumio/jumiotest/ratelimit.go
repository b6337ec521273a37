package jumiotest

import (
	"strconv"
	"time"
)

// rateLimitBody is Jumio's documented 429 body, byte for byte.
const rateLimitBody = `{"title":"Too Many Requests","status":429,"detail":"Request limit exceeded"}`

// SetRateLimits replaces the rate limits (nil turns them off) and resets
// every bucket to full. Invalid values (negative, NaN) turn the affected
// class off.
func (s *Server) SetRateLimits(r *RateLimits) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.buckets = map[string]*bucket{}
	if r == nil {
		s.limits = nil
		return
	}
	rl := *r
	s.limits = &rl
}

// allow takes a token from the bucket of class (key names the class and
// the tenant). When refused it returns how long until a token is available if
// Retry-After is enabled, else 0.
func (s *Server) allow(class, key string) (bool, time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.limits == nil {
		return true, 0
	}
	var rate float64
	var burst int
	switch class {
	case classAccount:
		rate, burst = s.limits.AccountPerSecond, s.limits.AccountBurst
	case classRetrieval:
		rate, burst = s.limits.RetrievalPerSecond, s.limits.RetrievalBurst
	case classToken:
		rate, burst = s.limits.TokenPerSecond, s.limits.TokenBurst
	}
	if !(rate > 0) {
		return true, 0
	}
	b := s.buckets[key]
	if b == nil {
		b = &bucket{}
		s.buckets[key] = b
	}
	ok, wait := b.take(time.Now(), rate, max(burst, 1))
	if !ok && s.limits.RetryAfter {
		return false, wait
	}
	return ok, 0
}

// bucket is a token bucket measured in real (monotonic) time.
type bucket struct {
	tokens float64
	last   time.Time
}

func (b *bucket) take(now time.Time, rate float64, burst int) (bool, time.Duration) {
	if b.last.IsZero() {
		b.tokens = float64(burst)
	} else {
		b.tokens = min(float64(burst), b.tokens+now.Sub(b.last).Seconds()*rate)
	}
	b.last = now
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	return false, time.Duration((1 - b.tokens) / rate * float64(time.Second))
}

func itoa(n int) string { return strconv.Itoa(n) }
