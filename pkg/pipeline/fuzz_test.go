package pipeline_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/kycpipe/kycpipe/pkg/jumio/jumiotest"
	"github.com/kycpipe/kycpipe/pkg/pipeline"
	"github.com/kycpipe/kycpipe/pkg/pipeline/pipelinetest"
)

const fuzzKey = "fuzz-api-key-0123456789"

// fuzzIngest is an ingest handler on a real (in-process) JetStream.
func fuzzIngest(f *testing.F) (http.Handler, jetstream.JetStream, pipeline.Topology) {
	f.Helper()
	_, nc, js := pipelinetest.RunJetStream(f)
	topo := pipeline.Topology{DuplicateWindow: 0}.WithDefaults()
	if err := pipeline.Provision(context.Background(), js, topo); err != nil {
		f.Fatal(err)
	}
	keys, _ := pipeline.NewAPIKeys([]string{fuzzKey})
	in, err := pipeline.NewIngest(context.Background(), nc, js, pipeline.IngestConfig{Topology: topo, APIKeys: keys,
		Callbacks: pipeline.CallbackConfig{RatePerSecond: 1e9, Burst: 1e9}})
	if err != nil {
		f.Fatal(err)
	}
	return in.Handler(), js, topo
}

// checkAnswer asserts the answer is one the API documents, and that errors
// are problem+json.
func checkAnswer(t *testing.T, rec *httptest.ResponseRecorder, allowed ...int) {
	t.Helper()
	ok := false
	for _, s := range allowed {
		ok = ok || rec.Code == s
	}
	if !ok {
		t.Fatalf("status %d not in %v: %s", rec.Code, allowed, rec.Body.Bytes())
	}
	if rec.Code >= 400 {
		if ct := rec.Header().Get("Content-Type"); ct != "application/problem+json" {
			t.Fatalf("error with Content-Type %q", ct)
		}
		var p pipeline.Problem
		if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil || p.Status != rec.Code || p.Type == "" {
			t.Fatalf("bad problem body %q: %v", rec.Body.Bytes(), err)
		}
	}
}

// FuzzSubmit throws arbitrary bodies, content types and headers at
// POST /v1/verifications. A 2xx must mean the job is stored: its record, or
// its pending job message (the record of acceptance until a worker takes it).
func FuzzSubmit(f *testing.F) {
	h, js, topo := fuzzIngest(f)
	f.Add([]byte(`{"customerInternalReference":"r","workflowDefinition":{"key":10066},"channel":"API","preparedData":{"email":"a@example.com"}}`), "application/json", "", "Bearer "+fuzzKey)
	f.Add([]byte(`{"customerInternalReference":"r","workflowDefinition":{"key":"10164"},"web":{"locale":"en"},"jobId":"j-1"}`), "application/json; charset=utf-8", "k1", "Bearer "+fuzzKey)
	f.Add([]byte(`{"customerInternalReference":"r<","workflowDefinition":{"key":1},"tokenLifetime":"99d"}`), "application/json", "", "Bearer "+fuzzKey)
	f.Add([]byte("--b\r\nContent-Disposition: form-data; name=\"request\"\r\n\r\n{\"customerInternalReference\":\"r\",\"workflowDefinition\":{\"key\":10011},\"channel\":\"API\"}\r\n--b\r\nContent-Disposition: form-data; name=\"FRONT\"; filename=\"f.png\"\r\n\r\n"+string(jumiotest.PNG(320, 310))+"\r\n--b--\r\n"), "multipart/form-data; boundary=b", "", "Bearer "+fuzzKey)
	f.Add([]byte(`{}`), "text/plain", "", "")
	f.Add([]byte(`{"parts":[{"classifier":"FRONT","data":"iVBORw0KGgo="}]}`), "application/json", strings.Repeat("k", 300), "Bearer nope")
	f.Fuzz(func(t *testing.T, body []byte, contentType, idemKey, auth string) {
		req := httptest.NewRequest(http.MethodPost, "/v1/verifications", bytes.NewReader(body))
		req.Header.Set("Content-Type", contentType)
		if idemKey != "" && !strings.ContainsAny(idemKey, "\r\n\x00") {
			req.Header.Set("Idempotency-Key", idemKey)
		}
		if !strings.ContainsAny(auth, "\r\n\x00") {
			req.Header.Set("Authorization", auth)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		checkAnswer(t, rec, 200, 202, 400, 401, 409, 413, 415, 422, 503)
		if rec.Code == 202 || rec.Code == 200 {
			var out struct{ JobID, Status string }
			if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil || out.JobID == "" {
				t.Fatalf("2xx without a job ID: %s", rec.Body.Bytes())
			}
			kv, err := js.KeyValue(context.Background(), topo.Subjects.BucketJobs())
			if err != nil {
				t.Fatal(err)
			}
			// Stored: its record exists, or (not picked up by a worker yet)
			// its job message is pending, from which GET answers.
			if _, err := kv.Get(context.Background(), "job."+out.JobID); err != nil {
				if _, perr := pipeline.PendingJob(context.Background(), js, topo.Subjects, out.JobID); perr != nil {
					t.Fatalf("answered %d for job %s that has no record (%v) and no pending message (%v)", rec.Code, out.JobID, err, perr)
				}
			}
		}
	})
}

// FuzzCallback throws arbitrary bodies and query strings at the callback
// receiver.
func FuzzCallback(f *testing.F) {
	h, _, _ := fuzzIngest(f)
	f.Add([]byte(`{"callbackSentAt":"2026-01-01T00:00:00.000Z","workflowExecution":{"id":"w-1","href":"https://retrieval.emea-1.jumio.ai/x","definitionKey":"10066","status":"PROCESSED"},"account":{"id":"a-1"}}`), "")
	f.Add([]byte(`{"workflowExecution":{"id":"w-1","status":"TOKEN_EXPIRED"},"account":{"id":"a-1"}}`), "region=EU&job=j-1")
	f.Add([]byte(`{"workflowExecution":{"id":"../x","status":"PROCESSED"},"account":{"id":"a"}}`), "region=mars")
	f.Add([]byte(`null`), "job=%00")
	f.Fuzz(func(t *testing.T, body []byte, query string) {
		target := "/v1/callbacks/jumio"
		if query != "" && !strings.ContainsAny(query, " #\r\n\x00") {
			target += "?" + query
		}
		if _, err := url.ParseRequestURI(target); err != nil {
			// net/http refuses such a request line (400) before any handler
			// runs, and httptest.NewRequest panics on it.
			target = "/v1/callbacks/jumio"
		}
		req := httptest.NewRequest(http.MethodPost, target, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		checkAnswer(t, rec, 200, 400, 413, 503)
	})
}
