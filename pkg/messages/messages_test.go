package messages_test

import (
	"errors"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/kycpipe/kycpipe/pkg/messages"
)

func TestSubjects(t *testing.T) {
	t.Parallel()
	s := messages.MustSubjects("")
	for got, want := range map[string]string{
		s.JobsSubmit():                      "kyc.jobs.submit",
		s.Callback("amer-1"):                "kyc.callbacks.amer-1",
		s.Event(messages.KindLaunched):      "kyc.events.launched",
		s.Decision(messages.DecisionPassed): "kyc.decisions.PASSED",
		s.DLQ(messages.StageWorker):         "kyc.dlq.worker",
		s.StreamJobs():                      "KYC_JOBS",
		s.StreamDecisions():                 "KYC_DECISIONS",
		s.BucketJobs():                      "KYC_JOBS_STATE",
	} {
		if got != want {
			t.Errorf("got %q, want %q", got, want)
		}
	}
	p := messages.MustSubjects("acme.kyc-test")
	if p.JobsSubmit() != "acme.kyc-test.jobs.submit" || p.StreamJobs() != "ACME_KYC_TEST_JOBS" {
		t.Errorf("prefixed names: %s %s", p.JobsSubmit(), p.StreamJobs())
	}
	for _, bad := range []string{"kyc.*", "kyc.>", "a..b", "with space", ".kyc"} {
		if _, err := messages.NewSubjects(bad); err == nil {
			t.Errorf("NewSubjects(%q): want error", bad)
		}
	}
}

const validJSON = `{
  "schema": "kycpipe.verification.v1",
  "jobId": "job-1",
  "region": "EU",
  "customerInternalReference": "order-1",
  "workflowDefinition": {"key": 10066},
  "channel": "API",
  "preparedData": {"email": "jane@example.com"}
}`

func TestDecodeRequestStrict(t *testing.T) {
	t.Parallel()
	r, err := messages.DecodeRequest([]byte(validJSON))
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Validate(); err != nil {
		t.Fatalf("valid request rejected: %v", err)
	}
	if r.WorkflowDefinition.Key != messages.WorkflowEmailVerification || r.PreparedData.Email != "jane@example.com" {
		t.Errorf("decoded %+v", r)
	}
	for _, tt := range []struct {
		name, body string
		want       error
	}{
		{"unknown field", `{"customerInternalReference":"x","workflowDefinition":{"key":1},"colour":"red"}`, messages.ErrMalformed},
		{"unknown nested field", `{"customerInternalReference":"x","workflowDefinition":{"key":1,"kee":2}}`, messages.ErrMalformed},
		{"unknown prepared data field", `{"customerInternalReference":"x","workflowDefinition":{"key":1},"preparedData":{"shoeSize":"44"}}`, messages.ErrMalformed},
		{"trailing data", validJSON + `{}`, messages.ErrMalformed},
		{"array", `[]`, messages.ErrMalformed},
		{"empty", ``, messages.ErrMalformed},
		{"wrong type", `{"customerInternalReference":5}`, messages.ErrMalformed},
		{"bad base64", `{"parts":[{"classifier":"FRONT","data":"!!!"}]}`, messages.ErrMalformed},
		{"future schema", `{"schema":"kycpipe.verification.v9"}`, messages.ErrUnsupportedSchema},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := messages.DecodeRequest([]byte(tt.body))
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestDecodeErrorsDoNotEchoValues(t *testing.T) {
	t.Parallel()
	marker := "PII-MARKER-77"
	for _, body := range []string{
		`{"customerInternalReference":["` + marker + `"]}`,
		`{"preparedData":{"firstName":1},"x":"` + marker + `"}`,
		`{"parts":[{"classifier":"FRONT","data":"` + marker + `"}]}`,
		`{"customerInternalReference":"` + marker,
	} {
		_, err := messages.DecodeRequest([]byte(body))
		if err == nil {
			t.Fatalf("want error for %s", body)
		}
		if strings.Contains(err.Error(), marker) {
			t.Errorf("error echoes a value: %v", err)
		}
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	base := func() *messages.VerificationRequest {
		r, err := messages.DecodeRequest([]byte(validJSON))
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	tests := []struct {
		name   string
		mutate func(*messages.VerificationRequest)
		field  string
	}{
		{"job id", func(r *messages.VerificationRequest) { r.JobID = "no spaces please" }, "jobId"},
		{"job id dot", func(r *messages.VerificationRequest) { r.JobID = "a.b" }, "jobId"},
		{"region", func(r *messages.VerificationRequest) { r.Region = "mars" }, "region"},
		{"account id", func(r *messages.VerificationRequest) { r.AccountID = "../x" }, "accountId"},
		{"channel", func(r *messages.VerificationRequest) { r.Channel = "FAX" }, "channel"},
		{"api without data", func(r *messages.VerificationRequest) { r.PreparedData = nil }, "channel"},
		{"reference", func(r *messages.VerificationRequest) { r.CustomerInternalReference = "a;b" }, "customerInternalReference"},
		{"missing reference", func(r *messages.VerificationRequest) { r.CustomerInternalReference = "" }, "customerInternalReference"},
		{"key", func(r *messages.VerificationRequest) { r.WorkflowDefinition.Key = "" }, "workflowDefinition.key"},
		{"callback override http", func(r *messages.VerificationRequest) { r.CallbackURL = "http://example.com/cb" }, "callbackUrl"},
		{"lifetime", func(r *messages.VerificationRequest) { r.TokenLifetime = "90d" }, "tokenLifetime"},
		{"prepared data", func(r *messages.VerificationRequest) { r.PreparedData.Email = "x<y@example.com" }, "preparedData.email"},
		{"parts on web", func(r *messages.VerificationRequest) {
			r.Channel = "WEB"
			r.Parts = []messages.Part{{Classifier: "FRONT", Object: "job-1/n1/FRONT"}}
		}, "parts"},
		{"part classifier", func(r *messages.VerificationRequest) {
			r.Parts = []messages.Part{{Classifier: "SIDE", Data: []byte{1}}}
		}, "parts[0].classifier"},
		{"part duplicate", func(r *messages.VerificationRequest) {
			r.Parts = []messages.Part{{Classifier: "FRONT", Data: []byte{1}}, {Classifier: "FRONT", Data: []byte{2}}}
		}, "parts[1].classifier"},
		{"part both", func(r *messages.VerificationRequest) {
			r.Parts = []messages.Part{{Classifier: "FRONT", Data: []byte{1}, Object: "job-1/n1/FRONT"}}
		}, "parts[0]"},
		{"part object name", func(r *messages.VerificationRequest) {
			r.Parts = []messages.Part{{Classifier: "FRONT", Object: "../../etc/passwd"}}
		}, "parts[0].object"},
		{"part content type", func(r *messages.VerificationRequest) {
			r.Parts = []messages.Part{{Classifier: "FRONT", Data: []byte{1}, ContentType: "image/gif"}}
		}, "parts[0].contentType"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := base()
			tt.mutate(r)
			var ve *messages.ValidationError
			if !errors.As(r.Validate(), &ve) {
				t.Fatalf("want validation error")
			}
			for _, f := range ve.Fields {
				if f.Field == tt.field {
					return
				}
			}
			t.Errorf("want field %q in %+v", tt.field, ve.Fields)
		})
	}
}

func TestJobIDs(t *testing.T) {
	t.Parallel()
	now := time.Now()
	ids := make([]string, 0, 1000)
	seen := map[string]bool{}
	for i := 0; i < 1000; i++ {
		id := messages.NewJobID(now.Add(time.Duration(i) * time.Millisecond))
		if !messages.ValidJobID(id) || seen[id] {
			t.Fatalf("bad or duplicate ID %q", id)
		}
		seen[id] = true
		ids = append(ids, id)
	}
	if !sort.StringsAreSorted(ids) {
		t.Error("job IDs do not sort by creation time")
	}
	a, b := messages.IdempotentJobID("key-1"), messages.IdempotentJobID("key-1")
	if a != b || a == messages.IdempotentJobID("key-2") || !messages.ValidJobID(a) {
		t.Errorf("idempotent IDs: %q %q", a, b)
	}
}

func TestTolerantDecoders(t *testing.T) {
	t.Parallel()
	ev, err := messages.DecodeEvent([]byte(`{"kind":"launched","jobId":"j1","web":{"href":"https://x"},"newField":true}`))
	if err != nil || ev.Schema != messages.SchemaEvent || ev.Web.Href != "https://x" {
		t.Fatalf("event = %+v, %v", ev, err)
	}
	if _, err := messages.DecodeEvent([]byte(`{"schema":"kycpipe.event.v2","kind":"x","jobId":"j"}`)); !errors.Is(err, messages.ErrUnsupportedSchema) {
		t.Errorf("want unsupported schema, got %v", err)
	}
	cb, err := messages.DecodeCallback([]byte(`{"region":"amer-1","callback":{"workflowExecution":{"id":"w-1","status":"PROCESSED"},"account":{"id":"a-1"},"later":1}}`))
	if err != nil || cb.Callback.WorkflowExecution.ID != "w-1" {
		t.Fatalf("callback = %+v, %v", cb, err)
	}
	if _, err := messages.DecodeCallback([]byte(`{"callback":{"workflowExecution":{"id":"w 1"}}}`)); !errors.Is(err, messages.ErrMalformed) {
		t.Errorf("want malformed, got %v", err)
	}
	d, err := messages.DecodeDecision([]byte(`{"workflowExecutionId":"w","decision":{"type":"PASSED"},"brandNew":[1]}`))
	if err != nil || d.Decision.Type != "PASSED" {
		t.Fatalf("decision = %+v, %v", d, err)
	}
}

func TestControlCharactersRejected(t *testing.T) {
	t.Parallel()
	for _, bad := range []string{"a\x00b", "line\nbreak", "tab\there", "del\x7f"} {
		r, _ := messages.DecodeRequest([]byte(validJSON))
		r.CustomerInternalReference = bad
		if err := r.Validate(); err == nil {
			t.Errorf("reference %q accepted", bad)
		}
		r, _ = messages.DecodeRequest([]byte(validJSON))
		r.PreparedData.FirstName = bad
		if err := r.Validate(); err == nil {
			t.Errorf("first name %q accepted", bad)
		}
	}
}
