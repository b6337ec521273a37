package bench

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/kycpipe/kycpipe/internal/console"
	"github.com/kycpipe/kycpipe/pkg/messages"
	"github.com/kycpipe/kycpipe/pkg/pipeline"
)

// The console step: a million job records (record, index entry, reference
// entries, execution index; a decided job's accepted event and decision
// too) written straight to their subjects with asynchronous publishes; then
// the console, in this process on a nats-server of its own, answers the
// jobs page with each filter and each search, a job's page and the
// overview, each many times; and the cost of keeping the index per
// submission is measured on a job's whole life (created, then three state
// changes) with and without the index.

// ConsoleResult is the console step's figures.
type ConsoleResult struct {
	Jobs     int
	Seed     time.Duration
	Messages int // messages the seeding wrote
	Shift    time.Duration
	Pages    []ConsolePage
	Index    IndexCost
}

// ConsolePage is one URL's latencies.
type ConsolePage struct {
	Kind   string // list, search, job, overview
	Name   string
	URL    string
	Rows   int           // rows the (last) answer showed
	First  time.Duration // the first request (cold caches), not in Lat
	Lat    Latencies
	Target time.Duration
	next   func() string // the URL of the next request
}

// IndexCost is what keeping the index costs per submission: the CPU of
// the writer (the stages) and of nats-server for one job's life with the
// index, minus the same without it.
type IndexCost struct {
	Jobs                        int
	WriterWith, WriterWithout   time.Duration
	ServerWith, ServerWithout   time.Duration
	WriterPerJob, ServerPerJob  time.Duration
	ElapsedWith, ElapsedWithout time.Duration
}

// ConsoleOptions size the step.
type ConsoleOptions struct {
	Jobs      int // records seeded (default 1,000,000)
	Samples   int // requests per URL (default 40, after 3 warm-ups)
	IndexJobs int // lives of the index-cost run (default 5000)
	// ServerCPU reads nats-server's CPU time (optional).
	ServerCPU func() time.Duration
	// ProfileDir, when set, gets CPU profiles of each page after the
	// measurement (so they do not weigh on it): the page is requested for
	// ProfileFor (default 10s) while this process (the console) and
	// nats-server (its profiler at NATSProfileURL, optional) are profiled,
	// into <n>-<page>.console.pprof and <n>-<page>.nats.pprof.
	ProfileDir     string
	NATSProfileURL string
	ProfileFor     time.Duration
	Logf           func(format string, args ...any)
}

// console runs the step on a nats-server of its own (with its profiler
// listening when profiles are asked for).
func (b *runner) console(ctx context.Context) error {
	var natsArgs []string
	profAddr := ""
	if b.o.ProfileDir != "" {
		addr, err := freeAddr()
		if err != nil {
			return err
		}
		_, port, _ := net.SplitHostPort(addr)
		natsArgs, profAddr = []string{"--profile", port}, addr
	}
	s, err := NewStack(ctx, b.binDir, filepath.Join(b.o.WorkDir, "console"), b.o.NATSEnv, natsArgs...)
	if err != nil {
		return err
	}
	defer s.Close()
	nc, err := nats.Connect(s.NATSURL)
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(8192))
	if err != nil {
		return err
	}
	o := ConsoleOptions{Jobs: b.o.ConsoleJobs, Logf: b.o.Logf, ServerCPU: func() time.Duration { st, _ := s.Stat("nats"); return st.CPU }}
	if b.o.ProfileDir != "" {
		o.ProfileDir = filepath.Join(b.o.ProfileDir, "console")
		o.NATSProfileURL = "http://" + profAddr
	}
	if b.o.ConsoleJobs < 100_000 {
		o.Samples, o.IndexJobs = 10, 500
	}
	b.r.Console, err = ConsoleBench(ctx, js, o)
	return err
}

// seeded remembers a few seeded jobs to look for.
type seeded struct {
	id, cref, uref, exec string
}

// seedCapabilities are the capabilities of an ID-and-selfie workflow's
// decision of type typ, as the retriever summarizes them.
func seedCapabilities(typ string) map[string][]messages.CapabilitySummary {
	return map[string][]messages.CapabilitySummary{
		"usability":   {{Decision: messages.DecisionPassed, Label: "OK", Credential: "ID"}, {Decision: messages.DecisionPassed, Label: "OK", Credential: "SELFIE"}},
		"extraction":  {{Decision: messages.DecisionPassed, Label: "OK"}},
		"dataChecks":  {{Decision: messages.DecisionPassed, Label: "OK"}},
		"imageChecks": {{Decision: typ, Label: "OK", Data: &messages.CapabilityData{FaceSearchStatus: "DONE"}}},
		"liveness":    {{Decision: messages.DecisionPassed, Label: "OK", Data: &messages.CapabilityData{LivenessType: "JUMIO_STANDARD"}}},
		"similarity":  {{Decision: messages.DecisionPassed, Label: "MATCH", Data: &messages.CapabilityData{Similarity: "MATCH"}}},
	}
}

// Seeding distribution: states, decisions and regions in the proportions
// of a busy production day.
var (
	seedStates = []struct {
		status string
		share  float64
	}{{pipeline.StatusDecided, 0.85}, {pipeline.StatusLaunched, 0.05}, {pipeline.StatusAccepted, 0.04}, {pipeline.StatusFailed, 0.03},
		{pipeline.StatusFinalized, 0.02}, {pipeline.StatusAccountCreated, 0.01}}
	seedDecisions = []struct {
		typ   string
		share float64
	}{{messages.DecisionPassed, 0.75}, {messages.DecisionRejected, 0.12}, {messages.DecisionWarning, 0.08}, {messages.DecisionNotExecuted, 0.03}, {messages.DecisionExpired, 0.02}}
	seedRegions = []struct {
		region string
		share  float64
	}{{"amer-1", 0.6}, {"emea-1", 0.3}, {"apac-1", 0.1}}
)

func pick[T any](r *rand.Rand, items []T, share func(T) float64) T {
	x := r.Float64()
	for _, it := range items {
		if x -= share(it); x < 0 {
			return it
		}
	}
	return items[len(items)-1]
}

// SeedConsoleJobs writes n jobs as the pipeline leaves them, with the
// seeding distribution, and returns a sample of them and how many
// messages it wrote. Every job has its index entry and reference entries;
// jobs with a Jumio execution have the execution index; decided jobs list
// their accepted event and decision, both stored.
func SeedConsoleJobs(ctx context.Context, js jetstream.JetStream, topo pipeline.Topology, n int) ([]seeded, int, error) {
	subj := topo.Subjects
	r := rand.New(rand.NewPCG(42, uint64(n)))
	var sample []seeded
	written := 0
	// A full window of pending publishes waits for acks instead of failing.
	stall := jetstream.WithStallWait(time.Minute)
	// Batches small enough that the seeding's first and second halves are
	// many batches each (the time filters cut between them).
	batch := min(2000, max(n/8, 100))
	type pending struct {
		rec           *pipeline.JobRecord
		event, decide jetstream.PubAckFuture
	}
	for done := 0; done < n; done += batch {
		m := min(batch, n-done)
		ps := make([]pending, 0, m)
		for i := range m {
			k := done + i
			now := time.Now().UTC() // created now: before its entry is written, as in the pipeline
			id := messages.NewJobID(now)
			st := pick(r, seedStates, func(s struct {
				status string
				share  float64
			}) float64 {
				return s.share
			}).status
			region := pick(r, seedRegions, func(s struct {
				region string
				share  float64
			}) float64 {
				return s.share
			}).region
			rec := &pipeline.JobRecord{JobID: id, Status: st, Region: region, Channel: messages.ChannelAPI,
				CustomerInternalReference: fmt.Sprintf("bench-order-%d", k), UserReference: fmt.Sprintf("bench-customer-%d", k),
				CreatedAt: now, UpdatedAt: now, Timeline: []pipeline.TimelineEntry{{At: now, Status: pipeline.StatusAccepted, Note: "seeded"}}}
			if st != pipeline.StatusAccepted {
				rec.AccountID, rec.WorkflowExecutionID = uuid.NewString(), uuid.NewString()
				rec.Timeline = append(rec.Timeline, pipeline.TimelineEntry{At: now, Status: st})
			}
			if st == pipeline.StatusFailed {
				rec.LastError = &messages.ErrorInfo{Code: messages.ErrCodeJumioRejected, Message: "jumio: create account: 400 Bad Request", Status: 400}
			}
			p := pending{rec: rec}
			if st == pipeline.StatusDecided {
				typ := pick(r, seedDecisions, func(s struct {
					typ   string
					share float64
				}) float64 {
					return s.share
				}).typ
				rec.Decision, rec.DecidedAt, rec.LastStatus = &messages.DecisionSummary{Type: typ, Label: typ}, now, "PROCESSED"
				caps := seedCapabilities(typ)
				// The record holds the decision's detail as the retriever writes it.
				rec.DecisionDetail = &pipeline.DecisionDetail{Capabilities: caps}
				ev, _ := messages.Marshal(&messages.Event{Kind: messages.KindAccepted, JobID: id, Region: region, CustomerInternalReference: rec.CustomerInternalReference, At: now})
				dec, _ := messages.Marshal(&messages.DecisionEvent{JobID: id, Region: region, AccountID: rec.AccountID, WorkflowExecutionID: rec.WorkflowExecutionID,
					CustomerInternalReference: rec.CustomerInternalReference, UserReference: rec.UserReference, Status: "PROCESSED", Decision: *rec.Decision,
					Capabilities: caps, DecidedAt: now})
				var err error
				if p.event, err = js.PublishMsgAsync(&nats.Msg{Subject: subj.Event(messages.KindAccepted), Data: ev, Header: nats.Header{messages.HeaderJobID: {id}}}, stall); err != nil {
					return nil, 0, err
				}
				if p.decide, err = js.PublishMsgAsync(&nats.Msg{Subject: subj.Decision(typ), Data: dec, Header: nats.Header{messages.HeaderJobID: {id}}}, stall); err != nil {
					return nil, 0, err
				}
				written += 2
			}
			ps = append(ps, p)
			if k%(max(n/200, 1)) == 0 {
				sample = append(sample, seeded{id: id, cref: rec.CustomerInternalReference, uref: rec.UserReference, exec: rec.WorkflowExecutionID})
			}
		}
		if err := waitAsync(ctx, js); err != nil {
			return nil, 0, err
		}
		for _, p := range ps {
			rec := p.rec
			if p.event != nil {
				ea, da := <-p.event.Ok(), <-p.decide.Ok()
				rec.Messages = []pipeline.MessageRef{{Stream: ea.Stream, Seq: ea.Sequence, Kind: "event:accepted", At: rec.DecidedAt}, {Stream: da.Stream, Seq: da.Sequence, Kind: "decision", At: rec.DecidedAt}}
			}
			rb, _ := json.Marshal(rec)
			entry := pipeline.IndexEntry{JobID: rec.JobID, Status: rec.Status, Region: rec.Region, Channel: rec.Channel,
				WorkflowExecutionID: rec.WorkflowExecutionID, CreatedAt: rec.CreatedAt, UpdatedAt: rec.UpdatedAt}
			decision := ""
			if rec.Decision != nil {
				decision, entry.Decision = rec.Decision.Type, rec.Decision.Type
			}
			ib, _ := json.Marshal(entry)
			pubs := []*nats.Msg{
				{Subject: "$KV." + subj.BucketJobs() + ".job." + rec.JobID, Data: rb},
				{Subject: subj.IndexJob(rec.Status, rec.Region, decision, rec.JobID), Data: ib},
				{Subject: subj.IndexRef("c", messages.RefHash(rec.CustomerInternalReference), rec.JobID)},
				{Subject: subj.IndexRef("u", messages.RefHash(rec.UserReference), rec.JobID)},
			}
			if rec.WorkflowExecutionID != "" {
				pubs = append(pubs, &nats.Msg{Subject: "$KV." + subj.BucketJobs() + ".exec." + rec.WorkflowExecutionID, Data: []byte(rec.JobID)})
			}
			for _, m := range pubs {
				if _, err := js.PublishMsgAsync(m, stall); err != nil {
					return nil, 0, err
				}
			}
			written += len(pubs)
		}
		if err := waitAsync(ctx, js); err != nil {
			return nil, 0, err
		}
	}
	return sample, written, nil
}

// ConsoleBench seeds the jobs and measures the console (see the file's
// comment). js must reach a server with nothing of the pipeline yet.
func ConsoleBench(ctx context.Context, js jetstream.JetStream, o ConsoleOptions) (ConsoleResult, error) {
	o.Jobs = max(o.Jobs, 1)
	if o.Samples == 0 {
		o.Samples = 40
	}
	if o.IndexJobs == 0 {
		o.IndexJobs = 5000
	}
	if o.Logf == nil {
		o.Logf = func(string, ...any) {}
	}
	res := ConsoleResult{Jobs: o.Jobs}
	topo := pipeline.Topology{Subjects: messages.MustSubjects("")}.WithDefaults()
	if err := pipeline.Provision(ctx, js, topo); err != nil {
		return res, err
	}

	// The index's cost first, on an empty store.
	var err error
	if res.Index, err = indexCost(ctx, js, topo, o); err != nil {
		return res, fmt.Errorf("index cost: %w", err)
	}
	o.Logf("index upkeep per submission: writer %s µs, nats-server %s µs", us(res.Index.WriterPerJob), us(res.Index.ServerPerJob))

	o.Logf("seeding %d jobs (records, index and reference entries, execution index; events and decisions of the decided)", o.Jobs)
	seedStart := time.Now()
	sample, written, err := SeedConsoleJobs(ctx, js, topo, o.Jobs)
	if err != nil {
		return res, fmt.Errorf("seed: %w", err)
	}
	res.Seed, res.Messages = time.Since(seedStart), written
	o.Logf("seeded in %s (%d messages, %.0f msg/s)", res.Seed.Round(time.Second), written, float64(written)/res.Seed.Seconds())

	// The console's clock stands 15 minutes after the middle of the
	// seeding, so that the time filters cut the seeded jobs in the middle:
	// "created in the last 15 minutes" and "unchanged for over 15 minutes"
	// each select about half of them.
	mid := seedStart.Add(res.Seed / 2)
	consoleNow := mid.Add(15 * time.Minute)
	res.Shift = time.Until(consoleNow)
	keys, err := pipeline.NewAPIKeys([]string{"bench:read:bench-console-key-0123456789"})
	if err != nil {
		return res, err
	}
	con, err := console.New(ctx, js, console.Config{Topology: topo, APIKeys: keys, Now: func() time.Time { return consoleNow }})
	if err != nil {
		return res, err
	}
	defer con.Close()
	srv := httptest.NewServer(con)
	defer srv.Close()
	client, err := consoleClient(srv.URL, "bench-console-key-0123456789")
	if err != nil {
		return res, err
	}

	r := rand.New(rand.NewPCG(7, 7))
	withExec := make([]seeded, 0, len(sample))
	for _, s := range sample {
		if s.exec != "" {
			withExec = append(withExec, s)
		}
	}
	pickOne := func(pool []seeded) seeded { return pool[r.IntN(len(pool))] }
	var urls []ConsolePage
	list := func(name, query string) {
		u := "/console/jobs" + query
		urls = append(urls, ConsolePage{Kind: "list", Name: name, URL: u, Target: 100 * time.Millisecond, next: func() string { return u }})
	}
	list("no filter", "")
	// The second page of the unfiltered list, from the first's cursor.
	first, _, err := client.get("/console/jobs")
	if err != nil {
		return res, err
	}
	if m := nextRE.FindStringSubmatch(first); m != nil {
		list("no filter, second page", strings.TrimPrefix(strings.ReplaceAll(m[1], "&amp;", "&"), "/console/jobs"))
	}
	for _, s := range []string{pipeline.StatusAccepted, pipeline.StatusAccountCreated, pipeline.StatusLaunched, pipeline.StatusFinalized, pipeline.StatusDecided, pipeline.StatusFailed} {
		list("state "+s, "?status="+s)
	}
	for _, d := range messages.DecisionTypes {
		list("decision "+d, "?decision="+d)
	}
	for _, rg := range []string{"amer-1", "emea-1", "apac-1"} {
		list("region "+rg, "?region="+rg)
	}
	list("created in the last 15 min", "?age=15m")
	list("unchanged for over 15 min", "?idle=15m")
	list("FAILED in apac-1", "?status=FAILED&region=apac-1")
	list("EXPIRED in apac-1", "?decision=EXPIRED&region=apac-1")
	list("FAILED, created in the last 15 min", "?status=FAILED&age=15m")
	list("100 per page", "?limit=100")
	for _, sr := range []struct {
		name string
		q    func() string
	}{
		{"by job ID", func() string { return pickOne(sample).id }},
		{"by customerInternalReference", func() string { return pickOne(sample).cref }},
		{"by userReference", func() string { return pickOne(sample).uref }},
		{"by workflow execution ID", func() string { return pickOne(withExec).exec }},
	} {
		urls = append(urls, ConsolePage{Kind: "search", Name: sr.name, URL: "/console/jobs?q=…", Target: 100 * time.Millisecond,
			next: func() string { return "/console/jobs?q=" + url.QueryEscape(sr.q()) }})
	}
	urls = append(urls, ConsolePage{Kind: "job", Name: "a job's page", URL: "/console/jobs/{jobId}", Target: 50 * time.Millisecond,
		next: func() string { return "/console/jobs/" + pickOne(sample).id }})
	urls = append(urls, ConsolePage{Kind: "overview", Name: "overview, first (counts every state)", URL: "/console/",
		next: func() string { return "/console/" }})

	for i := range urls {
		p := &urls[i]
		warm, n := 3, o.Samples
		if p.Kind == "overview" {
			warm, n = 0, 1 // the first answer is the one that counts
		}
		for k := -warm; k < n; k++ {
			u := p.next()
			body, d, err := client.get(u)
			if err != nil {
				return res, fmt.Errorf("%s: %w", p.Name, err)
			}
			if k == -warm {
				p.First = d
			}
			if k < 0 {
				continue
			}
			p.Lat = append(p.Lat, d)
			p.Rows = strings.Count(body, `<td><a href="/console/jobs/`)
			if p.Kind == "search" && p.Rows == 0 {
				return res, fmt.Errorf("search %s found nothing (%s)", p.Name, u)
			}
		}
		p.Lat.sort()
		o.Logf("%-40s first %s ms, p50 %s ms, p95 %s ms, %d rows", p.Name, ms(p.First), ms(p.Lat.P(0.5)), ms(p.Lat.P(0.95)), p.Rows)
	}
	res.Pages = urls
	if o.ProfileDir != "" {
		if err := profilePages(ctx, client, urls, o); err != nil {
			return res, fmt.Errorf("profiles: %w", err)
		}
	}
	return res, nil
}

// profilePages requests each page in a row for o.ProfileFor while this
// process and nats-server are profiled (see ConsoleOptions.ProfileDir).
func profilePages(ctx context.Context, client *consoleBrowser, pages []ConsolePage, o ConsoleOptions) error {
	if err := os.MkdirAll(o.ProfileDir, 0o755); err != nil {
		return err
	}
	d := cmp.Or(o.ProfileFor, 10*time.Second)
	for i, p := range pages {
		base := filepath.Join(o.ProfileDir, fmt.Sprintf("%02d-%s", i+1, profileSlug(p.Name)))
		f, err := os.Create(base + ".console.pprof")
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			f.Close()
			return err
		}
		server := make(chan error, 1)
		go func() { server <- fetchProfile(ctx, o.NATSProfileURL, d, base+".nats.pprof") }()
		n := 0
		for end := time.Now().Add(d); time.Now().Before(end); n++ {
			if _, _, err := client.get(p.next()); err != nil {
				pprof.StopCPUProfile()
				f.Close()
				return fmt.Errorf("%s: %w", p.Name, err)
			}
		}
		pprof.StopCPUProfile()
		if err := f.Close(); err != nil {
			return err
		}
		if err := <-server; err != nil {
			return fmt.Errorf("nats-server profile of %s: %w", p.Name, err)
		}
		files := base + ".console.pprof"
		if o.NATSProfileURL != "" {
			files += ", " + base + ".nats.pprof"
		}
		o.Logf("profiled %-40s %d requests in %s: %s", p.Name, n, d, files)
	}
	return nil
}

// fetchProfile writes nats-server's CPU profile over d to file (nothing
// without a profiler URL).
func fetchProfile(ctx context.Context, baseURL string, d time.Duration, file string) error {
	if baseURL == "" {
		return nil
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("%s/debug/pprof/profile?seconds=%d", baseURL, max(int(d/time.Second), 1)), nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", req.URL, resp.Status)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	return os.WriteFile(file, b, 0o644)
}

var slugRE = regexp.MustCompile(`[^a-z0-9]+`)

func profileSlug(name string) string {
	return strings.Trim(slugRE.ReplaceAllString(strings.ToLower(name), "-"), "-")
}

var nextRE = regexp.MustCompile(`<a href="([^"]+)" rel="next">`)

// consoleBrowser is a signed-in console client.
type consoleBrowser struct {
	base string
	hc   *http.Client
}

func consoleClient(base, key string) (*consoleBrowser, error) {
	jar, _ := cookiejar.New(nil)
	c := &consoleBrowser{base: base, hc: &http.Client{Jar: jar, Timeout: time.Minute}}
	form, _, err := c.get("/console/signin")
	if err != nil {
		return nil, err
	}
	m := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindStringSubmatch(form)
	if m == nil {
		return nil, fmt.Errorf("no sign-in form")
	}
	resp, err := c.hc.PostForm(base+"/console/signin", url.Values{"csrf": {m[1]}, "key": {key}, "next": {"/console/jobs"}})
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusOK || resp.Request.URL.Path != "/console/jobs" {
		return nil, fmt.Errorf("sign in: %d at %s", resp.StatusCode, resp.Request.URL.Path)
	}
	return c, nil
}

func (c *consoleBrowser) get(path string) (string, time.Duration, error) {
	start := time.Now()
	resp, err := c.hc.Get(c.base + path)
	if err != nil {
		return "", 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	d := time.Since(start)
	if err != nil {
		return "", 0, err
	}
	if resp.StatusCode != http.StatusOK {
		return "", 0, fmt.Errorf("GET %s: %d", path, resp.StatusCode)
	}
	return string(b), d, nil
}

// indexCost runs o.IndexJobs job lives (create, then ACCOUNT_CREATED,
// FINALIZED, DECIDED) through a job store that keeps the index and through
// one that does not, and compares the CPU of this process and of
// nats-server.
func indexCost(ctx context.Context, js jetstream.JetStream, topo pipeline.Topology, o ConsoleOptions) (IndexCost, error) {
	kv, err := js.KeyValue(ctx, topo.Subjects.BucketJobs())
	if err != nil {
		return IndexCost{}, err
	}
	idx, err := pipeline.NewJobIndex(ctx, js, topo)
	if err != nil {
		return IndexCost{}, err
	}
	cost := IndexCost{Jobs: o.IndexJobs}
	bare := pipeline.NewJobStore(kv, nil)
	lives := func(store *pipeline.JobStore, prefix string) (writer, server, elapsed time.Duration, err error) {
		serverCPU := o.ServerCPU
		if serverCPU == nil {
			serverCPU = func() time.Duration { return 0 }
		}
		self0, srv0, start := selfCPU(), serverCPU(), time.Now()
		for i := range o.IndexJobs {
			now := time.Now().UTC()
			rec, rev, err := store.Create(ctx, &pipeline.JobRecord{JobID: fmt.Sprintf("%s-%d", prefix, i), Status: pipeline.StatusAccepted, Region: "amer-1",
				Channel: messages.ChannelAPI, CustomerInternalReference: fmt.Sprintf("%s-c-%d", prefix, i), UserReference: fmt.Sprintf("%s-u-%d", prefix, i), CreatedAt: now})
			if err != nil {
				return 0, 0, 0, err
			}
			for _, st := range []string{pipeline.StatusAccountCreated, pipeline.StatusFinalized, pipeline.StatusDecided} {
				if rec, rev, err = store.Update(ctx, rec, rev, func(r *pipeline.JobRecord) error {
					r.SetStatus(time.Now(), st, "")
					if st == pipeline.StatusDecided {
						r.Decision = &messages.DecisionSummary{Type: messages.DecisionPassed}
					}
					return nil
				}); err != nil {
					return 0, 0, 0, err
				}
			}
		}
		// Wait for the index to settle: every moved entry purged (the
		// purges run half a second after each move).
		if err := waitAsync(ctx, js); err != nil {
			return 0, 0, 0, err
		}
		if store != bare {
			// Settled: one entry per job and its two reference entries.
			st, err := js.Stream(ctx, topo.Subjects.StreamIndex())
			if err != nil {
				return 0, 0, 0, err
			}
			if err := waitFor(ctx, time.Minute, func() bool {
				info, err := st.Info(ctx)
				return err == nil && info.State.Msgs == uint64(3*o.IndexJobs)
			}); err != nil {
				return 0, 0, 0, fmt.Errorf("the index did not settle: %w", err)
			}
		}
		return selfCPU() - self0, serverCPU() - srv0, time.Since(start), nil
	}
	if cost.WriterWithout, cost.ServerWithout, cost.ElapsedWithout, err = lives(bare, "bare"); err != nil {
		return cost, err
	}
	if cost.WriterWith, cost.ServerWith, cost.ElapsedWith, err = lives(idx.Store(), "indexed"); err != nil {
		return cost, err
	}
	n := time.Duration(max(o.IndexJobs, 1))
	cost.WriterPerJob = max(0, cost.WriterWith-cost.WriterWithout) / n
	cost.ServerPerJob = max(0, cost.ServerWith-cost.ServerWithout) / n
	return cost, nil
}

// consoleMarkdown renders the step's section of docs/BENCHMARKS.md.
func (c ConsoleResult) markdown(p func(format string, a ...any)) {
	if c.Jobs == 0 {
		return
	}
	p("\n### 10. Console at %s jobs\n\n", formatCount(c.Jobs))
	p("%s job records seeded (%d messages: records, index entries, reference entries, execution index; the accepted event and decision of each decided job) in %s with asynchronous publishes; 85%% DECIDED, 5%% LAUNCHED, 4%% ACCEPTED, 3%% FAILED, 2%% FINALIZED, 1%% ACCOUNT_CREATED; decisions 75%% PASSED, 12%% REJECTED, 8%% WARNING, 3%% NOT_EXECUTED, 2%% EXPIRED; regions 60/30/10%%. ",
		formatCount(c.Jobs), c.Messages, c.Seed.Round(time.Second))
	p("The console runs in the benchmark process against its own nats-server, signed in, and each URL is requested %d times in a row after 3 warm-ups (searches and job pages pick a different seeded job each time); the first warm-up, on the server's cold caches, is shown apart (it reads the stream's blocks from disk). ", sampleCount(c.Pages))
	p("Its clock stands 15 minutes after the middle of the seeding (%s ahead of the real one when it started), so that the time filters cut the seeded jobs in the middle: every entry of a seeded index was written in the minutes of the seeding.\n\n", c.Shift.Round(time.Second))
	p("| page | filter or search | rows | first request | p50 | p95 | max | target (p95) |\n| --- | --- | --- | --- | --- | --- | --- | --- |\n")
	for _, pg := range c.Pages {
		target := "—"
		if pg.Target > 0 {
			target = fmt.Sprintf("≤ %d ms", pg.Target/time.Millisecond)
			if pg.Lat.P(0.95) > pg.Target {
				target += " **missed**"
			}
		}
		p("| %s | %s | %d | %s ms | %s ms | %s ms | %s ms | %s |\n", pg.Kind, pg.Name, pg.Rows, ms(pg.First), ms(pg.Lat.P(0.5)), ms(pg.Lat.P(0.95)), ms(pg.Lat.P(1)), target)
	}
	ix := c.Index
	p("\nKeeping the index, per submission (%d job lives: created, then ACCOUNT_CREATED, FINALIZED, DECIDED; each write of a new state publishes the job's entry, the creation its two reference entries, and each move purges the old entry): ", ix.Jobs)
	p("**%s µs of CPU in the writer** (the stages) and **%s µs in nats-server**; the same lives took %s / %s of writer / server CPU with the index and %s / %s without.\n",
		us(ix.WriterPerJob), us(ix.ServerPerJob), ix.WriterWith.Round(time.Millisecond), ix.ServerWith.Round(time.Millisecond), ix.WriterWithout.Round(time.Millisecond), ix.ServerWithout.Round(time.Millisecond))
}

func sampleCount(pages []ConsolePage) int {
	for _, p := range pages {
		if p.Kind == "list" {
			return len(p.Lat)
		}
	}
	return 0
}

func formatCount(n int) string {
	s := fmt.Sprint(n)
	var b strings.Builder
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// consoleTargets are the step's rows of the targets table.
func (c ConsoleResult) targets() []TargetRow {
	if c.Jobs == 0 {
		return nil
	}
	worst := map[string]ConsolePage{}
	for _, p := range c.Pages {
		if p.Target == 0 {
			continue
		}
		if w, ok := worst[p.Kind]; !ok || p.Lat.P(0.95) > w.Lat.P(0.95) {
			worst[p.Kind] = p
		}
	}
	var rows []TargetRow
	for _, k := range []struct{ kind, label string }{{"list", "console jobs page p95, slowest filter"}, {"search", "console search p95, slowest kind"}, {"job", "console job page p95"}} {
		w, ok := worst[k.kind]
		if !ok {
			continue
		}
		p95 := w.Lat.P(0.95)
		rows = append(rows, TargetRow{Name: fmt.Sprintf("%s (%s jobs)", k.label, formatCount(c.Jobs)), Measured: fmt.Sprintf("%s ms (%s)", ms(p95), w.Name),
			Target: fmt.Sprintf("≤ %d ms", w.Target/time.Millisecond), Met: p95 <= w.Target})
	}
	rows = append(rows, TargetRow{Name: "index upkeep per submission (CPU)", Measured: fmt.Sprintf("writer %s µs + nats-server %s µs", us(c.Index.WriterPerJob), us(c.Index.ServerPerJob)), Target: "reported", Met: true})
	return rows
}
