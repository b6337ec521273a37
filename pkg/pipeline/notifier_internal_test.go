package pipeline

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"go.uber.org/zap"

	"github.com/kycpipe/kycpipe/pkg/messages"
	"github.com/kycpipe/kycpipe/pkg/pipeline/pipelinetest"
	"github.com/kycpipe/kycpipe/pkg/webhooks"
)

// reconcile fills in what the watch's initial values lacked (a watch
// served by a replica that lags): every endpoint the bucket stream's
// leader holds, and no deleted one.
func TestEndpointCacheReconcileAddsWhatTheWatchLacked(t *testing.T) {
	t.Parallel()
	js, topo := provisioned(t)
	ctx := t.Context()
	reg, err := NewWebhookEndpoints(ctx, js, topo, WebhookSettings{Policy: webhooks.Policy{AllowInsecure: true, AllowPrivate: true}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for range 3 {
		ep, _, err := reg.Create(ctx, WebhookEndpointInput{URL: "http://127.0.0.1:9/hook", EventTypes: []string{"*"}})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, ep.ID)
	}
	if err := reg.Delete(ctx, ids[2]); err != nil {
		t.Fatal(err)
	}
	c := newEndpointCache(reg, zap.NewNop(), NewWebhookMetrics(prometheus.NewRegistry(), js, topo))
	c.byID[ids[0]] = &cachedEndpoint{WebhookEndpoint: WebhookEndpoint{ID: ids[0]}} // the watch delivered only this one
	if err := c.reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	if _, ok := c.byID[ids[1]]; !ok || len(c.byID) != 2 {
		t.Errorf("cache after reconcile holds %d endpoints (want %s and %s, not the deleted %s)", len(c.byID), ids[0], ids[1], ids[2])
	}
	if got := c.subscribed(webhooks.EventDecided); len(got) != 1 || got[0].ID != ids[1] {
		t.Errorf("subscribed: %v", got)
	}
}

// manyDeliveries is a delivery job message delivered n times.
type manyDeliveries struct {
	jetstream.Msg
	n uint64
}

func (m manyDeliveries) Metadata() (*jetstream.MsgMetadata, error) {
	return &jetstream.MsgMetadata{NumDelivered: m.n}, nil
}

// A retry after NATS trouble waits a few seconds however often the
// delivery was delivered before: its delivery count also counts scheduled
// attempts and busy hand-backs (an uncapped backoff kept deliveries waiting
// for minutes after a leader election).
func TestDeliveryRetriesNATSTroubleSoon(t *testing.T) {
	t.Parallel()
	n := &Notifier{stage: &stage{backoff: Backoff{Initial: time.Second, Max: 5 * time.Minute}}}
	d := &delivery{n: n, m: manyDeliveries{n: 40}, log: zap.NewNop()}
	o := d.infra("cannot read the event", errors.New("nats: timeout"))
	if o.action != actRetry || o.delay > 10*time.Second {
		t.Errorf("retry after NATS trouble on the 40th delivery: %v", o)
	}
}

// A delivery whose event its stream's leader has not stored yet waits for
// it instead of dropping it as gone. The leader applies a committed
// message after the replica that fed the fan-out may have; a 2026-12-07
// soak dropped a decided event 7 ms after it was stored. Here the delivery
// job is queued before its decision is published: the first attempt finds
// nothing at the referenced sequence, which is beyond the stream's last.
func TestDeliveryWaitsForAnEventNotStoredYet(t *testing.T) {
	t.Parallel()
	js, topo := provisioned(t)
	ctx := t.Context()
	subj := topo.Subjects

	got := make(chan *http.Request, 8)
	bodies := make(chan []byte, 8)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- r
		bodies <- b
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(srv.Close)
	settings := WebhookSettings{Policy: webhooks.Policy{AllowInsecure: true, AllowPrivate: true}}
	reg, err := NewWebhookEndpoints(ctx, js, topo, settings, nil)
	if err != nil {
		t.Fatal(err)
	}
	ep, _, err := reg.Create(ctx, WebhookEndpointInput{URL: srv.URL + "/hook", EventTypes: []string{string(webhooks.EventDecided)}})
	if err != nil {
		t.Fatal(err)
	}

	decisions, err := js.Stream(ctx, subj.StreamDecisions())
	if err != nil {
		t.Fatal(err)
	}
	info, err := decisions.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	const jobID, execID = "job-ahead-1", "exec-ahead-1"
	job := &webhookJob{WebhookID: webhooks.MessageID(execID, ep.ID), EndpointID: ep.ID, JobID: jobID, EventID: execID,
		Type: webhooks.EventDecided, Timestamp: time.Now().UTC(), Stream: subj.StreamDecisions(), Sequence: info.State.LastSeq + 1}
	o, err := job.outMsg(subj, job.WebhookID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := publishAll(ctx, js, o); err != nil {
		t.Fatal(err)
	}

	n := runInternalNotifier(t, js, NotifierConfig{Topology: topo, Webhooks: settings}, nil)

	// The first attempt has found no event: the job is delivered again.
	delivery, err := js.Consumer(ctx, subj.StreamWebhooks(), ConsumerNotifierDelivery)
	if err != nil {
		t.Fatal(err)
	}
	pipelinetest.Eventually(t, pipelinetest.DefaultTimeout, func() bool {
		ci, err := delivery.Info(ctx)
		return err == nil && ci.Delivered.Consumer >= 2
	}, "the delivery of an event not stored yet was never delivered again (dropped as gone?)")

	ev, err := messages.Marshal(&messages.DecisionEvent{JobID: jobID, Region: "amer-1", AccountID: "acc-1",
		WorkflowExecutionID: execID, Status: "PROCESSED", Decision: messages.DecisionSummary{Type: messages.DecisionPassed, Label: "OK"},
		DecidedAt: time.Now().UTC()})
	if err != nil {
		t.Fatal(err)
	}
	m := nats.NewMsg(subj.Decision(messages.DecisionPassed))
	m.Data = ev
	m.Header.Set(messages.HeaderMsgID, execID)
	m.Header.Set(messages.HeaderJobID, jobID)
	ack, err := js.PublishMsg(ctx, m)
	if err != nil {
		t.Fatal(err)
	}
	if ack.Sequence != job.Sequence {
		t.Fatalf("the decision was stored at %d, the delivery references %d", ack.Sequence, job.Sequence)
	}

	r := pipelinetest.WaitFor(t, got, pipelinetest.DefaultTimeout, "the delivery of the decision")
	body := pipelinetest.WaitFor(t, bodies, time.Second, "the body")
	if id := r.Header.Get("webhook-id"); id != job.WebhookID {
		t.Errorf("webhook-id %q, want %q", id, job.WebhookID)
	}
	var p webhooks.Payload
	if err := json.Unmarshal(body, &p); err != nil || !bytes.Equal(p.Data, ev) {
		t.Errorf("delivered %s (%v), want the decision %s", body, err, ev)
	}
	if v := counterValue(t, n.wm.notStored); v < 1 {
		t.Errorf("kycpipe_webhook_event_not_stored_yet_total %v, want ≥ 1", v)
	}
	if v := counterValue(t, n.wm.deliveries.WithLabelValues(ep.ID, outcomeEventGone)); v != 0 {
		t.Errorf("dropped as gone %v times", v)
	}
}

// counterValue reads a counter.
func counterValue(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

// runInternalNotifier starts a notifier with cfg (quick backoff, a test
// logger and its own metrics), after edit, if any, has changed it, and
// stops it at the end of the test.
func runInternalNotifier(t *testing.T, js jetstream.JetStream, cfg NotifierConfig, edit func(*Notifier)) *Notifier {
	t.Helper()
	cfg.Logger = pipelinetest.Logger(t)
	cfg.Backoff = Backoff{Initial: 20 * time.Millisecond, Max: 200 * time.Millisecond}
	cfg.ShutdownGrace = time.Second
	cfg.WebhookMetrics = NewWebhookMetrics(prometheus.NewRegistry(), js, cfg.Topology)
	runCtx, cancel := context.WithCancel(t.Context())
	n, err := NewNotifier(runCtx, js, cfg)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if edit != nil {
		edit(n)
	}
	done := make(chan error, 1)
	go func() { done <- n.Run(runCtx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("notifier: %v", err)
		}
	})
	return n
}

// unavailableAttempts is an attempts bucket whose writes fail, as while
// the bucket's stream has no leader, until it is made available.
type unavailableAttempts struct {
	jetstream.KeyValue
	down    atomic.Bool
	refused atomic.Int64
}

func (kv *unavailableAttempts) Put(ctx context.Context, key string, value []byte) (uint64, error) {
	if kv.down.Load() {
		kv.refused.Add(1)
		return 0, nats.ErrNoResponders
	}
	return kv.KeyValue.Put(ctx, key, value)
}

func (kv *unavailableAttempts) Create(ctx context.Context, key string, value []byte, opts ...jetstream.KVCreateOpt) (uint64, error) {
	if kv.down.Load() {
		kv.refused.Add(1)
		return 0, nats.ErrNoResponders
	}
	return kv.KeyValue.Create(ctx, key, value, opts...)
}

// A delivery that cannot write its attempts entry (the soak of 2026-12-07
// 05:49: "no response from stream" during a node loss, after which
// JetStream lost the waiting job and nothing was left to queue it again
// from) keeps trying while it holds the job, after a failed attempt; a
// fan-out that cannot write the entry of a job it queued tries again (the
// event is handed back), also while the job's first attempt runs.
func TestDeliveryKeepsTryingToRecordItsAttempts(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		failed int // the entry's failed attempts
		hang   bool
	}{
		{name: "after a failed attempt", failed: 1},
		{name: "a queued delivery, during its first attempt", failed: 0, hang: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			js, topo := provisioned(t)
			ctx := t.Context()
			release := make(chan struct{})
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if tc.hang {
					select {
					case <-release:
					case <-r.Context().Done():
					}
				}
				w.WriteHeader(http.StatusInternalServerError)
			}))
			t.Cleanup(srv.Close)
			t.Cleanup(func() { close(release) })
			settings := WebhookSettings{Policy: webhooks.Policy{AllowInsecure: true, AllowPrivate: true}}
			reg, err := NewWebhookEndpoints(ctx, js, topo, settings, nil)
			if err != nil {
				t.Fatal(err)
			}
			ep, _, err := reg.Create(ctx, WebhookEndpointInput{URL: srv.URL + "/hook", EventTypes: []string{"*"}})
			if err != nil {
				t.Fatal(err)
			}
			sched, err := webhooks.NewSchedule(time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			var kv *unavailableAttempts
			runInternalNotifier(t, js, NotifierConfig{Topology: topo, Webhooks: settings, Schedule: &sched, Timeout: time.Minute},
				func(n *Notifier) {
					kv = &unavailableAttempts{KeyValue: n.attempts}
					kv.down.Store(true)
					n.attempts = kv
				})
			publishAcceptedEvent(t, js, topo.Subjects, "job-record-1")

			pipelinetest.Eventually(t, pipelinetest.DefaultTimeout, func() bool { return kv.refused.Load() >= 3 },
				"the delivery did not try again to write its attempts entry")
			kv.down.Store(false)
			var st attemptState
			pipelinetest.Eventually(t, pipelinetest.DefaultTimeout, func() bool {
				keys := pipelinetest.KVKeys(t, js, topo.Subjects.BucketWebhookAttempts())
				if len(keys) != 1 {
					return false
				}
				e, err := kv.Get(ctx, keys[0])
				return err == nil && json.Unmarshal(e.Value(), &st) == nil && st.Failed == tc.failed
			}, "no attempts entry with %d failed attempts once the bucket took writes again", tc.failed)
			if st.Job == nil || st.Job.EndpointID != ep.ID || st.Job.JobID != "job-record-1" {
				t.Errorf("the attempts entry holds the job %+v", st.Job)
			}
		})
	}
}

// publishAcceptedEvent publishes an accepted event of jobID.
func publishAcceptedEvent(t *testing.T, js jetstream.JetStream, subj messages.Subjects, jobID string) {
	t.Helper()
	b, err := messages.Marshal(&messages.Event{Kind: messages.KindAccepted, JobID: jobID, Region: "amer-1", At: time.Now().UTC()})
	if err != nil {
		t.Fatal(err)
	}
	m := nats.NewMsg(subj.Event(messages.KindAccepted))
	m.Data = b
	m.Header.Set(messages.HeaderJobID, jobID)
	if _, err := js.PublishMsg(t.Context(), m); err != nil {
		t.Fatal(err)
	}
}

// stuckWatchKV is an attempts bucket whose watches deliver the given
// entries and never signal the end of the initial values, as nats.go's
// watcher does when keys pending at its creation are purged before it
// reads them.
type stuckWatchKV struct {
	jetstream.KeyValue
	entries []jetstream.KeyValueEntry
}

type stuckWatcher struct{ updates chan jetstream.KeyValueEntry }

func (w *stuckWatcher) Updates() <-chan jetstream.KeyValueEntry { return w.updates }
func (w *stuckWatcher) Stop() error                             { return nil }

func (kv *stuckWatchKV) WatchAll(context.Context, ...jetstream.WatchOpt) (jetstream.KeyWatcher, error) {
	w := &stuckWatcher{updates: make(chan jetstream.KeyValueEntry, len(kv.entries))}
	for _, e := range kv.entries {
		w.updates <- e
	}
	return w, nil
}

// The sweep does not wait for ever for the end of the attempts entries'
// initial values: a test helper listing the bucket hung that way once the
// fan-out wrote (and deliveries purged) an entry per delivery.
func TestSweepDoesNotWaitForeverForTheWatchsInitialValues(t *testing.T) {
	t.Parallel()
	js, topo := provisioned(t)
	ctx := t.Context()
	var stuck *stuckWatchKV
	n := runInternalNotifier(t, js, NotifierConfig{Topology: topo, Webhooks: WebhookSettings{Policy: webhooks.Policy{AllowInsecure: true, AllowPrivate: true}}},
		func(n *Notifier) {
			stuck = &stuckWatchKV{KeyValue: n.attempts}
			n.attempts = stuck
		})
	if _, err := stuck.Put(ctx, "att.job-stuck-1.msg_stuck.7", []byte(`{"failed":1}`)); err != nil {
		t.Fatal(err)
	}
	e, err := stuck.Get(ctx, "att.job-stuck-1.msg_stuck.7")
	if err != nil {
		t.Fatal(err)
	}
	stuck.entries = []jetstream.KeyValueEntry{e}
	st, err := n.stream(ctx, topo.Subjects.StreamWebhooks())
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := n.sweepVanished(ctx, st)
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("sweep: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the sweep still waits for the end of the watch's initial values")
	}
}
