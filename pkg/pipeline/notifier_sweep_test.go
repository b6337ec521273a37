package pipeline_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/kycpipe/kycpipe/pkg/messages"
	"github.com/kycpipe/kycpipe/pkg/pipeline"
	"github.com/kycpipe/kycpipe/pkg/pipeline/pipelinetest"
	"github.com/kycpipe/kycpipe/pkg/webhooks"
)

// sweepHooks is a notifier whose first attempt to rc fails and whose next
// attempt is due an hour later (on the fake clock, and as the NAK delay),
// sweeping for stranded deliveries every 100 ms.
func sweepHooks(t *testing.T) (*hooks, *fakeClock, *receiver, *pipeline.WebhookEndpoint) {
	t.Helper()
	clock := newFakeClock()
	h := newHooks(t, pipeline.WebhookSettings{Policy: devPolicy}, clock.Now)
	rc := newReceiver(t, func(n int, w http.ResponseWriter, _ *http.Request) {
		if n == 1 {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	ep, _ := h.register(t, rc.srv.URL, "*")
	sched, err := webhooks.NewSchedule(time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	h.startNotifier(t, func(c *pipeline.NotifierConfig) {
		c.Schedule = &sched
		c.SweepEvery = 100 * time.Millisecond
		c.StrandedAfter = time.Minute
	})
	return h, clock, rc, ep
}

// waitingDelivery publishes an event, waits for its failed first attempt
// and returns the sequence of its delivery job, which waits in the
// consumer for its next attempt.
func (h *hooks) waitingDelivery(t *testing.T, rc *receiver, epID, jobID string) (uint64, string) {
	t.Helper()
	h.publishEvent(t, messages.KindAccepted, jobID)
	first := rc.next(t)
	h.waitAttempts(t, epID, 1)
	st, err := h.js.Stream(context.Background(), h.subj.StreamWebhooks())
	if err != nil {
		t.Fatal(err)
	}
	var seq uint64
	pipelinetest.Eventually(t, waitLong, func() bool {
		raw, err := st.GetMsg(context.Background(), 1, jetstream.WithGetMsgSubject(h.subj.WebhookDeliveries()))
		if err != nil {
			return false
		}
		seq = raw.Sequence
		return true
	}, "the waiting delivery job")
	// The attempts entry of the wait holds the job.
	kv, err := h.js.KeyValue(context.Background(), h.subj.BucketWebhookAttempts())
	if err != nil {
		t.Fatal(err)
	}
	var entry struct {
		Failed int             `json:"failed"`
		Job    json.RawMessage `json:"job"`
	}
	pipelinetest.Eventually(t, waitLong, func() bool {
		e, err := kv.Get(context.Background(), "att."+jobID+"."+first.header.Get(webhooks.HeaderID)+"."+strconv.FormatUint(seq, 10))
		return err == nil && json.Unmarshal(e.Value(), &entry) == nil
	}, "the attempts entry of the waiting delivery")
	if entry.Failed != 1 || len(entry.Job) == 0 {
		t.Fatalf("attempts entry: failed %d, job %s", entry.Failed, entry.Job)
	}
	return seq, first.header.Get(webhooks.HeaderID)
}

// A waiting delivery whose job JetStream removed without an outcome (as
// the 60-minute soak saw on an R3 cluster) is queued again from its
// attempts entry once it is overdue, and delivered with the same
// webhook-id as its second attempt.
func TestSweepRedrivesAVanishedDelivery(t *testing.T) {
	t.Parallel()
	h, clock, rc, ep := sweepHooks(t)
	seq, id := h.waitingDelivery(t, rc, ep.ID, "job-vanished-1")

	h.loseDelivery(t, seq)
	clock.Advance(time.Hour + 2*time.Minute)
	h.waitRedriven(t, rc, ep.ID, id, "vanished")
}

// waitRedriven waits for the second attempt of the delivery id, queued
// again by the sweep for reason: it succeeds, counts as attempt 2 and
// leaves no attempts entry.
func (h *hooks) waitRedriven(t *testing.T, rc *receiver, epID, id, reason string) {
	t.Helper()
	second := rc.next(t)
	if got := second.header.Get(webhooks.HeaderID); got != id {
		t.Errorf("the redriven delivery has webhook-id %s, want %s", got, id)
	}
	log := h.waitAttempts(t, epID, 2)
	if log[0].Outcome != pipeline.AttemptDelivered || log[0].Attempt != 2 {
		t.Errorf("delivery log after the redrive: %+v", log)
	}
	pipelinetest.Eventually(t, waitLong, func() bool {
		v, _ := h.metric(t, "kycpipe_webhook_redriven_total", map[string]string{"endpoint": epID, "reason": reason})
		return v == 1
	}, "kycpipe_webhook_redriven_total{reason=%s} is not 1", reason)
	h.waitNoAttempts(t)
}

// A delivery job still stored but below the delivery consumer's
// acknowledgement floor (JetStream no longer tracks it) is queued again
// after two sweeps have seen it there, and delivered.
func TestSweepRedrivesAnUntrackedDelivery(t *testing.T) {
	t.Parallel()
	h, clock, rc, ep := sweepHooks(t)
	seq, id := h.waitingDelivery(t, rc, ep.ID, "job-untracked-1")

	// Reset the consumer past the waiting job (the JetStream API an
	// operator can call): its acknowledgement floor passes the job, which
	// stays stored and is no longer delivered.
	ctx := context.Background()
	req, _ := json.Marshal(map[string]uint64{"seq": seq + 1})
	resp, err := h.nc.RequestWithContext(ctx, "$JS.API.CONSUMER.RESET."+h.subj.StreamWebhooks()+"."+pipeline.ConsumerNotifierDelivery, req)
	if err != nil {
		t.Fatal(err)
	}
	var reset struct {
		Error *struct{ Description string } `json:"error"`
	}
	if err := json.Unmarshal(resp.Data, &reset); err != nil || reset.Error != nil {
		t.Fatalf("consumer reset: %s", resp.Data)
	}
	cons, err := h.js.Consumer(ctx, h.subj.StreamWebhooks(), pipeline.ConsumerNotifierDelivery)
	if err != nil {
		t.Fatal(err)
	}
	if info := cons.CachedInfo(); info.AckFloor.Stream < seq || info.NumAckPending != 0 {
		t.Fatalf("after the reset: floor %d, %d pending (the waiting job is %d)", info.AckFloor.Stream, info.NumAckPending, seq)
	}
	clock.Advance(time.Hour + 2*time.Minute)
	h.waitRedriven(t, rc, ep.ID, id, "untracked")
	pipelinetest.Eventually(t, waitLong, func() bool {
		return h.countSubject(t, h.subj.StreamWebhooks(), h.subj.WebhookDeliveries()) == 0
	}, "the stranded job was not removed")
}

// A waiting delivery of an event that was erased meanwhile is not queued
// again: the sweep removes its attempts entry.
func TestSweepDoesNotRedriveAnErasedEvent(t *testing.T) {
	t.Parallel()
	h, clock, rc, ep := sweepHooks(t)
	seq, _ := h.waitingDelivery(t, rc, ep.ID, "job-vanished-erased")
	h.eraseEvents(t, messages.KindAccepted)
	h.loseDelivery(t, seq)
	clock.Advance(time.Hour + 2*time.Minute)
	h.waitNoAttempts(t)
	if n := len(rc.requests()); n != 1 {
		t.Errorf("%d requests, want only the first attempt", n)
	}
	if n := h.countSubject(t, h.subj.StreamWebhooks(), h.subj.WebhookDeliveries()); n != 0 {
		t.Errorf("%d delivery jobs queued for an erased event", n)
	}
}

// loseDelivery removes the delivery job at seq from the stream without an
// outcome, as JetStream did to waiting deliveries in the 60-minute soak.
func (h *hooks) loseDelivery(t *testing.T, seq uint64) {
	t.Helper()
	st, err := h.js.Stream(context.Background(), h.subj.StreamWebhooks())
	if err != nil {
		t.Fatal(err)
	}
	if err := st.DeleteMsg(context.Background(), seq); err != nil {
		t.Fatal(err)
	}
}

// waitNoAttempts waits until the attempts bucket is empty.
func (h *hooks) waitNoAttempts(t *testing.T) {
	t.Helper()
	pipelinetest.Eventually(t, waitLong, func() bool {
		return len(pipelinetest.KVKeys(t, h.js, h.subj.BucketWebhookAttempts())) == 0
	}, "attempt entries remain")
}

// A delivery job the fan-out queued has an attempts entry from the moment
// it is stored (no failure, due at once, the job): JetStream lost seven
// jobs before their first attempt in the soak of 2026-12-07 15:18, with
// nothing to queue them again from. Here the job vanishes while the
// delivery consumer is paused (nothing has delivered it); the sweep queues
// it again and it is delivered, as its first attempt.
func TestSweepRedrivesADeliveryLostBeforeItsFirstAttempt(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	h := newHooks(t, pipeline.WebhookSettings{Policy: devPolicy}, clock.Now)
	rc := newReceiver(t, nil)
	ep, _ := h.register(t, rc.srv.URL, "*")
	h.startNotifier(t, func(c *pipeline.NotifierConfig) {
		c.SweepEvery = 100 * time.Millisecond
		c.StrandedAfter = time.Minute
	})
	ctx := context.Background()
	if _, err := h.js.PauseConsumer(ctx, h.subj.StreamWebhooks(), pipeline.ConsumerNotifierDelivery, time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	const jobID = "job-lost-queued-1"
	h.publishEvent(t, messages.KindAccepted, jobID)
	h.waitFannedOut(t)
	st, err := h.js.Stream(ctx, h.subj.StreamWebhooks())
	if err != nil {
		t.Fatal(err)
	}
	raw, err := st.GetMsg(ctx, 1, jetstream.WithGetMsgSubject(h.subj.WebhookDeliveries()))
	if err != nil {
		t.Fatalf("the queued delivery job: %v", err)
	}
	var job struct {
		WebhookID string `json:"webhookId"`
	}
	if err := json.Unmarshal(raw.Data, &job); err != nil {
		t.Fatal(err)
	}
	kv, err := h.js.KeyValue(ctx, h.subj.BucketWebhookAttempts())
	if err != nil {
		t.Fatal(err)
	}
	var entry struct {
		Failed int                    `json:"failed"`
		Next   time.Time              `json:"next"`
		Job    *struct{ Type string } `json:"job"`
	}
	e, err := kv.Get(ctx, "att."+jobID+"."+job.WebhookID+"."+strconv.FormatUint(raw.Sequence, 10))
	if err != nil || json.Unmarshal(e.Value(), &entry) != nil {
		t.Fatalf("no attempts entry for the queued delivery job (%v)", err)
	}
	if entry.Failed != 0 || entry.Job == nil || entry.Job.Type != string(webhooks.EventAccepted) || !entry.Next.Equal(clock.Now()) {
		t.Errorf("attempts entry of the queued job: %+v; want no failure, the job, due now", entry)
	}

	h.loseDelivery(t, raw.Sequence)
	if _, err := h.js.ResumeConsumer(ctx, h.subj.StreamWebhooks(), pipeline.ConsumerNotifierDelivery); err != nil {
		t.Fatal(err)
	}
	clock.Advance(2 * time.Minute)
	got := rc.next(t)
	if id := got.header.Get(webhooks.HeaderID); id != job.WebhookID {
		t.Errorf("the redriven delivery has webhook-id %s, want %s", id, job.WebhookID)
	}
	if log := h.waitAttempts(t, ep.ID, 1); log[0].Outcome != pipeline.AttemptDelivered || log[0].Attempt != 1 {
		t.Errorf("delivery log after the redrive: %+v", log)
	}
	pipelinetest.Eventually(t, waitLong, func() bool {
		v, _ := h.metric(t, "kycpipe_webhook_redriven_total", map[string]string{"endpoint": ep.ID, "reason": "vanished"})
		return v == 1
	}, "kycpipe_webhook_redriven_total{reason=vanished} is not 1")
	h.waitNoAttempts(t)
}

// A delivery has an attempts entry with its job while its first attempt
// runs (here, to an endpoint that hangs): a notifier killed during it
// leaves what the sweep queues the job again from, should JetStream not
// deliver it again (the soaks of 2026-12-07 04:15 and 07:06). For a job
// the fan-out queued it is the fan-out's; a delivery that has none (a
// resend) writes one, due when the attempt will have timed out. The entry
// goes once the attempt succeeds.
func TestFirstAttemptIsRecorded(t *testing.T) {
	t.Parallel()
	h := newHooks(t, pipeline.WebhookSettings{Policy: devPolicy}, nil)
	releases := [2]chan struct{}{make(chan struct{}), make(chan struct{})}
	rc := newReceiver(t, func(n int, w http.ResponseWriter, r *http.Request) {
		if n <= len(releases) {
			select {
			case <-releases[n-1]:
			case <-r.Context().Done():
			}
		}
		w.WriteHeader(http.StatusNoContent)
	})
	ep, _ := h.register(t, rc.srv.URL, "*")
	h.startNotifier(t, func(c *pipeline.NotifierConfig) { c.Timeout = time.Minute })
	const jobID = "job-slow-1"
	ctx := context.Background()
	kv, err := h.js.KeyValue(ctx, h.subj.BucketWebhookAttempts())
	if err != nil {
		t.Fatal(err)
	}
	type attemptEntry struct {
		Failed int                    `json:"failed"`
		Next   time.Time              `json:"next"`
		Job    *struct{ Type string } `json:"job"`
	}
	// inFlight waits for the attempts entry of the delivery whose attempt
	// hangs and checks it is due between from and to.
	inFlight := func(id, what string, from, to time.Time) {
		t.Helper()
		prefix := "att." + jobID + "." + id + "."
		var entry attemptEntry
		pipelinetest.Eventually(t, waitLong, func() bool {
			for _, k := range pipelinetest.KVKeys(t, h.js, h.subj.BucketWebhookAttempts()) {
				if e, err := kv.Get(ctx, k); err == nil && strings.HasPrefix(k, prefix) {
					return json.Unmarshal(e.Value(), &entry) == nil
				}
			}
			return false
		}, "the attempts entry of the %s in flight", what)
		if entry.Failed != 0 || entry.Job == nil || entry.Job.Type != string(webhooks.EventAccepted) ||
			entry.Next.Before(from) || entry.Next.After(to) {
			t.Errorf("attempts entry of the %s in flight: %+v; want no failure, the job, due between %s and %s", what, entry, from, to)
		}
	}
	noEntries := func(what string) {
		t.Helper()
		pipelinetest.Eventually(t, waitLong, func() bool {
			return len(pipelinetest.KVKeys(t, h.js, h.subj.BucketWebhookAttempts())) == 0
		}, "the attempts entry removed after the %s", what)
	}

	start := time.Now()
	h.publishEvent(t, messages.KindAccepted, jobID)
	id := rc.next(t).header.Get(webhooks.HeaderID)
	inFlight(id, "queued delivery", start, time.Now()) // the fan-out's: due at once
	close(releases[0])
	h.waitAttempts(t, ep.ID, 1)
	noEntries("delivery")

	start = time.Now()
	if _, err := h.reg.Resend(ctx, ep.ID, id); err != nil {
		t.Fatal(err)
	}
	rc.next(t)
	inFlight(id, "resend", start.Add(time.Minute), time.Now().Add(time.Minute))
	close(releases[1])
	h.waitAttempts(t, ep.ID, 2)
	noEntries("resend")
}
