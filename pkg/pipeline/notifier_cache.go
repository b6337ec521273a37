package pipeline

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/kycpipe/kycpipe/internal/ctxutil"
	"github.com/kycpipe/kycpipe/pkg/webhooks"
)

// cachedEndpoint is an endpoint as the notifier uses it: its record and
// its opened secrets (or why they do not open).
type cachedEndpoint struct {
	WebhookEndpoint
	secrets    []timedSecret
	secretsErr error
}

// endpointCache mirrors the endpoints bucket in memory through a KV watch,
// so fan-out does not read the bucket per event.
type endpointCache struct {
	reg    *WebhookEndpoints
	log    *zap.Logger
	wm     *WebhookMetrics
	loaded chan struct{} // closed once the initial values are in

	mu   sync.RWMutex
	byID map[string]*cachedEndpoint
	once sync.Once
}

func newEndpointCache(reg *WebhookEndpoints, log *zap.Logger, wm *WebhookMetrics) *endpointCache {
	return &endpointCache{reg: reg, log: log, wm: wm, loaded: make(chan struct{}), byID: map[string]*cachedEndpoint{}}
}

// run watches the bucket until ctx ends, re-watching after failures.
func (c *endpointCache) run(ctx context.Context) error {
	for failures := 0; ; failures++ {
		err := c.watch(ctx)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		c.log.Warn("webhook endpoint watch ended; watching again", zap.Error(err))
		if !ctxutil.Sleep(ctx, reopenBackoff.Delay(failures+1)) {
			return ctx.Err()
		}
	}
}

func (c *endpointCache) watch(ctx context.Context) error {
	w, err := c.reg.kv.Watch(ctx, "ep.*")
	if err != nil {
		return err
	}
	defer func() { _ = w.Stop() }()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case e, ok := <-w.Updates():
			if !ok {
				return errors.New("watcher closed")
			}
			if e == nil {
				if err := c.reconcile(ctx); err != nil {
					return fmt.Errorf("compare the endpoints with the bucket's leader: %w", err)
				}
				c.once.Do(func() { close(c.loaded) })
				continue
			}
			c.apply(e)
		}
	}
}

// reconcile adds the endpoints that the bucket stream's leader holds and
// the watch's initial values lacked. The watch's consumer may be served by
// a replica that lags after a node loss; fan-out with an incomplete cache
// makes no delivery for the missing endpoints (found by the soak: events
// delivered to one endpoint and never to another, after notifier restarts
// during node losses). It runs in the watch's goroutine, so no update of
// the watch interleaves with it.
func (c *endpointCache) reconcile(ctx context.Context) error {
	ids, err := c.reg.storedIDs(ctx)
	if err != nil {
		return err
	}
	for _, id := range ids {
		c.mu.RLock()
		_, ok := c.byID[id]
		c.mu.RUnlock()
		if ok {
			continue
		}
		rec, _, err := c.reg.load(ctx, id)
		if errors.Is(err, ErrWebhookEndpointNotFound) {
			continue // deleted: its key holds a marker
		}
		if err != nil {
			return err
		}
		c.log.Info("the endpoint watch lacked an endpoint the bucket's leader holds; added", zap.String("endpoint_id", id))
		ce := c.build(rec)
		c.mu.Lock()
		c.byID[id] = ce
		c.mu.Unlock()
		c.wm.endpointState(id, ce.Enabled())
	}
	return nil
}

func (c *endpointCache) apply(e jetstream.KeyValueEntry) {
	id := strings.TrimPrefix(e.Key(), "ep.")
	if e.Operation() != jetstream.KeyValuePut {
		c.mu.Lock()
		delete(c.byID, id)
		c.mu.Unlock()
		c.wm.endpointRemoved(id)
		return
	}
	rec, err := decodeEndpointRecord(e.Value())
	if err != nil {
		c.log.Error("undecodable webhook endpoint record; its deliveries wait", zap.String("endpoint_id", id), zap.Error(err))
		return
	}
	ce := c.build(rec)
	c.mu.Lock()
	c.byID[id] = ce
	c.mu.Unlock()
	c.wm.endpointState(id, ce.Enabled())
}

func (c *endpointCache) build(rec *endpointRecord) *cachedEndpoint {
	ce := &cachedEndpoint{WebhookEndpoint: rec.WebhookEndpoint}
	ce.secrets, ce.secretsErr = c.reg.openSecrets(rec)
	if ce.secretsErr != nil {
		// Never the secret: the error names the setting.
		c.log.Error("cannot open a webhook endpoint's secrets: its deliveries wait", zap.String("endpoint_id", rec.ID), zap.Error(ce.secretsErr))
	}
	return ce
}

// subscribed returns the enabled endpoints subscribed to t.
func (c *endpointCache) subscribed(t webhooks.EventType) []*cachedEndpoint {
	c.mu.RLock()
	defer c.mu.RUnlock()
	var out []*cachedEndpoint
	for _, e := range c.byID {
		if e.Enabled() && webhooks.Subscribed(e.EventTypes, t) {
			out = append(out, e)
		}
	}
	return out
}

// get returns an endpoint: from the cache, else (the watch may lag behind a
// fresh registration) from the bucket. ErrWebhookEndpointNotFound when it
// does not exist.
func (c *endpointCache) get(ctx context.Context, id string) (*cachedEndpoint, error) {
	c.mu.RLock()
	e, ok := c.byID[id]
	c.mu.RUnlock()
	if ok {
		return e, nil
	}
	rec, _, err := c.reg.load(ctx, id)
	if err != nil {
		return nil, err
	}
	return c.build(rec), nil
}

// endpointSlots bounds the deliveries in flight per endpoint. A delivery
// for an endpoint at its bound waits briefly for a slot (a busy but healthy
// endpoint's deliveries follow one another without a round trip to
// JetStream), then is handed back: an endpoint that hangs holds at most
// its bound of attempts, plus waiters for a moment each.
type endpointSlots struct {
	limit int
	wait  time.Duration

	mu sync.Mutex
	by map[string]*endpointSem
}

type endpointSem struct {
	sem chan struct{}

	mu     sync.Mutex
	next   uint64
	starts map[uint64]time.Time // attempts in flight, by token
}

func newEndpointSlots(limit int, wait time.Duration) *endpointSlots {
	return &endpointSlots{limit: limit, wait: wait, by: map[string]*endpointSem{}}
}

// acquire takes a slot of endpoint id, waiting up to the slots' wait. When
// none frees up it returns false and how long the oldest attempt in flight
// to the endpoint has been running: a hanging endpoint's deliveries are
// handed back for longer than a merely busy one's.
func (s *endpointSlots) acquire(ctx context.Context, id string) (release func(), oldest time.Duration, ok bool) {
	s.mu.Lock()
	es := s.by[id]
	if es == nil {
		es = &endpointSem{sem: make(chan struct{}, s.limit), starts: map[uint64]time.Time{}}
		s.by[id] = es
	}
	s.mu.Unlock()
	select {
	case es.sem <- struct{}{}:
	default:
		t := time.NewTimer(s.wait)
		defer t.Stop()
		select {
		case es.sem <- struct{}{}:
		case <-t.C:
			return nil, es.oldest(), false
		case <-ctx.Done():
			return nil, es.oldest(), false
		}
	}
	es.mu.Lock()
	es.next++
	token := es.next
	es.starts[token] = time.Now()
	es.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			es.mu.Lock()
			delete(es.starts, token)
			es.mu.Unlock()
			<-es.sem
		})
	}, 0, true
}

// oldest returns how long the oldest attempt in flight has been running.
func (es *endpointSem) oldest() time.Duration {
	es.mu.Lock()
	defer es.mu.Unlock()
	var d time.Duration
	now := time.Now()
	for _, t := range es.starts {
		d = max(d, now.Sub(t))
	}
	return d
}

// busyDelay is the hand-back delay of a delivery for a busy endpoint whose
// oldest attempt in flight has run for oldest: twice that (it will not
// free up sooner if the endpoint hangs), at least base, at most ceiling
// (the attempt timeout), ±20% so hand-backs spread out.
func busyDelay(base, ceiling, oldest time.Duration) time.Duration {
	d := min(max(base, 2*oldest), max(ceiling, base))
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
}
