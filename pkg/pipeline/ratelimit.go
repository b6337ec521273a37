package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/kycpipe/kycpipe/internal/ctxutil"
	"github.com/kycpipe/kycpipe/pkg/jumio"
)

// Rate is a limit for one endpoint class: PerSecond calls on average, at
// most Burst at once. A zero PerSecond means unlimited.
type Rate struct {
	PerSecond float64
	Burst     int
}

// RateLimits are the tenant's limits per endpoint class. Jumio documents
// about 1 account initiation per second (with small bursts), 15 retrievals
// and 10 token calls per second; tenants can have custom limits.
type RateLimits struct {
	Account   Rate
	Retrieval Rate
	Token     Rate
	// MaxWait is the longest a call waits in place for its permit (its
	// message kept alive by heartbeats); beyond that the job is put back
	// on the queue until its turn (default 20s).
	MaxWait time.Duration
	// PenaltyWindow is how long a 429 slows the class down (default 1m).
	PenaltyWindow time.Duration
	// CallbackShare is the share of the retrieval rate (and burst) reserved
	// for retrievals that callbacks trigger (default 0.3; negative: none,
	// callbacks and polls share one queue). Callbacks draw from their own
	// lane, so thousands of executions polled while their users take their
	// time never delay a callback's decision; polls get the rest.
	CallbackShare float64
}

// DefaultCallbackShare is the share of the retrieval rate reserved for
// callbacks.
const DefaultCallbackShare = 0.3

// laneCallbacks names the callbacks' lane of the retrieval class (its key
// in the rate-limit bucket is <region>.retrieval-callbacks).
const laneCallbacks = "-callbacks"

// callbackKey marks a context whose Jumio calls serve a callback.
type callbackKey struct{}

// withCallbackPriority marks ctx: its retrieval calls use the callbacks'
// lane of the rate limit.
func withCallbackPriority(ctx context.Context) context.Context {
	return context.WithValue(ctx, callbackKey{}, true)
}

func callbackPriority(ctx context.Context) bool {
	v, _ := ctx.Value(callbackKey{}).(bool)
	return v
}

// lane returns the rate, burst and key suffix of a call of class: the
// retrieval class is split between callbacks (CallbackShare) and the rest.
func (l RateLimits) lane(class jumio.EndpointClass, callback bool) (Rate, string) {
	r := l.rate(class)
	share := l.CallbackShare
	if class != jumio.ClassRetrieval || share <= 0 || share >= 1 || r.PerSecond <= 0 {
		return r, ""
	}
	split := func(f float64) Rate {
		return Rate{PerSecond: r.PerSecond * f, Burst: max(1, int(math.Round(float64(r.Burst)*f)))}
	}
	if callback {
		return split(share), laneCallbacks
	}
	return split(1 - share), ""
}

// DefaultRateLimits are Jumio's documented defaults, with bursts kept a
// little under Jumio's so that network jitter does not cause 429s.
func DefaultRateLimits() RateLimits {
	return RateLimits{
		Account:   Rate{PerSecond: 1, Burst: 3},
		Retrieval: Rate{PerSecond: 15, Burst: 10},
		Token:     Rate{PerSecond: 10, Burst: 5},
	}
}

func (l RateLimits) rate(c jumio.EndpointClass) Rate {
	switch c {
	case jumio.ClassAccount:
		return l.Account
	case jumio.ClassRetrieval:
		return l.Retrieval
	case jumio.ClassToken:
		return l.Token
	}
	return Rate{}
}

// Enabled reports whether any class is limited.
func (l RateLimits) Enabled() bool {
	return l.Account.PerSecond > 0 || l.Retrieval.PerSecond > 0 || l.Token.PerSecond > 0
}

// limitState is one class's shared state: a GCRA "theoretical arrival time"
// plus the slow-down a 429 imposes on everyone.
type limitState struct {
	TAT         int64   `json:"tat"`         // unix nanos: when the next call would be due at the steady rate
	PausedUntil int64   `json:"pausedUntil"` // unix nanos: no calls before (Retry-After of a 429)
	Factor      float64 `json:"factor"`      // ≥ 1: the interval is multiplied by this after 429s
	FactorUntil int64   `json:"factorUntil"` // unix nanos: when the slow-down ends
	Last429     int64   `json:"last429"`     // unix nanos
	Penalties   int64   `json:"penalties"`   // 429s seen, for operators
}

// SharedLimiter paces calls to Jumio across every worker and retriever
// replica: each class's state is a key in a JetStream KV bucket, updated
// with compare-and-swap (a GCRA token bucket). A caller reserves the next
// slot and waits for it in place when the wait is short; otherwise it gets a
// *jumio.ThrottledError and its job waits on redelivery. A 429 from Jumio
// (see Observe) pauses the class for everyone and doubles its interval for
// PenaltyWindow.
type SharedLimiter struct {
	kv     jetstream.KeyValue
	region jumio.Region
	limits RateLimits
	log    *zap.Logger
	now    func() time.Time
	m      *Metrics

	sleep func(ctx context.Context, d time.Duration) bool
	// reserve serializes reservations per class within this process, so the
	// KV key sees one contender per replica rather than one per goroutine.
	reserve map[string]*sync.Mutex // by lane: class name plus suffix
}

// NewSharedLimiter returns a limiter for one region's tenant using the
// rate-limit bucket (see Provision).
func NewSharedLimiter(kv jetstream.KeyValue, region jumio.Region, limits RateLimits, log *zap.Logger, m *Metrics) *SharedLimiter {
	if limits.MaxWait == 0 {
		limits.MaxWait = 20 * time.Second
	}
	if limits.PenaltyWindow == 0 {
		limits.PenaltyWindow = time.Minute
	}
	if limits.CallbackShare == 0 {
		limits.CallbackShare = DefaultCallbackShare
	}
	if log == nil {
		log = zap.NewNop()
	}
	reserve := map[string]*sync.Mutex{}
	for _, c := range []jumio.EndpointClass{jumio.ClassAccount, jumio.ClassRetrieval, jumio.ClassToken} {
		reserve[string(c)] = &sync.Mutex{}
		reserve[string(c)+laneCallbacks] = &sync.Mutex{}
	}
	return &SharedLimiter{kv: kv, region: region, limits: limits, log: log, now: time.Now, m: m, sleep: ctxutil.Sleep, reserve: reserve}
}

func (l *SharedLimiter) key(lane string) string { return string(l.region) + "." + lane }

func (l *SharedLimiter) load(ctx context.Context, key string) (limitState, uint64, error) {
	e, err := l.kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return limitState{Factor: 1}, 0, nil
	}
	if err != nil {
		return limitState{}, 0, err
	}
	var st limitState
	if err := json.Unmarshal(e.Value(), &st); err != nil {
		return limitState{Factor: 1}, e.Revision(), nil // corrupt: start over
	}
	if st.Factor < 1 {
		st.Factor = 1
	}
	return st, e.Revision(), nil
}

func (l *SharedLimiter) store(ctx context.Context, key string, st limitState, rev uint64) error {
	b, _ := json.Marshal(st)
	var err error
	if rev == 0 {
		_, err = l.kv.Create(ctx, key, b)
	} else {
		_, err = l.kv.Update(ctx, key, b, rev)
	}
	return err
}

func conflict(err error) bool {
	return errors.Is(err, jetstream.ErrKeyRevisionMismatch) || errors.Is(err, jetstream.ErrKeyExists)
}

// Wait implements jumio.Limiter. Retrieval calls of a context marked by
// withCallbackPriority (the retriever's callbacks) draw from the callbacks'
// lane (RateLimits.CallbackShare).
func (l *SharedLimiter) Wait(ctx context.Context, class jumio.EndpointClass) error {
	return l.waitChecked(ctx, class, nil)
}

// checkLead is how long before its slot a call's check (waitChecked)
// starts, so that the check's own latency does not move the call off its
// slot (calls that drift bunch up at Jumio and draw 429s).
const checkLead = 100 * time.Millisecond

// waitChecked is Wait with check (when not nil) run while the call waits:
// it starts checkLead before the slot (at once for a shorter wait) and the
// call goes out at its slot unless check fails, whose error is returned.
func (l *SharedLimiter) waitChecked(ctx context.Context, class jumio.EndpointClass, check func(context.Context) error) error {
	rate, suffix := l.limits.lane(class, callbackPriority(ctx))
	if rate.PerSecond <= 0 {
		if check != nil {
			return check(ctx)
		}
		return nil
	}
	burst := max(rate.Burst, 1)
	lane := string(class) + suffix
	key := l.key(lane)
	start := l.now()
	wait, err := l.reserveSlot(ctx, class, lane, key, rate, burst)
	if err != nil {
		return err
	}
	var checked chan error
	if check != nil {
		if early := wait - checkLead; early > 0 {
			if !l.sleep(ctx, early) {
				return ctx.Err()
			}
			wait = checkLead
		}
		checked = make(chan error, 1)
		go func() { checked <- check(ctx) }()
	}
	if wait > 0 && !l.sleep(ctx, wait) {
		return ctx.Err()
	}
	if checked != nil {
		if err := <-checked; err != nil {
			return err
		}
	}
	l.m.rateLimitWait(jumio.EndpointClass(lane), l.now().Sub(start))
	return nil
}

// reserveSlot takes the next slot of class (or reports how long until one
// would be worth waiting for, as a ThrottledError) and returns how long to
// wait for it. Failures of the shared state are throttling, never terminal.
func (l *SharedLimiter) reserveSlot(ctx context.Context, class jumio.EndpointClass, lane, key string, rate Rate, burst int) (time.Duration, error) {
	mu := l.reserve[lane]
	mu.Lock()
	defer mu.Unlock()
	for attempt := 0; ; attempt++ {
		st, rev, err := l.load(ctx, key)
		if err != nil {
			if ctx.Err() != nil {
				return 0, ctx.Err()
			}
			return 0, &jumio.ThrottledError{Class: class, Delay: time.Second}
		}
		now := l.now()
		factor := 1.0
		if now.UnixNano() < st.FactorUntil {
			factor = st.Factor
		}
		interval := time.Duration(float64(time.Second) / rate.PerSecond * factor)
		tat := max(st.TAT, now.UnixNano(), st.PausedUntil)
		allowAt := time.Unix(0, tat-int64(burst-1)*int64(interval))
		if st.PausedUntil > now.UnixNano() {
			allowAt = time.Unix(0, max(allowAt.UnixNano(), st.PausedUntil))
		}
		wait := allowAt.Sub(now)
		if wait > l.limits.MaxWait {
			// Too far off: do not hold a slot; come back near the turn,
			// spread out so that waiting jobs do not return all at once.
			d := wait - l.limits.MaxWait/2 + time.Duration(rand.Int64N(int64(l.limits.MaxWait/2)+1))
			return 0, &jumio.ThrottledError{Class: class, Delay: d}
		}
		st.TAT = tat + int64(interval)
		err = l.store(ctx, key, st, rev)
		if err == nil {
			return wait, nil
		}
		if ctx.Err() != nil {
			return 0, ctx.Err()
		}
		if !conflict(err) || attempt >= 20 {
			// Heavy contention or NATS trouble: the call waits on the queue.
			return 0, &jumio.ThrottledError{Class: class, Delay: time.Duration(200+rand.Int64N(800)) * time.Millisecond}
		}
	}
}

// Observe is a jumio.Observer: a 429 pauses the class (both lanes of the
// retrieval class) for everyone for the Retry-After (or one interval) and
// doubles its interval for PenaltyWindow.
func (l *SharedLimiter) Observe(ci jumio.CallInfo) {
	if ci.StatusCode != 429 {
		return
	}
	for _, callback := range []bool{false, true} {
		rate, suffix := l.limits.lane(ci.Class, callback)
		if rate.PerSecond <= 0 || (callback && suffix == "") {
			continue
		}
		l.penalize(ci, rate, string(ci.Class)+suffix)
	}
}

// penalize applies a 429 to one lane.
func (l *SharedLimiter) penalize(ci jumio.CallInfo, rate Rate, lane string) {
	pause := time.Duration(float64(time.Second) / rate.PerSecond)
	if ra, ok := jumio.RetryAfter(ci.Err); ok && ra > pause {
		pause = ra
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	key := l.key(lane)
	for attempt := 0; attempt < 20; attempt++ {
		st, rev, err := l.load(ctx, key)
		if err != nil {
			return
		}
		now := l.now()
		if now.UnixNano()-st.Last429 < int64(pause)/2 {
			return // another replica already reacted to this burst of 429s
		}
		st.PausedUntil = max(st.PausedUntil, now.Add(pause).UnixNano())
		if now.UnixNano() < st.FactorUntil {
			st.Factor = min(st.Factor*2, 16)
		} else {
			st.Factor = 2
		}
		st.FactorUntil = now.Add(l.limits.PenaltyWindow).UnixNano()
		st.Last429 = now.UnixNano()
		st.Penalties++
		if err := l.store(ctx, key, st, rev); err == nil {
			l.log.Warn("Jumio answered 429: slowing the class down for every replica",
				zap.String("class", lane), zap.String("region", string(l.region)),
				zap.Float64("factor", st.Factor), zap.Duration("pause", pause))
			return
		} else if !conflict(err) {
			return
		}
	}
}

// Limiters hands out a SharedLimiter per region; it is a jumio.Limiter
// factory for Clients, and a jumio.Observer feeding 429s back.
type Limiters struct {
	kv     jetstream.KeyValue
	limits RateLimits
	log    *zap.Logger
	m      *Metrics

	mu       sync.Mutex
	byRegion map[jumio.Region]*SharedLimiter
}

// NewLimiters opens the rate-limit bucket.
func NewLimiters(ctx context.Context, js jetstream.JetStream, t Topology, limits RateLimits, log *zap.Logger, m *Metrics) (*Limiters, error) {
	kv, err := js.KeyValue(ctx, t.WithDefaults().Subjects.BucketLimits())
	if err != nil {
		return nil, fmt.Errorf("pipeline: rate-limit bucket: %w", err)
	}
	return &Limiters{kv: kv, limits: limits, log: log, m: m, byRegion: map[jumio.Region]*SharedLimiter{}}, nil
}

// For returns the limiter of a region.
func (ls *Limiters) For(r jumio.Region) *SharedLimiter {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	if l, ok := ls.byRegion[r]; ok {
		return l
	}
	l := NewSharedLimiter(ls.kv, r, ls.limits, ls.log, ls.m)
	ls.byRegion[r] = l
	return l
}
