package pipeline

import (
	"context"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
)

// WebhookMetrics are the notifier's metrics. The endpoint label is the
// endpoint's ID (ep_…): operators register a handful, and an ID is no
// personal data. A nil *WebhookMetrics records nothing.
type WebhookMetrics struct {
	deliveries *prometheus.CounterVec
	attempts   *prometheus.HistogramVec
	delay      prometheus.Histogram
	enabled    *prometheus.GaugeVec
	fanout     *prometheus.CounterVec
	busy       *prometheus.CounterVec
	redrive    *prometheus.CounterVec
	notStored  prometheus.Counter
}

// Delivery outcomes counted by kycpipe_webhook_deliveries_total.
const (
	outcomeDelivered       = "delivered"
	outcomeFailed          = "failed"  // retried on the schedule
	outcomeRefused         = "refused" // the policy refused the URL or an address; retried on the schedule
	outcomeGone            = "gone"
	outcomeDeadLettered    = "dead_lettered"
	outcomeEventGone       = "dropped_event_gone"
	outcomeDisabled        = "dropped_endpoint_disabled"
	outcomeEndpointDeleted = "dropped_endpoint_deleted"
)

// NewWebhookMetrics creates the notifier's metrics and registers them with
// reg, with a collector of the oldest pending delivery's age read from js
// at scrape time (nil js: none).
func NewWebhookMetrics(reg prometheus.Registerer, js jetstream.JetStream, t Topology) *WebhookMetrics {
	m := &WebhookMetrics{
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "kycpipe_webhook_deliveries_total",
			Help: "Webhook delivery attempts and dropped deliveries, by endpoint and outcome (delivered, failed, refused, gone, dead_lettered, dropped_…)."},
			[]string{"endpoint", "outcome"}),
		attempts: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "kycpipe_webhook_attempt_seconds",
			Help: "Duration of webhook delivery attempts, by endpoint.", Buckets: latencyBuckets}, []string{"endpoint"}),
		delay: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "kycpipe_webhook_event_to_delivery_seconds",
			Help:    "Time from an event to its successful delivery to an endpoint (includes retries).",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 5, 30, 300, 1800, 7200, 36000, 100000}}),
		enabled: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "kycpipe_webhook_endpoint_enabled",
			Help: "1 for an enabled webhook endpoint, 0 for a disabled one (410 Gone or an operator)."}, []string{"endpoint"}),
		fanout: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "kycpipe_webhook_fanout_total",
			Help: "Delivery jobs created from events, by event type."}, []string{"type"}),
		busy: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "kycpipe_webhook_busy_handbacks_total",
			Help: "Deliveries handed back without an attempt because their endpoint had its maximum in flight, by endpoint."}, []string{"endpoint"}),
		redrive: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "kycpipe_webhook_redriven_total",
			Help: "Waiting deliveries JetStream stopped delivering that the notifier's sweep queued again, by endpoint and reason (untracked: stored below the consumer's acknowledgement floor; vanished: removed without an outcome)."},
			[]string{"endpoint", "reason"}),
		notStored: prometheus.NewCounter(prometheus.CounterOpts{Name: "kycpipe_webhook_event_not_stored_yet_total",
			Help: "Deliveries that found their event not yet stored on its stream's leader (the replica that fed the fan-out was ahead) and waited for it."}),
	}
	reg.MustRegister(m.deliveries, m.attempts, m.delay, m.enabled, m.fanout, m.busy, m.redrive, m.notStored)
	if js != nil {
		reg.MustRegister(&oldestPendingCollector{js: js, stream: t.WithDefaults().Subjects.StreamWebhooks(),
			desc: prometheus.NewDesc("kycpipe_webhook_oldest_pending_seconds",
				"Age of the oldest pending webhook delivery (waiting for its first attempt or a retry); 0 when none.", nil, nil)})
	}
	return m
}

func (m *WebhookMetrics) delivery(endpoint, outcome string) {
	if m != nil {
		m.deliveries.WithLabelValues(endpoint, outcome).Inc()
	}
}

func (m *WebhookMetrics) attempt(endpoint string, d time.Duration) {
	if m != nil {
		m.attempts.WithLabelValues(endpoint).Observe(d.Seconds())
	}
}

func (m *WebhookMetrics) delivered(sinceEvent time.Duration) {
	if m != nil && sinceEvent >= 0 {
		m.delay.Observe(sinceEvent.Seconds())
	}
}

func (m *WebhookMetrics) endpointState(endpoint string, enabled bool) {
	if m == nil {
		return
	}
	v := 0.0
	if enabled {
		v = 1
	}
	m.enabled.WithLabelValues(endpoint).Set(v)
}

func (m *WebhookMetrics) endpointRemoved(endpoint string) {
	if m != nil {
		m.enabled.DeleteLabelValues(endpoint)
	}
}

func (m *WebhookMetrics) fannedOut(t string, n int) {
	if m != nil && n > 0 {
		m.fanout.WithLabelValues(t).Add(float64(n))
	}
}

func (m *WebhookMetrics) busyHandBack(endpoint string) {
	if m != nil {
		m.busy.WithLabelValues(endpoint).Inc()
	}
}

func (m *WebhookMetrics) redriven(endpoint, reason string) {
	if m != nil {
		m.redrive.WithLabelValues(endpoint, reason).Inc()
	}
}

func (m *WebhookMetrics) eventNotStoredYet() {
	if m != nil {
		m.notStored.Inc()
	}
}

// oldestPendingCollector reports the age of the first message of the
// deliveries work queue: acknowledged deliveries leave it, so the first
// one is the oldest still pending.
type oldestPendingCollector struct {
	js     jetstream.JetStream
	stream string
	desc   *prometheus.Desc
}

func (c *oldestPendingCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *oldestPendingCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	st, err := c.js.Stream(ctx, c.stream)
	if err != nil {
		return
	}
	info, err := st.Info(ctx)
	if err != nil {
		return
	}
	age := 0.0
	if info.State.Msgs > 0 && !info.State.FirstTime.IsZero() {
		age = time.Since(info.State.FirstTime).Seconds()
	}
	ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, age)
}
