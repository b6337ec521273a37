package kycctl

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/kycpipe/kycpipe/internal/config"
	"github.com/kycpipe/kycpipe/pkg/jumio"
	"github.com/kycpipe/kycpipe/pkg/messages"
	"github.com/kycpipe/kycpipe/pkg/pipeline"
)

// Check outcomes.
const (
	checkOK   = "OK"
	checkWarn = "WARN"
	checkFail = "FAIL"
)

func doctorCommand() command {
	return command{
		name: "doctor", synopsis: "[--sample 1s] [--max-backlog N] [--max-redelivered N] [--check-timeout 3s]",
		summary: "check the deployment: configuration, NATS, JetStream, every resource, backlogs, dead letters, permissions, Jumio",
		help: `Each check prints OK, WARN or FAIL with a one-line explanation; the exit status is non-zero when
any check FAILs. Checks: the configuration (subject prefix, default region, topology settings);
NATS reachable; JetStream enabled for the account (and its storage use); every stream, consumer
and bucket present (and replicas as configured); each consumer's health (backlog, ack pending,
redeliveries, whether a process pulls, and whether the backlog grows over --sample); dead letters;
what the connected user may read; and Jumio: with JUMIO_CLIENT_ID and JUMIO_CLIENT_SECRET
(plus JUMIO_BASE_URL or --jumio-region; and each region's own JUMIO_CLIENT_ID_<REGION> …) set, it
obtains an OAuth token for each configured region (the token is not printed), then checks each
permission the pipeline needs with a harmless call on IDs that name nothing: initiate (PUT of an
account that does not exist), retrieve (status of an execution that does not exist) and delete
(DELETE of an account that does not exist); 404 means permitted, 403 that the permission is missing.`,
		jumio: true,
		raw:   true,
		flags: func(o *opts, s *config.Set) {
			s.Duration(&o.sample, "sample", "", time.Second, "read the consumers twice this far apart to see whether backlogs grow (0: once)")
			s.Int(&o.maxBacklog, "max-backlog", "", 1000, "WARN when a consumer has more undelivered messages than this")
			s.Int(&o.maxRedelivered, "max-redelivered", "", 10, "WARN when a consumer has more redelivered, unacknowledged messages than this")
			s.Duration(&o.checkTimeout, "check-timeout", "", 3*time.Second, "bound on each request to NATS (a request the user may not make gets no answer)")
		},
		run: doctor,
	}
}

type checkResult struct {
	Check  string `json:"check"`
	Status string `json:"status"`
	Detail string `json:"detail"`
}

type doctorView struct {
	OK       bool          `json:"ok"`
	Failures int           `json:"failures"`
	Warnings int           `json:"warnings"`
	Checks   []checkResult `json:"checks"`
}

type doctorRun struct {
	e       *env
	results []checkResult

	mu         sync.Mutex
	violations []string            // permission violations the server reported ("publish $JS.API…")
	deniedInfo map[string][]string // resource kind → names whose info the user could not read
	deniedUse  []string            // what kycctl's commands read and the user could not
}

func (d *doctorRun) add(check, status, format string, args ...any) {
	d.results = append(d.results, checkResult{Check: check, Status: status, Detail: fmt.Sprintf(format, args...)})
}

func (d *doctorRun) denyInfo(r resource) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.deniedInfo == nil {
		d.deniedInfo = map[string][]string{}
	}
	d.deniedInfo[r.Kind] = append(d.deniedInfo[r.Kind], r.Display)
}

func (d *doctorRun) denyUse(what string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !slices.Contains(d.deniedUse, what) {
		d.deniedUse = append(d.deniedUse, what)
	}
}

// refused returns the permission violation the server reported for a
// request subject ending in suffix (JetStream API subjects may carry a
// domain: $JS.<domain>.API.…).
func (d *doctorRun) refused(suffix string) (string, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, v := range d.violations {
		if strings.HasSuffix(v, suffix) {
			return v, true
		}
	}
	return "", false
}

// infoSubject is the suffix of the JetStream API subject reading r's info.
func infoSubject(r resource) string {
	if r.Kind == kindConsumer {
		return "API.CONSUMER.INFO." + r.Stream + "." + r.Name
	}
	return "API.STREAM.INFO." + r.Stream
}

// bounded returns a context for one request.
func (d *doctorRun) bounded(ctx context.Context) (context.Context, context.CancelFunc) {
	if d.e.o.checkTimeout <= 0 {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, d.e.o.checkTimeout)
}

func doctor(ctx context.Context, e *env) error {
	if len(e.o.positional) > 0 {
		return fmt.Errorf("unexpected arguments: %s", strings.Join(e.o.positional, " "))
	}
	d := &doctorRun{e: e}
	if d.checkConfig() && d.checkNATS() && d.checkJetStream(ctx) {
		d.checkResources(ctx)
		d.checkDeadLetters(ctx)
		d.checkPermissions(ctx)
	}
	d.checkJumio(ctx)

	v := doctorView{Checks: d.results}
	for _, r := range d.results {
		switch r.Status {
		case checkFail:
			v.Failures++
		case checkWarn:
			v.Warnings++
		}
	}
	v.OK = v.Failures == 0
	err := e.emit(v, func(w *tabwriter.Writer) {
		fmt.Fprintln(w, "STATUS\tCHECK\tDETAIL")
		for _, r := range v.Checks {
			fmt.Fprintf(w, "%s\t%s\t%s\n", r.Status, r.Check, r.Detail)
		}
		fmt.Fprintf(w, "\n%d check(s): %d failed, %d warning(s)\n", len(v.Checks), v.Failures, v.Warnings)
	})
	if err == nil && v.Failures > 0 {
		err = fmt.Errorf("doctor: %d check(s) failed", v.Failures)
	}
	return err
}

func (d *doctorRun) checkConfig() bool {
	c := &d.e.common
	ok := true
	if s, err := messages.NewSubjects(c.SubjectPrefix); err != nil {
		d.add("config: subject prefix", checkFail, "KYCPIPE_SUBJECT_PREFIX (--subject-prefix): %v", err)
		ok = false
	} else {
		d.add("config: subject prefix", checkOK, "%s (subjects %s.>, streams %s, …)", s.Prefix(), s.Prefix(), s.StreamJobs())
	}
	if r, err := jumio.ParseRegion(c.Region); err != nil {
		d.add("config: default region", checkFail, "JUMIO_REGION (--jumio-region) %q: want amer-1, emea-1, apac-1 (or US, EU, SG)", c.Region)
	} else {
		d.add("config: default region", checkOK, "%s", r)
	}
	if !ok {
		return false
	}
	t := c.Topology()
	if err := t.Validate(); err != nil {
		d.add("config: topology", checkFail, "%s", strings.ReplaceAll(err.Error(), "\n", "; "))
		return false
	}
	d.add("config: topology", checkOK, "%d replica(s), ack wait %s, job queue up to %d messages / %s", t.Replicas, t.WorkerAckWait, t.JobsMaxMsgs, bytesHuman(uint64(max(t.JobsMaxBytes, 0))))
	return true
}

var violationRE = regexp.MustCompile(`(?i)(publish|subscription) to "([^"]+)"`)

func (d *doctorRun) checkNATS() bool {
	if err := d.e.connect(); err != nil {
		d.add("nats", checkFail, "%v", err)
		return false
	}
	nc := d.e.nc
	nc.SetErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
		if !errors.Is(err, nats.ErrPermissionViolation) {
			return
		}
		d.mu.Lock()
		defer d.mu.Unlock()
		what := err.Error()
		if m := violationRE.FindStringSubmatch(what); m != nil {
			what = strings.ToLower(m[1]) + " " + m[2]
		}
		if !slices.Contains(d.violations, what) {
			d.violations = append(d.violations, what)
		}
	})
	detail := fmt.Sprintf("connected to %s (server %s, version %s", nc.ConnectedUrlRedacted(), nc.ConnectedServerName(), nc.ConnectedServerVersion())
	if cl := nc.ConnectedClusterName(); cl != "" {
		detail += ", cluster " + cl
	}
	if rtt, err := nc.RTT(); err == nil {
		detail += ", round trip " + rtt.Round(10*time.Microsecond).String()
	}
	d.add("nats", checkOK, "%s)", detail)
	return true
}

func (d *doctorRun) checkJetStream(ctx context.Context) bool {
	cctx, cancel := d.bounded(ctx)
	defer cancel()
	ai, err := d.e.js.AccountInfo(cctx)
	switch {
	case errors.Is(err, jetstream.ErrJetStreamNotEnabled):
		d.add("jetstream", checkFail, "JetStream is not enabled on the server (start nats-server with -js)")
		return false
	case errors.Is(err, jetstream.ErrJetStreamNotEnabledForAccount):
		d.add("jetstream", checkFail, "JetStream is not enabled for this account")
		return false
	case err != nil:
		d.add("jetstream", checkFail, "no account information: %s", d.explain(err))
		return false
	}
	detail := fmt.Sprintf("enabled: %d stream(s), %d consumer(s), %s on disk, %s in memory", ai.Streams, ai.Consumers, bytesHuman(ai.Store), bytesHuman(ai.Memory))
	if ai.Domain != "" {
		detail += ", domain " + ai.Domain
	}
	status := checkOK
	if lim := ai.Limits.MaxStore; lim > 0 && float64(ai.Store) > 0.8*float64(lim) {
		status = checkWarn
		detail += fmt.Sprintf("; storage is %.0f%% of the account's limit (%s)", 100*float64(ai.Store)/float64(lim), bytesHuman(uint64(lim)))
	}
	d.add("jetstream", status, "%s", detail)
	return true
}

// explain describes a request error, naming permission problems.
func (d *doctorRun) explain(err error) string {
	switch {
	case isPermission(err):
		return "permission denied (" + err.Error() + ")"
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, nats.ErrTimeout):
		return fmt.Sprintf("no answer within %s (not permitted, or JetStream unavailable)", d.e.o.checkTimeout)
	}
	return err.Error()
}

// explainRequest is explain for a request whose subject ends in suffix:
// a permission violation the server reported for it is named.
func (d *doctorRun) explainRequest(err error, suffix string) string {
	if v, ok := d.refused(suffix); ok {
		return "permission denied (the server refused " + v + ")"
	}
	return d.explain(err)
}

func isPermission(err error) bool {
	return err != nil && (errors.Is(err, nats.ErrPermissionViolation) || strings.Contains(strings.ToLower(err.Error()), "permission"))
}

func isNotFound(err error) bool {
	return errors.Is(err, jetstream.ErrStreamNotFound) || errors.Is(err, jetstream.ErrConsumerNotFound) ||
		errors.Is(err, jetstream.ErrBucketNotFound)
}

// serviceOf names the service that pulls from a consumer.
func serviceOf(consumer string) string {
	switch consumer {
	case pipeline.ConsumerWorker:
		return "worker"
	case pipeline.ConsumerDLQSweeper:
		return "worker or retriever"
	case pipeline.ConsumerNotifierEvents, pipeline.ConsumerNotifierDecisions, pipeline.ConsumerNotifierDelivery:
		return "notifier"
	}
	return "retriever"
}

func (d *doctorRun) describeAll(ctx context.Context, list []resource) ([]resourceRow, []error) {
	rows := make([]resourceRow, len(list))
	errs := make([]error, len(list))
	var wg sync.WaitGroup
	for i, r := range list {
		wg.Go(func() {
			cctx, cancel := d.bounded(ctx)
			defer cancel()
			rows[i], errs[i] = describe(cctx, d.e.js, r)
		})
	}
	wg.Wait()
	return rows, errs
}

func (d *doctorRun) checkResources(ctx context.Context) {
	e := d.e
	t := e.topo
	list := topologyResources(e.subj)
	rows, errs := d.describeAll(ctx, list)

	// A second look at the consumers shows whether backlogs grow.
	var again []resourceRow
	var againErr []error
	if e.o.sample > 0 {
		var consumers []resource
		for i, r := range list {
			if r.Kind == kindConsumer && errs[i] == nil {
				consumers = append(consumers, r)
			}
		}
		if len(consumers) > 0 {
			timer := time.NewTimer(e.o.sample)
			select {
			case <-ctx.Done():
			case <-timer.C:
				again, againErr = d.describeAll(ctx, consumers)
			}
			timer.Stop()
		}
	}
	later := func(display string) *jetstream.ConsumerInfo {
		for i, r := range again {
			if r.Name == display && againErr[i] == nil {
				return r.consumer
			}
		}
		return nil
	}

	present := true
	for i, r := range list {
		name := r.Kind + " " + r.Display
		row, err := rows[i], errs[i]
		if err != nil {
			present = false
			switch {
			case isNotFound(err):
				d.add(name, checkFail, "missing (run kycctl provision, or start a service with --provision=true)")
			default:
				if _, refused := d.refused(infoSubject(r)); refused || isPermission(err) {
					d.denyInfo(r)
				}
				d.add(name, checkFail, "cannot read it: %s", d.explainRequest(err, infoSubject(r)))
			}
			continue
		}
		if r.Kind == kindConsumer {
			d.consumerHealth(name, r, row.consumer, later(r.Display))
			continue
		}
		status := checkOK
		detail := fmt.Sprintf("%d message(s), %s, %d replica(s)", row.Messages, bytesHuman(row.Bytes), row.Replicas)
		var warns []string
		if row.Replicas != t.Replicas {
			warns = append(warns, fmt.Sprintf("%d replica(s) but --stream-replicas is %d (kycctl provision updates it)", row.Replicas, t.Replicas))
		}
		if si := row.stream; si != nil && r.Name == e.subj.StreamJobs() {
			if si.Config.MaxMsgs != t.JobsMaxMsgs || si.Config.MaxBytes != t.JobsMaxBytes {
				warns = append(warns, fmt.Sprintf("limits %d messages / %s but --jobs-max-msgs / --jobs-max-bytes say %d / %s (kycctl provision updates them)",
					si.Config.MaxMsgs, bytesHuman(uint64(max(si.Config.MaxBytes, 0))), t.JobsMaxMsgs, bytesHuman(uint64(max(t.JobsMaxBytes, 0)))))
			}
			if lim := si.Config.MaxMsgs; lim > 0 && float64(si.State.Msgs) > 0.8*float64(lim) {
				warns = append(warns, fmt.Sprintf("%.0f%% of its %d-message limit: ingest refuses jobs (503) when full", 100*float64(si.State.Msgs)/float64(lim), lim))
			}
			if lim := si.Config.MaxBytes; lim > 0 && float64(si.State.Bytes) > 0.8*float64(lim) {
				warns = append(warns, fmt.Sprintf("%.0f%% of its %s limit: ingest refuses jobs (503) when full", 100*float64(si.State.Bytes)/float64(lim), bytesHuman(uint64(lim))))
			}
		}
		if len(warns) > 0 {
			status = checkWarn
			detail += "; " + strings.Join(warns, "; ")
		}
		d.add(name, status, "%s", detail)
	}
	if !present {
		return
	}
	// pipeline.Check is what the services run with --provision=false: it
	// also covers any resource this list would lack.
	cctx, cancel := d.bounded(ctx)
	defer cancel()
	if err := pipeline.Check(cctx, e.js, t); err != nil {
		d.add("topology", checkFail, "pipeline.Check: %s", d.explain(err))
		return
	}
	d.add("topology", checkOK, "all %d resources present (pipeline.Check passes)", len(list))
}

func (d *doctorRun) consumerHealth(name string, r resource, ci, later *jetstream.ConsumerInfo) {
	o := d.e.o
	service := serviceOf(r.Name)
	detail := fmt.Sprintf("pending %d, ack pending %d, redelivered %d, %d pull request(s) waiting", ci.NumPending, ci.NumAckPending, ci.NumRedelivered, ci.NumWaiting)
	if ci.Delivered.Last != nil {
		detail += ", last delivery " + human(time.Since(*ci.Delivered.Last)) + " ago"
	}
	var warns []string
	if o.maxBacklog >= 0 && ci.NumPending > uint64(o.maxBacklog) {
		warns = append(warns, fmt.Sprintf("backlog of %d (over --max-backlog %d): add %ss or look for a stall", ci.NumPending, o.maxBacklog, service))
	}
	if later != nil && later.NumPending > ci.NumPending {
		warns = append(warns, fmt.Sprintf("backlog growing: %d → %d in %s", ci.NumPending, later.NumPending, o.sample))
	}
	// Poll tasks wait as redeliveries by design; elsewhere many
	// redeliveries mean crashes, timeouts or Jumio failures.
	if r.Name != pipeline.ConsumerRetrieverPoll && o.maxRedelivered >= 0 && ci.NumRedelivered > o.maxRedelivered {
		warns = append(warns, fmt.Sprintf("%d messages redelivered and not yet acknowledged (over --max-redelivered %d): crashes, timeouts or Jumio failures", ci.NumRedelivered, o.maxRedelivered))
	}
	idle := ci.NumWaiting == 0 && ci.NumAckPending == 0
	if later != nil {
		idle = idle && later.NumWaiting == 0 && later.NumAckPending == 0
	}
	if idle {
		if ci.NumPending > 0 {
			warns = append(warns, fmt.Sprintf("%d message(s) waiting and no process pulling: is a %s running?", ci.NumPending, service))
		} else {
			warns = append(warns, fmt.Sprintf("no process pulling: is a %s running?", service))
		}
	}
	if ci.Paused {
		warns = append(warns, "paused")
	}
	// Drift between the provisioned consumer and this configuration (the
	// services' settings): kycctl provision would change it.
	t := d.e.topo
	if r.Name != pipeline.ConsumerDLQSweeper && ci.Config.AckWait != t.WorkerAckWait {
		warns = append(warns, fmt.Sprintf("ack wait %s but --ack-wait is %s (set the same everywhere; kycctl provision updates it)", ci.Config.AckWait, t.WorkerAckWait))
	}
	if ci.Config.Replicas != 0 && ci.Config.Replicas != t.Replicas {
		warns = append(warns, fmt.Sprintf("%d replica(s) but --stream-replicas is %d", ci.Config.Replicas, t.Replicas))
	}
	if len(warns) > 0 {
		d.add(name, checkWarn, "%s; %s", strings.Join(warns, "; "), detail)
		return
	}
	d.add(name, checkOK, "%s", detail)
}

func (d *doctorRun) checkDeadLetters(ctx context.Context) {
	e := d.e
	cctx, cancel := d.bounded(ctx)
	defer cancel()
	st, err := e.js.Stream(cctx, e.subj.StreamDLQ())
	if err != nil {
		if !isNotFound(err) {
			d.add("dead letters", checkFail, "cannot read %s: %s", e.subj.StreamDLQ(), d.explainRequest(err, "API.STREAM.INFO."+e.subj.StreamDLQ()))
		}
		return // a missing stream is reported above
	}
	info, err := st.Info(cctx, jetstream.WithSubjectFilter(e.subj.DLQs()))
	if err != nil {
		d.add("dead letters", checkFail, "cannot read %s: %s", e.subj.StreamDLQ(), d.explainRequest(err, "API.STREAM.INFO."+e.subj.StreamDLQ()))
		return
	}
	if info.State.Msgs == 0 {
		d.add("dead letters", checkOK, "none")
		return
	}
	var parts []string
	prefix := e.subj.DLQ("")
	for _, subject := range slices.Sorted(maps.Keys(info.State.Subjects)) {
		parts = append(parts, fmt.Sprintf("%s %d", strings.TrimPrefix(subject, prefix), info.State.Subjects[subject]))
	}
	detail := fmt.Sprintf("%d dead letter(s)", info.State.Msgs)
	if len(parts) > 0 {
		detail += " (" + strings.Join(parts, ", ") + ")"
	}
	d.add("dead letters", checkWarn, "%s: kycctl dlq list, then dlq replay", detail)
}

// checkPermissions probes what kycctl's other commands read, and reports
// what the connected user may not do (including what the checks above
// could not read).
func (d *doctorRun) checkPermissions(ctx context.Context) {
	e := d.e
	probe := func(what string, f func(ctx context.Context) error) {
		cctx, cancel := d.bounded(ctx)
		defer cancel()
		if err := f(cctx); err != nil && !isNotFound(err) {
			if isPermission(err) || errors.Is(err, context.DeadlineExceeded) {
				d.denyUse(what)
			} else {
				d.denyUse(what + " (" + err.Error() + ")")
			}
		}
	}
	probe("job records (status, jobs, submit)", func(ctx context.Context) error {
		kv, err := e.js.KeyValue(ctx, e.subj.BucketJobs())
		if err != nil {
			return err
		}
		_, err = kv.Get(ctx, "job.kycctl-doctor-probe")
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			return nil
		}
		return err
	})
	// A job accepted but not yet picked up by a worker is read from its
	// message in the jobs queue, and a missing record is confirmed by the
	// bucket stream's leader (status; submit's repeat check and erase read
	// the same way).
	probe("pending jobs and job records from the stream leader (status, jobs, submit, erase)", func(ctx context.Context) error {
		store, err := e.jobStore(ctx)
		if err != nil {
			return err
		}
		_, err = pipeline.LookupJob(ctx, e.js, store, e.subj, "kycctl-doctor-probe")
		if errors.Is(err, pipeline.ErrJobNotFound) {
			return nil
		}
		return err
	})
	for _, src := range []struct{ what, stream, filter string }{
		{"lifecycle events (status, watch)", e.subj.StreamEvents(), e.subj.Events()},
		{"decisions (status, watch)", e.subj.StreamDecisions(), e.subj.Decisions()},
		{"dead letters (dlq)", e.subj.StreamDLQ(), e.subj.DLQs()},
	} {
		probe(src.what, func(ctx context.Context) error {
			_, err := scanStream(ctx, e.js, src.stream, []string{src.filter}, time.Now(), time.Time{}, 1, func(jetstream.Msg, *jetstream.MsgMetadata) {})
			return err
		})
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	var parts []string
	for _, kind := range []string{kindStream, kindConsumer, kindKV, kindObject} {
		if names := d.deniedInfo[kind]; len(names) > 0 {
			parts = append(parts, fmt.Sprintf("%d %s(s) %s", len(names), kind, strings.Join(names, ", ")))
		}
	}
	var problems []string
	if len(parts) > 0 {
		problems = append(problems, "cannot read the info of "+strings.Join(parts, "; "))
	}
	if len(d.deniedUse) > 0 {
		problems = append(problems, "cannot read "+strings.Join(d.deniedUse, ", "))
	}
	if len(d.violations) > 0 {
		problems = append(problems, fmt.Sprintf("the server refused %d request subject(s)", len(d.violations)))
	}
	if len(problems) == 0 {
		d.add("permissions", checkOK, "can read stream, consumer and bucket info, job records, pending jobs, events, decisions and dead letters")
		return
	}
	d.add("permissions", checkWarn, "%s (kycctl needs a user like deploy/nats's admin)", strings.Join(problems, "; "))
}

func (d *doctorRun) checkJumio(ctx context.Context) {
	j := &d.e.jumio
	if !j.HasCredentials() {
		d.add("jumio", checkWarn, "not checked: JUMIO_CLIENT_ID and JUMIO_CLIENT_SECRET are not set")
		return
	}
	region, err := jumio.ParseRegion(d.e.common.Region)
	if err != nil {
		region = jumio.DefaultRegion
	}
	if err := j.CheckJumio(region); err != nil {
		d.add("jumio", checkFail, "%v", err)
		return
	}
	clients, err := j.Clients(region, zap.NewNop(), nil, nil)
	if err != nil {
		d.add("jumio", checkFail, "%v", err)
		return
	}
	// The default region, then every region with its own settings.
	for _, r := range clients.Regions() {
		name := "jumio"
		if r != region {
			name = "jumio " + string(r)
		}
		d.checkJumioRegion(ctx, clients, r, name)
	}
}

// checkJumioRegion obtains a token for region r, then checks each OAuth
// permission the pipeline needs with a harmless call (pipeline.ProbePermission:
// a PUT on an account that does not exist for initiate, the status of an
// execution that does not exist for retrieve, a DELETE of an account that
// does not exist for delete; 404 means permitted, 403 missing).
func (d *doctorRun) checkJumioRegion(ctx context.Context, clients *pipeline.Clients, r jumio.Region, name string) {
	j := &d.e.jumio
	client, err := clients.Fresh(string(r))
	if err != nil {
		d.add(name, checkFail, "%v", err)
		return
	}
	host := cmp.Or(j.AuthURL, j.BaseURL, r.BaseURL(jumio.ServiceAuth))
	if rs := j.Regions[r]; rs != nil && rs.BaseURL != "" {
		host = rs.BaseURL
	}
	if u, err := url.Parse(host); err == nil && u.Host != "" {
		host = u.Host
	}
	settings := clients.CredentialSettings(r)
	// The token is a secret: it is obtained and dropped.
	_, err = client.AccessToken(ctx)
	var te *jumio.TransportError
	switch {
	case err == nil:
		id := j.ClientID
		if rs := j.Regions[r]; rs != nil && rs.ClientID != "" {
			id = rs.ClientID
		}
		d.add(name, checkOK, "OAuth token obtained from %s for client %s (region %s)", host, id, r)
	case errors.Is(err, jumio.ErrBadRequest), errors.Is(err, jumio.ErrUnauthorized), errors.Is(err, jumio.ErrForbidden):
		// Jumio answers bad client credentials with 400 or 403 (jumio-api.md §10.13).
		detail := fmt.Sprintf("credentials rejected by %s (HTTP %d): check %s", host, jumio.StatusCode(err), settings)
		if errors.Is(err, jumio.ErrForbidden) {
			detail += " and JUMIO_USER_AGENT (Jumio answers 403 to a User-Agent it blocks)"
		}
		d.add(name, checkFail, "%s", detail)
		return
	case errors.As(err, &te):
		d.add(name, checkFail, "%s unreachable: %v", host, err)
		return
	default:
		d.add(name, checkFail, "no token from %s: %v", host, err)
		return
	}
	what := map[jumio.Permission]string{
		jumio.PermissionInitiate: "initiate transactions (account create and update)",
		jumio.PermissionRetrieve: "retrieve transaction details (status, details, images)",
		jumio.PermissionDelete:   "delete transaction details (erasure, retention)",
	}
	for _, perm := range jumio.Permissions {
		check := name + ": " + string(perm) + " permission"
		err := pipeline.ProbePermission(ctx, client, perm)
		switch {
		case err == nil:
			d.add(check, checkOK, "the client may %s", what[perm])
		case errors.Is(err, jumio.ErrForbidden):
			d.add(check, checkFail, "missing: Jumio answers 403 (jumio-api.md §10.6); allow the API credential to %s in the Jumio portal, or use one that may", what[perm])
		case errors.Is(err, jumio.ErrUnauthorized):
			d.add(check, checkFail, "the token is refused at %s's hosts (HTTP 401): a client of another region, or a base URL of another region", r)
		default:
			d.add(check, checkWarn, "not checked: %v", err)
		}
	}
}

func bytesHuman(n uint64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
