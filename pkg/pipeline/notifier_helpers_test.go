package pipeline_test

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/kycpipe/kycpipe/pkg/messages"
	"github.com/kycpipe/kycpipe/pkg/pipeline"
	"github.com/kycpipe/kycpipe/pkg/pipeline/pipelinetest"
	"github.com/kycpipe/kycpipe/pkg/webhooks"
)

// devPolicy lets the notifier reach test receivers on loopback over http.
var devPolicy = webhooks.Policy{AllowInsecure: true, AllowPrivate: true}

// fakeClock is a settable clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// hooks is a provisioned JetStream with the webhook registry.
type hooks struct {
	js   jetstream.JetStream
	nc   *nats.Conn
	topo pipeline.Topology
	subj messages.Subjects
	reg  *pipeline.WebhookEndpoints
	now  func() time.Time
	prom *prometheus.Registry // the last notifier's metrics
}

func newHooks(t *testing.T, s pipeline.WebhookSettings, now func() time.Time) *hooks {
	t.Helper()
	_, nc, js := pipelinetest.RunJetStream(t)
	topo := pipeline.Topology{NotifierAckWait: 2 * time.Second}.WithDefaults()
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	if err := pipeline.Provision(ctx, js, topo); err != nil {
		t.Fatal(err)
	}
	reg, err := pipeline.NewWebhookEndpoints(ctx, js, topo, s, now)
	if err != nil {
		t.Fatal(err)
	}
	if now == nil {
		now = time.Now
	}
	return &hooks{js: js, nc: nc, topo: topo, subj: topo.Subjects, reg: reg, now: now}
}

// register creates an endpoint, failing the test on error.
func (h *hooks) register(t *testing.T, url string, types ...string) (*pipeline.WebhookEndpoint, webhooks.Secret) {
	t.Helper()
	ep, secret, err := h.reg.Create(context.Background(), pipeline.WebhookEndpointInput{URL: url, EventTypes: types, Description: "test"})
	if err != nil {
		t.Fatalf("register %s: %v", url, err)
	}
	return ep, secret
}

// startNotifier runs a notifier until the test ends.
func (h *hooks) startNotifier(t *testing.T, mutate func(*pipeline.NotifierConfig)) *pipeline.Notifier {
	t.Helper()
	cfg := pipeline.NotifierConfig{
		Topology: h.topo, Webhooks: pipeline.WebhookSettings{Policy: devPolicy}, Logger: pipelinetest.Logger(t),
		Backoff: pipeline.Backoff{Initial: 20 * time.Millisecond, Max: 200 * time.Millisecond}, BusyDelay: 20 * time.Millisecond,
		ShutdownGrace: time.Second, Now: h.now,
	}
	h.prom = prometheus.NewRegistry()
	cfg.WebhookMetrics = pipeline.NewWebhookMetrics(h.prom, h.js, h.topo)
	if mutate != nil {
		mutate(&cfg)
	}
	ctx, cancel := context.WithCancel(context.Background())
	n, err := pipeline.NewNotifier(ctx, h.js, cfg)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("notifier: %v", err)
		}
	})
	pipelinetest.Eventually(t, waitLong, func() bool { return n.Ready(context.Background()) == nil }, "notifier never ready")
	return n
}

// publishEvent publishes a lifecycle event of kind for jobID and returns
// its Nats-Msg-Id and stored bytes.
func (h *hooks) publishEvent(t *testing.T, kind, jobID string) (string, []byte) {
	t.Helper()
	b, err := messages.Marshal(&messages.Event{Kind: kind, JobID: jobID, Region: "amer-1", At: h.now().UTC()})
	if err != nil {
		t.Fatal(err)
	}
	id := messages.EventMsgID(kind, jobID)
	h.publish(t, h.subj.Event(kind), id, jobID, b)
	return id, b
}

// publishDecision publishes a decision for jobID and returns its
// Nats-Msg-Id and stored bytes.
func (h *hooks) publishDecision(t *testing.T, jobID, execID string) (string, []byte) {
	t.Helper()
	b, err := messages.Marshal(&messages.DecisionEvent{JobID: jobID, Region: "amer-1", AccountID: "acc-" + jobID,
		WorkflowExecutionID: execID, Status: "PROCESSED", Decision: messages.DecisionSummary{Type: messages.DecisionPassed, Label: "OK"},
		DecidedAt: h.now().UTC()})
	if err != nil {
		t.Fatal(err)
	}
	h.publish(t, h.subj.Decision(messages.DecisionPassed), execID, jobID, b)
	return execID, b
}

func (h *hooks) publish(t *testing.T, subject, msgID, jobID string, data []byte) {
	t.Helper()
	m := nats.NewMsg(subject)
	m.Data = data
	m.Header.Set(messages.HeaderMsgID, msgID)
	m.Header.Set(messages.HeaderJobID, jobID)
	if _, err := h.js.PublishMsg(context.Background(), m); err != nil {
		t.Fatal(err)
	}
}

// attempts returns an endpoint's delivery log, newest first.
func (h *hooks) attempts(t *testing.T, endpointID string) []pipeline.WebhookAttempt {
	t.Helper()
	got, err := h.reg.Deliveries(context.Background(), endpointID, 100)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// waitAttempts waits until the endpoint's log holds n entries.
func (h *hooks) waitAttempts(t *testing.T, endpointID string, n int) []pipeline.WebhookAttempt {
	t.Helper()
	var got []pipeline.WebhookAttempt
	pipelinetest.Eventually(t, waitLong, func() bool { got = h.attempts(t, endpointID); return len(got) >= n },
		"want %d delivery log entries for %s", n, endpointID)
	return got
}

// received is one request a receiver got.
type received struct {
	header http.Header
	body   []byte
}

// receiver is a test endpoint: it records every request and answers with
// respond (default 204).
type receiver struct {
	srv     *httptest.Server
	mu      sync.Mutex
	got     []received
	arrived chan received
	respond func(n int, w http.ResponseWriter, r *http.Request) // n: 1 for the first request
}

func newReceiver(t *testing.T, respond func(n int, w http.ResponseWriter, r *http.Request)) *receiver {
	t.Helper()
	rc := &receiver{arrived: make(chan received, 1024), respond: respond}
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		g := received{header: r.Header.Clone(), body: body}
		rc.mu.Lock()
		rc.got = append(rc.got, g)
		n := len(rc.got)
		rc.mu.Unlock()
		rc.arrived <- g
		if rc.respond != nil {
			rc.respond(n, w, r)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *receiver) requests() []received {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]received(nil), rc.got...)
}

func (rc *receiver) next(t *testing.T) received {
	t.Helper()
	return pipelinetest.WaitFor(t, rc.arrived, waitLong, "a webhook request")
}

// payload decodes a delivery body.
func payload(t *testing.T, body []byte) webhooks.Payload {
	t.Helper()
	var p webhooks.Payload
	if err := json.Unmarshal(body, &p); err != nil {
		t.Fatalf("delivery body %s: %v", body, err)
	}
	return p
}

// publicHost makes a test receiver look like a public host: the resolver
// answers a public address for name, and the dialer sends connections to
// that address to the receiver.
type publicHost struct {
	mu   sync.Mutex
	name string
	addr netip.Addr // what name resolves to
	real string     // the receiver's host:port
}

func (p *publicHost) setAddr(a netip.Addr) {
	p.mu.Lock()
	p.addr = a
	p.mu.Unlock()
}

func (p *publicHost) resolver() webhooks.Resolver {
	return webhooks.ResolverFunc(func(_ context.Context, host string) ([]netip.Addr, error) {
		p.mu.Lock()
		defer p.mu.Unlock()
		if host == p.name {
			return []netip.Addr{p.addr}, nil
		}
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	})
}

func (p *publicHost) dialer(dialed *[]string, mu *sync.Mutex) webhooks.DialFunc {
	return func(ctx context.Context, network, address string) (net.Conn, error) {
		mu.Lock()
		*dialed = append(*dialed, address)
		mu.Unlock()
		return (&net.Dialer{}).DialContext(ctx, network, p.real)
	}
}

// metric returns the value of a gauge or counter of the last notifier
// whose labels include want, and whether it exists.
func (h *hooks) metric(t *testing.T, name string, want map[string]string) (float64, bool) {
	t.Helper()
	mfs, err := h.prom.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, lp := range m.GetLabel() {
				labels[lp.GetName()] = lp.GetValue()
			}
			for k, v := range want {
				if labels[k] != v {
					continue next
				}
			}
			switch {
			case m.GetGauge() != nil:
				return m.GetGauge().GetValue(), true
			case m.GetCounter() != nil:
				return m.GetCounter().GetValue(), true
			}
		}
	}
	return 0, false
}

// waitEnabled waits until the notifier's view of an endpoint is enabled
// (or disabled).
func (h *hooks) waitEnabled(t *testing.T, id string, enabled bool) {
	t.Helper()
	want := 0.0
	if enabled {
		want = 1
	}
	pipelinetest.Eventually(t, waitLong, func() bool {
		v, ok := h.metric(t, "kycpipe_webhook_endpoint_enabled", map[string]string{"endpoint": id})
		return ok && v == want
	}, "the notifier never saw endpoint %s enabled=%v", id, enabled)
}

// waitFannedOut waits until the notifier's fan-out consumers have handled
// every event published so far.
func (h *hooks) waitFannedOut(t *testing.T) {
	t.Helper()
	pipelinetest.Eventually(t, waitLong, func() bool {
		for _, c := range [][2]string{{h.subj.StreamEvents(), pipeline.ConsumerNotifierEvents}, {h.subj.StreamDecisions(), pipeline.ConsumerNotifierDecisions}} {
			cons, err := h.js.Consumer(context.Background(), c[0], c[1])
			if err != nil {
				return false
			}
			info, err := cons.Info(context.Background())
			if err != nil || info.NumPending != 0 || info.NumAckPending != 0 {
				return false
			}
		}
		return true
	}, "fan-out never caught up")
}

// countSubject returns how many messages stream holds on subject
// (wildcards allowed).
func (h *hooks) countSubject(t *testing.T, stream, subject string) int {
	t.Helper()
	st, err := h.js.Stream(context.Background(), stream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(context.Background(), jetstream.WithSubjectFilter(subject))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, c := range info.State.Subjects {
		n += int(c)
	}
	return n
}

// eraseEvents removes the lifecycle events of kind, as an erasure does.
func (h *hooks) eraseEvents(t *testing.T, kind string) {
	t.Helper()
	events, err := h.js.Stream(context.Background(), h.subj.StreamEvents())
	if err != nil {
		t.Fatal(err)
	}
	if err := events.Purge(context.Background(), jetstream.WithPurgeSubject(h.subj.Event(kind))); err != nil {
		t.Fatal(err)
	}
}
