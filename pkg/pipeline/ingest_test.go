package pipeline_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"strings"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/kycpipe/kycpipe/pkg/jumio/jumiotest"
	"github.com/kycpipe/kycpipe/pkg/messages"
	"github.com/kycpipe/kycpipe/pkg/pipeline"
	"github.com/kycpipe/kycpipe/pkg/pipeline/pipelinetest"
)

func idJob(ref string) map[string]any {
	return map[string]any{
		"customerInternalReference": ref,
		"workflowDefinition":        pipelinetest.IDWorkflow(10011),
		"channel":                   "API",
		"userConsent":               pipelinetest.Consent(),
	}
}

// multipartBody builds a multipart submission: the request part, then files.
func multipartBody(t *testing.T, req any, files map[string][]byte, order ...string) (string, *bytes.Buffer) {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	if req != nil {
		h := make(textproto.MIMEHeader)
		h.Set("Content-Disposition", `form-data; name="request"`)
		h.Set("Content-Type", "application/json")
		w, _ := mw.CreatePart(h)
		_ = json.NewEncoder(w).Encode(req)
	}
	for _, name := range order {
		w, _ := mw.CreateFormFile(name, strings.ToLower(name)+".png")
		_, _ = w.Write(files[name])
	}
	_ = mw.Close()
	return mw.FormDataContentType(), &buf
}

func imageStore(t *testing.T, b *bundle) jetstream.ObjectStore {
	t.Helper()
	os, err := b.stack.JS.ObjectStore(context.Background(), b.subj.BucketImages())
	if err != nil {
		t.Fatal(err)
	}
	return os
}

func objectCount(t *testing.T, os jetstream.ObjectStore) int {
	t.Helper()
	list, err := os.List(context.Background())
	if errors.Is(err, jetstream.ErrNoObjectsFound) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	return len(list)
}

func TestAPIImagesThroughObjectStore(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	files := map[string][]byte{"FRONT": jumiotest.PNG(640, 400), "BACK": jumiotest.PNG(640, 400), "FACE": jumiotest.JPEG(480, 640)}
	ct, body := multipartBody(t, idJob("order-img-1"), files, "FRONT", "BACK", "FACE")
	r := b.do(t, http.MethodPost, "/v1/verifications", ct, body, nil)
	if r.status != http.StatusAccepted {
		t.Fatalf("multipart submit: %d %s", r.status, r.body)
	}
	var out struct{ JobID string }
	r.json(t, &out)
	dec := b.waitDecision(t, out.JobID)
	st := b.sim.Stats()
	if st.UploadsByExecution[dec.WorkflowExecutionID] != 3 || st.FinalizesByExecution[dec.WorkflowExecutionID] != 1 {
		t.Errorf("uploads=%v finalizes=%v", st.UploadsByExecution, st.FinalizesByExecution)
	}
	info, _ := b.sim.Execution(dec.WorkflowExecutionID)
	if len(info.Parts) != 3 {
		t.Errorf("parts acquired = %v", info.Parts)
	}
	// Data minimization: the images are gone from the store after finalize.
	store := imageStore(t, b)
	pipelinetest.Eventually(t, waitLong, func() bool { return objectCount(t, store) == 0 }, "images left in the object store")

	// Base64 images inside a JSON body take the same path.
	job := idJob("order-img-2")
	job["parts"] = []map[string]any{
		{"classifier": "FRONT", "data": base64.StdEncoding.EncodeToString(jumiotest.PNG(640, 400))},
		{"classifier": "FACE", "contentType": "image/jpeg", "data": base64.StdEncoding.EncodeToString(jumiotest.JPEG(400, 600))},
	}
	dec2 := b.waitDecision(t, b.submit(t, job, 202, nil))
	if n := b.sim.Stats().UploadsByExecution[dec2.WorkflowExecutionID]; n != 2 {
		t.Errorf("base64 job: %d uploads, want 2", n)
	}
	pipelinetest.Eventually(t, waitLong, func() bool { return objectCount(t, store) == 0 }, "base64 images left in the object store")
}

func TestBadSubmissions(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	valid, _ := json.Marshal(emailJob("order-bad-0"))
	forbidden := emailJob("order<bad>")
	forbiddenBody, _ := json.Marshal(forbidden)
	big := bytes.Repeat([]byte(" "), 1<<20+10)
	copy(big, valid)
	tests := []struct {
		name        string
		contentType string
		body        []byte
		header      map[string]string
		status      int
		problem     string
		field       string
	}{
		{"no key", "application/json", valid, map[string]string{"Authorization": ""}, 401, pipeline.ProblemUnauthorized, ""},
		{"wrong key", "application/json", valid, map[string]string{"Authorization": "Bearer not-the-key-0123456789"}, 401, pipeline.ProblemUnauthorized, ""},
		{"basic auth", "application/json", valid, map[string]string{"Authorization": "Basic dXNlcjpwYXNz"}, 401, pipeline.ProblemUnauthorized, ""},
		{"malformed json", "application/json", []byte(`{"customerInternalReference":`), nil, 400, pipeline.ProblemInvalidBody, ""},
		{"unknown field", "application/json", []byte(`{"customerInternalReference":"x","workflowDefinition":{"key":1},"favouriteColour":"red"}`), nil, 400, pipeline.ProblemInvalidBody, ""},
		{"not an object", "application/json", []byte(`[1,2]`), nil, 400, pipeline.ProblemInvalidBody, ""},
		{"too large", "application/json", big, nil, 413, pipeline.ProblemTooLarge, ""},
		{"text body", "text/plain", valid, nil, 415, pipeline.ProblemUnsupportedType, ""},
		{"no content type", "", valid, nil, 415, pipeline.ProblemUnsupportedType, ""},
		{"forbidden characters", "application/json", forbiddenBody, nil, 422, pipeline.ProblemValidation, "customerInternalReference"},
		{"missing workflow", "application/json", []byte(`{"customerInternalReference":"x"}`), nil, 422, pipeline.ProblemValidation, "workflowDefinition.key"},
		{"bad idempotency key", "application/json", valid, map[string]string{"Idempotency-Key": strings.Repeat("k", 300)}, 400, pipeline.ProblemInvalidBody, ""},
		{"image not an image", "application/json", []byte(`{"customerInternalReference":"x","workflowDefinition":{"key":10011},"channel":"API","parts":[{"classifier":"FRONT","data":"aGVsbG8="}]}`), nil, 422, pipeline.ProblemValidation, "parts[0].data"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := b.do(t, http.MethodPost, "/v1/verifications", tt.contentType, bytes.NewReader(tt.body), tt.header)
			if r.status != tt.status {
				t.Fatalf("status %d, want %d: %s", r.status, tt.status, r.body)
			}
			if ct := r.header.Get("Content-Type"); ct != "application/problem+json" {
				t.Errorf("Content-Type %q", ct)
			}
			var p pipeline.Problem
			r.json(t, &p)
			if p.Type != tt.problem || p.Status != tt.status || p.Title == "" {
				t.Errorf("problem = %+v", p)
			}
			if tt.field != "" {
				found := false
				for _, f := range p.Errors {
					found = found || f.Field == tt.field
				}
				if !found {
					t.Errorf("want a field error for %s in %+v", tt.field, p.Errors)
				}
			}
		})
	}
	// Multipart mistakes.
	img := jumiotest.PNG(640, 400)
	ct, body := multipartBody(t, nil, map[string][]byte{"FRONT": img}, "FRONT")
	if r := b.do(t, http.MethodPost, "/v1/verifications", ct, body, nil); r.status != 400 {
		t.Errorf("multipart without request part: %d %s", r.status, r.body)
	}
	ct, body = multipartBody(t, idJob("order-bad-img"), map[string][]byte{"FRONT": []byte("GIF89a not allowed")}, "FRONT")
	if r := b.do(t, http.MethodPost, "/v1/verifications", ct, body, nil); r.status != 415 {
		t.Errorf("multipart GIF: %d %s", r.status, r.body)
	}
	// A bad Idempotency-Key is refused before any image is stored.
	ct, body = multipartBody(t, idJob("order-bad-key"), map[string][]byte{"FRONT": img}, "FRONT")
	if r := b.do(t, http.MethodPost, "/v1/verifications", ct, body, map[string]string{"Idempotency-Key": "has space"}); r.status != 400 {
		t.Errorf("multipart with a bad Idempotency-Key: %d %s", r.status, r.body)
	}
	// Nothing was published or stored.
	stream, err := b.stack.JS.Stream(context.Background(), b.subj.StreamJobs())
	if err != nil {
		t.Fatal(err)
	}
	info, _ := stream.Info(context.Background())
	if info.State.Msgs != 0 || info.State.LastSeq != 0 {
		t.Errorf("jobs stream holds %d messages (last seq %d) after bad submissions", info.State.Msgs, info.State.LastSeq)
	}
	if n := objectCount(t, imageStore(t, b)); n != 0 {
		t.Errorf("%d images stored by refused submissions", n)
	}
	// Status of unknown jobs and bad routes are problems too.
	if r := b.do(t, http.MethodGet, "/v1/verifications/does-not-exist", "", nil, nil); r.status != 404 || r.header.Get("Content-Type") != "application/problem+json" {
		t.Errorf("unknown job: %d %s", r.status, r.body)
	}
	if r := b.do(t, http.MethodDelete, "/v1/verifications", "", nil, nil); r.status != 405 {
		t.Errorf("DELETE: %d", r.status)
	}
	if r := b.do(t, http.MethodGet, "/v1/verifications/x", "", nil, map[string]string{"Authorization": ""}); r.status != 401 {
		t.Errorf("status without key: %d", r.status)
	}
	if r := b.do(t, http.MethodPost, "/v1/callbacks/jumio", "application/json", strings.NewReader(`{"not":"a callback"}`), nil); r.status != 400 {
		t.Errorf("bad callback: %d %s", r.status, r.body)
	}
}

func TestHealthAndReadiness(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	for _, path := range []string{"/healthz", "/readyz"} {
		if r := b.do(t, http.MethodGet, path, "", nil, map[string]string{"Authorization": ""}); r.status != 200 {
			t.Errorf("%s: %d %s", path, r.status, r.body)
		}
	}
	b.stack.Ingest.SetDraining(true)
	if r := b.do(t, http.MethodGet, "/readyz", "", nil, nil); r.status != 503 {
		t.Errorf("draining /readyz: %d", r.status)
	}
	if r := b.do(t, http.MethodGet, "/metrics", "", nil, nil); r.status != 200 || !bytes.Contains(r.body, []byte("kycpipe_http_requests_total")) {
		t.Errorf("/metrics: %d", r.status)
	}
	_ = messages.StageIngest
}
