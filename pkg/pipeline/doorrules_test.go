package pipeline_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"slices"
	"testing"

	"github.com/kycpipe/kycpipe/pkg/jumio/jumiotest"
	"github.com/kycpipe/kycpipe/pkg/messages"
	"github.com/kycpipe/kycpipe/pkg/pipeline"
	"github.com/kycpipe/kycpipe/pkg/pipeline/pipelinetest"
)

// imageJobWith is an API ID + selfie job (10011) with consent and the ID's
// country and type, changed by mutate.
func imageJobWith(ref string, mutate func(map[string]any)) map[string]any {
	j := map[string]any{"customerInternalReference": ref, "workflowDefinition": pipelinetest.IDWorkflow(10011), "channel": "API",
		"userConsent": pipelinetest.Consent()}
	if mutate != nil {
		mutate(j)
	}
	return j
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// problemFields returns "field code" of each field error of a 422 answer.
func problemFields(t *testing.T, r response) []string {
	t.Helper()
	if r.status != http.StatusUnprocessableEntity {
		t.Fatalf("status %d, want 422: %s", r.status, r.body)
	}
	var p pipeline.Problem
	r.json(t, &p)
	var out []string
	for _, f := range p.Errors {
		out = append(out, f.Field+" "+f.Code)
	}
	return out
}

// Jumio's rules for API image uploads (jumio-api.md §10.1, §10.2, §10.10)
// are checked at the door: 422 with field errors, before anything is stored
// or a Jumio account exists. Jobs published straight to NATS meet the same
// rules in the worker, before any Jumio call.
func TestDoorRulesForAPIImages(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	front, face := jumiotest.PNG(640, 400), jumiotest.JPEG(480, 640)
	withParts := func(parts ...map[string]any) func(map[string]any) {
		return func(j map[string]any) { j["parts"] = parts }
	}
	frontPart := map[string]any{"classifier": "FRONT", "data": b64(front)}
	facePart := map[string]any{"classifier": "FACE", "data": b64(face)}
	cases := []struct {
		name string
		job  map[string]any
		want []string // "field code", all of them
	}{
		{"no consent", imageJobWith("door-1", func(j map[string]any) { delete(j, "userConsent"); withParts(frontPart)(j) }),
			[]string{"userConsent required"}},
		{"consent not obtained", imageJobWith("door-2", func(j map[string]any) {
			c := pipelinetest.Consent()
			c["consent"] = map[string]any{"obtained": "no", "obtainedAt": "2026-11-01T10:00:00Z"}
			j["userConsent"] = c
			withParts(facePart)(j)
		}), []string{"userConsent.consent.obtained invalid_value"}},
		{"consent without IP, country and time", imageJobWith("door-3", func(j map[string]any) {
			j["userConsent"] = map[string]any{"consent": map[string]any{"obtained": "yes"}}
			withParts(facePart)(j)
		}), []string{"userConsent.consent.obtainedAt required", "userConsent.userIp required", "userConsent.userLocation.country required"}},
		{"ID without country and type", imageJobWith("door-4", func(j map[string]any) {
			j["workflowDefinition"] = map[string]any{"key": 10011}
			withParts(frontPart, facePart)(j)
		}), []string{"workflowDefinition.credentials required"}},
		{"image too small", imageJobWith("door-5", withParts(map[string]any{"classifier": "FRONT", "data": b64(jumiotest.PNG(300, 200))})),
			[]string{"parts[0].data out_of_range"}},
		{"image too large", imageJobWith("door-6", withParts(map[string]any{"classifier": "FRONT", "data": b64(jumiotest.PNG(8001, 2))})),
			[]string{"parts[0].data out_of_range"}},
	}
	for _, c := range cases {
		raw, _ := json.Marshal(c.job)
		got := problemFields(t, b.do(t, http.MethodPost, "/v1/verifications", "application/json", bytes.NewReader(raw), nil))
		slices.Sort(got)
		if !slices.Equal(got, c.want) {
			t.Errorf("%s: field errors %v, want %v", c.name, got, c.want)
		}
	}
	// A selfie alone needs consent, not the ID's country and type.
	selfieOnly := imageJobWith("door-7", func(j map[string]any) { j["workflowDefinition"] = map[string]any{"key": 10011}; withParts(facePart)(j) })
	b.submit(t, selfieOnly, http.StatusAccepted, nil)

	// Multipart: the image's header is read before it is stored.
	store := imageStore(t, b)
	before := objectCount(t, store)
	for name, mp := range map[string]struct {
		job   map[string]any
		files map[string][]byte
		want  string
	}{
		"small": {imageJobWith("door-mp-1", nil), map[string][]byte{"FRONT": jumiotest.JPEG(280, 200)}, "FRONT out_of_range"},
		"no consent": {imageJobWith("door-mp-2", func(j map[string]any) { delete(j, "userConsent") }),
			map[string][]byte{"FACE": face}, "userConsent required"},
		"no ID type": {imageJobWith("door-mp-3", func(j map[string]any) { j["workflowDefinition"] = map[string]any{"key": 10011} }),
			map[string][]byte{"FRONT": front}, "workflowDefinition.credentials required"},
	} {
		var order []string
		for k := range mp.files {
			order = append(order, k)
		}
		ct, body := multipartBody(t, mp.job, mp.files, order...)
		if got := problemFields(t, b.do(t, http.MethodPost, "/v1/verifications", ct, body, nil)); !slices.Equal(got, []string{mp.want}) {
			t.Errorf("multipart %s: field errors %v, want [%s]", name, got, mp.want)
		}
	}
	// 15,000,001 bytes is over Jumio's 15 MB.
	big := append(append([]byte{}, front...), make([]byte, messages.MaxImageSize+1-len(front))...)
	ct, body := multipartBody(t, imageJobWith("door-mp-4", nil), map[string][]byte{"FRONT": big}, "FRONT")
	// The size is known once 15 MB went into the store: on a loaded
	// machine the store may time out first (503, retried as a client does).
	var r response
	pipelinetest.Eventually(t, waitLong, func() bool {
		r = b.do(t, http.MethodPost, "/v1/verifications", ct, bytes.NewReader(body.Bytes()), nil)
		return r.status != http.StatusServiceUnavailable
	}, "the oversized image answered 503 until the deadline")
	if r.status != http.StatusRequestEntityTooLarge {
		t.Errorf("image of %d bytes: %d %s", len(big), r.status, r.body)
	}
	if n := objectCount(t, store); n > before {
		t.Errorf("refused submissions left %d images in the store", n-before)
	}

	// Published straight to NATS without consent: dead-lettered by the
	// worker before any Jumio call.
	job := imageJobWith("door-nats-1", func(j map[string]any) { delete(j, "userConsent"); withParts(frontPart)(j) })
	job["jobId"] = "door-nats-1"
	raw, _ := json.Marshal(job)
	if err := b.stack.NC.Publish(b.subj.JobsSubmit(), raw); err != nil {
		t.Fatal(err)
	}
	dl := b.dlq.WaitN(t, 1, waitLong, func(m pipelinetest.Received[[]byte]) bool {
		return m.Header.Get(messages.HeaderJobID) == "door-nats-1"
	}, "dead letter")[0]
	if dl.Header.Get(messages.HeaderReason) != messages.ReasonPoison {
		t.Errorf("dead letter reason %q", dl.Header.Get(messages.HeaderReason))
	}
	st := b.sim.Stats()
	for _, ref := range []string{"door-1", "door-2", "door-3", "door-4", "door-5", "door-6", "door-mp-1", "door-mp-2", "door-mp-3", "door-mp-4", "door-nats-1"} {
		if st.AccountsByReference[ref] != 0 {
			t.Errorf("a Jumio account exists for refused job %s", ref)
		}
	}
	if st.Refusals[jumiotest.RefusalConsent] != 0 || st.Refusals[jumiotest.RefusalImage] != 0 {
		t.Errorf("Jumio refused uploads kycpipe should have stopped: %v", st.Refusals)
	}
}
