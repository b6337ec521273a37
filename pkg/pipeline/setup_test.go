package pipeline_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/kycpipe/kycpipe/internal/localstack"
	"github.com/kycpipe/kycpipe/pkg/jumio/jumiotest"
	"github.com/kycpipe/kycpipe/pkg/messages"
	"github.com/kycpipe/kycpipe/pkg/pipeline"
	"github.com/kycpipe/kycpipe/pkg/pipeline/pipelinetest"
)

const waitLong = pipelinetest.DefaultTimeout

// testSchedule makes the retriever poll quickly in tests.
var testSchedule = []time.Duration{200 * time.Millisecond, 400 * time.Millisecond, 700 * time.Millisecond, time.Second}

// bundle is a running pipeline with recorders of its output.
type bundle struct {
	stack     *localstack.Stack
	sim       *jumiotest.Server
	decisions *pipelinetest.Recorder[*messages.DecisionEvent]
	events    *pipelinetest.Recorder[*messages.Event]
	dlq       *pipelinetest.Recorder[[]byte]
	subj      messages.Subjects
}

// setup starts a whole pipeline in process. mutate adjusts the options.
func setup(t *testing.T, mutate func(*localstack.Options)) *bundle {
	t.Helper()
	o := localstack.Options{
		DataDir:   t.TempDir(),
		Logger:    pipelinetest.Logger(t),
		Retriever: pipeline.RetrieverConfig{Schedule: testSchedule},
		Worker:    pipeline.WorkerConfig{Backoff: pipeline.Backoff{Initial: 50 * time.Millisecond, Max: time.Second}},
		Workers:   1, Retrievers: 1,
	}
	o.Retriever.Backoff = pipeline.Backoff{Initial: 50 * time.Millisecond, Max: time.Second}
	if mutate != nil {
		mutate(&o)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	s, err := localstack.Start(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	b := &bundle{stack: s, sim: s.Sim, subj: s.Topology.Subjects}
	b.decisions = pipelinetest.Decisions(t, s.JS, b.subj)
	b.events = pipelinetest.Events(t, s.JS, b.subj)
	b.dlq = pipelinetest.DeadLetters(t, s.JS, b.subj)
	return b
}

// response is an HTTP answer.
type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) json(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decode %s: %v", r.body, err)
	}
}

// do sends an HTTP request to ingest with the stack's API key.
func (b *bundle) do(t *testing.T, method, path, contentType string, body io.Reader, header map[string]string) response {
	t.Helper()
	req, err := http.NewRequest(method, b.stack.IngestURL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	req.Header.Set("Authorization", "Bearer "+b.stack.APIKey)
	for k, v := range header {
		if v == "" {
			req.Header.Del(k)
		} else {
			req.Header.Set(k, v)
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	rb, _ := io.ReadAll(resp.Body)
	return response{status: resp.StatusCode, header: resp.Header, body: rb}
}

// submit posts a job and returns its ID, failing unless the answer is want.
func (b *bundle) submit(t *testing.T, body any, want int, header map[string]string) string {
	t.Helper()
	raw, ok := body.([]byte)
	if !ok {
		var err error
		if raw, err = json.Marshal(body); err != nil {
			t.Fatal(err)
		}
	}
	r := b.do(t, http.MethodPost, "/v1/verifications", "application/json", bytes.NewReader(raw), header)
	if r.status != want {
		t.Fatalf("submit: status %d, want %d: %s", r.status, want, r.body)
	}
	var out struct{ JobID, Status string }
	if want < 300 {
		r.json(t, &out)
		if out.JobID == "" || out.Status != pipeline.StatusAccepted {
			t.Fatalf("submit answer %s", r.body)
		}
	}
	return out.JobID
}

// job reads a job's state over HTTP.
func (b *bundle) job(t *testing.T, id string) pipeline.JobView {
	t.Helper()
	r := b.do(t, http.MethodGet, "/v1/verifications/"+id, "", nil, nil)
	if r.status != http.StatusOK {
		t.Fatalf("GET job %s: %d %s", id, r.status, r.body)
	}
	var v pipeline.JobView
	r.json(t, &v)
	return v
}

// waitDecision waits for the job's decision event.
func (b *bundle) waitDecision(t *testing.T, jobID string) *messages.DecisionEvent {
	t.Helper()
	got := b.decisions.WaitN(t, 1, waitLong, pipelinetest.ForJob[*messages.DecisionEvent](jobID), "decision for "+jobID)
	return got[0].Value
}

// emailJob is an API-channel prepared-data job (email risk, 10066).
func emailJob(ref string) map[string]any {
	return map[string]any{
		"customerInternalReference": ref,
		"workflowDefinition":        map[string]any{"key": 10066},
		"channel":                   "API",
		"preparedData":              map[string]any{"email": "jane.doe@example.com"},
	}
}

// webJob is an ID + selfie web job (10164).
func webJob(ref string) map[string]any {
	return map[string]any{
		"customerInternalReference": ref,
		"userReference":             "user-" + ref,
		"workflowDefinition":        map[string]any{"key": 10164},
		"channel":                   "WEB",
		"web":                       map[string]any{"locale": "en"},
	}
}
