package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/kycpipe/kycpipe/pkg/messages"
	"github.com/kycpipe/kycpipe/pkg/pipeline"
	"github.com/kycpipe/kycpipe/pkg/webhooks"
)

// WebhookResult is the webhook step: decision events published straight to
// KYC_DECISIONS (as the retriever publishes them), delivered by a notifier
// process to a receiver in the harness that verifies every signature.
type WebhookResult struct {
	Deliveries int           // of the throughput run
	Elapsed    time.Duration // first publish to last delivery
	Low        WebhookLatency
	// Isolated is the same low load to a healthy endpoint while a second
	// endpoint, subscribed to the same events, never answers.
	Isolated        WebhookLatency
	HangingInFlight int64 // attempts the hanging endpoint held at the end
	BusyHandBacks   int   // deliveries handed back for a busy endpoint in the throughput run
	HangTimeout     time.Duration
	EndpointConc    int
	CPU             map[string]time.Duration // of the throughput run
	Peak            map[string]int64
}

// Rate is deliveries per second in the throughput run.
func (w WebhookResult) Rate() float64 {
	if w.Elapsed <= 0 {
		return 0
	}
	return float64(w.Deliveries) / w.Elapsed.Seconds()
}

// CPUPerDelivery sums the given processes' CPU time per delivery.
func (w WebhookResult) CPUPerDelivery(names ...string) time.Duration {
	var sum time.Duration
	for _, n := range names {
		sum += w.CPU[n]
	}
	return sum / time.Duration(max(w.Deliveries, 1))
}

// WebhookLatency is an open-loop run: the time from publishing a decision
// event to its delivery's arrival at the receiver.
type WebhookLatency struct {
	Rate       float64
	Deliveries int
	Lat        Latencies
}

// hookReceiver is the harness's endpoint: it verifies each delivery and
// records when each job's decision arrived.
type hookReceiver struct {
	verifier atomic.Pointer[webhooks.Verifier]
	mu       sync.Mutex
	arrived  map[string]time.Time // job ID -> first arrival
	want     int
	done     chan struct{}
	bad      atomic.Int64
}

func (h *hookReceiver) expect(n int) {
	h.mu.Lock()
	h.arrived, h.want, h.done = map[string]time.Time{}, n, make(chan struct{})
	h.mu.Unlock()
}

func (h *hookReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	now := time.Now()
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 2<<20))
	v := h.verifier.Load()
	if err != nil || v == nil || v.Verify(r.Header, body) != nil {
		h.bad.Add(1)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	var p struct {
		Data struct {
			JobID string `json:"jobId"`
		} `json:"data"`
	}
	if json.Unmarshal(body, &p) != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	w.WriteHeader(http.StatusNoContent)
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.arrived[p.Data.JobID]; !ok && h.arrived != nil {
		h.arrived[p.Data.JobID] = now
		if len(h.arrived) == h.want {
			close(h.done)
		}
	}
}

// wait waits for every expected delivery.
func (h *hookReceiver) wait(ctx context.Context, timeout time.Duration) error {
	h.mu.Lock()
	done := h.done
	h.mu.Unlock()
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-done:
		return nil
	case <-t.C:
		h.mu.Lock()
		defer h.mu.Unlock()
		return fmt.Errorf("%d of %d deliveries arrived within %s (%d refused signatures)", len(h.arrived), h.want, timeout, h.bad.Load())
	case <-ctx.Done():
		return ctx.Err()
	}
}

// hangingReceiver never answers (until its server closes).
type hangingReceiver struct{ inFlight atomic.Int64 }

func (h *hangingReceiver) ServeHTTP(_ http.ResponseWriter, r *http.Request) {
	// Read the body first: only then does the server notice the client
	// giving up (its timeout) and end the request's context.
	_, _ = io.Copy(io.Discard, r.Body)
	h.inFlight.Add(1)
	defer h.inFlight.Add(-1)
	<-r.Context().Done()
}

func serve(h http.Handler) (string, func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return "http://" + ln.Addr().String(), func() { _ = srv.Close() }, nil
}

// decisionPublisher publishes decision events like the retriever does.
type decisionPublisher struct {
	js   jetstream.JetStream
	subj messages.Subjects
}

func (d *decisionPublisher) msg(jobID string) *nats.Msg {
	ev := &messages.DecisionEvent{JobID: jobID, Region: "amer-1", AccountID: "5faf8381-4a89-4fc0-95bb-0b59d57301cd",
		WorkflowExecutionID: "exec-" + jobID, WorkflowDefinitionKey: "10148", Status: "PROCESSED",
		Decision: messages.DecisionSummary{Type: messages.DecisionPassed, Label: "PASSED"},
		Capabilities: map[string][]messages.CapabilitySummary{
			"usability": {{Decision: "PASSED", Label: "OK"}}, "extraction": {{Decision: "PASSED", Label: "OK"}},
			"dataChecks": {{Decision: "PASSED", Label: "OK"}}, "liveness": {{Decision: "PASSED", Label: "OK"}},
		}, DecidedAt: time.Now().UTC()}
	b, _ := messages.Marshal(ev)
	m := nats.NewMsg(d.subj.Decision(messages.DecisionPassed))
	m.Data = b
	m.Header.Set(messages.HeaderMsgID, ev.WorkflowExecutionID)
	m.Header.Set(messages.HeaderJobID, jobID)
	return m
}

// openLoop publishes n decisions at rate per second and returns when each
// was published.
func (d *decisionPublisher) openLoop(ctx context.Context, run string, n int, rate float64) (map[string]time.Time, error) {
	sent := make(map[string]time.Time, n)
	start := time.Now()
	for i := range n {
		due := start.Add(time.Duration(float64(i) / rate * float64(time.Second)))
		if wait := time.Until(due); wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return nil, ctx.Err()
			case <-t.C:
			}
		}
		id := run + "-" + strconv.Itoa(i)
		m := d.msg(id)
		sent[id] = time.Now()
		if _, err := d.js.PublishMsgAsync(m); err != nil {
			return nil, err
		}
	}
	select {
	case <-d.js.PublishAsyncComplete():
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return sent, nil
}

func (b *runner) webhooks(ctx context.Context) error {
	s, err := b.stack(ctx, "webhooks")
	if err != nil {
		return err
	}
	defer s.Close()
	const endpointConc, hangTimeout = 8, 5 * time.Second
	env := []string{"KYCPIPE_WEBHOOK_ALLOW_INSECURE=true", "KYCPIPE_WEBHOOK_ALLOW_PRIVATE=true",
		"KYCPIPE_WEBHOOK_ENDPOINT_CONCURRENCY=" + strconv.Itoa(endpointConc), "KYCPIPE_WEBHOOK_TIMEOUT=" + hangTimeout.String()}
	if err := s.StartStages(ctx, env, "notifier"); err != nil {
		return err
	}
	nc, err := nats.Connect(s.NATSURL)
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	topo := pipeline.Topology{}.WithDefaults()
	reg, err := pipeline.NewWebhookEndpoints(ctx, js, topo, pipeline.WebhookSettings{Policy: webhooks.Policy{AllowInsecure: true, AllowPrivate: true}}, nil)
	if err != nil {
		return err
	}
	rc := &hookReceiver{}
	url, stop, err := serve(rc)
	if err != nil {
		return err
	}
	defer stop()
	_, secret, err := reg.Create(ctx, pipeline.WebhookEndpointInput{URL: url + "/kyc", EventTypes: []string{string(webhooks.EventDecided)}, Description: "bench"})
	if err != nil {
		return err
	}
	rc.verifier.Store(&webhooks.Verifier{Secrets: []webhooks.Secret{secret}})
	pub := &decisionPublisher{js: js, subj: topo.Subjects}
	res := WebhookResult{HangTimeout: hangTimeout, EndpointConc: endpointConc, CPU: map[string]time.Duration{}, Peak: map[string]int64{}}

	// Warm up until the notifier (its endpoint cache) delivers.
	if err := waitFor(ctx, 30*time.Second, func() bool {
		rc.expect(1)
		if _, err := pub.openLoop(ctx, "warm-"+strconv.FormatInt(time.Now().UnixNano(), 36), 1, 1000); err != nil {
			return false
		}
		return rc.wait(ctx, 2*time.Second) == nil
	}); err != nil {
		return fmt.Errorf("the notifier never delivered: %w", err)
	}

	// Throughput: every decision published at once, delivered as fast as
	// the notifier goes.
	n := b.o.WebhookDeliveries
	rc.expect(n)
	before := s.Stats()
	start := time.Now()
	for i := range n {
		if _, err := js.PublishMsgAsync(pub.msg("tput-" + strconv.Itoa(i))); err != nil {
			return err
		}
		if i%4096 == 4095 {
			<-js.PublishAsyncComplete()
		}
	}
	<-js.PublishAsyncComplete()
	if err := rc.wait(ctx, 5*time.Minute); err != nil {
		return fmt.Errorf("throughput run: %w", err)
	}
	rc.mu.Lock()
	var last time.Time
	for _, t := range rc.arrived {
		if t.After(last) {
			last = t
		}
	}
	rc.mu.Unlock()
	res.Deliveries, res.Elapsed = n, last.Sub(start)
	busy, _ := s.Metric("notifier", "kycpipe_webhook_busy_handbacks_total")
	res.BusyHandBacks = int(busy)
	after := s.Stats()
	for name, st := range after {
		res.CPU[name] = st.CPU - before[name].CPU
		res.Peak[name] = st.PeakRSS
	}
	b.o.Logf("webhooks: %d deliveries in %s = %.0f/s; notifier CPU %s ms/delivery (+ nats %s); %d busy hand-backs",
		n, res.Elapsed.Round(time.Millisecond), res.Rate(), ms(res.CPUPerDelivery("notifier")), ms(res.CPUPerDelivery("nats")), res.BusyHandBacks)

	// 10% of that, open loop: the latency the notifier adds.
	low := func(run string) (WebhookLatency, error) {
		l := WebhookLatency{Rate: res.Rate() / 10}
		l.Deliveries = max(int(l.Rate*b.o.LowLoadFor.Seconds()), 1)
		rc.expect(l.Deliveries)
		sent, err := pub.openLoop(ctx, run, l.Deliveries, l.Rate)
		if err != nil {
			return l, err
		}
		if err := rc.wait(ctx, 2*time.Minute); err != nil {
			return l, err
		}
		rc.mu.Lock()
		for id, at := range sent {
			l.Lat = append(l.Lat, rc.arrived[id].Sub(at))
		}
		rc.mu.Unlock()
		l.Lat.sort()
		return l, nil
	}
	if res.Low, err = low("low"); err != nil {
		return fmt.Errorf("low load: %w", err)
	}
	b.o.Logf("webhooks at %.0f/s (10%%): decision event to delivery p50 %s ms, p99 %s ms", res.Low.Rate, ms(res.Low.Lat.P(0.5)), ms(res.Low.Lat.P(0.99)))

	// The same while another endpoint hangs for the whole timeout.
	hang := &hangingReceiver{}
	hangURL, stopHang, err := serve(hang)
	if err != nil {
		return err
	}
	defer stopHang()
	hangEP, _, err := reg.Create(ctx, pipeline.WebhookEndpointInput{URL: hangURL + "/kyc", EventTypes: []string{string(webhooks.EventDecided)}, Description: "bench: hangs"})
	if err != nil {
		return err
	}
	if err := waitFor(ctx, 30*time.Second, func() bool {
		rc.expect(1)
		if _, err := pub.openLoop(ctx, "warm-hang-"+strconv.FormatInt(time.Now().UnixNano(), 36), 1, 1000); err != nil {
			return false
		}
		_ = rc.wait(ctx, 2*time.Second)
		return hang.inFlight.Load() > 0
	}); err != nil {
		return errors.New("the hanging endpoint never got an attempt")
	}
	if res.Isolated, err = low("iso"); err != nil {
		return fmt.Errorf("with a hanging endpoint: %w", err)
	}
	res.HangingInFlight = hang.inFlight.Load()
	b.o.Logf("webhooks at %.0f/s with an endpoint hanging (%d attempts held): healthy endpoint p50 %s ms, p99 %s ms",
		res.Isolated.Rate, res.HangingInFlight, ms(res.Isolated.Lat.P(0.5)), ms(res.Isolated.Lat.P(0.99)))
	if err := reg.Delete(ctx, hangEP.ID); err != nil {
		return err
	}
	b.r.Webhooks = res
	return nil
}

// webhookMarkdown is the webhook section of the report.
func (r *Results) webhookMarkdown() string {
	w := r.Webhooks
	if w.Deliveries == 0 {
		return ""
	}
	return fmt.Sprintf(`
### 8. Webhooks

Decision events published straight to KYC_DECISIONS (as the retriever does), fanned out and delivered by one notifier
process to a local receiver in the harness that verifies every signature; per-endpoint concurrency %d.

| | value |
| --- | --- |
| throughput: %d decisions, first publish to last delivery | %.0f deliveries/s |
| notifier CPU per delivery (+ nats-server) | %s ms (+ %s ms) |
| notifier peak RSS | %s MiB |
| decision event to delivery at 10%% load (%.0f/s open loop, %d deliveries): p50 / p90 / p99 | %s / %s / %s ms |
| the same while a second endpoint hangs for the whole timeout (%s; %d attempts held): healthy endpoint p50 / p90 / p99 | %s / %s / %s ms |
`, w.EndpointConc, w.Deliveries, w.Rate(), ms(w.CPUPerDelivery("notifier")), ms(w.CPUPerDelivery("nats")), mib(w.Peak["notifier"]),
		w.Low.Rate, w.Low.Deliveries, ms(w.Low.Lat.P(0.5)), ms(w.Low.Lat.P(0.9)), ms(w.Low.Lat.P(0.99)),
		w.HangTimeout, w.HangingInFlight, ms(w.Isolated.Lat.P(0.5)), ms(w.Isolated.Lat.P(0.9)), ms(w.Isolated.Lat.P(0.99)))
}
