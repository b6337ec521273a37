package pipeline_test

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/kycpipe/kycpipe/pkg/jumio/jumiotest"
	"github.com/kycpipe/kycpipe/pkg/pipeline"
	"github.com/kycpipe/kycpipe/pkg/pipeline/pipelinetest"
)

var (
	jobBudgetProfile = flag.String("job-budget-profile", "",
		"BenchmarkJobBudget: write a CPU profile of the measured jobs, labelled by stage (pprof label \"stage\"), to this file")
	jobBudgetCount = flag.Bool("job-budget-count", true,
		"BenchmarkJobBudget: count every stage's NATS requests (a subscription to \">\", which costs nats-server a copy of every message); off, only decisions are watched")
)

// BenchmarkJobBudget measures what one job costs each stage, end to end, in
// one process: ingest (over HTTP), a worker and a retriever, each on its own
// NATS connection, against an embedded nats-server and the Jumio simulator
// at zero latency, with the job of `make bench`'s end-to-end step (an
// API-channel prepared-data request of about 1 KB naming its jobId) and its
// concurrency (64 submitting connections, worker and retriever concurrency
// 256, no shared rate limits). Each iteration is one job, from its
// submission to its decision event; a warm-up of 200 jobs comes first.
//
// Per job it reports:
//   - NATS requests per stage: every message a stage's connection published
//     with a reply subject (each is a round trip to the server: JetStream API
//     calls, publishes awaiting their ack, key-value writes, pull requests),
//     counted by a connection subscribed to ">" that tells the stages apart
//     by their inbox prefixes; and the one-way acknowledgements ($JS.ACK:
//     ack, in-progress, nak);
//   - HTTP exchanges: the submission, and every request the simulator
//     answered or sent (token, account, upload, finalize, callback, status,
//     details);
//   - CPU: the process's user+system CPU per job over the measured jobs
//     (every stage, nats-server and the simulator share it), and, with
//     -job-budget-profile FILE, a CPU profile whose samples carry the stage
//     that ran them (`go tool pprof -tags FILE`): goroutines inherit the
//     label of the stage that started them (its NATS connection, HTTP server
//     and Jumio client included); nats-server labels its own stream and
//     consumer goroutines (label "account" instead of "stage"), and the
//     garbage collector's background work carries none.
//
// Counting copies every message to the counting subscription, which costs
// nats-server and the garbage collector; take CPU figures with
// -job-budget-count=false (only decisions are watched then).
// docs/BENCHMARKS.md ("Per-job budget") has the figures, against 9aa777e.
//
//	go test -run '^$' -bench BenchmarkJobBudget -benchtime 3000x ./pkg/pipeline/
//	go test -run '^$' -bench BenchmarkJobBudget -benchtime 3000x -job-budget-count=false -job-budget-profile /tmp/budget.pprof ./pkg/pipeline/
//	go tool pprof -tags /tmp/budget.pprof
func BenchmarkJobBudget(b *testing.B) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	inStage := func(stage string, f func()) {
		pprof.Do(ctx, pprof.Labels("stage", stage), func(context.Context) { f() })
	}
	fatal := func(err error) {
		if err != nil {
			b.Helper()
			b.Fatal(err)
		}
	}

	var ns *server.Server
	inStage("nats-server", func() {
		var err error
		ns, err = server.NewServer(&server.Options{Host: "127.0.0.1", Port: server.RANDOM_PORT, JetStream: true,
			StoreDir: b.TempDir(), NoLog: true, NoSigs: true})
		fatal(err)
		go ns.Start()
	})
	defer func() { ns.Shutdown(); ns.WaitForShutdown() }()
	if !ns.ReadyForConnections(10 * time.Second) {
		b.Fatal("nats-server not ready")
	}
	connect := func(stage string) (*nats.Conn, jetstream.JetStream) {
		nc, err := nats.Connect(ns.ClientURL(), nats.CustomInboxPrefix("_INBOX_"+stage), nats.Name(stage))
		fatal(err)
		b.Cleanup(nc.Close)
		js, err := jetstream.New(nc)
		fatal(err)
		return nc, js
	}
	topo := pipeline.Topology{}.WithDefaults()
	var count *natsCounter
	var admin jetstream.JetStream
	inStage("monitor", func() {
		_, admin = connect("admin")
		fatal(pipeline.Provision(ctx, admin, topo))
		mon, _ := connect("monitor")
		watch := ">"
		if !*jobBudgetCount {
			watch = topo.Subjects.Decisions()
		}
		count = newNATSCounter(b, mon, watch)
	})

	var sim *jumiotest.Server
	inStage("jumiosim", func() { sim = jumiotest.NewServer(jumiotest.Options{Logger: zap.NewNop()}) })
	defer sim.Close()

	const apiKey = "budget-bench-key-0123456789"
	var ingestURL string
	inStage("ingest", func() {
		nc, js := connect("ingest")
		keys, err := pipeline.NewAPIKeys([]string{apiKey})
		fatal(err)
		in, err := pipeline.NewIngest(ctx, nc, js, pipeline.IngestConfig{Topology: topo, APIKeys: keys,
			Callbacks: pipeline.CallbackConfig{RatePerSecond: 1e9, Burst: 1e9}})
		fatal(err)
		srv := httptest.NewServer(in.Handler())
		b.Cleanup(srv.Close)
		ingestURL = srv.URL
	})
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	stage := func(name string, run func(js jetstream.JetStream, clients *pipeline.Clients) func(context.Context) error) {
		inStage(name, func() {
			_, js := connect(name)
			clients, err := pipeline.NewClients(pipeline.JumioConfig{BaseURL: sim.URL, Credentials: sim.Credentials(), UserAgent: "kycpipe-bench/1.0"}, nil)
			fatal(err)
			runStage := run(js, clients)
			wg.Go(func() { _ = runStage(ctx) })
		})
	}
	stage("worker", func(js jetstream.JetStream, clients *pipeline.Clients) func(context.Context) error {
		w, err := pipeline.NewWorker(ctx, js, pipeline.WorkerConfig{Topology: topo, Jumio: clients, Concurrency: 256, AccountConcurrency: 256,
			CallbackURL: ingestURL + "/v1/callbacks/jumio"})
		fatal(err)
		return w.Run
	})
	stage("retriever", func(js jetstream.JetStream, clients *pipeline.Clients) func(context.Context) error {
		// The poll task's first look comes after 5 s instead of 40 s, so
		// that the measured jobs' poll tasks (each finds its job decided by
		// the callback and is acknowledged) end within the run.
		r, err := pipeline.NewRetriever(ctx, js, pipeline.RetrieverConfig{Topology: topo, Jumio: clients, Concurrency: 256,
			Schedule: []time.Duration{5 * time.Second}})
		fatal(err)
		return r.Run
	})

	// The load: 64 connections submitting jobs by number.
	submit := func(run string, n int) {
		inStage("client", func() {
			jobs := make(chan int)
			var sent sync.WaitGroup
			hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}, Timeout: time.Minute}
			for range 64 {
				sent.Go(func() {
					for i := range jobs {
						req, err := http.NewRequest(http.MethodPost, ingestURL+"/v1/verifications", bytes.NewReader(budgetJobBody(run, i)))
						fatal(err)
						req.Header.Set("Authorization", "Bearer "+apiKey)
						req.Header.Set("Content-Type", "application/json")
						resp, err := hc.Do(req)
						fatal(err)
						_, _ = io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
						if resp.StatusCode != http.StatusAccepted {
							b.Errorf("submission %s-%d: %d", run, i, resp.StatusCode)
						}
					}
				})
			}
			for i := range n {
				jobs <- i
			}
			close(jobs)
			sent.Wait()
			hc.CloseIdleConnections()
		})
	}
	// A job is done when its decision is published and nothing of it is
	// left in the work queues (its message, callback and poll task
	// acknowledged).
	queues := []string{topo.Subjects.StreamJobs(), topo.Subjects.StreamCallbacks(), topo.Subjects.StreamRetrieve()}
	drained := func() bool {
		for _, q := range queues {
			st, err := admin.Stream(ctx, q)
			if err != nil {
				return false
			}
			info, err := st.Info(ctx)
			if err != nil || info.State.Msgs > 0 {
				return false
			}
		}
		return true
	}
	waitDone := func(prefix string, n int) {
		pipelinetest.Eventually(b, 5*time.Minute, func() bool { return count.decided(prefix) >= n && drained() },
			"jobs %s* not all decided and acknowledged", prefix)
	}

	submit("warmup", 200)
	waitDone("warmup-", 200)

	count.reset()
	sim.ResetStats()
	if *jobBudgetProfile != "" {
		f, err := os.Create(*jobBudgetProfile)
		fatal(err)
		defer f.Close()
		fatal(pprof.StartCPUProfile(f))
	}
	cpu0 := processCPU()
	b.ResetTimer()
	submit("budget", b.N)
	waitDone("budget-", b.N)
	b.StopTimer()
	cpu := processCPU() - cpu0
	if *jobBudgetProfile != "" {
		pprof.StopCPUProfile()
	}

	jobs := float64(b.N)
	b.ReportMetric(float64(cpu.Microseconds())/jobs, "process-cpu-µs/job")
	exchanges := 1.0 // the submission
	for _, n := range sim.Stats().Requests {
		exchanges += float64(n) / jobs
	}
	b.ReportMetric(exchanges, "http/job")
	report := count.snapshot()
	var total float64
	for _, st := range []string{"ingest", "worker", "retriever"} {
		n := float64(report.requests[st]) / jobs
		total += n
		if *jobBudgetCount {
			b.ReportMetric(n, st+"-nats-req/job")
		}
	}
	if *jobBudgetCount {
		b.ReportMetric(total, "nats-req/job")
	}
	if report.dropped > 0 {
		b.Errorf("the NATS counter dropped %d messages: the counts are low", report.dropped)
	}
	if b.N >= 100 {
		b.Logf("per job (%d jobs): HTTP by route %v", b.N, perJob(sim.Stats().Requests, jobs))
	}
	if b.N >= 100 && *jobBudgetCount {
		for _, st := range []string{"ingest", "worker", "retriever"} {
			b.Logf("%s: NATS requests %.2f/job %v; one-way acks %v", st, float64(report.requests[st])/jobs,
				perJob(report.byClass[st], jobs), perJob(report.acks[st], jobs))
		}
	}
}

// budgetJobBody is `make bench`'s end-to-end job (internal/bench.jobBody).
func budgetJobBody(run string, n int) []byte {
	id := fmt.Sprintf("%s-%d", run, n)
	return fmt.Appendf(nil, `{"jobId":"%s","customerInternalReference":"bench-%s","userReference":"crm-customer-record-%d",`+
		`"workflowDefinition":{"key":10148},"channel":"API","region":"amer-1","tokenLifetime":"30m",`+
		`"userConsent":{"userIp":"203.0.113.7","userLocation":{"country":"USA","state":"IN"},"consent":{"obtained":"yes","obtainedAt":"2026-11-01T10:00:00Z"}},`+
		`"reportingCriteria":"onboarding-2026-q4-retail-banking-checking-account",`+
		`"preparedData":{"firstName":"Cortez","middleName":"Alexander","lastName":"Crook","suffix":"Jr","personalNumber":"PN-4471-2290","email":"cortez.crook@example.com","phoneNumber":"+18009376310","phoneNumber2":"+18009376311",`+
		`"dateOfBirth":"1990-08-10","socialSecurityNumber":"123-45-6789","sex":"M","nationality":"USA","ipAddress":"176.80.185.187",`+
		`"address":{"line1":"1302 Fayette Drive","line2":"Apartment 4","postalCode":"46816","city":"Fort Wayne","subdivision":"IN","country":"USA"},`+
		`"kyc":{"registrationDate":"2016-06-07","registrationIpAddress":"176.80.185.187"}}}`, id, id, n)
}

// processCPU is the process's user and system CPU time so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func perJob(m map[string]int, jobs float64) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var sb strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&sb, "%s=%.2f ", k, float64(m[k])/jobs)
	}
	return strings.TrimSpace(sb.String())
}

// natsCounter counts what each stage's connection publishes, seen from a
// subscription to ">" (every message of the account but the server's
// replies and deliveries, which go to inboxes). A stage is told by the
// inbox prefix of its requests' reply subjects (_INBOX_<stage>), and its
// acknowledgements by the consumer in their subject.
type natsCounter struct {
	sub     *nats.Subscription
	mu      sync.Mutex
	req     map[string]int            // stage → requests
	byClass map[string]map[string]int // stage → class → requests
	acks    map[string]map[string]int // stage → kind → one-way acks
	ids     map[string]bool           // job IDs with a decision published
}

// natsCounts is a snapshot of a natsCounter.
type natsCounts struct {
	requests map[string]int
	byClass  map[string]map[string]int
	acks     map[string]map[string]int
	dropped  int
}

func newNATSCounter(b *testing.B, nc *nats.Conn, subject string) *natsCounter {
	c := &natsCounter{}
	c.reset()
	sub, err := nc.Subscribe(subject, c.observe)
	if err != nil {
		b.Fatal(err)
	}
	if err := sub.SetPendingLimits(-1, -1); err != nil {
		b.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		b.Fatal(err)
	}
	c.sub = sub
	return c
}

func (c *natsCounter) reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.req, c.byClass, c.acks, c.ids = map[string]int{}, map[string]map[string]int{}, map[string]map[string]int{}, map[string]bool{}
}

// consumerStage names the stage acknowledging a consumer's messages.
var consumerStage = map[string]string{"worker": "worker", "eraser": "worker", "retriever-callbacks": "retriever",
	"retriever-polls": "retriever", "dlq-sweeper": "sweeper"}

func (c *natsCounter) observe(m *nats.Msg) {
	subj := m.Subject
	if strings.HasPrefix(subj, "_INBOX") || strings.HasPrefix(subj, "$JS.EVENT.") {
		return // replies, deliveries and the server's advisories
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if strings.HasPrefix(subj, "$JS.ACK.") {
		// v1: $JS.ACK.<stream>.<consumer>.…
		tok := strings.Split(subj, ".")
		st := "other"
		if len(tok) > 3 {
			st = cmpOr(consumerStage[tok[3]], "other")
		}
		kind := "ack"
		switch {
		case bytes.HasPrefix(m.Data, []byte("+WPI")):
			kind = "in-progress"
		case bytes.HasPrefix(m.Data, []byte("-NAK")):
			kind = "nak"
		case bytes.HasPrefix(m.Data, []byte("+TERM")):
			kind = "term"
		}
		if m.Reply != "" {
			c.count(st, "ack (awaited)")
			return
		}
		if c.acks[st] == nil {
			c.acks[st] = map[string]int{}
		}
		c.acks[st][kind]++
		return
	}
	st := "none"
	if rest, ok := strings.CutPrefix(m.Reply, "_INBOX_"); ok {
		st, _, _ = strings.Cut(rest, ".")
	}
	if m.Reply == "" {
		st = "one-way"
	}
	if st == "retriever" && strings.HasPrefix(subj, "kyc.decisions.") {
		if id := m.Header.Get("Kyc-Job-Id"); strings.HasPrefix(id, "budget-") || strings.HasPrefix(id, "warmup-") {
			c.ids[id] = true
		}
	}
	c.count(st, natsClass(subj))
}

func (c *natsCounter) count(stage, class string) {
	c.req[stage]++
	if c.byClass[stage] == nil {
		c.byClass[stage] = map[string]int{}
	}
	c.byClass[stage][class]++
}

// natsClass names what a request does: a JetStream API call, a key-value
// or object-store write, or a publish to one of the pipeline's streams.
func natsClass(subj string) string {
	switch {
	case strings.HasPrefix(subj, "$JS.API."):
		tok := strings.Split(subj, ".")
		if len(tok) >= 4 && (tok[2] == "DIRECT" || tok[2] == "CONSUMER" || tok[2] == "STREAM") {
			if tok[3] == "MSG" && len(tok) >= 5 {
				return tok[2] + ".MSG." + tok[4] + " " + lastStream(tok)
			}
			if len(tok) >= 5 {
				return tok[2] + "." + tok[3] + " " + tok[4]
			}
		}
		return strings.Join(tok[2:min(len(tok), 4)], ".")
	case strings.HasPrefix(subj, "$KV."):
		// $KV.<bucket>.<key kind>.<id>
		tok := strings.SplitN(subj, ".", 4)
		if len(tok) < 3 {
			return "kv"
		}
		return "kv " + tok[1] + " " + tok[2]
	case strings.HasPrefix(subj, "$O."):
		return "object store"
	}
	tok := strings.Split(subj, ".")
	if len(tok) >= 3 {
		return "publish " + tok[1] + "." + tok[2]
	}
	return "publish " + subj
}

func lastStream(tok []string) string {
	if len(tok) >= 6 {
		return tok[5]
	}
	return ""
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func (c *natsCounter) decided(prefix string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for id := range c.ids {
		if strings.HasPrefix(id, prefix) {
			n++
		}
	}
	return n
}

func (c *natsCounter) snapshot() natsCounts {
	c.mu.Lock()
	defer c.mu.Unlock()
	dropped, _ := c.sub.Dropped()
	return natsCounts{requests: c.req, byClass: c.byClass, acks: c.acks, dropped: dropped}
}
