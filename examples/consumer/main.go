// Command consumer is an example downstream service: it reads kycpipe's
// decision events from JetStream with a durable consumer and acts on each
// exactly once, however often JetStream delivers it.
//
//	go run ./examples/consumer --nats-url nats://127.0.0.1:4222 --durable onboarding
//
// Decision events arrive at least once (a crash before the ack redelivers
// them), so the handler deduplicates on the workflow execution ID; in a real
// service that is a unique key in the database write that records the
// decision, done in the same transaction.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/kycpipe/kycpipe/pkg/messages"
)

func main() {
	url := flag.String("nats-url", envOr("KYCPIPE_NATS_URL", nats.DefaultURL), "NATS server URL")
	user := flag.String("nats-user", os.Getenv("KYCPIPE_NATS_USER"), "NATS user (the reader user of deploy/nats)")
	password := flag.String("nats-password", os.Getenv("KYCPIPE_NATS_PASSWORD"), "NATS password")
	durable := flag.String("durable", "decisions-example", "durable consumer name (one per downstream service)")
	prefix := flag.String("subject-prefix", envOr("KYCPIPE_SUBJECT_PREFIX", messages.DefaultPrefix), "kycpipe's subject prefix")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	opts := []nats.Option{nats.Name("decisions-example"), nats.MaxReconnects(-1)}
	if *user != "" {
		opts = append(opts, nats.UserInfo(*user, *password))
	}
	nc, err := nats.Connect(*url, opts...)
	if err != nil {
		log.Fatal(err)
	}
	defer nc.Drain()
	js, err := jetstream.New(nc)
	if err != nil {
		log.Fatal(err)
	}
	subj, err := messages.NewSubjects(*prefix)
	if err != nil {
		log.Fatal(err)
	}
	h := &onboarding{seen: map[string]bool{}}
	if err := Consume(ctx, js, subj, *durable, h.handle); err != nil && !errors.Is(err, context.Canceled) {
		log.Fatal(err)
	}
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// Consume delivers every decision event to handle until ctx ends. A
// decision is acknowledged only after handle succeeded; a failing handle is
// retried after a delay.
func Consume(ctx context.Context, js jetstream.JetStream, subj messages.Subjects, durable string,
	handle func(context.Context, *messages.DecisionEvent) error) error {
	cons, err := js.CreateOrUpdateConsumer(ctx, subj.StreamDecisions(), jetstream.ConsumerConfig{
		Durable:       durable,
		FilterSubject: subj.Decisions(), // or subj.Decision("REJECTED") for one type
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       30 * time.Second,
		MaxDeliver:    -1,
		DeliverPolicy: jetstream.DeliverAllPolicy, // a new service starts from the first decision kept
	})
	if err != nil {
		return fmt.Errorf("create consumer: %w", err)
	}
	cc, err := cons.Consume(func(m jetstream.Msg) {
		ev, err := messages.DecodeDecision(m.Data())
		if err != nil {
			log.Printf("undecodable decision event, skipping: %v", err)
			_ = m.Term()
			return
		}
		if err := handle(ctx, ev); err != nil {
			log.Printf("handling decision of job %s failed, retrying: %v", ev.JobID, err)
			_ = m.NakWithDelay(5 * time.Second)
			return
		}
		_ = m.DoubleAck(ctx)
	}, jetstream.PullMaxMessages(16))
	if err != nil {
		return err
	}
	<-ctx.Done()
	cc.Drain()
	<-cc.Closed()
	return ctx.Err()
}

// onboarding is the example's business logic: unlock or refuse an account.
type onboarding struct {
	mu   sync.Mutex
	seen map[string]bool // stands in for a unique key in a database
}

func (o *onboarding) handle(_ context.Context, ev *messages.DecisionEvent) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.seen[ev.WorkflowExecutionID] {
		return nil // delivered again: already done
	}
	o.seen[ev.WorkflowExecutionID] = true
	switch ev.Decision.Type {
	case messages.DecisionPassed:
		log.Printf("job %s (%s): verified, unlocking the account", ev.JobID, ev.CustomerInternalReference)
	case messages.DecisionWarning:
		log.Printf("job %s (%s): needs a manual review (%s)", ev.JobID, ev.CustomerInternalReference, ev.Decision.Label)
	case messages.DecisionExpired:
		log.Printf("job %s (%s): the user did not finish; ask again", ev.JobID, ev.CustomerInternalReference)
	default:
		log.Printf("job %s (%s): %s (%s)", ev.JobID, ev.CustomerInternalReference, ev.Decision.Type, ev.Decision.Label)
	}
	return nil
}
