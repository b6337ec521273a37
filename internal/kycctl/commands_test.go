package kycctl_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/kycpipe/kycpipe/internal/localstack"
	"github.com/kycpipe/kycpipe/pkg/jumio/jumiotest"
	"github.com/kycpipe/kycpipe/pkg/messages"
	"github.com/kycpipe/kycpipe/pkg/pipeline"
	"github.com/kycpipe/kycpipe/pkg/pipeline/pipelinetest"
)

// The parts of the --json outputs the tests read.
type statusJSON struct {
	JobID     string `json:"jobId"`
	Status    string `json:"status"`
	Region    string `json:"region"`
	Channel   string `json:"channel"`
	AccountID string `json:"accountId"`
	WebLink   string `json:"webLink"`
	Decision  *struct {
		Type string `json:"type"`
	} `json:"decision"`
	LastError *messages.ErrorInfo      `json:"lastError"`
	Timeline  []pipeline.TimelineEntry `json:"timeline"`
	Events    []eventJSON              `json:"events"`
	Messages  []struct {
		Stream string `json:"stream"`
		Kind   string `json:"kind"`
		Gone   bool   `json:"gone"`
	} `json:"messages"`
}

type eventJSON struct {
	Stream   string `json:"stream"`
	Kind     string `json:"kind"`
	JobID    string `json:"jobId"`
	WebLink  string `json:"webLink"`
	Decision *struct {
		Type string `json:"type"`
	} `json:"decision"`
	Error *messages.ErrorInfo `json:"error"`
}

type submitJSON struct {
	JobID, Result, Status string
}

type jobRowJSON struct {
	JobID         string `json:"jobId"`
	Status        string `json:"status"`
	Channel       string `json:"channel"`
	LastErrorCode string `json:"lastErrorCode"`
}

type checkJSON struct {
	Check, Status, Detail string
}

type doctorJSON struct {
	OK       bool        `json:"ok"`
	Failures int         `json:"failures"`
	Checks   []checkJSON `json:"checks"`
}

func (d doctorJSON) find(t *testing.T, name string) checkJSON {
	t.Helper()
	for _, c := range d.Checks {
		if c.Check == name {
			return c
		}
	}
	t.Fatalf("no check %q in %+v", name, d.Checks)
	return checkJSON{}
}

func kinds(evs []eventJSON) []string {
	var out []string
	for _, e := range evs {
		out = append(out, e.Kind)
	}
	return out
}

const piiMarker = "pii-marker@example.com"

// extractedName is what the simulator extracts from a document when the
// job has no prepared name.
const extractedName = "JOHN JACOB"

// TestSubmitStatusWatch: a job submitted from a file is decided; status
// shows DECIDED with its timeline and events; watch sees its events and
// decision; repeats and conflicts are told apart.
func TestSubmitStatusWatch(t *testing.T) {
	t.Parallel()
	// Decisions carry extracted document data (PII): kycctl must never print it.
	s := startStackWith(t, func(o *localstack.Options) { o.Retriever.IncludeExtraction = true })
	url := s.NATSURL
	env := map[string]string{"KYCPIPE_NATS_URL": url}
	decisions := pipelinetest.Decisions(t, s.JS, s.Topology.Subjects)
	const jobID = "kycctl-submit-1"
	file := writeFile(t, "job.json", `{"jobId":"`+jobID+`","customerInternalReference":"ctl-submit-1","workflowDefinition":{"key":10066},"channel":"API","preparedData":{"email":"`+piiMarker+`"}}`)

	// Started before the submission; --since covers the start-up race.
	ctx, cancel := context.WithTimeout(context.Background(), pipelinetest.DefaultTimeout)
	defer cancel()
	watched := make(chan result, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		watched <- kycctlRun(t, ctx, env, nil, "watch", "--job", jobID, "--since", "1m", "--count", "3", "--json")
	}()
	t.Cleanup(func() { cancel(); <-done })

	r := ctl(t, url, "submit", file)
	if r.err != nil {
		t.Fatalf("submit: %s", r)
	}
	contains(t, r, jobID, "new", "ACCEPTED", "kycctl status "+jobID)

	r = ctl(t, url, "submit", file, "--json")
	if sub := decodeJSON[submitJSON](t, r); sub.JobID != jobID || sub.Result != "repeat" {
		t.Errorf("repeat: %s", r)
	}
	conflicting := writeFile(t, "other.json", `{"jobId":"`+jobID+`","customerInternalReference":"ctl-other","workflowDefinition":{"key":10066},"channel":"API","preparedData":{"email":"a@example.com"}}`)
	if r := ctl(t, url, "submit", conflicting); r.err == nil || !strings.Contains(r.err.Error(), "different request") {
		t.Errorf("conflict: %s", r)
	}

	r = eventually(t, "job decided", func() result { return ctl(t, url, "status", jobID, "--json") }, func(r result) bool {
		return r.err == nil && strings.Contains(r.out, `"status": "DECIDED"`)
	})
	st := decodeJSON[statusJSON](t, r)
	if st.Decision == nil || st.Decision.Type != messages.DecisionPassed || st.Channel != messages.ChannelAPI || st.AccountID == "" || st.Region != "amer-1" {
		t.Errorf("status: %+v", st)
	}
	var timeline []string
	for _, e := range st.Timeline {
		timeline = append(timeline, e.Status)
	}
	for _, want := range []string{pipeline.StatusAccepted, pipeline.StatusAccountCreated, pipeline.StatusFinalized, pipeline.StatusDecided} {
		if !slices.Contains(timeline, want) {
			t.Errorf("timeline %v lacks %s", timeline, want)
		}
	}
	if k := kinds(st.Events); !slices.Contains(k, messages.KindAccepted) || !slices.Contains(k, messages.KindFinalized) || !slices.Contains(k, "decision") {
		t.Errorf("events %v", k)
	}
	for _, e := range st.Events {
		if e.JobID != jobID {
			t.Errorf("event of another job: %+v", e)
		}
		if e.Kind == "decision" && (e.Decision == nil || e.Decision.Type != messages.DecisionPassed || e.Stream != s.Topology.Subjects.StreamDecisions()) {
			t.Errorf("decision event: %+v", e)
		}
	}
	// Read by sequence: exactly the messages the record lists, all stored.
	if len(st.Messages) != len(st.Events) || len(st.Messages) < 3 {
		t.Errorf("messages %+v for events %+v", st.Messages, st.Events)
	}
	for _, m := range st.Messages {
		if m.Gone {
			t.Errorf("message gone: %+v", m)
		}
	}
	lacks(t, r, piiMarker)

	r = ctl(t, url, "status", jobID)
	contains(t, r, "DECIDED", "TIMELINE", "EVENTS", "ACCOUNT_CREATED", "finalized", "decision", "PASSED label=PASSED", "ctl-submit-1")
	lacks(t, r, piiMarker)

	// The watch started before the job: accepted, finalized and the decision.
	w := pipelinetest.WaitFor(t, watched, pipelinetest.DefaultTimeout, "watch --count 3")
	if w.err != nil {
		t.Fatalf("watch: %s", w)
	}
	var got []eventJSON
	for _, line := range strings.Split(strings.TrimSpace(w.out), "\n") {
		var e eventJSON
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("watch line %q: %v", line, err)
		}
		got = append(got, e)
	}
	if k := kinds(got); len(k) != 3 || !slices.Contains(k, "decision") || !slices.Contains(k, messages.KindFinalized) || !slices.Contains(k, messages.KindAccepted) {
		t.Errorf("watched %v\n%s", k, w)
	}
	lacks(t, w, piiMarker)

	// Filters: only the PASSED decision; only finalized events.
	r = ctl(t, url, "watch", "--type", "PASSED", "--since", "5m", "--count", "1")
	contains(t, r, "decision", "PASSED", jobID)
	lacks(t, r, "finalized")
	r = ctl(t, url, "watch", "--kind", "finalized", "--job", jobID, "--since", "5m", "--count", "1")
	contains(t, r, "finalized", jobID)
	if r := ctl(t, url, "watch", "--type", "MAYBE"); r.err == nil {
		t.Errorf("unknown type accepted: %s", r)
	}

	// Images as base64 data travel inside the job message.
	var parts []string
	for _, img := range []struct{ classifier, file string }{{"FRONT", "front.png"}, {"BACK", "back.png"}, {"FACE", "face.jpg"}} {
		b, err := os.ReadFile(filepath.Join("..", "..", "examples", "images", img.file))
		if err != nil {
			t.Fatal(err)
		}
		parts = append(parts, `{"classifier":"`+img.classifier+`","data":"`+base64.StdEncoding.EncodeToString(b)+`"}`)
	}
	const imagesID = "kycctl-images-1"
	r = ctl(t, url, "submit", writeFile(t, "images.json", `{"jobId":"`+imagesID+`","customerInternalReference":"ctl-images-1","workflowDefinition":{"key":10011,"credentials":[{"category":"ID","country":{"values":["USA"]},"type":{"values":["DRIVING_LICENSE"]}}]},"channel":"API",`+
		`"userConsent":{"userIp":"203.0.113.7","userLocation":{"country":"USA","state":"CA"},"consent":{"obtained":"yes","obtainedAt":"2026-11-22T10:00:00Z"}},"parts":[`+strings.Join(parts, ",")+`]}`))
	contains(t, r, imagesID, "new", "images", "FRONT, BACK, FACE, inside the job message")
	r = eventually(t, "images job decided", func() result { return ctl(t, url, "status", imagesID) }, func(r result) bool {
		return r.err == nil && strings.Contains(r.out, "DECIDED")
	})
	contains(t, r, "uploaded", "FRONT", "BACK", "FACE", "PASSED")
	dec := decisions.WaitN(t, 1, pipelinetest.DefaultTimeout, pipelinetest.ForJob[*messages.DecisionEvent](imagesID), "decision with extraction")
	if len(dec[0].Value.Extraction) == 0 || !strings.Contains(string(dec[0].Raw), extractedName) {
		t.Fatalf("the decision has no extraction to hide: %s", dec[0].Raw)
	}
	lacks(t, r, extractedName, "1969-01-18")
	lacks(t, ctl(t, url, "status", imagesID, "--json"), extractedName, "1969-01-18")
	w = ctl(t, url, "watch", "--job", imagesID, "--type", "PASSED", "--since", "5m", "--count", "1", "--json")
	contains(t, w, imagesID, `"kind":"decision"`)
	lacks(t, w, extractedName, "1969-01-18")

	// Standard input and idempotency keys.
	ctx2, cancel2 := context.WithTimeout(context.Background(), pipelinetest.DefaultTimeout)
	defer cancel2()
	stdinReq := `{"customerInternalReference":"ctl-stdin-1","workflowDefinition":{"key":10066},"channel":"API","preparedData":{"email":"b@example.com"}}`
	first := kycctlRun(t, ctx2, env, strings.NewReader(stdinReq), "submit", "-", "--idempotency-key", "order-77", "--json")
	again := kycctlRun(t, ctx2, env, strings.NewReader(stdinReq), "submit", "-", "--idempotency-key", "order-77", "--json")
	a, b := decodeJSON[submitJSON](t, first), decodeJSON[submitJSON](t, again)
	if a.JobID != messages.IdempotentJobID("order-77") || a.Result != "new" || b.JobID != a.JobID || b.Result != "repeat" {
		t.Errorf("idempotent submissions: %v %v", a, b)
	}
	other := kycctlRun(t, ctx2, env, strings.NewReader(strings.Replace(stdinReq, "ctl-stdin-1", "ctl-stdin-2", 1)), "submit", "-", "--idempotency-key", "order-77")
	if other.err == nil || !strings.Contains(other.err.Error(), "idempotency key") {
		t.Errorf("reused key: %s", other)
	}
}

// TestSubmitInvalid: rule violations are all listed, nothing is sent (the
// NATS URL leads nowhere), the exit is non-zero.
func TestSubmitInvalid(t *testing.T) {
	t.Parallel()
	const nowhere = "nats://127.0.0.1:1"
	bad := writeFile(t, "bad.json", `{"customerInternalReference":"order<1>","workflowDefinition":{"key":10066},"tokenLifetime":"90d"}`)
	r := ctl(t, nowhere, "submit", bad)
	if r.err == nil || !strings.Contains(r.err.Error(), "2 field error(s)") {
		t.Fatalf("invalid request: %s", r)
	}
	contains(t, r, "customerInternalReference", "forbidden_characters", "tokenLifetime", "out_of_range")
	lacks(t, r, "connect to NATS")

	r = ctl(t, nowhere, "submit", bad, "--json")
	var v struct {
		Errors []struct{ Field, Code string }
	}
	if err := json.Unmarshal([]byte(r.out), &v); err != nil || r.err == nil || len(v.Errors) != 2 || v.Errors[0].Field != "customerInternalReference" {
		t.Errorf("--json: %v %s", err, r)
	}

	unknown := writeFile(t, "unknown.json", `{"customerInternalReference":"x","workflowDefinition":{"key":10066},"colour":"red"}`)
	if r := ctl(t, nowhere, "submit", unknown); r.err == nil || !strings.Contains(r.err.Error(), `unknown field "colour"`) {
		t.Errorf("unknown field: %s", r)
	}
	notImage := writeFile(t, "text.json", `{"customerInternalReference":"x","workflowDefinition":{"key":10066},"channel":"API","parts":[{"classifier":"FRONT","data":"aGVsbG8="}]}`)
	if r := ctl(t, nowhere, "submit", notImage); r.err == nil || !strings.Contains(r.errOut, "parts[0].data") || !strings.Contains(r.errOut, "JPEG or PNG") {
		t.Errorf("not an image: %s", r)
	}
	// A PNG that makes the job message larger than 1 MiB.
	// (An image Jumio would accept, with consent and the ID's country and
	// type, so that only its size is wrong.)
	png := append(jumiotest.PNG(640, 400), make([]byte, 900<<10)...)
	big := writeFile(t, "big.json", `{"customerInternalReference":"x","channel":"API",`+pipelinetest.APIImageFields(10011)+
		`,"parts":[{"classifier":"FRONT","data":"`+base64.StdEncoding.EncodeToString(png)+`"}]}`)
	if r := ctl(t, nowhere, "submit", big); r.err == nil || !strings.Contains(r.err.Error(), "1 MiB") || !strings.Contains(r.err.Error(), "multipart") {
		t.Errorf("oversized: %s", r)
	}
	if r := ctl(t, nowhere, "submit"); r.err == nil || !strings.Contains(r.err.Error(), "usage") {
		t.Errorf("no file: %s", r)
	}
	if r := ctl(t, nowhere, "submit", bad+".missing"); r.err == nil {
		t.Errorf("missing file: %s", r)
	}
}

// TestJobsAndStatus: jobs by state (FAILED; AWAITING_CALLBACK for a
// launched web job), status of failed, launched and unknown jobs, and the
// doctor's dead-letter warning.
func TestJobsAndStatus(t *testing.T) {
	t.Parallel()
	s := startStack(t)
	url := s.NATSURL

	s.Sim.FailNext(jumiotest.RouteCreateAccount, 1, http.StatusBadRequest)
	const failedID, webID = "kycctl-fail-1", "kycctl-web-1"
	r := ctl(t, url, "submit", writeFile(t, "fail.json", `{"jobId":"`+failedID+`","customerInternalReference":"ctl-fail-1","workflowDefinition":{"key":10066},"channel":"API","preparedData":{"email":"`+piiMarker+`"}}`))
	if r.err != nil {
		t.Fatalf("submit: %s", r)
	}
	r = eventually(t, "job failed", func() result { return ctl(t, url, "jobs", "--state", "FAILED", "--json") }, func(r result) bool {
		return r.err == nil && strings.Contains(r.out, failedID)
	})
	rows := decodeJSON[[]jobRowJSON](t, r)
	if len(rows) != 1 || rows[0].JobID != failedID || rows[0].Status != pipeline.StatusFailed || rows[0].LastErrorCode != messages.ErrCodeJumioRejected {
		t.Errorf("jobs --state FAILED: %+v", rows)
	}
	r = ctl(t, url, "jobs", "--state", "failed")
	contains(t, r, "JOB", "STATUS", "UPDATED", "AGE", "REGION", "CHANNEL", "ACCOUNT", "EXECUTION", "ERROR", failedID, "FAILED", "jumio_rejected", "amer-1", "API")

	// A web job waits for its end user (and Jumio's callback).
	webReq := `{"jobId":"` + webID + `","customerInternalReference":"ctl-web-1","workflowDefinition":{"key":10164},"channel":"WEB","tokenLifetime":"1h"}`
	r = ctl(t, url, "submit", writeFile(t, "web.json", webReq))
	if r.err != nil {
		t.Fatalf("submit web job: %s", r)
	}
	r = eventually(t, "web job launched", func() result {
		return ctl(t, url, "jobs", "--state", "AWAITING_CALLBACK", "--older-than", "1ns", "--json")
	}, func(r result) bool { return r.err == nil && strings.Contains(r.out, webID) })
	rows = decodeJSON[[]jobRowJSON](t, r)
	if len(rows) != 1 || rows[0].JobID != webID || rows[0].Status != pipeline.StatusLaunched || rows[0].Channel != messages.ChannelWeb {
		t.Errorf("jobs --state AWAITING_CALLBACK: %+v", rows)
	}
	r = ctl(t, url, "jobs", "--state", "AWAITING_CALLBACK", "--older-than", "0")
	contains(t, r, webID, "LAUNCHED", "WEB")
	lacks(t, r, failedID)
	contains(t, ctl(t, url, "jobs", "--state", "AWAITING_CALLBACK", "--older-than", "1h"), "(no jobs)")
	if rows := decodeJSON[[]jobRowJSON](t, ctl(t, url, "jobs", "--state", "FAILED,LAUNCHED", "--limit", "1", "--json")); len(rows) != 1 || rows[0].JobID != failedID {
		t.Errorf("--limit keeps the oldest change: %+v", rows)
	}
	if rows := decodeJSON[[]jobRowJSON](t, ctl(t, url, "jobs", "--json")); len(rows) != 2 {
		t.Errorf("all jobs: %+v", rows)
	}
	if r := ctl(t, url, "jobs", "--state", "STUCK"); r.err == nil || !strings.Contains(r.err.Error(), "AWAITING_CALLBACK") {
		t.Errorf("unknown state: %s", r)
	}

	// status: the web link is a bearer credential: only its presence shows.
	r = eventually(t, "launched event stored", func() result { return ctl(t, url, "status", webID, "--json") }, func(r result) bool {
		return r.err == nil && strings.Contains(r.out, `"kind": "launched"`)
	})
	st := decodeJSON[statusJSON](t, r)
	if st.Status != pipeline.StatusLaunched || st.WebLink != "present" {
		t.Errorf("web status: %+v", st)
	}
	for _, e := range st.Events {
		if e.Kind == messages.KindLaunched && e.WebLink != "present" {
			t.Errorf("launched event: %+v", e)
		}
	}
	lacks(t, r, "authorizationToken", "href", s.Sim.URL)
	r = ctl(t, url, "status", webID)
	contains(t, r, "LAUNCHED", "web link", "present", "launched")
	lacks(t, r, "authorizationToken", s.Sim.URL)

	r = eventually(t, "failed event stored", func() result { return ctl(t, url, "status", failedID, "--json") }, func(r result) bool {
		return r.err == nil && strings.Contains(r.out, `"kind": "failed"`)
	})
	st = decodeJSON[statusJSON](t, r)
	if st.Status != pipeline.StatusFailed || st.LastError == nil || st.LastError.Code != messages.ErrCodeJumioRejected {
		t.Errorf("failed status: %+v", st)
	}
	if k := kinds(st.Events); !slices.Contains(k, "dead_letter") || !slices.Contains(k, messages.KindFailed) {
		t.Errorf("failed job's events: %v", k)
	}
	lacks(t, r, piiMarker)
	contains(t, ctl(t, url, "status", failedID), "FAILED", "jumio_rejected", "HTTP 400", "failed", "dead_letter", "stage=worker terminal")

	if r := ctl(t, url, "status", "job_doesnotexist"); r.err == nil || !strings.Contains(r.err.Error(), "not found") {
		t.Errorf("unknown job: %s", r)
	}
	if r := ctl(t, url, "status", "not a job!"); r.err == nil || !strings.Contains(r.err.Error(), "not a job ID") {
		t.Errorf("malformed job ID: %s", r)
	}

	// Its dead letter, through the dlq commands; the payload (PII) only on demand.
	contains(t, ctl(t, url, "dlq", "list", "--job", failedID), failedID, "worker", "terminal", "400 Bad Request")
	r = ctl(t, url, "dlq", "show", "1")
	contains(t, r, failedID, "Kyc-Original-Subject", "bytes (--payload to print")
	lacks(t, r, piiMarker)

	// The doctor counts the dead letter.
	d := decodeJSON[doctorJSON](t, ctl(t, url, "doctor", "--json", "--sample", "0"))
	if c := d.find(t, "dead letters"); c.Status != "WARN" || !strings.Contains(c.Detail, "1 dead letter(s) (worker 1)") {
		t.Errorf("dead letters: %+v", c)
	}
	if c := d.find(t, "jumio"); c.Status != "WARN" || !strings.Contains(c.Detail, "not checked") {
		t.Errorf("jumio not configured: %+v", c)
	}

	// A message the record lists but its stream no longer holds is
	// reported gone, not hidden.
	kv, err := s.JS.KeyValue(context.Background(), s.Topology.Subjects.BucketJobs())
	if err != nil {
		t.Fatal(err)
	}
	rec, _, err := pipeline.NewJobStore(kv, nil).Get(context.Background(), failedID)
	if err != nil {
		t.Fatal(err)
	}
	var letter pipeline.MessageRef
	for _, m := range rec.Messages {
		if m.Kind == "dead_letter" {
			letter = m
		}
	}
	dlq, err := s.JS.Stream(context.Background(), letter.Stream)
	if err != nil {
		t.Fatal(err)
	}
	if err := dlq.DeleteMsg(context.Background(), letter.Seq); err != nil {
		t.Fatal(err)
	}
	r = ctl(t, url, "status", failedID, "--json")
	st = decodeJSON[statusJSON](t, r)
	gone := 0
	for _, m := range st.Messages {
		if m.Gone {
			gone++
		}
	}
	if gone != 1 || !strings.Contains(r.errOut, "no longer stored") {
		t.Errorf("deleted dead letter: %+v\n%s", st.Messages, r.errOut)
	}
}
