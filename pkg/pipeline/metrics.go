package pipeline

import (
	"context"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kycpipe/kycpipe/pkg/jumio"
	"github.com/kycpipe/kycpipe/pkg/messages"
)

// Metrics holds the Prometheus metrics of every stage. Label values are
// fixed sets (stage, route, step, class, status code, reason, decision type):
// never an ID or applicant data. A nil *Metrics records nothing.
type Metrics struct {
	httpRequests     *prometheus.CounterVec
	httpDuration     *prometheus.HistogramVec
	submissions      *prometheus.CounterVec
	callbacks        *prometheus.CounterVec
	messages         *prometheus.CounterVec
	handling         *prometheus.HistogramVec
	steps            *prometheus.HistogramVec
	jumioCalls       *prometheus.CounterVec
	jumioDuration    *prometheus.HistogramVec
	rateLimitWaits   *prometheus.HistogramVec
	throttledJobs    *prometheus.CounterVec
	deadLetters      *prometheus.CounterVec
	decisions        *prometheus.CounterVec
	callbackDecision prometheus.Histogram
	submitDecision   prometheus.Histogram
	ambiguous        prometheus.Counter
	finalizes        prometheus.Counter
	polls            *prometheus.CounterVec
	redeliveries     *prometheus.CounterVec
	jobs             *prometheus.CounterVec
	erasures         *prometheus.CounterVec
	configFaults     *prometheus.GaugeVec
	faultProbes      *prometheus.CounterVec
	held             *prometheus.CounterVec
}

var latencyBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}

// NewMetrics creates the metrics and registers them with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		httpRequests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "kycpipe_http_requests_total",
			Help: "HTTP requests answered by ingest, by route and status code."}, []string{"route", "code"}),
		httpDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "kycpipe_http_request_duration_seconds",
			Help: "HTTP request latency by route.", Buckets: latencyBuckets}, []string{"route"}),
		submissions: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "kycpipe_submissions_total",
			Help: "Job submissions by result (accepted, repeated, conflict, invalid, unavailable)."}, []string{"result"}),
		callbacks: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "kycpipe_callbacks_total",
			Help: "Jumio callbacks received by result (published, duplicate, invalid, refused)."}, []string{"result"}),
		messages: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "kycpipe_messages_total",
			Help: "Messages handled by stage and outcome (ack, retry, terminate, hand_back)."}, []string{"stage", "outcome"}),
		handling: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "kycpipe_message_handling_seconds",
			Help: "Time to handle one message, by stage.", Buckets: latencyBuckets}, []string{"stage"}),
		steps: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "kycpipe_saga_step_seconds",
			Help: "Duration of each worker saga step, by step and result.", Buckets: latencyBuckets}, []string{"step", "result"}),
		jumioCalls: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "kycpipe_jumio_calls_total",
			Help: "Calls to Jumio by endpoint class, operation and HTTP status (0 = no answer)."}, []string{"class", "op", "code"}),
		jumioDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "kycpipe_jumio_call_seconds",
			Help: "Latency of calls to Jumio by endpoint class and operation.", Buckets: latencyBuckets}, []string{"class", "op"}),
		rateLimitWaits: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "kycpipe_ratelimit_wait_seconds",
			Help: "Time spent waiting for a shared rate-limit permit, by endpoint class.", Buckets: latencyBuckets}, []string{"class"}),
		throttledJobs: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "kycpipe_throttled_total",
			Help: "Jobs put back to wait because of rate limits (429 or the shared limiter), by step."}, []string{"step"}),
		deadLetters: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "kycpipe_dead_letters_total",
			Help: "Messages dead-lettered by stage and reason."}, []string{"stage", "reason"}),
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "kycpipe_decisions_total",
			Help: "Decision events published by decision type."}, []string{"type"}),
		callbackDecision: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "kycpipe_callback_to_decision_seconds",
			Help: "Time from receiving a Jumio callback to publishing the decision.", Buckets: latencyBuckets}),
		submitDecision: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "kycpipe_submit_to_decision_seconds",
			Help: "Time from job creation to its decision.", Buckets: []float64{.01, .025, .05, .1, .25, .5, 1, 5, 30, 60, 300, 900, 3600, 86400}}),
		ambiguous: prometheus.NewCounter(prometheus.CounterOpts{Name: "kycpipe_ambiguous_account_creates_total",
			Help: "Redelivered jobs that found no account recorded after an unrecorded earlier attempt (possible orphan Jumio account)."}),
		finalizes: prometheus.NewCounter(prometheus.CounterOpts{Name: "kycpipe_finalizes_total",
			Help: "Workflow executions finalized over the API channel."}),
		redeliveries: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "kycpipe_redeliveries_total",
			Help: "Messages handled that JetStream had delivered before (a crash, an AckWait expiry or a planned retry), by stage."}, []string{"stage"}),
		jobs: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "kycpipe_jobs_finished_total",
			Help: "Jobs that reached an end, by outcome (decided, failed)."}, []string{"outcome"}),
		erasures: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "kycpipe_erasures_total",
			Help: "Jobs erased, by source (REQUEST, RETENTION), and callbacks or other messages dropped because their job was erased (source dropped_callback)."}, []string{"source"}),
		polls: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "kycpipe_retrieval_polls_total",
			Help: "Retrieval attempts by trigger (callback, poll) and result (decided, pending, not_retrievable, stale_record)."}, []string{"trigger", "result"}),
		configFaults: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "kycpipe_jumio_config_fault",
			Help: "1 while Jumio refuses kycpipe's configuration of a region and the stage pauses it, by stage, region and fault (credentials, permission, web_href)."}, []string{"stage", "region", "fault"}),
		faultProbes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "kycpipe_jumio_config_probes_total",
			Help: "Probes of a region's Jumio configuration, by stage, region and result (accepted, refused, inconclusive)."}, []string{"stage", "region", "result"}),
		held: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "kycpipe_held_total",
			Help: "Messages handed back because Jumio refuses the configuration of their region (no retry budget used), by stage."}, []string{"stage"}),
	}
	reg.MustRegister(m.configFaults, m.faultProbes, m.held, m.httpRequests, m.httpDuration, m.submissions, m.callbacks, m.messages, m.handling, m.steps,
		m.jumioCalls, m.jumioDuration, m.rateLimitWaits, m.throttledJobs, m.deadLetters, m.decisions,
		m.callbackDecision, m.submitDecision, m.ambiguous, m.finalizes, m.polls, m.redeliveries, m.jobs, m.erasures)
	return m
}

// JumioObserver returns a jumio.Observer recording every call to Jumio.
func (m *Metrics) JumioObserver() jumio.Observer {
	return func(ci jumio.CallInfo) {
		if m == nil {
			return
		}
		m.jumioCalls.WithLabelValues(string(ci.Class), ci.Op, strconv.Itoa(ci.StatusCode)).Inc()
		m.jumioDuration.WithLabelValues(string(ci.Class), ci.Op).Observe(ci.Duration.Seconds())
	}
}

func (m *Metrics) observeHTTP(route string, code int, d time.Duration) {
	if m == nil {
		return
	}
	m.httpRequests.WithLabelValues(route, strconv.Itoa(code)).Inc()
	m.httpDuration.WithLabelValues(route).Observe(d.Seconds())
}

func (m *Metrics) submission(result string) {
	if m != nil {
		m.submissions.WithLabelValues(result).Inc()
	}
}

func (m *Metrics) callback(result string) {
	if m != nil {
		m.callbacks.WithLabelValues(result).Inc()
	}
}

func (m *Metrics) observeOutcome(stage string, o outcome, d time.Duration, redelivered bool) {
	if m == nil {
		return
	}
	if redelivered {
		m.redeliveries.WithLabelValues(stage).Inc()
	}
	name := [...]string{"ack", "retry", "terminate", "hand_back"}[o.action]
	m.messages.WithLabelValues(stage, name).Inc()
	m.handling.WithLabelValues(stage).Observe(d.Seconds())
}

func (m *Metrics) observeStep(step string, d time.Duration, err error) {
	if m == nil {
		return
	}
	result := "ok"
	if err != nil {
		result = "error"
	}
	m.steps.WithLabelValues(step, result).Observe(d.Seconds())
}

func (m *Metrics) rateLimitWait(class jumio.EndpointClass, d time.Duration) {
	if m != nil {
		m.rateLimitWaits.WithLabelValues(string(class)).Observe(d.Seconds())
	}
}

func (m *Metrics) throttled(step string) {
	if m != nil {
		m.throttledJobs.WithLabelValues(step).Inc()
	}
}

func (m *Metrics) deadLettered(stage, reason string) {
	if m != nil {
		m.deadLetters.WithLabelValues(stage, reason).Inc()
	}
}

func (m *Metrics) decided(typ string, sinceCallback, sinceSubmit time.Duration) {
	if m == nil {
		return
	}
	m.decisions.WithLabelValues(typ).Inc()
	m.jobs.WithLabelValues("decided").Inc()
	if sinceCallback > 0 {
		m.callbackDecision.Observe(sinceCallback.Seconds())
	}
	if sinceSubmit > 0 {
		m.submitDecision.Observe(sinceSubmit.Seconds())
	}
}

func (m *Metrics) ambiguousCreate() {
	if m != nil {
		m.ambiguous.Inc()
	}
}

func (m *Metrics) finalized() {
	if m != nil {
		m.finalizes.Inc()
	}
}

func (m *Metrics) poll(trigger, result string) {
	if m != nil {
		m.polls.WithLabelValues(trigger, result).Inc()
	}
}

func (m *Metrics) jobFailed() {
	if m != nil {
		m.jobs.WithLabelValues("failed").Inc()
	}
}

// ConsumerCollector reports the backlog of durable consumers when scraped:
// messages pending delivery, delivered but not acked, redelivered, and pull
// requests waiting. Each process registers the consumers it works on.
type ConsumerCollector struct {
	js                                        jetstream.JetStream
	consumers                                 [][2]string // stream, durable
	pending, ackPending, redelivered, waiting *prometheus.Desc
}

// NewConsumerCollector returns a collector of the given consumers'
// backlogs ([stream, durable] pairs).
func NewConsumerCollector(js jetstream.JetStream, consumers ...[2]string) *ConsumerCollector {
	labels := []string{"stream", "consumer"}
	return &ConsumerCollector{js: js, consumers: consumers,
		pending:     prometheus.NewDesc("kycpipe_consumer_pending", "Messages not yet delivered to the consumer (its backlog).", labels, nil),
		ackPending:  prometheus.NewDesc("kycpipe_consumer_ack_pending", "Messages delivered and not yet acknowledged (in flight or waiting for a delayed retry).", labels, nil),
		redelivered: prometheus.NewDesc("kycpipe_consumer_redelivered", "Messages currently pending that were delivered more than once.", labels, nil),
		waiting:     prometheus.NewDesc("kycpipe_consumer_waiting_pulls", "Pull requests waiting (idle consumers); 0 with a backlog means nobody is pulling.", labels, nil),
	}
}

// ConsumersOf lists the consumers each stage works on.
func ConsumersOf(t Topology, stage string) [][2]string {
	s := t.WithDefaults().Subjects
	switch stage {
	case messages.StageWorker:
		return [][2]string{{s.StreamJobs(), ConsumerWorker}, {s.StreamAdvisories(), ConsumerDLQSweeper}}
	case messages.StageRetriever:
		return [][2]string{{s.StreamCallbacks(), ConsumerRetrieverCallback}, {s.StreamRetrieve(), ConsumerRetrieverPoll}}
	case messages.StageNotifier:
		return [][2]string{{s.StreamEvents(), ConsumerNotifierEvents}, {s.StreamDecisions(), ConsumerNotifierDecisions},
			{s.StreamWebhooks(), ConsumerNotifierDelivery}}
	}
	return nil
}

// Describe implements prometheus.Collector.
func (c *ConsumerCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.pending
	ch <- c.ackPending
	ch <- c.redelivered
	ch <- c.waiting
}

// Collect implements prometheus.Collector; a consumer that cannot be read
// is left out of the scrape.
func (c *ConsumerCollector) Collect(ch chan<- prometheus.Metric) {
	for _, sc := range c.consumers {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		cons, err := c.js.Consumer(ctx, sc[0], sc[1])
		var info *jetstream.ConsumerInfo
		if err == nil {
			info, err = cons.Info(ctx)
		}
		cancel()
		if err != nil {
			continue
		}
		ch <- prometheus.MustNewConstMetric(c.pending, prometheus.GaugeValue, float64(info.NumPending), sc[0], sc[1])
		ch <- prometheus.MustNewConstMetric(c.ackPending, prometheus.GaugeValue, float64(info.NumAckPending), sc[0], sc[1])
		ch <- prometheus.MustNewConstMetric(c.redelivered, prometheus.GaugeValue, float64(info.NumRedelivered), sc[0], sc[1])
		ch <- prometheus.MustNewConstMetric(c.waiting, prometheus.GaugeValue, float64(info.NumWaiting), sc[0], sc[1])
	}
}

func (m *Metrics) erased(source string) {
	if m != nil {
		m.erasures.WithLabelValues(source).Inc()
	}
}

func (m *Metrics) configFault(stage, region, fault string, on bool) {
	if m == nil {
		return
	}
	v := 0.0
	if on {
		v = 1
	}
	m.configFaults.WithLabelValues(stage, region, fault).Set(v)
}

func (m *Metrics) faultProbe(stage, region, result string) {
	if m != nil {
		m.faultProbes.WithLabelValues(stage, region, result).Inc()
	}
}

func (m *Metrics) heldMessage(stage string) {
	if m != nil {
		m.held.WithLabelValues(stage).Inc()
	}
}
