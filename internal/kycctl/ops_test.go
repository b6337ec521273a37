package kycctl_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/kycpipe/kycpipe/pkg/pipeline"
	"github.com/kycpipe/kycpipe/pkg/pipeline/pipelinetest"
)

type provisionJSON struct {
	Prefix    string
	Resources []struct {
		Name, Kind string
		Replicas   int
		Messages   uint64
	}
}

// TestProvision: on a fresh NATS server, provision creates every resource
// (pipeline.Check passes), lists them, and updates limits in place.
func TestProvision(t *testing.T) {
	t.Parallel()
	ns, _, js := pipelinetest.RunJetStream(t)
	url := ns.ClientURL()
	ctx := context.Background()
	if err := pipeline.Check(ctx, js, pipeline.Topology{}); err == nil {
		t.Fatal("a fresh server passes the check")
	}

	r := ctl(t, url, "provision")
	if r.err != nil {
		t.Fatalf("provision: %s", r)
	}
	contains(t, r, "NAME", "KIND", "REPLICAS", "MESSAGES",
		"KYC_JOBS ", "KYC_CALLBACKS", "KYC_RETRIEVE", "KYC_EVENTS", "KYC_DECISIONS", "KYC_DLQ", "KYC_ADVISORIES",
		"KYC_JOBS/worker", "KYC_CALLBACKS/retriever-callbacks", "KYC_RETRIEVE/retriever-polls", "KYC_ADVISORIES/dlq-sweeper",
		"KYC_JOBS_STATE", "KYC_RATE_LIMITS", "KYC_IMAGES", "object store", "KYC_WEBHOOKS ", "KYC_WEBHOOK_LOG",
		"KYC_EVENTS/notifier-events", "KYC_DECISIONS/notifier-decisions", "KYC_WEBHOOKS/notifier-deliveries",
		"KYC_WEBHOOK_ENDPOINTS", "KYC_WEBHOOK_ATTEMPTS", "provisioned 21 resources")
	if err := pipeline.Check(ctx, js, pipeline.Topology{}); err != nil {
		t.Fatalf("check after provision: %v", err)
	}

	// Again, with a new job limit: updated in place.
	v := decodeJSON[provisionJSON](t, ctl(t, url, "provision", "--jobs-max-msgs", "500", "--json"))
	if v.Prefix != "kyc" || len(v.Resources) != 21 {
		t.Fatalf("provision --json: %+v", v)
	}
	for _, res := range v.Resources {
		if res.Replicas != 1 {
			t.Errorf("%s: %d replicas", res.Name, res.Replicas)
		}
	}
	st, err := js.Stream(ctx, "KYC_JOBS")
	if err != nil {
		t.Fatal(err)
	}
	if info, _ := st.Info(ctx); info.Config.MaxMsgs != 500 {
		t.Errorf("jobs MaxMsgs = %d", info.Config.MaxMsgs)
	}
	if err := pipeline.Check(ctx, js, pipeline.Topology{}); err != nil {
		t.Fatalf("check after the update: %v", err)
	}
	if r := ctl(t, url, "provision", "--stream-replicas", "9"); r.err == nil {
		t.Errorf("9 replicas accepted: %s", r)
	}

	// No service runs here: a submitted job stays ACCEPTED, never updated;
	// jobs finds it stuck and doctor sees nobody pulls.
	// A one-job queue: full after this submission.
	if r := ctl(t, url, "provision", "--jobs-max-msgs", "1"); r.err != nil {
		t.Fatalf("provision: %s", r)
	}
	const jobID = "kycctl-stuck-1"
	if r := ctl(t, url, "submit", writeFile(t, "job.json", `{"jobId":"`+jobID+`","customerInternalReference":"ctl-stuck","workflowDefinition":{"key":10066},"channel":"API","preparedData":{"email":"c@example.com"}}`)); r.err != nil {
		t.Fatalf("submit: %s", r)
	}
	rows := decodeJSON[[]jobRowJSON](t, ctl(t, url, "jobs", "--state", "ACCEPTED", "--older-than", "1ns", "--json"))
	if len(rows) != 1 || rows[0].JobID != jobID {
		t.Errorf("stuck job: %+v", rows)
	}
	contains(t, ctl(t, url, "status", jobID), "ACCEPTED", "no worker progress yet", "(none found)")
	d := decodeJSON[doctorJSON](t, result{out: ctl(t, url, "doctor", "--json", "--sample", "0").out})
	if c := d.find(t, "consumer KYC_JOBS/worker"); c.Status != "WARN" || !strings.Contains(c.Detail, "1 message(s) waiting and no process pulling: is a worker running?") {
		t.Errorf("unpulled backlog: %+v", c)
	}
	if c := d.find(t, "stream KYC_JOBS"); c.Status != "WARN" || !strings.Contains(c.Detail, "ingest refuses jobs (503)") {
		t.Errorf("full job queue: %+v", c)
	}
}

// TestDoctorHealthy: a running stack with the simulator's credentials
// passes; wrong credentials and an unreachable Jumio FAIL.
func TestDoctorHealthy(t *testing.T) {
	t.Parallel()
	s := startStack(t)
	creds := s.Sim.Credentials()
	env := func(secret, baseURL string) map[string]string {
		return map[string]string{"KYCPIPE_NATS_URL": s.NATSURL, "JUMIO_CLIENT_ID": creds.ClientID, "JUMIO_CLIENT_SECRET": secret, "JUMIO_BASE_URL": baseURL}
	}
	ctx, cancel := context.WithTimeout(context.Background(), pipelinetest.DefaultTimeout)
	defer cancel()

	r := kycctlRun(t, ctx, env(creds.ClientSecret, s.Sim.URL), nil, "doctor", "--json", "--sample", "50ms")
	d := decodeJSON[doctorJSON](t, r)
	if !d.OK || d.Failures != 0 {
		t.Errorf("healthy stack: %s", r)
	}
	for _, c := range d.Checks {
		if c.Status == "FAIL" {
			t.Errorf("FAIL: %+v", c)
		}
	}
	for _, name := range []string{"config: subject prefix", "config: default region", "config: topology", "nats", "jetstream",
		"stream KYC_JOBS", "stream KYC_DLQ", "consumer KYC_JOBS/worker", "consumer KYC_ADVISORIES/dlq-sweeper",
		"kv bucket KYC_JOBS_STATE", "object store KYC_IMAGES", "topology", "dead letters", "permissions", "jumio"} {
		c := d.find(t, name)
		if strings.HasPrefix(name, "consumer") {
			continue // WARN is possible (a pull request being renewed)
		}
		if c.Status != "OK" {
			t.Errorf("%s: %+v", name, c)
		}
	}
	if c := d.find(t, "jumio"); !strings.Contains(c.Detail, "OAuth token obtained") || !strings.Contains(c.Detail, creds.ClientID) {
		t.Errorf("jumio: %+v", c)
	}
	lacks(t, r, creds.ClientSecret, "eyJ")

	r = kycctlRun(t, ctx, env(creds.ClientSecret, s.Sim.URL), nil, "doctor", "--sample", "0")
	if r.err != nil {
		t.Errorf("doctor: %s", r)
	}
	contains(t, r, "STATUS", "CHECK", "DETAIL", "OK", "jumio", "OAuth token obtained", "0 failed")
	lacks(t, r, creds.ClientSecret)

	r = kycctlRun(t, ctx, env("not-the-secret", s.Sim.URL), nil, "doctor", "--json", "--sample", "0")
	if r.err == nil {
		t.Errorf("wrong credentials pass: %s", r)
	}
	if c := decodeJSON[doctorJSON](t, result{out: r.out}).find(t, "jumio"); c.Status != "FAIL" || !strings.Contains(c.Detail, "credentials rejected") {
		t.Errorf("wrong credentials: %+v", c)
	}
	lacks(t, r, "not-the-secret")

	r = kycctlRun(t, ctx, env(creds.ClientSecret, "http://127.0.0.1:1"), nil, "doctor", "--json", "--sample", "0")
	if c := decodeJSON[doctorJSON](t, result{out: r.out}).find(t, "jumio"); r.err == nil || c.Status != "FAIL" || !strings.Contains(c.Detail, "unreachable") {
		t.Errorf("unreachable Jumio: %+v %s", c, r)
	}

	partial := map[string]string{"KYCPIPE_NATS_URL": s.NATSURL, "JUMIO_CLIENT_ID": creds.ClientID}
	r = kycctlRun(t, ctx, partial, nil, "doctor", "--json", "--sample", "0")
	if c := decodeJSON[doctorJSON](t, result{out: r.out}).find(t, "jumio"); r.err == nil || c.Status != "FAIL" || !strings.Contains(c.Detail, "JUMIO_CLIENT_SECRET") {
		t.Errorf("half-configured Jumio: %+v %s", c, r)
	}
}

// TestDoctorBroken: a missing stream, an unreachable NATS server and an
// invalid configuration FAIL.
func TestDoctorBroken(t *testing.T) {
	t.Parallel()
	ns, _, js := pipelinetest.RunJetStream(t)
	url := ns.ClientURL()
	ctx := context.Background()
	if err := pipeline.Provision(ctx, js, pipeline.Topology{}); err != nil {
		t.Fatal(err)
	}
	if err := js.DeleteStream(ctx, "KYC_EVENTS"); err != nil {
		t.Fatal(err)
	}
	r := ctl(t, url, "doctor", "--sample", "0")
	if r.err == nil {
		t.Fatalf("a missing stream passes: %s", r)
	}
	contains(t, r, "FAIL", "stream KYC_EVENTS", "missing (run kycctl provision", "no process pulling: is a worker running?", "not checked")
	d := decodeJSON[doctorJSON](t, result{out: ctl(t, url, "doctor", "--json", "--sample", "0").out})
	if c := d.find(t, "stream KYC_EVENTS"); c.Status != "FAIL" {
		t.Errorf("missing stream: %+v", c)
	}
	if c := d.find(t, "stream KYC_JOBS"); c.Status != "OK" {
		t.Errorf("present stream: %+v", c)
	}
	if c := d.find(t, "consumer KYC_EVENTS/notifier-events"); c.Status != "FAIL" {
		t.Errorf("the consumer of the missing stream: %+v", c)
	}
	if d.OK || d.Failures != 2 {
		t.Errorf("failures: %+v (want the stream and the notifier's consumer on it)", d)
	}

	r = ctl(t, "nats://127.0.0.1:1", "doctor", "--json")
	if d := decodeJSON[doctorJSON](t, result{out: r.out}); r.err == nil || d.find(t, "nats").Status != "FAIL" {
		t.Errorf("unreachable NATS: %s", r)
	}
	r = ctl(t, url, "doctor", "--subject-prefix", "bad prefix!", "--jumio-region", "mars-1")
	if r.err == nil {
		t.Errorf("invalid configuration passes: %s", r)
	}
	contains(t, r, "config: subject prefix", "config: default region", "mars-1")
}

// TestDoctorPermissions: a user who may read only decisions and events
// (deploy/nats's reader) is told what it cannot read.
func TestDoctorPermissions(t *testing.T) {
	t.Parallel()
	reader := &server.Permissions{
		Publish: &server.SubjectPermission{Allow: []string{
			"$JS.API.INFO",
			"$JS.API.STREAM.INFO.KYC_DECISIONS", "$JS.API.STREAM.INFO.KYC_EVENTS",
			"$JS.API.CONSUMER.CREATE.KYC_DECISIONS", "$JS.API.CONSUMER.CREATE.KYC_DECISIONS.>",
			"$JS.API.CONSUMER.CREATE.KYC_EVENTS", "$JS.API.CONSUMER.CREATE.KYC_EVENTS.>",
			"$JS.API.CONSUMER.INFO.KYC_DECISIONS.*", "$JS.API.CONSUMER.INFO.KYC_EVENTS.*",
			"$JS.API.CONSUMER.DELETE.KYC_DECISIONS.*", "$JS.API.CONSUMER.DELETE.KYC_EVENTS.*",
			"$JS.API.CONSUMER.MSG.NEXT.KYC_DECISIONS.*", "$JS.API.CONSUMER.MSG.NEXT.KYC_EVENTS.*",
			"$JS.ACK.>", "$JS.FC.>",
		}},
		Subscribe: &server.SubjectPermission{Allow: []string{"_INBOX.>", "kyc.decisions.>", "kyc.events.>"}},
	}
	// Everything but reading messages of the jobs queue and job records
	// from the bucket stream's leader (STREAM.MSG.GET).
	noQueue := &server.Permissions{
		Publish:   &server.SubjectPermission{Allow: []string{">"}, Deny: []string{"$JS.API.STREAM.MSG.GET.KYC_JOBS", "$JS.API.STREAM.MSG.GET.KV_KYC_JOBS_STATE"}},
		Subscribe: &server.SubjectPermission{Allow: []string{">"}},
	}
	ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: server.RANDOM_PORT, JetStream: true, StoreDir: t.TempDir(),
		NoLog: true, NoSigs: true, Users: []*server.User{
			{Username: "admin", Password: "admin-pw"},
			{Username: "reader", Password: "reader-pw", Permissions: reader},
			{Username: "noqueue", Password: "noqueue-pw", Permissions: noQueue},
		}})
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("NATS not ready")
	}
	ctx, cancel := context.WithTimeout(context.Background(), pipelinetest.DefaultTimeout)
	defer cancel()
	as := func(user, pw string) map[string]string {
		return map[string]string{"KYCPIPE_NATS_URL": ns.ClientURL(), "KYCPIPE_NATS_USER": user, "KYCPIPE_NATS_PASSWORD": pw}
	}
	if r := kycctlRun(t, ctx, as("admin", "admin-pw"), nil, "provision"); r.err != nil {
		t.Fatalf("provision as admin: %s", r)
	}
	r := kycctlRun(t, ctx, as("reader", "reader-pw"), nil, "doctor", "--json", "--sample", "0", "--check-timeout", "1s")
	if r.err == nil {
		t.Errorf("the reader can check everything: %s", r)
	}
	d := decodeJSON[doctorJSON](t, result{out: r.out})
	if c := d.find(t, "stream KYC_DECISIONS"); c.Status != "OK" {
		t.Errorf("readable stream: %+v", c)
	}
	if c := d.find(t, "stream KYC_JOBS"); c.Status != "FAIL" || !strings.Contains(c.Detail, "cannot read it") {
		t.Errorf("unreadable stream: %+v", c)
	}
	if c := d.find(t, "consumer KYC_JOBS/worker"); c.Status != "FAIL" || !strings.Contains(c.Detail, "permission denied (the server refused publish $JS.API.CONSUMER.INFO.KYC_JOBS.worker)") {
		t.Errorf("unreadable consumer: %+v", c)
	}
	c := d.find(t, "permissions")
	for _, want := range []string{"cannot read the info of 7 stream(s) KYC_JOBS, KYC_CALLBACKS, KYC_RETRIEVE, KYC_DLQ, KYC_ADVISORIES, KYC_WEBHOOKS, KYC_WEBHOOK_LOG",
		"5 consumer(s)", "4 kv bucket(s)", "1 object store(s)", "job records", "pending jobs", "dead letters", "the server refused"} {
		if !strings.Contains(c.Detail, want) {
			t.Errorf("permissions lacks %q: %+v", want, c)
		}
	}
	if c.Status != "WARN" || strings.Contains(c.Detail, "decisions") || strings.Contains(c.Detail, "lifecycle events") {
		t.Errorf("permissions: %+v", c)
	}
	lacks(t, r, "reader-pw")

	// A user who may read job records with direct gets but not the jobs
	// queue's messages nor the bucket's leader is told which reads fail:
	// a pending job (status, submit, erase) and the leader's confirmation.
	r = kycctlRun(t, ctx, as("noqueue", "noqueue-pw"), nil, "doctor", "--json", "--sample", "0", "--check-timeout", "1s")
	d = decodeJSON[doctorJSON](t, result{out: r.out})
	c = d.find(t, "permissions")
	for _, want := range []string{"pending jobs and job records from the stream leader (status, jobs, submit, erase)", "the server refused 1 request subject(s)"} {
		if !strings.Contains(c.Detail, want) {
			t.Errorf("permissions without the jobs queue lacks %q: %+v", want, c)
		}
	}
	if c.Status != "WARN" || strings.Contains(c.Detail, "cannot read the info") || strings.Contains(c.Detail, "job records (status") {
		t.Errorf("permissions without the jobs queue: %+v", c)
	}

	if r := kycctlRun(t, ctx, as("reader", "wrong"), nil, "doctor", "--json"); r.err == nil || !strings.Contains(r.out, "Authorization Violation") {
		t.Errorf("wrong NATS password: %s", r)
	}
}

// TestHelp: help lists every command; every command has --help.
func TestHelp(t *testing.T) {
	t.Parallel()
	r := ctl(t, "nats://127.0.0.1:1", "help")
	if r.err != nil {
		t.Fatal(r)
	}
	names := []string{"submit", "status", "watch", "jobs", "dlq list", "dlq show", "dlq replay", "provision", "doctor"}
	contains(t, r, names...)
	for _, name := range names {
		args := append(strings.Fields(name), "--help")
		r := ctl(t, "nats://127.0.0.1:1", args...)
		if r.err != nil || !strings.HasPrefix(r.out, "Usage: kycctl "+name) || !strings.Contains(r.out, "--nats-url") || !strings.Contains(r.out, "--json") {
			t.Errorf("%s --help: %s", name, r)
		}
	}
	contains(t, ctl(t, "nats://127.0.0.1:1", "help", "watch"), "--count", "--since", "--type", "--kind")
	contains(t, ctl(t, "nats://127.0.0.1:1", "help", "dlq"), "kycctl dlq list", "kycctl dlq show", "kycctl dlq replay")
	contains(t, ctl(t, "nats://127.0.0.1:1", "doctor", "-h"), "JUMIO_CLIENT_SECRET", "--max-backlog")
	if r := ctl(t, "nats://127.0.0.1:1", "dlq"); r.err == nil || !strings.Contains(r.err.Error(), "list, show, replay") {
		t.Errorf("dlq alone: %s", r)
	}
	if r := ctl(t, "nats://127.0.0.1:1", "jobs", "--bogus"); r.err == nil {
		t.Errorf("unknown flag: %s", r)
	}
	if r := ctl(t, "nats://127.0.0.1:1", "help", "nothing"); r.err == nil {
		t.Errorf("help for an unknown command: %s", r)
	}
}
