package pipeline_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/kycpipe/kycpipe/pkg/messages"
	"github.com/kycpipe/kycpipe/pkg/pipeline"
	"github.com/kycpipe/kycpipe/pkg/pipeline/pipelinetest"
	"github.com/kycpipe/kycpipe/pkg/webhooks"
)

// Events and decisions reach every enabled, subscribed endpoint, signed so
// that the Standard Webhooks reference library verifies them, with the
// event's bytes exactly as stored and the documented webhook-id.
func TestNotifierDeliversSignedEvents(t *testing.T) {
	t.Parallel()
	h := newHooks(t, pipeline.WebhookSettings{Policy: devPolicy}, nil)
	all, decided, disabled := newReceiver(t, nil), newReceiver(t, nil), newReceiver(t, nil)
	epAll, secretAll := h.register(t, all.srv.URL+"/hooks", "*")
	epDecided, secretDecided := h.register(t, decided.srv.URL, string(webhooks.EventDecided))
	epOff, _ := h.register(t, disabled.srv.URL, "verification.*")
	off := pipeline.WebhookDisabled
	if _, err := h.reg.Update(context.Background(), epOff.ID, pipeline.WebhookEndpointPatch{Status: &off}); err != nil {
		t.Fatal(err)
	}
	h.startNotifier(t, nil)

	acceptedID, acceptedData := h.publishEvent(t, messages.KindAccepted, "job-notify-1")
	decisionID, decisionData := h.publishDecision(t, "job-notify-1", "exec-notify-1")

	verify := func(rc *receiver, secret webhooks.Secret, epID string, want map[webhooks.EventType][]byte, ids map[webhooks.EventType]string) {
		t.Helper()
		wh, err := standardwebhooks.NewWebhook(secret.Reveal())
		if err != nil {
			t.Fatal(err)
		}
		for range want {
			r := rc.next(t)
			if err := wh.Verify(r.body, r.header); err != nil {
				t.Errorf("the reference library rejects the delivery: %v", err)
			}
			p := payload(t, r.body)
			data, ok := want[p.Type]
			if !ok {
				t.Errorf("unexpected %s delivery", p.Type)
				continue
			}
			if !bytes.Equal(p.Data, data) {
				t.Errorf("%s: data %s, want the event exactly as stored: %s", p.Type, p.Data, data)
			}
			if got, wantID := r.header.Get(webhooks.HeaderID), webhooks.MessageID(ids[p.Type], epID); got != wantID {
				t.Errorf("%s: webhook-id %s, want %s", p.Type, got, wantID)
			}
			if r.header.Get("Content-Type") != "application/json" {
				t.Errorf("Content-Type %q", r.header.Get("Content-Type"))
			}
		}
	}
	ids := map[webhooks.EventType]string{webhooks.EventAccepted: acceptedID, webhooks.EventDecided: decisionID}
	verify(all, secretAll, epAll.ID, map[webhooks.EventType][]byte{webhooks.EventAccepted: acceptedData, webhooks.EventDecided: decisionData}, ids)
	verify(decided, secretDecided, epDecided.ID, map[webhooks.EventType][]byte{webhooks.EventDecided: decisionData}, ids)

	// The log shows each delivery once, delivered at the first attempt.
	for _, ep := range []string{epAll.ID, epDecided.ID} {
		for _, a := range h.waitAttempts(t, ep, 1) {
			if a.Outcome != pipeline.AttemptDelivered || a.Attempt != 1 || a.StatusCode != http.StatusNoContent || a.JobID != "job-notify-1" {
				t.Errorf("%s: log entry %+v", ep, a)
			}
		}
	}
	// A later event shows that nothing else was queued for the others.
	h.publishEvent(t, messages.KindFinalized, "job-notify-1")
	if p := payload(t, all.next(t).body); p.Type != webhooks.EventFinalized {
		t.Errorf("third delivery to * is %s", p.Type)
	}
	if n := len(decided.requests()); n != 1 {
		t.Errorf("the decided-only endpoint got %d requests", n)
	}
	if n := len(disabled.requests()); n != 0 {
		t.Errorf("the disabled endpoint got %d requests", n)
	}
}

// A failed attempt is retried on the schedule with the same webhook-id and
// the same body; the attempt counter is removed once delivered.
func TestNotifierRetriesWithSameID(t *testing.T) {
	t.Parallel()
	h := newHooks(t, pipeline.WebhookSettings{Policy: devPolicy}, nil)
	rc := newReceiver(t, func(n int, w http.ResponseWriter, _ *http.Request) {
		if n == 1 {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusOK)
	})
	ep, _ := h.register(t, rc.srv.URL, "*")
	sched, err := webhooks.NewSchedule(50 * time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	h.startNotifier(t, func(c *pipeline.NotifierConfig) { c.Schedule = &sched })
	h.publishEvent(t, messages.KindAccepted, "job-retry-1")
	first, second := rc.next(t), rc.next(t)
	if a, b := first.header.Get(webhooks.HeaderID), second.header.Get(webhooks.HeaderID); a == "" || a != b {
		t.Errorf("webhook-id changed across the retry: %q, %q", a, b)
	}
	if !bytes.Equal(first.body, second.body) {
		t.Errorf("the body changed across the retry")
	}
	log := h.waitAttempts(t, ep.ID, 2)
	if log[0].Outcome != pipeline.AttemptDelivered || log[0].Attempt != 2 || log[1].Outcome != pipeline.AttemptFailed ||
		log[1].Attempt != 1 || log[1].StatusCode != 500 || log[1].NextAttemptAt == nil {
		t.Errorf("delivery log: %+v", log)
	}
	kv, err := h.js.KeyValue(context.Background(), h.subj.BucketWebhookAttempts())
	if err != nil {
		t.Fatal(err)
	}
	pipelinetest.Eventually(t, waitLong, func() bool {
		keys, err := kv.ListKeys(context.Background())
		if err != nil {
			return false
		}
		n := 0
		for range keys.Keys() {
			n++
		}
		return n == 0
	}, "the attempt counter was not removed after the delivery")
}

// 410 Gone disables the endpoint and is not retried; nothing more is sent
// to it until an operator enables it again.
func TestNotifierGoneDisablesEndpoint(t *testing.T) {
	t.Parallel()
	h := newHooks(t, pipeline.WebhookSettings{Policy: devPolicy}, nil)
	var gone atomic.Bool
	gone.Store(true)
	rc := newReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
		if gone.Load() {
			w.WriteHeader(http.StatusGone)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	ep, _ := h.register(t, rc.srv.URL, "*")
	h.startNotifier(t, nil)
	h.publishEvent(t, messages.KindAccepted, "job-gone-1")
	rc.next(t)
	pipelinetest.Eventually(t, waitLong, func() bool {
		got, err := h.reg.Get(context.Background(), ep.ID)
		return err == nil && got.Status == pipeline.WebhookDisabled && got.DisabledReason == pipeline.DisabledGone
	}, "410 did not disable the endpoint")
	log := h.waitAttempts(t, ep.ID, 1)
	if log[0].Outcome != pipeline.AttemptGone || log[0].StatusCode != http.StatusGone {
		t.Errorf("log %+v", log)
	}
	// Disabled: the next event is not delivered (fan-out skips it).
	h.waitEnabled(t, ep.ID, false)
	h.publishEvent(t, messages.KindLaunched, "job-gone-1")
	h.waitFannedOut(t)
	// Enabled again: deliveries resume.
	gone.Store(false)
	on := pipeline.WebhookEnabled
	if _, err := h.reg.Update(context.Background(), ep.ID, pipeline.WebhookEndpointPatch{Status: &on}); err != nil {
		t.Fatal(err)
	}
	h.waitEnabled(t, ep.ID, true)
	h.publishEvent(t, messages.KindFinalized, "job-gone-1")
	if p := payload(t, rc.next(t).body); p.Type != webhooks.EventFinalized {
		t.Errorf("after enabling: %s delivered (the launched event of the disabled period?)", p.Type)
	}
	if n := len(rc.requests()); n != 2 {
		t.Errorf("%d requests, want 2", n)
	}
}

// 429 and 503 with Retry-After put the next attempt at least that far
// away (on the notifier's clock), beyond the schedule's shorter step.
func TestNotifierHonoursRetryAfter(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	h := newHooks(t, pipeline.WebhookSettings{Policy: devPolicy}, clock.Now)
	rc := newReceiver(t, func(n int, w http.ResponseWriter, _ *http.Request) {
		switch n {
		case 1:
			w.Header().Set("Retry-After", "120")
			w.WriteHeader(http.StatusServiceUnavailable)
		case 2:
			w.Header().Set("Retry-After", clock.Now().Add(time.Hour).Format(http.TimeFormat))
			w.WriteHeader(http.StatusTooManyRequests)
		default:
			w.WriteHeader(http.StatusNoContent)
		}
	})
	ep, _ := h.register(t, rc.srv.URL, "*")
	h.startNotifier(t, func(c *pipeline.NotifierConfig) { c.MaxWait = 20 * time.Millisecond })
	t0 := clock.Now()
	h.publishEvent(t, messages.KindAccepted, "job-ra-1")
	rc.next(t)
	log := h.waitAttempts(t, ep.ID, 1)
	if log[0].NextAttemptAt == nil || !log[0].NextAttemptAt.Equal(t0.Add(120*time.Second)) {
		t.Fatalf("after 503 Retry-After: 120 the next attempt is at %v, want %v (the schedule says 5s)", log[0].NextAttemptAt, t0.Add(120*time.Second))
	}
	clock.Advance(121 * time.Second)
	rc.next(t)
	log = h.waitAttempts(t, ep.ID, 2)
	t1 := t0.Add(121 * time.Second)
	if log[0].StatusCode != http.StatusTooManyRequests || log[0].NextAttemptAt == nil || !log[0].NextAttemptAt.Equal(t1.Add(time.Hour)) {
		t.Fatalf("after 429 with an HTTP-date Retry-After an hour away: %+v (the schedule says 5m)", log[0])
	}
	clock.Advance(time.Hour + time.Second)
	rc.next(t)
	if log = h.waitAttempts(t, ep.ID, 3); log[0].Outcome != pipeline.AttemptDelivered || log[0].Attempt != 3 {
		t.Errorf("third attempt: %+v", log[0])
	}
	if n := len(rc.requests()); n != 3 {
		t.Errorf("%d requests, want 3", n)
	}
}

// After the last attempt of the schedule (run on a fake clock) the
// delivery is dead-lettered on kyc.dlq.notifier; the job's record is left
// alone. Replaying the letter delivers it again with the same webhook-id
// and a fresh attempt count, and still does not touch the job.
func TestNotifierDeadLettersAfterScheduleAndReplays(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	h := newHooks(t, pipeline.WebhookSettings{Policy: devPolicy}, clock.Now)
	var failing atomic.Bool
	failing.Store(true)
	rc := newReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
		if failing.Load() {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	ep, secret := h.register(t, rc.srv.URL, "*")

	// A decided job: a dead-lettered webhook must not move it.
	ctx := context.Background()
	jobs, err := h.js.KeyValue(ctx, h.subj.BucketJobs())
	if err != nil {
		t.Fatal(err)
	}
	store := pipeline.NewJobStore(jobs, clock.Now)
	rec := &pipeline.JobRecord{JobID: "job-dlq-1", Status: pipeline.StatusDecided, CreatedAt: clock.Now()}
	if _, _, err := store.Create(ctx, rec); err != nil {
		t.Fatal(err)
	}
	_, rev0, err := store.Get(ctx, "job-dlq-1")
	if err != nil {
		t.Fatal(err)
	}

	h.startNotifier(t, func(c *pipeline.NotifierConfig) { c.MaxWait = 20 * time.Millisecond })
	decisionID, _ := h.publishDecision(t, "job-dlq-1", "exec-dlq-1")
	wantID := webhooks.MessageID(decisionID, ep.ID)
	sched := webhooks.DefaultSchedule()
	dlq := pipelinetest.DeadLetters(t, h.js, h.subj)
	// Each failed attempt is followed by the clock moving past the longest
	// step (10h), so the next attempt is due at its next redelivery.
	for i := 1; i <= sched.MaxAttempts(); i++ {
		r := rc.next(t)
		if r.header.Get(webhooks.HeaderID) != wantID {
			t.Errorf("attempt %d: webhook-id %s, want %s", i, r.header.Get(webhooks.HeaderID), wantID)
		}
		if err := (&webhooks.Verifier{Secrets: []webhooks.Secret{secret}, Now: clock.Now}).Verify(r.header, r.body); err != nil {
			t.Errorf("attempt %d: signature: %v", i, err)
		}
		h.waitAttempts(t, ep.ID, i)
		if i < sched.MaxAttempts() {
			clock.Advance(11 * time.Hour)
		}
	}
	dlq.WaitN(t, 1, waitLong, func(pipelinetest.Received[[]byte]) bool { return true }, "the notifier's dead letter")
	if n := len(rc.requests()); n != sched.MaxAttempts() {
		t.Errorf("%d attempts before the dead letter, want %d", n, sched.MaxAttempts())
	}
	letters, err := pipeline.ListDeadLetters(ctx, h.js, h.subj, pipeline.DLQFilter{Stage: messages.StageNotifier})
	if err != nil || len(letters) != 1 {
		t.Fatalf("notifier dead letters: %v, %v", letters, err)
	}
	dl := letters[0]
	if dl.Reason != messages.ReasonRetryBudget || dl.JobID != "job-dlq-1" || !strings.Contains(dl.Error, "500") ||
		dl.OriginalSubject != h.subj.WebhookDelivery(ep.ID, "job-dlq-1") {
		t.Errorf("dead letter %+v", dl)
	}
	log := h.waitAttempts(t, ep.ID, sched.MaxAttempts())
	if !log[0].DeadLettered || log[0].Attempt != sched.MaxAttempts() {
		t.Errorf("last log entry %+v", log[0])
	}
	for i, a := range log[1:] {
		if want := sched.MaxAttempts() - 1 - i; a.Attempt != want || a.Outcome != pipeline.AttemptFailed || a.DeadLettered {
			t.Errorf("log entry %d: %+v (want attempt %d)", i+1, a, want)
		}
	}
	if _, rev, err := store.Get(ctx, "job-dlq-1"); err != nil || rev != rev0 {
		t.Errorf("the dead letter changed the job record: revision %d → %d (%v)", rev0, rev, err)
	}

	// Replay: one more delivery with the same id, counted afresh.
	failing.Store(false)
	before := len(rc.requests())
	if _, err := pipeline.ReplayDeadLetter(ctx, h.js, h.subj, dl.Sequence, time.Hour); err != nil {
		t.Fatal(err)
	}
	r := rc.next(t)
	for len(rc.requests()) > before+1 {
		t.Fatalf("the replay made %d requests", len(rc.requests())-before)
	}
	if r.header.Get(webhooks.HeaderID) != wantID {
		t.Errorf("replayed webhook-id %s, want %s", r.header.Get(webhooks.HeaderID), wantID)
	}
	log = h.waitAttempts(t, ep.ID, sched.MaxAttempts()+1)
	if log[0].Outcome != pipeline.AttemptDelivered || log[0].Attempt != 1 {
		t.Errorf("replayed delivery: %+v (want a delivery at attempt 1)", log[0])
	}
	got, rev, err := store.Get(ctx, "job-dlq-1")
	if err != nil || rev != rev0 || got.Status != pipeline.StatusDecided {
		t.Errorf("the replay changed the job record: revision %d → %d, status %s (%v)", rev0, rev, got.Status, err)
	}
}

// One endpoint hanging for the whole timeout holds at most its share of
// the notifier: the healthy endpoint receives every delivery while the
// hanging one's first attempts are still in flight.
func TestNotifierIsolatesHangingEndpoint(t *testing.T) {
	t.Parallel()
	h := newHooks(t, pipeline.WebhookSettings{Policy: devPolicy}, nil)
	release := make(chan struct{})
	var hanging, maxHanging, finished atomic.Int32
	slow := newReceiver(t, func(_ int, w http.ResponseWriter, r *http.Request) {
		n := hanging.Add(1)
		for {
			m := maxHanging.Load()
			if n <= m || maxHanging.CompareAndSwap(m, n) {
				break
			}
		}
		select {
		case <-release:
		case <-r.Context().Done():
		}
		hanging.Add(-1)
		finished.Add(1)
		w.WriteHeader(http.StatusNoContent)
	})
	t.Cleanup(func() { close(release) }) // before the servers close (cleanups run last first)
	healthy := newReceiver(t, nil)
	slowEP, _ := h.register(t, slow.srv.URL, "*")
	h.register(t, healthy.srv.URL, "*")
	const perEndpoint, events = 2, 20
	h.startNotifier(t, func(c *pipeline.NotifierConfig) {
		c.Timeout = 10 * time.Minute // the hang lasts the whole test
		c.Concurrency = 4
		c.EndpointConcurrency = perEndpoint
	})
	for i := range events {
		h.publishEvent(t, messages.KindAccepted, "job-iso-"+strconv.Itoa(i))
	}
	seen := map[string]bool{}
	for len(seen) < events {
		r := healthy.next(t)
		seen[r.header.Get(webhooks.HeaderID)] = true
	}
	if f := finished.Load(); f != 0 {
		t.Errorf("%d attempts to the hanging endpoint finished; the healthy one was served while they were all in flight?", f)
	}
	if got := hanging.Load(); got != perEndpoint {
		t.Errorf("%d attempts in flight to the hanging endpoint, want its bound %d", got, perEndpoint)
	}
	if m := maxHanging.Load(); m > perEndpoint {
		t.Errorf("up to %d attempts in flight to one endpoint, bound %d", m, perEndpoint)
	}
	if log := h.attempts(t, slowEP.ID); len(log) != 0 {
		t.Errorf("the hanging endpoint has log entries: %+v", log)
	}
}

// Rotation: for 24 hours every delivery is signed with the new secret and
// the old one (either verifies alone); then only the new one signs.
func TestNotifierSignsWithBothSecretsDuringRotation(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	h := newHooks(t, pipeline.WebhookSettings{Policy: devPolicy}, clock.Now)
	rc := newReceiver(t, nil)
	ep, oldSecret := h.register(t, rc.srv.URL, "*")
	newSecret, expires, err := h.reg.RotateSecret(context.Background(), ep.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !expires.Equal(clock.Now().Add(pipeline.WebhookRotationOverlap)) || newSecret.Equal(oldSecret) {
		t.Fatalf("rotation: expires %v, new secret equals old: %v", expires, newSecret.Equal(oldSecret))
	}
	h.startNotifier(t, nil)
	h.publishEvent(t, messages.KindAccepted, "job-rot-1")
	r := rc.next(t)
	if sigs := strings.Fields(r.header.Get(webhooks.HeaderSignature)); len(sigs) != 2 {
		t.Errorf("webhook-signature %q: want two signatures during the rotation", r.header.Get(webhooks.HeaderSignature))
	}
	for name, s := range map[string]webhooks.Secret{"old": oldSecret, "new": newSecret} {
		v := &webhooks.Verifier{Secrets: []webhooks.Secret{s}, Now: clock.Now}
		if err := v.Verify(r.header, r.body); err != nil {
			t.Errorf("the %s secret alone does not verify: %v", name, err)
		}
	}
	clock.Advance(pipeline.WebhookRotationOverlap + time.Second)
	h.publishEvent(t, messages.KindLaunched, "job-rot-1")
	r = rc.next(t)
	if sigs := strings.Fields(r.header.Get(webhooks.HeaderSignature)); len(sigs) != 1 {
		t.Errorf("after 24h: webhook-signature %q, want one", r.header.Get(webhooks.HeaderSignature))
	}
	if err := (&webhooks.Verifier{Secrets: []webhooks.Secret{newSecret}, Now: clock.Now}).Verify(r.header, r.body); err != nil {
		t.Errorf("after 24h the new secret does not verify: %v", err)
	}
	if err := (&webhooks.Verifier{Secrets: []webhooks.Secret{oldSecret}, Now: clock.Now}).Verify(r.header, r.body); err == nil {
		t.Errorf("after 24h the old secret still signs")
	}
}

// SSRF at delivery: a host that now resolves to 127.0.0.1 is refused
// without a connection, and a redirect to a private address is not
// followed.
func TestNotifierRefusesPrivateAddressesAtDelivery(t *testing.T) {
	t.Parallel()
	h := newHooks(t, pipeline.WebhookSettings{}, nil)
	var privateHits atomic.Int32
	private := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		privateHits.Add(1)
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(private.Close)
	var redirect atomic.Bool
	rc := newReceiver(t, func(_ int, w http.ResponseWriter, r *http.Request) {
		if redirect.CompareAndSwap(true, false) {
			http.Redirect(w, r, private.URL+"/internal", http.StatusFound)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	recvURL, _ := url.Parse(rc.srv.URL)
	host := &publicHost{name: "hooks.partner.example", addr: netip.MustParseAddr("93.184.216.34"), real: recvURL.Host}
	var mu sync.Mutex
	var dialed []string
	policy := webhooks.Policy{AllowInsecure: true, Resolver: host.resolver()}
	reg, err := pipeline.NewWebhookEndpoints(context.Background(), h.js, h.topo, pipeline.WebhookSettings{Policy: policy}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ep, _, err := reg.Create(context.Background(), pipeline.WebhookEndpointInput{URL: "http://hooks.partner.example/kyc", EventTypes: []string{"*"}})
	if err != nil {
		t.Fatalf("a public host is refused: %v", err)
	}
	sched, _ := webhooks.NewSchedule(10*time.Millisecond, 10*time.Millisecond, 10*time.Millisecond)
	h.startNotifier(t, func(c *pipeline.NotifierConfig) {
		c.Webhooks.Policy = policy
		c.Schedule = &sched
		c.DelivererOptions = []webhooks.Option{webhooks.WithDialer(host.dialer(&dialed, &mu))}
	})

	// Public: delivered, to the checked address.
	h.publishEvent(t, messages.KindAccepted, "job-ssrf-1")
	rc.next(t)
	mu.Lock()
	if len(dialed) != 1 || dialed[0] != "93.184.216.34:80" {
		t.Errorf("dialed %v", dialed)
	}
	mu.Unlock()

	// A redirect to a private address: not followed, a failed attempt.
	redirect.Store(true)
	h.publishEvent(t, messages.KindLaunched, "job-ssrf-1")
	log := h.waitAttempts(t, ep.ID, 3)
	if log[1].Outcome != pipeline.AttemptFailed || log[1].StatusCode != http.StatusFound {
		t.Errorf("after a redirect: %+v", log[1])
	}
	if log[0].Outcome != pipeline.AttemptDelivered || log[0].Attempt != 2 {
		t.Errorf("the retry after the redirect: %+v", log[0])
	}
	if privateHits.Load() != 0 {
		t.Errorf("the redirect target was called")
	}

	// DNS now says 127.0.0.1 (rebinding): refused before any connection.
	host.setAddr(netip.MustParseAddr("127.0.0.1"))
	mu.Lock()
	before := len(dialed)
	mu.Unlock()
	reqs := len(rc.requests())
	h.publishEvent(t, messages.KindFinalized, "job-ssrf-1")
	log = h.waitAttempts(t, ep.ID, 3+sched.MaxAttempts())
	for _, a := range log[:sched.MaxAttempts()] {
		if a.Outcome != pipeline.AttemptRefused || !strings.Contains(a.Error, "loopback") {
			t.Errorf("to a host resolving to 127.0.0.1: %+v", a)
		}
	}
	if !log[0].DeadLettered {
		t.Errorf("the refused delivery was not dead-lettered after the schedule: %+v", log[0])
	}
	mu.Lock()
	if len(dialed) != before {
		t.Errorf("dialed %v after the host turned private", dialed[before:])
	}
	mu.Unlock()
	if len(rc.requests()) != reqs || privateHits.Load() != 0 {
		t.Errorf("a request reached a receiver after the host turned private")
	}
}

// A delivery whose event is gone (erased while a retry was pending) is
// dropped, not sent, and leaves no log entry and no attempt counter naming
// the job (the erasure's purge may have run already).
func TestNotifierDropsDeliveryOfErasedEvent(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	h := newHooks(t, pipeline.WebhookSettings{Policy: devPolicy}, clock.Now)
	rc := newReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusBadGateway) })
	ep, _ := h.register(t, rc.srv.URL, "*")
	h.startNotifier(t, func(c *pipeline.NotifierConfig) { c.MaxWait = 20 * time.Millisecond })
	h.publishEvent(t, messages.KindAccepted, "job-erased-1")
	rc.next(t)
	h.waitAttempts(t, ep.ID, 1) // failed; the retry waits for the clock
	pipelinetest.Eventually(t, waitLong, func() bool { return h.countSubject(t, "KV_"+h.subj.BucketWebhookAttempts(), "$KV.>") == 1 },
		"the failed attempt was never counted")

	h.eraseEvents(t, messages.KindAccepted)
	clock.Advance(time.Minute)
	pipelinetest.Eventually(t, waitLong, func() bool {
		v, _ := h.metric(t, "kycpipe_webhook_deliveries_total", map[string]string{"endpoint": ep.ID, "outcome": "dropped_event_gone"})
		return v == 1
	}, "the delivery of the erased event was never dropped")
	if n := h.countSubject(t, "KV_"+h.subj.BucketWebhookAttempts(), "$KV.>"); n != 0 {
		t.Errorf("%d attempt counters left for the dropped delivery", n)
	}
	if log := h.attempts(t, ep.ID); len(log) != 1 || log[0].Outcome != pipeline.AttemptFailed {
		t.Errorf("delivery log %+v: want only the first, failed attempt (dropping adds no entry)", log)
	}
	if n := len(rc.requests()); n != 1 {
		t.Errorf("%d requests: the erased event was sent again", n)
	}
}

// An attempt in flight when the job is erased (its event deleted and its
// webhook data purged while the receiver answers) leaves nothing behind:
// the log entry and the attempt counter it writes after the purge are
// removed (found by the soak: counters and entries of erased jobs written
// after the erasure's purge).
func TestNotifierForgetsAnAttemptThatRacedTheErasure(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	h := newHooks(t, pipeline.WebhookSettings{Policy: devPolicy}, clock.Now)
	answer := make(chan struct{})
	arrived := make(chan struct{}, 1)
	rc := newReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
		arrived <- struct{}{}
		<-answer
		w.WriteHeader(http.StatusBadGateway)
	})
	ep, _ := h.register(t, rc.srv.URL, "*")
	h.startNotifier(t, func(c *pipeline.NotifierConfig) { c.MaxWait = 20 * time.Millisecond })
	h.publishEvent(t, messages.KindAccepted, "job-erased-2")
	<-arrived

	// The erasure runs while the receiver holds the attempt: the events
	// go first, then the job's webhook data.
	h.eraseEvents(t, messages.KindAccepted)
	if _, err := pipeline.EraseWebhookData(context.Background(), h.js, h.topo, "job-erased-2"); err != nil {
		t.Fatal(err)
	}
	close(answer)
	pipelinetest.Eventually(t, waitLong, func() bool {
		v, _ := h.metric(t, "kycpipe_webhook_deliveries_total", map[string]string{"endpoint": ep.ID, "outcome": "failed"})
		return v == 1
	}, "the attempt never finished")
	pipelinetest.Eventually(t, waitLong, func() bool {
		return h.countSubject(t, h.subj.StreamWebhookLog(), ">") == 0 &&
			h.countSubject(t, "KV_"+h.subj.BucketWebhookAttempts(), "$KV.>") == 0
	}, "the attempt's log entry or counter outlived the erasure")
}

// An advisory that JetStream gave up on a webhook delivery is dead-lettered
// under the notifier's stage and leaves the delivery's job as it is (a
// delivery is not the job's work).
func TestSweeperLeavesJobOfWebhookDelivery(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	ctx := context.Background()
	// A web job waits for its end user: a failure would end it.
	jobID := b.submit(t, webJob("order-sweep-hook-1"), 202, nil)
	pipelinetest.Eventually(t, waitLong, func() bool { return b.job(t, jobID).Status == pipeline.StatusLaunched }, "job not LAUNCHED")
	jobs, err := b.stack.JS.KeyValue(ctx, b.subj.BucketJobs())
	if err != nil {
		t.Fatal(err)
	}
	store := pipeline.NewJobStore(jobs, nil)
	// A pending delivery of the job (no notifier runs), then JetStream's
	// advisory that it gave up on it.
	m := nats.NewMsg(b.subj.WebhookDelivery("ep_0000000000000000000000000a", jobID))
	m.Data = []byte(`{"schema":"kycpipe.webhook-delivery.v1"}`)
	m.Header.Set(messages.HeaderJobID, jobID)
	ack, err := b.stack.JS.PublishMsg(ctx, m)
	if err != nil {
		t.Fatal(err)
	}
	adv, _ := json.Marshal(map[string]any{"type": "io.nats.jetstream.advisory.v1.max_deliver", "stream": b.subj.StreamWebhooks(),
		"consumer": pipeline.ConsumerNotifierDelivery, "stream_seq": ack.Sequence, "deliveries": 7})
	if _, err := b.stack.JS.Publish(ctx, pipeline.AdvisoryMaxDeliveries+b.subj.StreamWebhooks()+"."+pipeline.ConsumerNotifierDelivery, adv); err != nil {
		t.Fatal(err)
	}
	dl := b.dlq.WaitN(t, 1, waitLong, func(r pipelinetest.Received[[]byte]) bool {
		return r.Header.Get(messages.HeaderStage) == messages.StageNotifier
	}, "the notifier's dead letter")[0]
	if dl.Subject != b.subj.DLQ(messages.StageNotifier) || dl.Header.Get(messages.HeaderReason) != messages.ReasonMaxDeliveries ||
		dl.Header.Get(messages.HeaderJobID) != jobID {
		t.Errorf("dead letter %s %v", dl.Subject, dl.Header)
	}
	st, _ := b.stack.JS.Stream(ctx, b.subj.StreamWebhooks())
	pipelinetest.Eventually(t, waitLong, func() bool {
		_, err := st.GetMsg(ctx, ack.Sequence)
		return errors.Is(err, jetstream.ErrMsgNotFound)
	}, "the delivery is still in its work queue")
	// (The retriever's polling may write the record meanwhile: compare
	// what a failure would change.)
	rec, _, err := store.Get(ctx, jobID)
	if err != nil || rec.Status != pipeline.StatusLaunched || rec.LastError != nil {
		t.Errorf("the job changed: %s, last error %+v (%v)", rec.Status, rec.LastError, err)
	}
}
