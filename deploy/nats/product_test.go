package natsdeploy_test

// The whole product under the users of deploy/nats: every feature runs with
// each process connected as its own user, and the NATS server's log must
// show no permissions violation by any of them. A missing grant fails the
// run either where the feature stops (a 503, a job that never decides, a
// webhook never delivered) or, for the best-effort paths that only log
// (index upkeep, flow control, ordered-consumer clean-up), in that check.

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"image"
	"image/color"
	"image/png"
	"io"
	"math/rand/v2"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/kycpipe/kycpipe/internal/kycctl"
	"github.com/kycpipe/kycpipe/pkg/jumio"
	"github.com/kycpipe/kycpipe/pkg/jumio/jumiotest"
	"github.com/kycpipe/kycpipe/pkg/messages"
	"github.com/kycpipe/kycpipe/pkg/pipeline"
	"github.com/kycpipe/kycpipe/pkg/pipeline/pipelinetest"
	"github.com/kycpipe/kycpipe/pkg/webhooks"
)

// waitLong bounds every wait of the product run. A shorter one speeds up
// checking that removing a grant fails the run (deploy/nats/README.md,
// "Grants the tests do not exercise").
var productWait = flag.Duration("product-wait", 30*time.Second, "how long the product run waits for each step")

func waitLong() time.Duration { return *productWait }

const (
	apiKey = "deploy-test-key-0123456789"
	// atRestMarker is in a job's prepared data: no file of the store may
	// hold it in clear.
	atRestMarker = "at-rest-marker-5d41402abc4b2a76"
)

// devPolicy lets ingest and the notifier use the test's receiver on
// loopback over http.
var devPolicy = webhooks.Policy{AllowInsecure: true, AllowPrivate: true}

// natsLog records the NATS server's errors, where it reports every
// permissions violation with the client's connection name and user.
func natsLog() (*zap.Logger, *observer.ObservedLogs) {
	core, logs := observer.New(zap.ErrorLevel)
	return zap.New(core), logs
}

// violations returns the permissions violations the server logged for
// connections whose name contains one of names.
func violations(logs *observer.ObservedLogs, names ...string) []string {
	var out []string
	for _, e := range logs.FilterMessageSnippet("Violation").All() {
		for _, n := range names {
			if strings.Contains(e.Message, n) {
				out = append(out, e.Message)
				break
			}
		}
	}
	return out
}

// product is the whole pipeline, each process as its own user.
type product struct {
	t         *testing.T
	url, ca   string
	topo      pipeline.Topology
	subj      messages.Subjects
	sim       *jumiotest.Server
	ingestURL string
	admin     jetstream.JetStream
	js        map[string]jetstream.JetStream // by user
	decisions *pipelinetest.Recorder[*messages.DecisionEvent]
	recv      *receiver
	wm        *prometheus.Registry // the notifier's webhook metrics
	workerCfg pipeline.WorkerConfig
	// stopWorker stops the running worker (restartWorker starts another).
	stopWorker func()
	log        *zap.Logger
	stops      []func()
}

// productTopology is the topology the product run provisions: a low
// MaxDeliver on the jobs consumer lets a job reach it (the dead-letter
// sweeper) and makes held jobs be requeued quickly.
func productTopology() pipeline.Topology {
	return pipeline.Topology{WorkerMaxDeliver: 8}.WithDefaults()
}

// productOptions vary the product run.
type productOptions struct {
	// IngestUser is the user ingest runs as (default "ingest").
	IngestUser string
	// Console, when set, builds the operator console ingest serves, on
	// ingest's connection (run it as the "console" user).
	Console func(js jetstream.JetStream, keys *pipeline.APIKeys) http.Handler
}

// startProduct starts ingest, a worker, a retriever and a notifier against
// the server at url, each connected as its own user, a reader recording
// decisions, and the Jumio simulator.
func startProduct(t *testing.T, url, ca string, topo pipeline.Topology, o productOptions) *product {
	t.Helper()
	ctx := context.Background()
	p := &product{t: t, url: url, ca: ca, topo: topo, subj: topo.Subjects, js: map[string]jetstream.JetStream{}, log: pipelinetest.Logger(t)}
	t.Cleanup(p.stop)
	_, p.admin = connect(t, url, ca, "admin")
	conns := map[string]*nats.Conn{}
	ingestUser := cmp.Or(o.IngestUser, "ingest")
	for _, u := range []string{"worker", "retriever", "notifier", "reader"} {
		conns[u], p.js[u] = connect(t, url, ca, u)
	}
	// Ingest's connection, whatever its user, is the product's "ingest".
	conns["ingest"], p.js["ingest"] = connect(t, url, ca, ingestUser)
	for _, u := range []string{"ingest", "worker", "retriever", "notifier"} {
		if err := pipeline.Check(ctx, p.js[u], topo); err != nil {
			t.Fatalf("%s cannot check the topology: %v", u, err)
		}
	}
	p.sim = jumiotest.NewServer(jumiotest.Options{})
	t.Cleanup(p.sim.Close)
	p.recv = newReceiver(t)

	keys, err := pipeline.NewAPIKeys([]string{apiKey})
	if err != nil {
		t.Fatal(err)
	}
	in, err := pipeline.NewIngest(ctx, conns["ingest"], p.js["ingest"], pipeline.IngestConfig{Topology: topo, APIKeys: keys,
		Webhooks: pipeline.WebhookSettings{Policy: devPolicy}, Logger: p.log.Named("ingest")})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	handler := in.Handler()
	if o.Console != nil {
		// Served under /console/ on ingest's address, as ingest does.
		mux := http.NewServeMux()
		mux.Handle("/console/", o.Console(p.js["ingest"], keys))
		mux.Handle("/", handler)
		handler = mux
	}
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	p.stops = append(p.stops, func() { _ = srv.Close() })
	p.ingestURL = "http://" + ln.Addr().String()

	backoff := pipeline.Backoff{Initial: 20 * time.Millisecond, Max: 200 * time.Millisecond}
	p.workerCfg = pipeline.WorkerConfig{Topology: topo, Jumio: p.clients(p.js["worker"]), CallbackURL: p.ingestURL + "/v1/callbacks/jumio",
		RetryBudget: 50, Backoff: backoff, FaultProbeEvery: 100 * time.Millisecond, ShutdownGrace: time.Second, Logger: p.log.Named("worker")}
	p.restartWorker()
	r, err := pipeline.NewRetriever(ctx, p.js["retriever"], pipeline.RetrieverConfig{Topology: topo, Jumio: p.clients(p.js["retriever"]),
		Schedule: []time.Duration{200 * time.Millisecond, 500 * time.Millisecond}, Backoff: backoff,
		FaultProbeEvery: 100 * time.Millisecond, ShutdownGrace: time.Second, Logger: p.log.Named("retriever")})
	if err != nil {
		t.Fatal(err)
	}
	p.run("retriever", r.Run)
	schedule, err := webhooks.NewSchedule(100 * time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	p.wm = prometheus.NewRegistry()
	n, err := pipeline.NewNotifier(ctx, p.js["notifier"], pipeline.NotifierConfig{Topology: topo, Webhooks: pipeline.WebhookSettings{Policy: devPolicy},
		Schedule: &schedule, Backoff: backoff, BusyDelay: 20 * time.Millisecond, ShutdownGrace: time.Second,
		WebhookMetrics: pipeline.NewWebhookMetrics(p.wm, p.js["notifier"], topo), Logger: p.log.Named("notifier")})
	if err != nil {
		t.Fatal(err)
	}
	p.run("notifier", n.Run)
	pipelinetest.Eventually(t, waitLong(), func() bool { return n.Ready(ctx) == nil }, "the notifier never loaded the webhook endpoints")
	p.decisions = pipelinetest.Decisions(t, p.js["reader"], p.subj)
	return p
}

// restartWorker starts a worker (as the worker user) with the product's
// configuration.
func (p *product) restartWorker() {
	p.t.Helper()
	w, err := pipeline.NewWorker(context.Background(), p.js["worker"], p.workerCfg)
	if err != nil {
		p.t.Fatal(err)
	}
	p.stopWorker = p.run("worker", w.Run)
}

// clients are Jumio clients sharing rate limits through js's user.
func (p *product) clients(js jetstream.JetStream) *pipeline.Clients {
	p.t.Helper()
	ls, err := pipeline.NewLimiters(context.Background(), js, p.topo, pipeline.RateLimits{Account: pipeline.Rate{PerSecond: 100, Burst: 10},
		Retrieval: pipeline.Rate{PerSecond: 100, Burst: 10}}, nil, nil)
	if err != nil {
		p.t.Fatal(err)
	}
	// Per-region credentials: the pause test refuses emea-1's alone,
	// before any token was issued for it.
	amer, _ := p.sim.RegionCredentials(jumio.RegionAMER)
	emea, _ := p.sim.RegionCredentials(jumio.RegionEMEA)
	c, err := pipeline.NewClients(pipeline.JumioConfig{Limiters: ls, Regions: map[jumio.Region]pipeline.RegionConfig{
		jumio.RegionAMER: {Credentials: amer, BaseURL: p.sim.RegionURL(jumio.RegionAMER)},
		jumio.RegionEMEA: {Credentials: emea, BaseURL: p.sim.RegionURL(jumio.RegionEMEA)},
	}}, nil)
	if err != nil {
		p.t.Fatal(err)
	}
	return c
}

// run runs a stage until the product stops; it returns a function that
// stops it alone.
func (p *product) run(name string, run func(context.Context) error) func() {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				p.t.Errorf("%s: %v", name, err)
			}
		})
	}
	p.stops = append(p.stops, stop)
	return stop
}

func (p *product) stop() {
	for i := len(p.stops) - 1; i >= 0; i-- {
		p.stops[i]()
	}
	p.stops = nil
}

// call sends an authenticated request to ingest and returns the status and
// body.
func (p *product) call(method, path, contentType string, body []byte, header ...string) (int, []byte) {
	p.t.Helper()
	req, err := http.NewRequest(method, p.ingestURL+path, bytes.NewReader(body))
	if err != nil {
		p.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+apiKey)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		p.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// submit posts a job (JSON or multipart) as the ingest user and returns
// its ID.
func (p *product) submit(body []byte, contentType string, header ...string) string {
	p.t.Helper()
	status, b := p.post(body, contentType, header...)
	if status != http.StatusAccepted {
		p.t.Fatalf("submit as the ingest user: %d %s", status, b)
	}
	var out struct{ JobID string }
	if err := json.Unmarshal(b, &out); err != nil || out.JobID == "" {
		p.t.Fatalf("submit answered %s", b)
	}
	return out.JobID
}

// post submits a job as a client does: a 503 (the server could not store
// it in time, e.g. an image put on a loaded machine) is retried until
// another answer or the deadline.
func (p *product) post(body []byte, contentType string, header ...string) (int, []byte) {
	p.t.Helper()
	var status int
	var b []byte
	pipelinetest.Eventually(p.t, waitLong(), func() bool {
		status, b = p.call(http.MethodPost, "/v1/verifications", contentType, body, header...)
		if status == http.StatusServiceUnavailable {
			p.t.Logf("submission answered 503, retrying: %s", b)
		}
		return status != http.StatusServiceUnavailable
	}, "submission answered 503 until the deadline")
	return status, b
}

func (p *product) submitJSON(ref string, extra string) string {
	p.t.Helper()
	return p.submit([]byte(`{"customerInternalReference":"`+ref+`","workflowDefinition":{"key":10066},"channel":"API","preparedData":{"email":"`+ref+`@example.com"}`+extra+`}`), "application/json")
}

// job returns GET /v1/verifications/{id}.
func (p *product) job(id string) pipeline.JobView {
	p.t.Helper()
	status, b := p.call(http.MethodGet, "/v1/verifications/"+id, "", nil)
	var v pipeline.JobView
	if status != http.StatusOK || json.Unmarshal(b, &v) != nil {
		p.t.Fatalf("status of %s as the ingest user: %d %s", id, status, b)
	}
	return v
}

func (p *product) waitStatus(id, status string) pipeline.JobView {
	p.t.Helper()
	var v pipeline.JobView
	pipelinetest.Eventually(p.t, waitLong(), func() bool { v = p.job(id); return v.Status == status }, "job %s never %s (last: %+v)", id, status, &v)
	return v
}

func (p *product) waitDecision(id string) {
	p.t.Helper()
	p.decisions.WaitN(p.t, 1, waitLong(), pipelinetest.ForJob[*messages.DecisionEvent](id), "a decision for "+id)
}

// record reads a job record as the admin.
func (p *product) record(id string) *pipeline.JobRecord {
	p.t.Helper()
	kv, err := p.admin.KeyValue(context.Background(), p.subj.BucketJobs())
	if err != nil {
		p.t.Fatal(err)
	}
	rec, _, err := pipeline.NewJobStore(kv, nil).Get(context.Background(), id)
	if err != nil {
		p.t.Fatalf("record of %s: %v", id, err)
	}
	return rec
}

// stored counts, as the admin, the messages of stream on subject.
func (p *product) stored(stream, subject string) int {
	p.t.Helper()
	st, err := p.admin.Stream(context.Background(), stream)
	if err != nil {
		p.t.Fatal(err)
	}
	info, err := st.Info(context.Background(), jetstream.WithSubjectFilter(subject))
	if err != nil {
		p.t.Fatal(err)
	}
	n := 0
	for _, c := range info.State.Subjects {
		n += int(c)
	}
	return n
}

// webhookLog reads, as the admin, the delivery log entries of a job.
func (p *product) webhookLog(jobID string) []pipeline.WebhookAttempt {
	p.t.Helper()
	ctx := context.Background()
	if p.stored(p.subj.StreamWebhookLog(), p.subj.WebhookLogsOfJob(jobID)) == 0 {
		return nil
	}
	cons, err := p.admin.OrderedConsumer(ctx, p.subj.StreamWebhookLog(), jetstream.OrderedConsumerConfig{FilterSubjects: []string{p.subj.WebhookLogsOfJob(jobID)}})
	if err != nil {
		p.t.Fatal(err)
	}
	var out []pipeline.WebhookAttempt
	for {
		m, err := cons.Next(jetstream.FetchMaxWait(time.Second))
		if err != nil {
			p.t.Fatalf("webhook log of %s: %v", jobID, err)
		}
		var a pipeline.WebhookAttempt
		if err := json.Unmarshal(m.Data(), &a); err != nil {
			p.t.Fatal(err)
		}
		out = append(out, a)
		if md, err := m.Metadata(); err != nil || md.NumPending == 0 {
			return out
		}
	}
}

// deadLetter waits for the dead letter of a job (by stage) and returns it.
func (p *product) deadLetter(stage, jobID string) pipeline.DeadLetter {
	p.t.Helper()
	var found []pipeline.DeadLetter
	pipelinetest.Eventually(p.t, waitLong(), func() bool {
		list, err := pipeline.ListDeadLetters(context.Background(), p.admin, p.subj, pipeline.DLQFilter{Stage: stage, JobID: jobID})
		found = list
		return err == nil && len(list) > 0
	}, "no %s dead letter for %s", stage, jobID)
	return found[0]
}

// gauge reads the notifier's kycpipe_webhook_endpoint_enabled for an
// endpoint (-1: not known to its cache).
func (p *product) endpointEnabled(id string) float64 {
	mfs, err := p.wm.Gather()
	if err != nil {
		p.t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "kycpipe_webhook_endpoint_enabled" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "endpoint" && l.GetValue() == id {
					return m.GetGauge().GetValue()
				}
			}
		}
	}
	return -1
}

// register creates a webhook endpoint over ingest's API and waits until
// the notifier's watch of the registry has it.
func (p *product) register(path string, types ...string) (string, webhooks.Secret) {
	p.t.Helper()
	body, _ := json.Marshal(pipeline.WebhookEndpointInput{URL: p.recv.srv.URL + path, EventTypes: types, Description: "deploy test " + path})
	status, b := p.call(http.MethodPost, "/v1/webhook-endpoints", "application/json", body)
	var created pipeline.WebhookEndpointCreated
	if status != http.StatusCreated || json.Unmarshal(b, &created) != nil {
		p.t.Fatalf("register a webhook endpoint as the ingest user: %d %s", status, b)
	}
	secret, err := webhooks.ParseSecret(created.Secret)
	if err != nil {
		p.t.Fatal(err)
	}
	p.recv.setSecrets(path, secret)
	pipelinetest.Eventually(p.t, waitLong(), func() bool { return p.endpointEnabled(created.ID) == 1 }, "the notifier's watch never saw endpoint %s", created.ID)
	return created.ID, secret
}

// ctl runs kycctl as user (operator or admin) and returns its standard
// output; it fails the test when the command fails.
func (p *product) ctl(user string, args ...string) string {
	p.t.Helper()
	env := map[string]string{
		"KYCPIPE_NATS_URL": p.url, "KYCPIPE_NATS_TLS_CA": p.ca,
		"KYCPIPE_NATS_USER": "kycpipe-" + user, "KYCPIPE_NATS_PASSWORD": "pw-" + user + "-0f9e8d",
		"KYCPIPE_WEBHOOK_ALLOW_INSECURE": "true", "KYCPIPE_WEBHOOK_ALLOW_PRIVATE": "true",
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitLong())
	defer cancel()
	var out, errOut bytes.Buffer
	cli := &kycctl.CLI{Out: &out, Err: &errOut, In: strings.NewReader(""), Getenv: func(k string) string { return env[k] }}
	if err := cli.Run(ctx, args); err != nil {
		p.t.Fatalf("kycctl %s as %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), user, err, out.String(), errOut.String())
	}
	return out.String()
}

// receiver is a webhook receiver with three endpoints: /ok verifies every
// signature, /gone answers 410, /fail answers 500 until told otherwise.
type receiver struct {
	t   *testing.T
	srv *httptest.Server

	mu      sync.Mutex
	secrets map[string][]webhooks.Secret
	status  map[string]int
	got     []received
}

// received is one webhook delivery whose signature verified.
type received struct {
	path, id, typ, jobID string
	header               http.Header
	body                 []byte
}

func newReceiver(t *testing.T) *receiver {
	rc := &receiver{t: t, secrets: map[string][]webhooks.Secret{}, status: map[string]int{"/gone": http.StatusGone, "/fail": http.StatusInternalServerError}}
	rc.srv = httptest.NewServer(http.HandlerFunc(rc.serve))
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *receiver) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if st, ok := rc.status[r.URL.Path]; ok && st != http.StatusOK {
		w.WriteHeader(st)
		return
	}
	v := webhooks.Verifier{Secrets: rc.secrets[r.URL.Path]}
	if err := v.Verify(r.Header, body); err != nil {
		rc.t.Errorf("webhook to %s: %v", r.URL.Path, err)
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	var payload struct {
		Type string `json:"type"`
		Data struct {
			JobID string `json:"jobId"`
		} `json:"data"`
	}
	_ = json.Unmarshal(body, &payload)
	rc.got = append(rc.got, received{path: r.URL.Path, id: r.Header.Get(webhooks.HeaderID), typ: payload.Type, jobID: payload.Data.JobID,
		header: r.Header.Clone(), body: body})
	w.WriteHeader(http.StatusNoContent)
}

func (rc *receiver) setSecrets(path string, s ...webhooks.Secret) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.secrets[path] = s
}

func (rc *receiver) setStatus(path string, status int) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.status[path] = status
}

// where returns the verified deliveries that keep accepts.
func (rc *receiver) where(keep func(received) bool) []received {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	var out []received
	for _, d := range rc.got {
		if keep(d) {
			out = append(out, d)
		}
	}
	return out
}

func (rc *receiver) wait(what string, keep func(received) bool) received {
	rc.t.Helper()
	var got []received
	pipelinetest.Eventually(rc.t, waitLong(), func() bool { got = rc.where(keep); return len(got) > 0 }, "no webhook: %s", what)
	return got[0]
}

func delivered(path, typ, jobID string) func(received) bool {
	return func(d received) bool { return d.path == path && d.typ == typ && d.jobID == jobID }
}

// multipartJob is a multipart submission: the request and a FRONT and a
// FACE image.
func multipartJob(request string, front, face []byte) ([]byte, string) {
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	fw, _ := mw.CreateFormField("request")
	_, _ = fw.Write([]byte(request))
	for name, data := range map[string][]byte{"FRONT": front, "FACE": face} {
		fw, _ := mw.CreateFormFile(name, name+".png")
		_, _ = fw.Write(data)
	}
	_ = mw.Close()
	return buf.Bytes(), mw.FormDataContentType()
}

// noisePNG is a PNG of w×h random pixels: it does not compress, so it is
// about 4·w·h bytes, and reading it from the object store takes flow
// control (beyond 1 MiB in flight).
func noisePNG(t *testing.T, w, h int) []byte {
	t.Helper()
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	r := rand.New(rand.NewPCG(1, 2))
	for y := range h {
		for x := range w {
			v := r.Uint32()
			img.SetNRGBA(x, y, color.NRGBA{R: uint8(v), G: uint8(v >> 8), B: uint8(v >> 16), A: 255})
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// runProduct exercises every feature of the product under the users of
// deploy/nats.
func runProduct(t *testing.T, p *product) {
	ctx := context.Background()
	s := p.subj

	// Webhooks: an endpoint registered over ingest's API reaches the
	// notifier through its watch of the registry.
	okID, okSecret := p.register("/ok", "*")

	pendingJobs(t, p)

	// Submissions: JSON with an Idempotency-Key (ingest writes its
	// binding), multipart with images (one of 3 MB: the worker reads it
	// with flow control), and a WEB job left waiting for its end user.
	jsonJob := p.submit([]byte(`{"customerInternalReference":"deploy-1","workflowDefinition":{"key":10066},"channel":"API","preparedData":{"email":"deploy-1@example.com"}}`),
		"application/json", "Idempotency-Key", "deploy-idempotency-key-1")
	front := noisePNG(t, 900, 850)
	body, contentType := multipartJob(`{"customerInternalReference":"deploy-2","channel":"API",`+pipelinetest.APIImageFields(10011)+`}`,
		front, jumiotest.PNG(640, 480))
	imagesJob := p.submit(body, contentType)
	// A multipart submission refused after its images were stored (its
	// Idempotency-Key names another job): ingest deletes them.
	body, contentType = multipartJob(`{"customerInternalReference":"deploy-3","channel":"API",`+pipelinetest.APIImageFields(10011)+`}`,
		front, jumiotest.PNG(640, 480))
	if status, b := p.post(body, contentType, "Idempotency-Key", "deploy-idempotency-key-1"); status != http.StatusConflict {
		t.Fatalf("a reused Idempotency-Key: %d %s", status, b)
	}
	webJob := p.submit([]byte(`{"customerInternalReference":"deploy-web","userReference":"user-deploy-web","workflowDefinition":{"key":10164},"channel":"WEB","web":{"locale":"en"}}`), "application/json")
	for _, id := range []string{jsonJob, imagesJob} {
		p.waitDecision(id)
		// The job index: one entry per job, under its current status.
		pipelinetest.Eventually(t, waitLong(), func() bool {
			return p.stored(s.StreamIndex(), indexOf(s, "*", id)) == 1 && p.stored(s.StreamIndex(), indexOf(s, pipeline.StatusDecided, id)) == 1
		}, "the index entry of %s never moved to DECIDED alone", id)
	}
	p.waitStatus(webJob, pipeline.StatusLaunched)

	// Signed deliveries of both decisions, and the endpoint API: read,
	// change, the delivery log, a resend (the same webhook-id again).
	first := p.recv.wait("decided "+jsonJob, delivered("/ok", "verification.decided", jsonJob))
	p.recv.wait("decided "+imagesJob, delivered("/ok", "verification.decided", imagesJob))
	for _, c := range []struct {
		method, path string
		body         string
		want         int
	}{
		{http.MethodGet, "/v1/webhook-endpoints", "", http.StatusOK},
		{http.MethodGet, "/v1/webhook-endpoints/" + okID, "", http.StatusOK},
		{http.MethodPatch, "/v1/webhook-endpoints/" + okID, `{"description":"deploy test, changed"}`, http.StatusOK},
	} {
		ct := ""
		if c.body != "" {
			ct = "application/json"
		}
		if status, b := p.call(c.method, c.path, ct, []byte(c.body)); status != c.want {
			t.Fatalf("%s %s as the ingest user: %d %s", c.method, c.path, status, b)
		}
	}
	var log struct{ Deliveries []pipeline.WebhookAttempt }
	pipelinetest.Eventually(t, waitLong(), func() bool {
		status, b := p.call(http.MethodGet, "/v1/webhook-endpoints/"+okID+"/deliveries", "", nil)
		if status != http.StatusOK || json.Unmarshal(b, &log) != nil {
			t.Fatalf("deliveries as the ingest user: %d %s", status, b)
		}
		for _, a := range log.Deliveries {
			if a.WebhookID == first.id && a.Outcome == pipeline.AttemptDelivered {
				return true
			}
		}
		return false
	}, "the delivery log never showed %s", first.id)
	if status, b := p.call(http.MethodPost, "/v1/webhook-endpoints/"+okID+"/deliveries/"+first.id+"/resend", "", nil); status != http.StatusAccepted {
		t.Fatalf("resend as the ingest user: %d %s", status, b)
	}
	accepted := p.recv.wait("accepted "+jsonJob, delivered("/ok", "verification.accepted", jsonJob))
	if status, b := p.call(http.MethodPost, "/v1/webhook-endpoints/"+okID+"/deliveries/"+accepted.id+"/resend", "", nil); status != http.StatusAccepted {
		t.Fatalf("resend as the ingest user: %d %s", status, b)
	}
	for _, id := range []string{first.id, accepted.id} {
		pipelinetest.Eventually(t, waitLong(), func() bool {
			return len(p.recv.where(func(d received) bool { return d.id == id })) >= 2
		}, "the resent delivery %s never arrived", id)
	}
	// A new secret reaches the notifier through its watch: later
	// deliveries verify with it alone.
	status, b := p.call(http.MethodPost, "/v1/webhook-endpoints/"+okID+"/rotate-secret", "", nil)
	var rotated pipeline.WebhookSecretRotated
	if status != http.StatusOK || json.Unmarshal(b, &rotated) != nil {
		t.Fatalf("rotate as the ingest user: %d %s", status, b)
	}
	newSecret, err := webhooks.ParseSecret(rotated.Secret)
	if err != nil {
		t.Fatal(err)
	}
	p.recv.setSecrets("/ok", okSecret, newSecret)

	// An endpoint answering 410 is disabled by the notifier; one failing
	// every attempt is dead-lettered to kyc.dlq.notifier.
	goneID, _ := p.register("/gone", "verification.decided")
	failID, _ := p.register("/fail", "verification.decided")
	webhookJob := p.submitJSON("deploy-webhooks", "")
	p.waitDecision(webhookJob)
	pipelinetest.Eventually(t, waitLong(), func() bool { return p.endpointEnabled(goneID) == 0 }, "the endpoint answering 410 was never disabled")
	var gone pipeline.WebhookEndpoint
	if status, b := p.call(http.MethodGet, "/v1/webhook-endpoints/"+goneID, "", nil); status != http.StatusOK || json.Unmarshal(b, &gone) != nil ||
		gone.Status != pipeline.WebhookDisabled {
		t.Fatalf("the endpoint answering 410: %d %s", status, b)
	}
	p.recv.wait("decided "+webhookJob+" signed with the new secret", func(d received) bool {
		if !delivered("/ok", "verification.decided", webhookJob)(d) {
			return false
		}
		v := webhooks.Verifier{Secrets: []webhooks.Secret{newSecret}}
		return v.Verify(d.header, d.body) == nil
	})
	hookLetter := p.deadLetter(messages.StageNotifier, webhookJob)

	// Operators: kycctl as the operator user replays the webhook's dead
	// letter once the endpoint works, and manages endpoints.
	p.recv.setStatus("/fail", http.StatusOK)
	p.ctl("operator", "dlq", "replay", strconv.FormatUint(hookLetter.Sequence, 10))
	p.recv.wait("replayed delivery to /fail", delivered("/fail", "verification.decided", webhookJob))
	p.ctl("operator", "webhooks", "list")
	p.ctl("operator", "webhooks", "deliveries", failID)
	p.ctl("operator", "webhooks", "enable", goneID)
	p.ctl("operator", "webhooks", "delete", goneID)
	if status, b := p.call(http.MethodDelete, "/v1/webhook-endpoints/"+failID, "", nil); status != http.StatusNoContent {
		t.Fatalf("delete an endpoint as the ingest user: %d %s", status, b)
	}
	pipelinetest.Eventually(t, waitLong(), func() bool { return p.endpointEnabled(failID) == -1 && p.endpointEnabled(goneID) == -1 },
		"the notifier's watch never saw the deletions")

	// Jumio refuses the credentials: the region pauses, the held job is
	// published again on its own subject (before MaxDeliver), and it is
	// decided once Jumio accepts them again.
	creds, _ := p.sim.RegionCredentials(jumio.RegionEMEA)
	if err := p.sim.SetClientSecret(creds.ClientID, "rotated-at-jumio"); err != nil {
		t.Fatal(err)
	}
	held := p.submitJSON("deploy-held", `,"region":"emea-1"`)
	jobs, err := p.admin.Stream(ctx, s.StreamJobs())
	if err != nil {
		t.Fatal(err)
	}
	pipelinetest.Eventually(t, waitLong(), func() bool {
		m, err := jobs.GetLastMsgForSubject(ctx, s.JobSubmit(held))
		return err == nil && m.Header.Get(messages.HeaderRequeueOf) != ""
	}, "the held job was never requeued")
	if err := p.sim.SetClientSecret(creds.ClientID, creds.ClientSecret); err != nil {
		t.Fatal(err)
	}
	p.waitDecision(held)

	// A terminal Jumio error: the worker dead-letters the job. Then a job
	// whose upload keeps failing reaches MaxDeliver: the dead-letter
	// sweeper dead-letters it. Both are replayed by the operator and
	// decided.
	p.sim.FailNext(jumiotest.RouteCreateAccount, 1, http.StatusBadRequest)
	terminal := p.submitJSON("deploy-terminal", "")
	terminalLetter := p.deadLetter(messages.StageWorker, terminal)
	p.waitStatus(terminal, pipeline.StatusFailed)
	p.sim.FailNext(jumiotest.RouteUploadPreparedData, p.topo.WorkerMaxDeliver, http.StatusServiceUnavailable)
	maxed := p.submitJSON("deploy-max-deliveries", "")
	maxedLetter := p.deadLetter(messages.StageWorker, maxed)
	if maxedLetter.Reason != messages.ReasonMaxDeliveries {
		t.Fatalf("dead letter of %s: reason %s, want %s (the sweeper's)", maxed, maxedLetter.Reason, messages.ReasonMaxDeliveries)
	}
	p.waitStatus(maxed, pipeline.StatusFailed)
	p.ctl("operator", "dlq", "list")
	p.ctl("operator", "dlq", "show", strconv.FormatUint(terminalLetter.Sequence, 10))
	p.ctl("operator", "dlq", "replay", strconv.FormatUint(maxedLetter.Sequence, 10))
	p.waitDecision(maxed)
	// The console replays the other one.
	consoleOps(t, p, terminal, terminalLetter.Sequence)
	p.waitDecision(terminal)

	// Erasure: a decided job (DELETE over ingest's API), a job still in
	// flight (the WEB job, its poll task pending), and one through kycctl.
	before := p.record(imagesJob)
	if len(before.Messages) == 0 {
		t.Fatalf("the record of %s lists no message", imagesJob)
	}
	for _, id := range []string{imagesJob, webJob} {
		if status, b := p.call(http.MethodDelete, "/v1/verifications/"+id, "", nil); status != http.StatusAccepted {
			t.Fatalf("erase %s as the ingest user: %d %s", id, status, b)
		}
	}
	p.ctl("operator", "erase", "--wait", "--actor", "deploy-test", jsonJob)
	for _, id := range []string{imagesJob, webJob, jsonJob} {
		v := p.waitStatus(id, pipeline.StatusErased)
		if v.Erasure == nil || v.Erasure.Source != messages.ErasureRequest || v.Erasure.Jumio != messages.JumioDeleted {
			t.Errorf("erasure of %s: %+v", id, v.Erasure)
		}
		p.recv.wait("erased "+id, delivered("/ok", "verification.erased", id))
		if id != jsonJob {
			// (kycctl's own record write does not move the index entry, and
			// the eraser removes the entry of the record's status: the
			// DECIDED entry of a job kycctl erased stays until a listing
			// finds it stale. Integration note in the report.)
			if n := p.stored(s.StreamIndex(), indexOf(s, "*", id)); n != 0 {
				t.Errorf("%d index entries of %s after its erasure", n, id)
			}
		}
		// What remains of the job in the delivery log is the erased
		// event's own delivery, made after the erasure.
		for _, e := range p.webhookLog(id) {
			if e.EventType != string(webhooks.EventErased) {
				t.Errorf("webhook log entry of %s (%s) left after its erasure", id, e.EventType)
			}
		}
	}
	for _, ref := range before.Messages {
		st, err := p.admin.Stream(ctx, ref.Stream)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := st.GetMsg(ctx, ref.Seq); err == nil {
			t.Errorf("%s/%d (%s) of %s is still stored after its erasure", ref.Stream, ref.Seq, ref.Kind, imagesJob)
		}
	}
	var audits []messages.AuditRecord
	if err := json.Unmarshal([]byte(p.ctl("operator", "audit", "--json")), &audits); err != nil {
		t.Fatal(err)
	}
	erased := map[string]messages.AuditRecord{}
	for _, a := range audits {
		erased[a.JobID] = a
	}
	for _, id := range []string{imagesJob, webJob, jsonJob} {
		if a, ok := erased[id]; !ok || a.Action != messages.AuditErasure || a.Removed == nil {
			t.Errorf("audit record of %s: %+v", id, a)
		}
	}
	if a := erased[jsonJob]; a.Actor != "deploy-test" {
		t.Errorf("audit record of the kycctl erasure names %q", a.Actor)
	}

	// Retention: a worker whose clock is a month ahead erases every job
	// that ended, exactly once, holding the sweep's lease.
	later := time.Now().Add(31 * 24 * time.Hour)
	rcfg := p.workerCfg
	rcfg.Retention, rcfg.RetentionEvery, rcfg.Now = 30*24*time.Hour, 50*time.Millisecond, func() time.Time { return later }
	rcfg.Logger = p.log.Named("retention")
	rw, err := pipeline.NewWorker(ctx, p.js["worker"], rcfg)
	if err != nil {
		t.Fatal(err)
	}
	stopRetention := p.run("retention worker", rw.Run)
	for _, id := range []string{webhookJob, held, terminal, maxed} {
		if v := p.waitStatus(id, pipeline.StatusErased); v.Erasure == nil || v.Erasure.Source != messages.ErasureRetention {
			t.Errorf("erasure of %s: %+v", id, v.Erasure)
		}
	}
	stopRetention()

	// The rest of kycctl as the operator.
	kept := p.submit([]byte(`{"customerInternalReference":"deploy-kept","workflowDefinition":{"key":10066},"channel":"API","preparedData":{"email":"`+atRestMarker+`@example.com"}}`), "application/json")
	p.waitDecision(kept)
	p.ctl("operator", "jobs")
	p.ctl("operator", "status", kept)
	p.ctl("operator", "webhooks", "show", okID)
	p.ctl("operator", "doctor")
}

// pendingJobs: with no worker running, an accepted job is only its message
// in the jobs queue (one write per submission) and has no record yet.
// Every reader shows it ACCEPTED from that message, under its own user:
// GET as ingest, a repeated submission (200) and a conflicting one under the
// same Idempotency-Key (409) compare with it, kycctl status and jobs as the
// operator and the console's lookup as the console user; DELETE queues its
// erasure.
// A worker started again decides the one and erases the other, whose
// message leaves the queue.
func pendingJobs(t *testing.T, p *product) {
	t.Helper()
	ctx := context.Background()
	s := p.subj
	p.stopWorker()
	body := []byte(`{"customerInternalReference":"deploy-pending","workflowDefinition":{"key":10066},"channel":"API","preparedData":{"email":"deploy-pending@example.com"}}`)
	pending := p.submit(body, "application/json", "Idempotency-Key", "deploy-pending")
	if v := p.job(pending); v.Status != pipeline.StatusAccepted || v.CreatedAt.IsZero() {
		t.Fatalf("GET of a pending job as the ingest user: %+v", v)
	}
	if status, b := p.post(body, "application/json", "Idempotency-Key", "deploy-pending"); status != http.StatusOK {
		t.Fatalf("a repeated submission of a pending job: %d %s", status, b)
	}
	other := bytes.Replace(body, []byte("deploy-pending@"), []byte("deploy-other@"), 1)
	if status, b := p.post(other, "application/json", "Idempotency-Key", "deploy-pending"); status != http.StatusConflict {
		t.Fatalf("another request under a pending job's Idempotency-Key: %d %s", status, b)
	}
	if out := p.ctl("operator", "status", pending); !strings.Contains(out, pipeline.StatusAccepted) {
		t.Fatalf("kycctl status of a pending job as the operator:\n%s", out)
	}
	if out := p.ctl("operator", "jobs", "--state", "ACCEPTED"); !strings.Contains(out, pending) {
		t.Fatalf("kycctl jobs does not list a pending job as the operator:\n%s", out)
	}
	_, consoleJS := connect(t, p.url, p.ca, "console")
	kv, err := consoleJS.KeyValue(ctx, s.BucketJobs())
	if err != nil {
		t.Fatal(err)
	}
	if rec, err := pipeline.LookupJob(ctx, consoleJS, pipeline.NewJobStore(kv, nil), s, pending); err != nil || rec.Status != pipeline.StatusAccepted {
		t.Fatalf("the console's lookup of a pending job as the console user: %+v, %v", rec, err)
	}
	erased := p.submitJSON("deploy-pending-erased", "")
	if status, b := p.call(http.MethodDelete, "/v1/verifications/"+erased, "", nil); status != http.StatusAccepted {
		t.Fatalf("erase a pending job as the ingest user: %d %s", status, b)
	}
	if v := p.job(erased); v.Status != pipeline.StatusErasing {
		t.Fatalf("a pending job after DELETE: %+v", v)
	}
	p.restartWorker()
	p.waitDecision(pending)
	if v := p.waitStatus(erased, pipeline.StatusErased); v.Erasure == nil || v.Erasure.Jumio != messages.JumioNotCreated {
		t.Errorf("erasure of a pending job: %+v", v.Erasure)
	}
	if n := p.stored(s.StreamJobs(), s.JobSubmit(erased)); n != 0 {
		t.Errorf("the erased pending job's message is still queued (%d)", n)
	}
}

// consoleOps does, as kycpipe-console, what the operator console
// (internal/console, served by an ingest with KYCPIPE_CONSOLE=true) does
// on NATS, through the same pipeline functions and JetStream calls: list
// jobs from the index and count them, read a job's messages and its
// request, audit a reveal, list, read and replay a dead letter, and show
// decisions live and recent. (The console is not on main yet: once it
// is, its pages replace this.)
func consoleOps(t *testing.T, p *product, failed string, letter uint64) {
	t.Helper()
	ctx := context.Background()
	s := p.subj
	nc, js := connect(t, p.url, p.ca, "console")
	live := make(chan *nats.Msg, 64)
	sub, err := nc.ChanSubscribe(s.Decisions(), live)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}

	idx, err := pipeline.NewJobIndex(ctx, js, p.topo)
	if err != nil {
		t.Fatal(err)
	}
	page, err := idx.List(ctx, pipeline.JobQuery{Status: pipeline.StatusFailed})
	if err != nil || len(page.Jobs) == 0 {
		t.Fatalf("the console lists failed jobs: %v (%d)", err, len(page.Jobs))
	}
	for _, st := range []string{s.StreamIndex(), s.StreamDecisions()} {
		// Counts: a consumer created, read and deleted at once.
		c, err := js.CreateConsumer(ctx, st, jetstream.ConsumerConfig{AckPolicy: jetstream.AckNonePolicy, InactiveThreshold: 30 * time.Second, MemoryStorage: true})
		if err != nil {
			t.Fatalf("the console counts %s: %v", st, err)
		}
		if err := js.DeleteConsumer(ctx, st, c.CachedInfo().Name); err != nil {
			t.Fatalf("the console removes its count of %s: %v", st, err)
		}
	}
	// A job's page: every message its record lists, and its request (the
	// job message or the dead letter holding it).
	rec := p.record(failed)
	for _, ref := range rec.Messages {
		st, err := js.Stream(ctx, ref.Stream)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := st.GetMsg(ctx, ref.Seq); err != nil {
			t.Fatalf("the console reads %s/%d: %v", ref.Stream, ref.Seq, err)
		}
	}
	jobs, err := js.Stream(ctx, s.StreamJobs())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := jobs.GetMsg(ctx, 1); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
		t.Fatalf("the console reads a job message: %v", err)
	}
	reveal := &messages.AuditRecord{Action: messages.AuditReveal, JobID: failed, Actor: "deploy-test", At: time.Now().UTC(), Fields: []string{"email"}}
	b, err := messages.Marshal(reveal)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, s.Audit(messages.AuditReveal), b); err != nil {
		t.Fatalf("the console audits a reveal: %v", err)
	}
	// Dead letters: list, read, replay.
	list, err := pipeline.ListDeadLetters(ctx, js, s, pipeline.DLQFilter{JobID: failed})
	if err != nil || len(list) == 0 {
		t.Fatalf("the console lists dead letters: %v (%d)", err, len(list))
	}
	if _, err := pipeline.GetDeadLetter(ctx, js, s, letter); err != nil {
		t.Fatalf("the console reads a dead letter: %v", err)
	}
	if _, err := pipeline.ReplayDeadLetter(ctx, js, s, letter, time.Hour); err != nil {
		t.Fatalf("the console replays a dead letter: %v", err)
	}
	// Live decisions: the replayed job's arrives on the core subscription;
	// recent ones are read with an ordered consumer.
	timeout := time.After(waitLong())
	for got := false; !got; {
		select {
		case m := <-live:
			got = m.Header.Get(messages.HeaderJobID) == failed
		case <-timeout:
			t.Fatalf("the console never saw %s's decision live", failed)
		}
	}
	recent, err := js.OrderedConsumer(ctx, s.StreamDecisions(), jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatalf("the console reads recent decisions: %v", err)
	}
	if _, err := recent.Next(jetstream.FetchMaxWait(5 * time.Second)); err != nil {
		t.Fatalf("the console reads recent decisions: %v", err)
	}
	if err := js.DeleteConsumer(ctx, s.StreamDecisions(), recent.CachedInfo().Name); err != nil {
		t.Fatalf("the console removes its consumer: %v", err)
	}
}

// indexOf is the filter of a job's entries in the index under status ("*":
// any).
func indexOf(s messages.Subjects, status, jobID string) string {
	return s.Prefix() + ".index.jobs." + status + ".*.*." + jobID
}
