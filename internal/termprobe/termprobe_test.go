package termprobe_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/kycpipe/kycpipe/internal/termprobe"
	"github.com/kycpipe/kycpipe/pkg/pipeline/pipelinetest"
)

// serverReason is the reason nats-server v2.15 gives a pending message that
// was removed from its stream (server/consumer.go,
// ackTermUnackedLimitsReason).
const serverReason = "Unacknowledged message was deleted"

// Deleting a message that is pending in a consumer (delivered once, waiting
// out a NakWithDelay, as a poll task does) makes the server terminate it and
// publish a MSG_TERMINATED advisory with its own reason and the delivery
// count: no client terminated anything. On one node the message is already
// gone when the advisory is out.
func TestDeletingAPendingMessageTerminatesIt(t *testing.T) {
	t.Parallel()
	_, nc, js := pipelinetest.RunJetStream(t)
	ctx, cancel := context.WithTimeout(context.Background(), pipelinetest.DefaultTimeout)
	defer cancel()
	res, err := termprobe.Run(ctx, nc, js, termprobe.Options{Messages: 20})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v", *res)
	if res.Deleted != 20 || res.Advisories != 20 || res.Unmatched != 0 {
		t.Fatalf("deleted %d, advisories %d (unmatched %d), want 20, 20 (0)", res.Deleted, res.Advisories, res.Unmatched)
	}
	if res.ByReason[serverReason] != 20 || res.ByDeliveries[1] != 20 {
		t.Errorf("reasons %v, deliveries %v: want every advisory %q after 1 delivery", res.ByReason, res.ByDeliveries, serverReason)
	}
	if res.First.Type != "io.nats.jetstream.advisory.v1.terminated" || res.First.Stream != "PROBE" || res.First.Consumer != "probe" {
		t.Errorf("advisory %+v", res.First)
	}
	if res.Found != 0 || res.LeftInStream != 0 {
		t.Errorf("single node: %d messages still readable after their advisory, %d left in the stream; want 0, 0", res.Found, res.LeftInStream)
	}
}

// A client's TermWithReason carries the client's reason: this is how the
// sweeper tells a stage's give-up from the server's own terminations.
func TestClientTerminationCarriesItsReason(t *testing.T) {
	t.Parallel()
	_, nc, js := pipelinetest.RunJetStream(t)
	ctx, cancel := context.WithTimeout(context.Background(), pipelinetest.DefaultTimeout)
	defer cancel()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "T", Subjects: []string{"t"}, Retention: jetstream.WorkQueuePolicy}); err != nil {
		t.Fatal(err)
	}
	cons, err := js.CreateOrUpdateConsumer(ctx, "T", jetstream.ConsumerConfig{Durable: "c", AckPolicy: jetstream.AckExplicitPolicy})
	if err != nil {
		t.Fatal(err)
	}
	advs := make(chan *nats.Msg, 4)
	sub, err := nc.ChanSubscribe("$JS.EVENT.ADVISORY.CONSUMER.MSG_TERMINATED.T.c", advs)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	if _, err := js.Publish(ctx, "t", []byte("x")); err != nil {
		t.Fatal(err)
	}
	m, err := cons.Next(jetstream.FetchMaxWait(5 * time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if err := m.TermWithReason("retry_budget: retry_budget"); err != nil {
		t.Fatal(err)
	}
	raw := pipelinetest.WaitFor(t, advs, pipelinetest.DefaultTimeout, "MSG_TERMINATED advisory")
	var a termprobe.Advisory
	if err := json.Unmarshal(raw.Data, &a); err != nil {
		t.Fatal(err)
	}
	if a.Reason != "retry_budget: retry_budget" || a.StreamSeq != 1 || a.Deliveries != 1 {
		t.Errorf("advisory %+v", a)
	}
}
