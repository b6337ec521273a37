package docs_test

// Real messages against the message schemas: jobs are submitted over HTTP
// and run to decisions (one fails at Jumio) through the in-process stack;
// every payload read from the streams is validated, strictly (no
// undocumented property), against its schema in docs/schemas.

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/kycpipe/kycpipe/internal/localstack"
	"github.com/kycpipe/kycpipe/pkg/jumio"
	"github.com/kycpipe/kycpipe/pkg/jumio/jumiotest"
	"github.com/kycpipe/kycpipe/pkg/messages"
	"github.com/kycpipe/kycpipe/pkg/pipeline"
	"github.com/kycpipe/kycpipe/pkg/pipeline/pipelinetest"
)

const (
	fileRequest  = "kycpipe.verification.v1.schema.json"
	fileEvent    = "kycpipe.event.v1.schema.json"
	fileCallback = "kycpipe.callback.v1.schema.json"
	fileDecision = "kycpipe.decision.v1.schema.json"
)

// streamMessages returns every message stored in a stream (read by
// sequence, without a consumer: work-queue streams keep theirs until a
// stage acknowledges them).
func streamMessages(t *testing.T, js jetstream.JetStream, name string) []*jetstream.RawStreamMsg {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := js.Stream(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []*jetstream.RawStreamMsg
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && seq > 0; seq++ {
		m, err := st.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, m)
	}
	return out
}

func TestMessagesMatchSchemas(t *testing.T) {
	t.Parallel()
	_, strictV := validators(t)
	s := startStack(t, func(o *localstack.Options) {
		o.Retriever.IncludeExtraction = true // the extraction schema is checked too
	})
	subj := s.Topology.Subjects
	events := pipelinetest.Events(t, s.JS, subj)
	decisions := pipelinetest.Decisions(t, s.JS, subj)
	dlq := pipelinetest.DeadLetters(t, s.JS, subj)
	valid := func(what, file string, raw []byte) {
		t.Helper()
		if err := strictV.validateJSON(messageLoc(file), raw); err != nil {
			t.Errorf("%s does not match %s: %s\n%v", what, file, raw, err)
		}
	}
	auth := map[string]string{"Authorization": "Bearer " + s.APIKey}
	submit := func(req any, files ...any) string {
		t.Helper()
		var a answer
		if len(files) > 0 {
			ct, body := multipartSubmission(t, req, files...)
			a = call(t, http.MethodPost, s.IngestURL+"/v1/verifications", ct, body, auth)
		} else {
			body, _ := json.Marshal(req)
			a = call(t, http.MethodPost, s.IngestURL+"/v1/verifications", "application/json", body, auth)
		}
		if a.status != http.StatusAccepted {
			t.Fatalf("submit: %d %s", a.status, a.body)
		}
		var out struct{ JobID string }
		_ = json.Unmarshal(a.body, &out)
		return out.JobID
	}
	png := jumiotest.PNG(320, 200)
	// The first job fails at Jumio (the worker runs one job at a time, in
	// order); the others cover every channel and both image paths.
	failing := submit(map[string]any{"customerInternalReference": "order-2026-0009", "workflowDefinition": map[string]any{"key": 10066},
		"channel": "API", "preparedData": map[string]any{"email": "jane.doe@example.com"}})
	emailJob := submit(map[string]any{"customerInternalReference": "order-2026-0001", "userReference": "customer-8812",
		"workflowDefinition": map[string]any{"key": 10066}, "channel": "API", "preparedData": map[string]any{"email": "jane.doe@example.com"}})
	idJob := map[string]any{"customerInternalReference": "order-2026-0005", "userReference": "customer-8815", "workflowDefinition": pipelinetest.IDWorkflow(10011),
		"channel": "API", "userConsent": map[string]any{"userIp": "203.0.113.7", "userLocation": map[string]any{"country": "USA", "state": "CA"},
			"consent": map[string]any{"obtained": "yes", "obtainedAt": "2026-11-22T10:00:00Z"}}}
	filesJob := submit(idJob, "FRONT", png, "BACK", png, "FACE", jumiotest.JPEG(240, 320))
	idJob["customerInternalReference"] = "order-2026-0006"
	idJob["parts"] = []any{map[string]any{"classifier": "FRONT", "data": base64.StdEncoding.EncodeToString(png)},
		map[string]any{"classifier": "BACK", "data": base64.StdEncoding.EncodeToString(png)},
		map[string]any{"classifier": "FACE", "contentType": "image/jpeg", "data": base64.StdEncoding.EncodeToString(jumiotest.JPEG(240, 320))}}
	base64Job := submit(idJob)
	webJob := submit(map[string]any{"customerInternalReference": "order-2026-0003", "userReference": "customer-8814", "workflowDefinition": map[string]any{"key": 10164},
		"channel": "WEB", "tokenLifetime": "1h", "web": map[string]any{"locale": "en-GB"}})
	sdkJob := submit(map[string]any{"customerInternalReference": "order-2026-0007", "workflowDefinition": map[string]any{"key": 10011}, "channel": "SDK"})
	// The simulator rejects on "reject" and warns on "warn".
	riskJob := submit(map[string]any{"customerInternalReference": "order-2026-0002", "workflowDefinition": map[string]any{"key": 10148}, "channel": "API",
		"preparedData": map[string]any{"email": "cortez.reject@example.com", "phoneNumber": "+18009376310"}})
	screeningJob := submit(map[string]any{"customerInternalReference": "order-2026-0011", "userReference": "customer-warn-1",
		"workflowDefinition": map[string]any{"key": "10010"}, "channel": "API", "preparedData": map[string]any{"firstName": "Jane", "lastName": "Doe", "dateOfBirth": "1990-08-10"}})

	// kyc.jobs.submit, as ingest published it (no worker yet).
	jobs := streamMessages(t, s.JS, subj.StreamJobs())
	if len(jobs) != 8 {
		t.Fatalf("%d messages in %s, want 8", len(jobs), subj.StreamJobs())
	}
	for _, m := range jobs {
		valid("job message "+m.Header.Get(messages.HeaderJobID), fileRequest, m.Data)
	}

	// Run the jobs.
	s.Sim.FailNext(jumiotest.RouteCreateAccount, 1, 400)
	ctx, cancel := context.WithTimeout(context.Background(), pipelinetest.DefaultTimeout)
	defer cancel()
	if _, err := s.AddWorker(ctx, func(c *pipeline.WorkerConfig) { c.Concurrency, c.AccountConcurrency = 1, 1 }); err != nil {
		t.Fatal(err)
	}
	wait := 15 * time.Second
	kind := func(job, k string) func(pipelinetest.Received[*messages.Event]) bool {
		return func(m pipelinetest.Received[*messages.Event]) bool { return m.Value.JobID == job && m.Value.Kind == k }
	}
	failed := events.WaitN(t, 1, wait, kind(failing, messages.KindFailed), "failed event")[0]
	if failed.Value.Error == nil || failed.Value.Error.Status != http.StatusBadRequest {
		t.Errorf("failed event: %s", failed.Raw)
	}
	for _, job := range []string{emailJob, filesJob, base64Job, riskJob, screeningJob} {
		events.WaitN(t, 1, wait, kind(job, messages.KindFinalized), "finalized event of "+job)
	}
	launched := events.WaitN(t, 1, wait, kind(webJob, messages.KindLaunched), "launched event (web)")[0].Value
	events.WaitN(t, 1, wait, kind(sdkJob, messages.KindLaunched), "launched event (sdk)")
	if err := s.Sim.CompleteWeb(launched.WorkflowExecutionID); err != nil {
		t.Fatal(err)
	}

	// kyc.callbacks.<region>, as ingest published Jumio's callbacks (no
	// retriever yet): one per decided execution.
	var callbacks []*jetstream.RawStreamMsg
	pipelinetest.Eventually(t, wait, func() bool {
		callbacks = streamMessages(t, s.JS, subj.StreamCallbacks())
		return len(callbacks) >= 6
	}, "6 callbacks in %s", subj.StreamCallbacks())
	for _, m := range callbacks {
		valid("callback message on "+m.Subject, fileCallback, m.Data)
	}

	// Decisions.
	if _, err := s.AddRetriever(ctx, nil); err != nil {
		t.Fatal(err)
	}
	types := map[string]bool{}
	for _, job := range []string{emailJob, filesJob, base64Job, webJob, riskJob, screeningJob} {
		d := decisions.WaitN(t, 1, wait, pipelinetest.ForJob[*messages.DecisionEvent](job), "decision of "+job)[0]
		types[d.Value.Decision.Type] = true
	}
	for _, typ := range []string{messages.DecisionPassed, messages.DecisionRejected, messages.DecisionWarning} {
		if !types[typ] {
			t.Errorf("no %s decision was checked", typ)
		}
	}
	extraction := false
	for _, m := range decisions.All() {
		valid("decision on "+m.Subject, fileDecision, m.Raw)
		if m.Subject != subj.Decision(m.Value.Decision.Type) {
			t.Errorf("decision %s on %s", m.Value.Decision.Type, m.Subject)
		}
		extraction = extraction || len(m.Value.Extraction) > 0
	}
	if !extraction {
		t.Error("no decision carried extraction data; the ExtractionData schema went unchecked")
	}
	kinds := map[string]bool{}
	for _, m := range events.All() {
		valid("event on "+m.Subject, fileEvent, m.Raw)
		kinds[m.Value.Kind] = true
	}
	for _, k := range []string{messages.KindAccepted, messages.KindLaunched, messages.KindFinalized, messages.KindFailed} {
		if !kinds[k] {
			t.Errorf("no %s event was checked", k)
		}
	}
	// A dead letter carries the original job.
	dl := dlq.WaitN(t, 1, wait, pipelinetest.ForJob[[]byte](failing), "dead letter")[0]
	valid("dead letter", fileRequest, dl.Raw)

	// The job views of every state seen, against the document.
	c := &conformance{strict: strictV, seen: map[string]bool{}}
	for _, job := range []string{failing, emailJob, webJob, sdkJob} {
		a := call(t, http.MethodGet, s.IngestURL+"/v1/verifications/"+job, "", nil, auth)
		c.check(t, "job "+job, "get", "/v1/verifications/{jobId}", a)
		var v pipeline.JobView
		_ = json.Unmarshal(a.body, &v)
		switch job {
		case failing:
			if v.Status != pipeline.StatusFailed || v.Error == nil {
				t.Errorf("failed job: %s", a.body)
			}
		case emailJob, webJob:
			if v.Status != pipeline.StatusDecided || v.Decision == nil {
				t.Errorf("decided job: %s", a.body)
			}
		case sdkJob:
			if v.Status != pipeline.StatusLaunched || v.SDK == nil {
				t.Errorf("launched SDK job: %s", a.body)
			}
		}
	}

	// A callback built with the pipeline's own types, region from the
	// host, job from the URL.
	own := messages.CallbackReceived{Schema: messages.SchemaCallback, Region: string(jumio.RegionAPAC), JobID: webJob,
		ReceivedAt: time.Now().UTC(), SourceIP: "52.76.184.73", Callback: jumio.Callback{CallbackSentAt: jumio.FormatTimestamp(time.Now()),
			WorkflowExecution: jumio.WorkflowStatus{ID: launched.WorkflowExecutionID, Status: jumio.StatusProcessed},
			Account:           jumio.Ref{ID: launched.AccountID}}}
	raw, _ := json.Marshal(own)
	valid("constructed callback", fileCallback, raw)
}
