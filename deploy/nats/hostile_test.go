package natsdeploy_test

// What a compromised service could do with the grants that erasure, the
// job index and webhooks added (docs/SECURITY.md, "NATS permissions after
// erasure and webhooks", findings N1 and N3), against the exact
// configuration files of deploy/nats. Each row states what is refused and
// what is still possible; a change in either fails TestHostileNATSClients.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/kycpipe/kycpipe/pkg/messages"
	"github.com/kycpipe/kycpipe/pkg/pipeline"
)

// Observations of a row.
const (
	obsRefused = "refused (permissions violation)"
	obsTooFar  = "accepted: the configuration grants more than the service needs"
)

func stillPossible(section string) string {
	return fmt.Sprintf("still possible (docs/SECURITY.md, %q)", section)
}

// hostileBench is a provisioned server with data in every stream a
// compromised service could go after, seeded by the admin.
type hostileBench struct {
	t          *testing.T
	url, ca    string
	s          messages.Subjects
	admin      *watched
	decision   uint64 // a decision's sequence in KYC_DECISIONS
	deadLetter uint64 // a dead letter's sequence in KYC_DLQ
	jobMsg     uint64 // a job message's sequence in KYC_JOBS
}

func newHostileBench(t *testing.T) *hostileBench {
	t.Helper()
	url, ca := startDeployServer(t, "")
	ctx := context.Background()
	b := &hostileBench{t: t, url: url, ca: ca, admin: connectWatched(t, url, ca, "admin")}
	topo := pipeline.Topology{}.WithDefaults()
	b.s = topo.Subjects
	if err := pipeline.Provision(ctx, b.admin.js, topo); err != nil {
		t.Fatal(err)
	}
	pub := func(subject string) uint64 {
		ack, err := b.admin.js.Publish(ctx, subject, []byte(`{"jobId":"job_victim"}`))
		if err != nil {
			t.Fatalf("publish %s: %v", subject, err)
		}
		return ack.Sequence
	}
	b.decision = pub(b.s.Decision(messages.DecisionPassed))
	b.deadLetter = pub(b.s.DLQ(messages.StageWorker))
	b.jobMsg = pub(b.s.JobSubmit("job_victim"))
	pub(b.s.IndexJob(pipeline.StatusDecided, "amer-1", messages.DecisionPassed, "job_victim"))
	pub(b.s.WebhookDelivery("ep_victim", "job_victim"))
	pub(b.s.Audit(messages.AuditErasure))
	eps, err := b.admin.js.KeyValue(ctx, b.s.BucketWebhookEndpoints())
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"ep.victim-1", "ep.victim-2"} {
		if _, err := eps.Put(ctx, k, []byte(`{}`)); err != nil {
			t.Fatal(err)
		}
	}
	return b
}

// count returns how many messages stream holds.
func (b *hostileBench) count(stream string) uint64 {
	b.t.Helper()
	st, err := b.admin.js.Stream(context.Background(), stream)
	if err != nil {
		b.t.Fatal(err)
	}
	info, err := st.Info(context.Background())
	if err != nil {
		b.t.Fatal(err)
	}
	return info.State.Msgs
}

// stored reports whether stream still holds seq.
func (b *hostileBench) stored(stream string, seq uint64) bool {
	b.t.Helper()
	st, err := b.admin.js.Stream(context.Background(), stream)
	if err != nil {
		b.t.Fatal(err)
	}
	_, err = st.GetMsg(context.Background(), seq)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return false
	}
	if err != nil {
		b.t.Fatal(err)
	}
	return true
}

// hostileTry is one thing a compromised service tries. op fails when the
// server refuses it; done (optional) reports whether it took effect.
type hostileTry struct {
	user, action string
	op           func(ctx context.Context, w *watched) error
	done         func() bool
	// possible: the configuration must allow it (the row then names
	// section, docs/SECURITY.md's account of it); otherwise it must be
	// refused.
	possible bool
	section  string
}

// try runs each attempt on a connection of its own and returns the rows,
// in order. Refusals of JetStream requests only end at their timeout, so
// with parallel the attempts run at once (they must not depend on each
// other).
func (b *hostileBench) try(finding string, parallel bool, tries []hostileTry) []hostileNATS {
	b.t.Helper()
	rows := make([]hostileNATS, len(tries))
	var wg sync.WaitGroup
	for i, h := range tries {
		w := connectWatched(b.t, b.url, b.ca, h.user)
		run := func() {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			err := h.op(ctx, w)
			cancel()
			took := err == nil && (h.done == nil || h.done())
			observed := obsRefused
			switch {
			case took && h.possible:
				observed = stillPossible(h.section)
			case took:
				observed = obsTooFar
				b.t.Errorf("%s could %s", h.user, h.action)
			case h.possible:
				observed = "refused"
				b.t.Errorf("%s can no longer %s (%v): update docs/SECURITY.md", h.user, h.action, err)
			}
			rows[i] = hostileNATS{finding: finding, client: h.user, action: h.action, observed: observed}
		}
		if !parallel {
			run()
			continue
		}
		wg.Add(1)
		go func() { defer wg.Done(); run() }()
	}
	wg.Wait()
	return rows
}

// publishRefused publishes on core NATS and fails when the server refuses
// it.
func publishRefused(w *watched, subject string, m *nats.Msg) error {
	if m == nil {
		m = &nats.Msg{Subject: subject, Data: []byte(`{}`)}
	}
	m.Subject = subject
	if err := w.nc.PublishMsg(m); err != nil {
		return err
	}
	if err := w.nc.Flush(); err != nil {
		return err
	}
	if eventually(2*time.Second, func() bool { return w.refused(subject) }) {
		return errors.New("refused")
	}
	return nil
}

func getMsg(stream string, seq uint64) func(context.Context, *watched) error {
	return func(ctx context.Context, w *watched) error {
		st, err := w.js.Stream(ctx, stream)
		if err != nil {
			return err
		}
		_, err = st.GetMsg(ctx, seq)
		return err
	}
}

func deleteMsg(stream string, seq uint64) func(context.Context, *watched) error {
	return func(ctx context.Context, w *watched) error {
		st, err := w.js.Stream(ctx, stream)
		if err != nil {
			return err
		}
		return st.DeleteMsg(ctx, seq)
	}
}

func purge(stream string) func(context.Context, *watched) error {
	return func(ctx context.Context, w *watched) error {
		st, err := w.js.Stream(ctx, stream)
		if err != nil {
			return err
		}
		return st.Purge(ctx)
	}
}

func publish(subject string) func(context.Context, *watched) error {
	return func(_ context.Context, w *watched) error { return publishRefused(w, subject, nil) }
}

// compromisedServices: finding N3. The grants erasure, the index and
// webhooks need widen what a compromised ingest, worker, retriever or
// notifier could do; what JetStream's permissions can take away is taken,
// the rest is listed in docs/SECURITY.md and checked here so the list
// stays true. The refusals come first: a still-possible row may destroy
// what a later one needs.
func compromisedServices(t *testing.T) []hostileNATS {
	b := newHostileBench(t)
	s := b.s
	kv := "$KV." + s.BucketJobs() + "."
	rows := b.try("N3", true, []hostileTry{
		{user: "ingest", action: "read a dead letter (applicant data)", op: getMsg(s.StreamDLQ(), b.deadLetter)},
		{user: "ingest", action: "forge an audit record", op: publish(s.Audit(messages.AuditErasure))},
		{user: "ingest", action: "delete a decision", op: deleteMsg(s.StreamDecisions(), b.decision)},
		{user: "worker", action: "read a decision (by sequence)", op: getMsg(s.StreamDecisions(), b.decision)},
		{user: "worker", action: "read a dead letter (applicant data)", op: getMsg(s.StreamDLQ(), b.deadLetter)},
		{user: "worker", action: "bind an Idempotency-Key or claim an execution's callbacks (write `idem.…`, `cbchain.…`)", op: func(_ context.Context, w *watched) error {
			return errors.Join(publishRefused(w, kv+"idem.attacker", nil), publishRefused(w, kv+"cbchain.attacker", nil))
		}},
		{user: "worker", action: "purge the audit trail", op: purge(s.StreamAudit())},
		{user: "retriever", action: "redirect an execution or take the retention lease (write `exec.…`, `lease.…`)", op: func(_ context.Context, w *watched) error {
			return errors.Join(publishRefused(w, kv+"exec.attacker", nil), publishRefused(w, kv+"lease.retention", nil))
		}},
		{user: "retriever", action: "queue an erasure", op: publish(s.Erasure("job_victim"))},
		{user: "notifier", action: "read a job record", op: func(ctx context.Context, w *watched) error {
			st, err := w.js.Stream(ctx, "KV_"+s.BucketJobs())
			if err != nil {
				return err
			}
			_, err = st.GetLastMsgForSubject(ctx, kv+"job.job_victim")
			return err
		}},
		{user: "notifier", action: "read a job message (applicant data)", op: getMsg(s.StreamJobs(), b.jobMsg)},
		{user: "notifier", action: "publish a decision", op: publish(s.Decision(messages.DecisionPassed))},
		{user: "notifier", action: "queue an erasure", op: publish(s.Erasure("job_victim"))},
	})
	eps := "$KV." + s.BucketWebhookEndpoints() + "."
	rows = append(rows, b.try("N3", false, []hostileTry{
		{user: "ingest", action: "read a decision (by sequence)", op: getMsg(s.StreamDecisions(), b.decision),
			possible: true, section: "A compromised ingest"},
		{user: "ingest", action: "queue the erasure of any job", op: publish(s.Erasure("job_victim")),
			possible: true, section: "A compromised ingest"},
		{user: "ingest", action: "read a pending job message (applicant data)", op: getMsg(s.StreamJobs(), b.jobMsg),
			possible: true, section: "A compromised ingest"},
		{user: "notifier", action: "redirect a webhook endpoint (write `ep.<id>`)", op: publish(eps + "ep.victim-1"),
			possible: true, section: "Other compromised services"},
		{user: "worker", action: "forge an erasure audit record", op: publish(s.Audit(messages.AuditErasure)),
			possible: true, section: "Other compromised services"},
		{user: "retriever", action: "delete a decision (by sequence)", op: deleteMsg(s.StreamDecisions(), b.decision),
			done: func() bool { return !b.stored(s.StreamDecisions(), b.decision) }, possible: true, section: "Other compromised services"},
		{user: "ingest", action: "purge the job index", op: purge(s.StreamIndex()),
			done: func() bool { return b.count(s.StreamIndex()) == 0 }, possible: true, section: "A compromised ingest"},
		{user: "ingest", action: "purge the pending webhook deliveries", op: purge(s.StreamWebhooks()),
			done: func() bool { return b.count(s.StreamWebhooks()) == 0 }, possible: true, section: "A compromised ingest"},
		{user: "ingest", action: "empty the webhook endpoint registry (`Nats-Rollup: all` on an endpoint key)", op: func(_ context.Context, w *watched) error {
			m := nats.NewMsg("")
			m.Header.Set("Nats-Rollup", "all")
			m.Data = []byte(`{}`)
			return publishRefused(w, eps+"ep.attacker", m)
		}, done: func() bool { return b.count("KV_"+s.BucketWebhookEndpoints()) == 1 }},
	})...)
	return rows
}

// hostileReader: finding N1. A downstream reader may create, read and
// delete consumers of any name on KYC_DECISIONS and KYC_EVENTS, where the
// notifier's durable consumers live too. Through the legacy create
// endpoint (the consumer's name in the body, beyond any subject rule) a
// reader rewrote the notifier's consumer; with the any-name grants it could
// delete it, pull its messages or acknowledge them: webhooks stopped or
// lost events.
func hostileReader(t *testing.T) []hostileNATS {
	b := newHostileBench(t)
	s := b.s
	ctx := context.Background()
	durable := func() jetstream.ConsumerConfig {
		c, err := b.admin.js.Consumer(ctx, s.StreamDecisions(), pipeline.ConsumerNotifierDecisions)
		if err != nil {
			t.Fatal(err)
		}
		info, err := c.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return info.Config
	}
	before := durable()
	unchanged := func() bool {
		after := durable()
		return after.Durable == before.Durable && after.FilterSubject == before.FilterSubject
	}
	rewrite := func(subject string) func(context.Context, *watched) error {
		return func(ctx context.Context, w *watched) error {
			body, _ := json.Marshal(map[string]any{"stream_name": s.StreamDecisions(), "config": map[string]any{
				"name": pipeline.ConsumerNotifierDecisions, "filter_subject": s.Decision("NONE"),
				"deliver_policy": "new", "ack_policy": "explicit"}})
			m, err := w.nc.RequestWithContext(ctx, subject, body)
			if err != nil {
				return err
			}
			var resp struct{ Error *struct{ Description string } }
			if json.Unmarshal(m.Data, &resp) == nil && resp.Error != nil {
				return errors.New(resp.Error.Description)
			}
			return nil
		}
	}
	tookOver := func() bool { return !unchanged() }
	rows := b.try("N1", false, []hostileTry{
		{user: "reader", action: "rewrite the notifier's consumer through the legacy create endpoint (its name in the body)",
			op: rewrite("$JS.API.CONSUMER.CREATE." + s.StreamDecisions()), done: tookOver},
		{user: "reader", action: "rewrite the notifier's consumer by name",
			op: rewrite("$JS.API.CONSUMER.CREATE." + s.StreamDecisions() + "." + pipeline.ConsumerNotifierDecisions + "." + s.Decision("NONE")), done: tookOver},
		{user: "reader", action: "pull the notifier's messages", op: func(ctx context.Context, w *watched) error {
			c, err := w.js.Consumer(ctx, s.StreamDecisions(), pipeline.ConsumerNotifierDecisions)
			if err != nil {
				return err
			}
			_, err = c.Next(jetstream.FetchMaxWait(time.Second))
			return err
		}},
		{user: "reader", action: "delete the notifier's consumer", op: func(ctx context.Context, w *watched) error {
			return w.js.DeleteConsumer(ctx, s.StreamEvents(), pipeline.ConsumerNotifierEvents)
		}},
	})
	if !unchanged() {
		t.Errorf("the notifier's consumer was changed: %+v", durable())
	}
	// The reader's own consumers still work.
	c, err := connectWatched(t, b.url, b.ca, "reader").js.OrderedConsumer(ctx, s.StreamDecisions(), jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatalf("the reader cannot read decisions: %v", err)
	}
	if _, err := c.Next(jetstream.FetchMaxWait(5 * time.Second)); err != nil {
		t.Fatalf("the reader cannot read decisions: %v", err)
	}
	return rows
}
