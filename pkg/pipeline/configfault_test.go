package pipeline_test

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/kycpipe/kycpipe/internal/localstack"
	"github.com/kycpipe/kycpipe/pkg/jumio"
	"github.com/kycpipe/kycpipe/pkg/jumio/jumiotest"
	"github.com/kycpipe/kycpipe/pkg/messages"
	"github.com/kycpipe/kycpipe/pkg/pipeline"
	"github.com/kycpipe/kycpipe/pkg/pipeline/pipelinetest"
)

// The pause of the configuration-fault runs and KYCPIPE_FAULT_PROBE_EVERY
// in them: short by default, production-like for docs/RELIABILITY.md
// (-fault-hold 1m -fault-probe-every 30s).
var (
	faultHold  = flag.Duration("fault-hold", 2*time.Second, "how long the configuration-fault runs keep Jumio refusing")
	faultProbe = flag.Duration("fault-probe-every", 200*time.Millisecond, "KYCPIPE_FAULT_PROBE_EVERY in the configuration-fault runs")
)

// faultBundle is a pipeline whose worker and retriever the test builds,
// with its own Jumio settings, so it can read their readiness.
type faultBundle struct {
	*bundle
	worker    *pipeline.Worker
	retriever *pipeline.Retriever
	reg       *prometheus.Registry
}

// setupFaults starts a pipeline with a worker and a retriever whose Jumio
// settings jcfg adjusts (the simulator's URL and default client otherwise).
func setupFaults(t *testing.T, sim jumiotest.Options, jcfg func(*pipeline.JumioConfig, *jumiotest.Server)) *faultBundle {
	t.Helper()
	return setupFaultsTopo(t, sim, jcfg, pipeline.Topology{})
}

// setupFaultsTopo is setupFaults with a topology of its own.
func setupFaultsTopo(t *testing.T, sim jumiotest.Options, jcfg func(*pipeline.JumioConfig, *jumiotest.Server), topo pipeline.Topology) *faultBundle {
	t.Helper()
	b := setup(t, func(o *localstack.Options) { o.Workers, o.Retrievers, o.Sim, o.Topology = 0, 0, sim, topo })
	cfg := pipeline.JumioConfig{BaseURL: b.sim.URL, Credentials: b.sim.Credentials(), UserAgent: "kycpipe-test/1.0"}
	if jcfg != nil {
		jcfg(&cfg, b.sim)
	}
	log := pipelinetest.Logger(t)
	clients, err := pipeline.NewClients(cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	m := pipeline.NewMetrics(reg)
	ctx, cancel := context.WithCancel(context.Background())
	w, err := pipeline.NewWorker(ctx, b.stack.JS, pipeline.WorkerConfig{Topology: b.stack.Topology, Jumio: clients,
		CallbackURL: b.stack.IngestURL + "/v1/callbacks/jumio", Backoff: pipeline.Backoff{Initial: 50 * time.Millisecond, Max: time.Second},
		FaultProbeEvery: *faultProbe, Logger: log.Named("worker"), Metrics: m})
	if err != nil {
		t.Fatal(err)
	}
	r, err := pipeline.NewRetriever(ctx, b.stack.JS, pipeline.RetrieverConfig{Topology: b.stack.Topology, Jumio: clients,
		Schedule: testSchedule, Backoff: pipeline.Backoff{Initial: 50 * time.Millisecond, Max: time.Second},
		FaultProbeEvery: *faultProbe, Logger: log.Named("retriever"), Metrics: m})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for _, run := range []func(context.Context) error{w.Run, r.Run} {
		wg.Add(1)
		go func() { defer wg.Done(); _ = run(ctx) }()
	}
	t.Cleanup(func() { cancel(); wg.Wait() })
	return &faultBundle{bundle: b, worker: w, retriever: r, reg: reg}
}

// gauge sums the values of a metric family whose labels include want.
func gauge(t *testing.T, reg *prometheus.Registry, name string, want map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metrics:
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			for k, v := range want {
				if labels[k] != v {
					continue metrics
				}
			}
			sum += value(m)
		}
	}
	return sum
}

func value(m *dto.Metric) float64 {
	switch {
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	case m.Counter != nil:
		return m.Counter.GetValue()
	}
	return 0
}

// notReady waits until the stage's readiness fails with a pause naming
// every one of words, and returns the time it did.
func notReady(t *testing.T, what string, ready func(context.Context) error, words ...string) {
	t.Helper()
	var last error
	pipelinetest.Eventually(t, waitLong, func() bool {
		last = ready(context.Background())
		if !errors.Is(last, pipeline.ErrPaused) {
			return false
		}
		for _, w := range words {
			if !strings.Contains(last.Error(), w) {
				return false
			}
		}
		return true
	}, "%s readiness to report the pause naming %v (last: %v)", what, words, last)
}

// runFigures are what a configuration-fault run reports (docs/RELIABILITY.md).
type runFigures struct {
	jobs, decided, deadLetters, failed, held, accountsWhilePaused int
	budgetUsed                                                    int
	paused, toResume, toDecided                                   time.Duration
}

func (f runFigures) String() string {
	return fmt.Sprintf("jobs %d, decided %d, failed %d, dead letters %d, deliveries held %d, retry budget used %d, "+
		"Jumio accounts created while paused %d; paused %s before the fix, resumed %s after the fix, all decided %s after the fix",
		f.jobs, f.decided, f.failed, f.deadLetters, f.held, f.budgetUsed, f.accountsWhilePaused,
		f.paused.Round(time.Millisecond), f.toResume.Round(time.Millisecond), f.toDecided.Round(time.Millisecond))
}

// faultRun submits n jobs against a Jumio that refuses the configuration
// (break), checks that the stage pauses without failing, dead-lettering or
// spending anything, holds the pause for hold, then fixes Jumio (fix) and
// checks that every job is decided.
func faultRun(t *testing.T, fb *faultBundle, n int, ready func(context.Context) error, words []string, breakIt, fix func(), hold time.Duration) runFigures {
	t.Helper()
	breakIt()
	var ids []string
	for i := range n {
		ids = append(ids, fb.submit(t, emailJob(fmt.Sprintf("cfg-%s-%03d", strings.ReplaceAll(t.Name(), "/", "-"), i)), 202, nil))
	}
	notReady(t, "stage", ready, words...)
	pausedAt := time.Now()
	accountsAtPause := fb.sim.Stats().AccountsCreated
	// The pause lasts: nothing fails, nothing is dead-lettered.
	timer := time.NewTimer(hold)
	<-timer.C
	if err := ready(context.Background()); !errors.Is(err, pipeline.ErrPaused) {
		t.Fatalf("readiness while Jumio still refuses: %v", err)
	}
	if got := gauge(t, fb.reg, "kycpipe_jumio_config_fault", nil); got < 1 {
		t.Errorf("kycpipe_jumio_config_fault = %v while paused", got)
	}
	fig := runFigures{jobs: n, accountsWhilePaused: fb.sim.Stats().AccountsCreated - accountsAtPause}
	for _, id := range ids {
		if st := fb.job(t, id).Status; st == pipeline.StatusFailed || st == pipeline.StatusDecided {
			t.Fatalf("job %s is %s while Jumio refuses the configuration", id, st)
		}
	}
	if dl := fb.dlq.All(); len(dl) > 0 {
		t.Fatalf("%d dead letters while paused: %s", len(dl), pipelinetest.Describe(dl))
	}
	fixedAt := time.Now()
	fig.paused = fixedAt.Sub(pausedAt)
	fix()
	pipelinetest.Eventually(t, waitLong, func() bool { return ready(context.Background()) == nil }, "the stage to resume by itself")
	fig.toResume = time.Since(fixedAt)
	for _, id := range ids {
		fb.waitDecision(t, id)
	}
	fig.toDecided = time.Since(fixedAt)
	fig.decided = len(fb.decisions.All())
	fig.deadLetters = len(fb.dlq.All())
	kv, err := fb.stack.JS.KeyValue(context.Background(), fb.subj.BucketJobs())
	if err != nil {
		t.Fatal(err)
	}
	store := pipeline.NewJobStore(kv, time.Now)
	for _, id := range ids {
		rec, _, err := store.Get(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if rec.Status == pipeline.StatusFailed {
			fig.failed++
		}
		fig.budgetUsed += rec.Attempts
	}
	fig.held = int(gauge(t, fb.reg, "kycpipe_held_total", nil))
	return fig
}

// A wrong client secret (the token endpoint answers 400 invalid_client):
// the worker pauses, every job stays queued, none is failed or
// dead-lettered and no retry budget is spent; fixing the secret at Jumio
// resumes the work by itself and every job is decided.
func TestWrongSecretPausesAndResumes(t *testing.T) {
	t.Parallel()
	fb := setupFaults(t, jumiotest.Options{}, nil)
	id, secret := fb.sim.Credentials().ClientID, fb.sim.Credentials().ClientSecret
	fig := faultRun(t, fb, 200, fb.worker.Ready, []string{"credentials", "JUMIO_CLIENT_ID / JUMIO_CLIENT_SECRET", "amer-1", "HTTP 400"},
		func() {
			if err := fb.sim.SetClientSecret(id, "rotated-at-jumio"); err != nil {
				t.Fatal(err)
			}
		},
		func() {
			if err := fb.sim.SetClientSecret(id, secret); err != nil {
				t.Fatal(err)
			}
		}, *faultHold)
	checkFigures(t, fig)
	if fig.accountsWhilePaused != 0 {
		t.Errorf("%d Jumio accounts created while the secret was wrong", fig.accountsWhilePaused)
	}
	t.Logf("wrong secret: %s", fig)
}

// A client without a permission: 403 with a fresh token on every call of
// that kind. The stage pauses (the probe is refused too), and resumes once
// the permission is granted.
func TestMissingPermissionPausesAndResumes(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name  string
		deny  func(*jumiotest.ClientCredentials, bool)
		stage func(*faultBundle) func(context.Context) error
		words []string
	}{
		{"retrieve", func(cc *jumiotest.ClientCredentials, on bool) { cc.DenyRetrieve = on },
			func(fb *faultBundle) func(context.Context) error { return fb.retriever.Ready }, []string{`"retrieve" permission`, "HTTP 403"}},
		{"initiate", func(cc *jumiotest.ClientCredentials, on bool) { cc.DenyInitiate = on },
			func(fb *faultBundle) func(context.Context) error { return fb.worker.Ready }, []string{`"initiate" permission`, "HTTP 403"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			fb := setupFaults(t, jumiotest.Options{}, nil)
			cc := fb.sim.Clients()[0]
			set := func(on bool) func() {
				return func() {
					c.deny(&cc, on)
					if err := fb.sim.SetClient(cc); err != nil {
						t.Fatal(err)
					}
				}
			}
			fig := faultRun(t, fb, 200, c.stage(fb), c.words, set(true), set(false), *faultHold)
			checkFigures(t, fig)
			t.Logf("missing %s permission: %s", c.name, fig)
		})
	}
}

func checkFigures(t *testing.T, fig runFigures) {
	t.Helper()
	if fig.decided != fig.jobs || fig.deadLetters != 0 || fig.failed != 0 || fig.budgetUsed != 0 {
		t.Errorf("after the fix: %s", fig)
	}
}

// Each region is its own credential set: a wrong US secret pauses amer-1
// only; EU jobs keep flowing.
func TestPausePerRegion(t *testing.T) {
	t.Parallel()
	fb := setupFaults(t, jumiotest.Options{}, twoRegions)
	amer, _ := fb.sim.RegionCredentials(jumio.RegionAMER)
	if err := fb.sim.SetClientSecret(amer.ClientID, "rotated-at-jumio"); err != nil {
		t.Fatal(err)
	}
	job := func(region string, i int) map[string]any {
		j := emailJob(fmt.Sprintf("region-%s-%02d", region, i))
		j["region"] = region
		return j
	}
	var us, eu []string
	for i := range 20 {
		us = append(us, fb.submit(t, job("amer-1", i), 202, nil))
		eu = append(eu, fb.submit(t, job("emea-1", i), 202, nil))
	}
	for _, id := range eu {
		fb.waitDecision(t, id)
	}
	notReady(t, "worker", fb.worker.Ready, "amer-1", "JUMIO_CLIENT_ID_AMER_1")
	if err := fb.worker.Ready(context.Background()); strings.Contains(err.Error(), "emea-1") {
		t.Fatalf("emea-1 paused too: %v", err)
	}
	for _, id := range us {
		if st := fb.job(t, id).Status; st != pipeline.StatusAccepted {
			t.Fatalf("US job %s is %s while its region is paused", id, st)
		}
	}
	if err := fb.sim.SetClientSecret(amer.ClientID, amer.ClientSecret); err != nil {
		t.Fatal(err)
	}
	for _, id := range us {
		if d := fb.waitDecision(t, id); d.Region != "amer-1" {
			t.Errorf("decision region %s", d.Region)
		}
	}
	if dl := fb.dlq.All(); len(dl) > 0 {
		t.Fatalf("dead letters: %s", pipelinetest.Describe(dl))
	}
	if st := fb.sim.Stats(); st.RequestsByRegion["emea-1"] == 0 || st.Refusals[jumiotest.RefusalBadClient] == 0 {
		t.Errorf("simulator: requests by region %v, refusals %v", st.RequestsByRegion, st.Refusals)
	}
}

// A 403 that only one job meets (its probe passes) stays that job's
// error: it fails at once, nothing pauses, the other jobs are decided.
func TestJobSpecific403IsAJobError(t *testing.T) {
	t.Parallel()
	fb := setupFaults(t, jumiotest.Options{}, nil)
	first := fb.submit(t, emailJob("order-403-0"), 202, nil)
	fb.waitDecision(t, first) // a token is cached; the next account call gets the 403
	fb.sim.FailNext(jumiotest.RouteCreateAccount, 1, 403)
	refused := fb.submit(t, emailJob("order-403-1"), 202, nil)
	dl := fb.dlq.WaitN(t, 1, waitLong, func(m pipelinetest.Received[[]byte]) bool {
		return m.Header.Get(messages.HeaderJobID) == refused
	}, "the refused job's dead letter")[0]
	if dl.Header.Get(messages.HeaderReason) != messages.ReasonTerminal {
		t.Errorf("reason %q", dl.Header.Get(messages.HeaderReason))
	}
	for i := 2; i < 6; i++ {
		fb.waitDecision(t, fb.submit(t, emailJob(fmt.Sprintf("order-403-%d", i)), 202, nil))
	}
	if err := fb.worker.Ready(context.Background()); err != nil {
		t.Fatalf("a job's own 403 paused the worker: %v", err)
	}
	if got := gauge(t, fb.reg, "kycpipe_jumio_config_probes_total", map[string]string{"result": "accepted"}); got < 1 {
		t.Errorf("the 403 was not probed (accepted probes: %v)", got)
	}
}

// Without the portal's web domain, Jumio returns no web.href (jumio-api.md
// §10.4): a configuration fault, never a reason to hand a WEB job the SDK
// token. WEB jobs wait without creating accounts (API jobs keep flowing);
// once Jumio returns web.href again, the job that found the fault runs on a
// new execution of its own account and the others launch.
func TestMissingWebHrefPausesWebJobs(t *testing.T) {
	t.Parallel()
	fb := setupFaults(t, jumiotest.Options{Switches: jumiotest.Switches{OmitWebHref: true}}, nil)
	first := fb.submit(t, webJob("order-href-0"), 202, nil)
	notReady(t, "worker", fb.worker.Ready, "web.href", "Domain Name", "amer-1")
	var rest []string
	for i := 1; i <= 4; i++ {
		rest = append(rest, fb.submit(t, webJob(fmt.Sprintf("order-href-%d", i)), 202, nil))
	}
	// API jobs are not concerned.
	fb.waitDecision(t, fb.submit(t, emailJob("order-href-api"), 202, nil))
	st := fb.sim.Stats()
	if n := st.AccountsByReference["order-href-0"]; n != 1 {
		t.Fatalf("the first WEB job created %d accounts", n)
	}
	for i := 1; i <= 4; i++ {
		if n := st.AccountsByReference[fmt.Sprintf("order-href-%d", i)]; n != 0 {
			t.Fatalf("a WEB job created an account while Jumio returns no web.href")
		}
	}
	if got := gauge(t, fb.reg, "kycpipe_jumio_config_fault", map[string]string{"fault": "web_href"}); got != 1 {
		t.Errorf("web_href fault gauge = %v", got)
	}
	sw := fb.sim.Switches()
	sw.OmitWebHref = false
	if err := fb.sim.SetSwitches(sw); err != nil {
		t.Fatal(err)
	}
	launched := map[string]*messages.Event{}
	for _, id := range append([]string{first}, rest...) {
		ev := fb.events.WaitN(t, 1, waitLong, func(m pipelinetest.Received[*messages.Event]) bool {
			return m.Value.JobID == id && m.Value.Kind == messages.KindLaunched
		}, "launched "+id)[0].Value
		if ev.Web == nil || ev.Web.Href == "" || ev.SDK != nil {
			t.Fatalf("launched event of %s: web %+v, sdk %+v", id, ev.Web, ev.SDK)
		}
		launched[id] = ev
	}
	pipelinetest.Eventually(t, waitLong, func() bool { return fb.worker.Ready(context.Background()) == nil }, "the worker to resume")
	st = fb.sim.Stats()
	if st.AccountsCreated != 6 || st.AccountsByReference["order-href-0"] != 1 || st.ExecutionsByReference["order-href-0"] < 2 {
		t.Errorf("accounts %d (want 6: five WEB jobs, one API job), order-href-0: %d account(s), %d executions",
			st.AccountsCreated, st.AccountsByReference["order-href-0"], st.ExecutionsByReference["order-href-0"])
	}
	for id, ev := range launched {
		if err := fb.sim.CompleteWeb(ev.WorkflowExecutionID); err != nil {
			t.Fatal(err)
		}
		if d := fb.waitDecision(t, id); d.WorkflowExecutionID != ev.WorkflowExecutionID {
			t.Errorf("decision of %s for execution %s, launched %s", id, d.WorkflowExecutionID, ev.WorkflowExecutionID)
		}
	}
	if dl := fb.dlq.All(); len(dl) > 0 {
		t.Fatalf("dead letters: %s", pipelinetest.Describe(dl))
	}
	// Erasing the job that ran on a second execution removes the index
	// entries of both.
	fb.erase(t, first)
	for _, m := range pipelinetest.AllMessages(t, fb.stack.JS) {
		if strings.HasPrefix(m.Subject, "$KV."+fb.subj.BucketJobs()+".exec.") && string(m.Data) == first {
			t.Errorf("after the erasure, an execution index entry names the job: %s", m.Subject)
		}
	}
}

// twoRegions points amer-1 and emea-1 at their own tenants of the
// simulator, each with its own client.
func twoRegions(c *pipeline.JumioConfig, sim *jumiotest.Server) {
	amer, _ := sim.RegionCredentials(jumio.RegionAMER)
	emea, _ := sim.RegionCredentials(jumio.RegionEMEA)
	c.Credentials = jumio.Credentials{} // only per-region pairs
	c.Regions = map[jumio.Region]pipeline.RegionConfig{
		jumio.RegionAMER: {Credentials: amer, BaseURL: sim.RegionURL(jumio.RegionAMER), CredentialSettings: "JUMIO_CLIENT_ID_AMER_1 / JUMIO_CLIENT_SECRET_AMER_1"},
		jumio.RegionEMEA: {Credentials: emea, BaseURL: sim.RegionURL(jumio.RegionEMEA), CredentialSettings: "JUMIO_CLIENT_ID_EMEA_1 / JUMIO_CLIENT_SECRET_EMEA_1"},
	}
}

// While only some regions are paused the worker keeps pulling, and the
// paused region's jobs come back again and again: near the consumer's
// MaxDeliver a held job is published again and the original acked, so
// JetStream never gives up on it (no dead letter, no second account).
func TestHeldJobsAreRequeuedBeforeMaxDeliver(t *testing.T) {
	t.Parallel()
	fb := setupFaultsTopo(t, jumiotest.Options{}, twoRegions, pipeline.Topology{WorkerMaxDeliver: 7})
	amer, _ := fb.sim.RegionCredentials(jumio.RegionAMER)
	if err := fb.sim.SetClientSecret(amer.ClientID, "rotated-at-jumio"); err != nil {
		t.Fatal(err)
	}
	us := emailJob("requeue-us-1")
	us["region"] = "amer-1"
	jobID := fb.submit(t, us, 202, nil)
	eu := emailJob("requeue-eu-1")
	eu["region"] = "emea-1"
	fb.waitDecision(t, fb.submit(t, eu, 202, nil)) // emea-1 flows: the worker pulls
	notReady(t, "worker", fb.worker.Ready, "amer-1")
	// The held job is published again at least once (fresh delivery count).
	stream, err := fb.stack.JS.Stream(context.Background(), fb.subj.StreamJobs())
	if err != nil {
		t.Fatal(err)
	}
	pipelinetest.Eventually(t, waitLong, func() bool {
		m, err := stream.GetLastMsgForSubject(context.Background(), fb.subj.JobSubmit(jobID))
		return err == nil && m.Header.Get(messages.HeaderRequeueOf) != "" && m.Header.Get(messages.HeaderJobID) == jobID
	}, "the held job to be requeued")
	if err := fb.sim.SetClientSecret(amer.ClientID, amer.ClientSecret); err != nil {
		t.Fatal(err)
	}
	if d := fb.waitDecision(t, jobID); d.Region != "amer-1" {
		t.Errorf("decision %+v", d)
	}
	if dl := fb.dlq.All(); len(dl) > 0 {
		t.Fatalf("dead letters: %s", pipelinetest.Describe(dl))
	}
	if n := fb.sim.Stats().AccountsByReference["requeue-us-1"]; n != 1 {
		t.Fatalf("%d accounts for the requeued job", n)
	}
	if n := len(fb.decisions.Where(pipelinetest.ForJob[*messages.DecisionEvent](jobID))); n != 1 {
		t.Fatalf("%d decisions for the requeued job", n)
	}
	kv, err := fb.stack.JS.KeyValue(context.Background(), fb.subj.BucketJobs())
	if err != nil {
		t.Fatal(err)
	}
	rec, _, err := pipeline.NewJobStore(kv, time.Now).Get(context.Background(), jobID)
	if err != nil {
		t.Fatal(err)
	}
	// Holds are not failures: no budget used, no ambiguous account flagged.
	if rec.Held < 2 || rec.Attempts != 0 || rec.AmbiguousCreates != 0 {
		t.Fatalf("record: held %d, attempts %d, ambiguous creates %d", rec.Held, rec.Attempts, rec.AmbiguousCreates)
	}
}
