package pipeline

import (
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

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
