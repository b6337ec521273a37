package messages_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/kycpipe/kycpipe/pkg/messages"
)

// Security II, "also": strict decoding matched field names without regard
// to case ("JOBID" was accepted as jobId). Field names are case-sensitive.
func TestStrictDecodingIsCaseExact(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name, body string
	}{
		{"top-level field", `{"JOBID":"job-1","customerInternalReference":"o","workflowDefinition":{"key":10066}}`},
		{"mixed case", `{"jobid":"job-1","customerInternalReference":"o","workflowDefinition":{"key":10066}}`},
		{"nested field", `{"customerInternalReference":"o","workflowDefinition":{"KEY":10066}}`},
		{"field in an array element", `{"customerInternalReference":"o","workflowDefinition":{"key":10164,"credentials":[{"Category":"ID"}]}}`},
		{"prepared data", `{"customerInternalReference":"o","workflowDefinition":{"key":10066},"preparedData":{"Email":"a@example.com"}}`},
	} {
		_, err := messages.DecodeRequest([]byte(tt.body))
		var ie *messages.InputError
		if !errors.Is(err, messages.ErrMalformed) || !errors.As(err, &ie) || !strings.Contains(ie.Public(), "unknown field") {
			t.Errorf("%s: err = %v, want an unknown-field error", tt.name, err)
		}
	}
	// Exact names, and free-form keys (capabilities are a map), still pass.
	ok := `{"jobId":"job-1","customerInternalReference":"o","workflowDefinition":{"key":10164,"credentials":[{"category":"ID","country":{"values":["USA"]}}],` +
		`"capabilities":{"watchlistScreening":{"Additional":1,"nested":[{"X":true}]}}},"channel":"API","preparedData":{"email":"a@example.com","address":{"line1":"x"}}}`
	r, err := messages.DecodeRequest([]byte(ok))
	if err != nil {
		t.Fatalf("exactly spelled request refused: %v", err)
	}
	if r.JobID != "job-1" || r.PreparedData.Address.Line1 != "x" || len(r.WorkflowDefinition.Capabilities) != 1 {
		t.Errorf("decoded %+v", r)
	}
}

// Security II, finding 8: Marshal escaped '<' as \u003c (six bytes for one),
// so a valid 1 MB body could exceed the jobs stream's message size once
// encoded. Nothing the pipeline publishes is HTML.
func TestMarshalDoesNotEscapeHTML(t *testing.T) {
	t.Parallel()
	lt := strings.Repeat("<", 100_000)
	body := `{"customerInternalReference":"o","workflowDefinition":{"key":10066,"capabilities":{"x":"` + lt + `"}},"channel":"API","preparedData":{"email":"a@example.com"}}`
	r, err := messages.DecodeRequest([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	out, err := messages.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(out, []byte(`\u003c`)) || bytes.Contains(out, []byte(`\u0026`)) {
		t.Error("Marshal escapes HTML characters")
	}
	if len(out) > len(body)+128 {
		t.Errorf("encoded %d bytes from a %d-byte body", len(out), len(body))
	}
	if bytes.HasSuffix(out, []byte("\n")) {
		t.Error("Marshal ends with a newline")
	}
	back, err := messages.DecodeRequest(out)
	if err != nil || string(back.WorkflowDefinition.Capabilities["x"]) != `"`+lt+`"` {
		t.Errorf("round trip: %v", err)
	}
}

// Security II, finding 2: a forged callback was stored whole (hrefs of any
// length, any callbackSentAt, up to 64 KiB). Callbacks are now at most
// 8 KiB, hrefs at most 2 KiB, and callbackSentAt is an RFC 3339 time.
func TestCallbackBounds(t *testing.T) {
	t.Parallel()
	const exec, acct = "2f1e3c6a-58a1-4a6e-9d7b-9a6c1c2b3d4e", "7b1d2e3f-4a5b-4c6d-8e9f-0a1b2c3d4e5f"
	cb := func(sentAt, href, pad string) string {
		return `{"callbackSentAt":"` + sentAt + `","workflowExecution":{"id":"` + exec + `","href":"` + href + `","status":"PROCESSED"},"account":{"id":"` + acct + `"}` + pad + `}`
	}
	good := cb("2026-11-22T10:00:00.000Z", "https://retrieval.amer-1.jumio.ai/api/v1/accounts/"+acct, "")
	if _, err := messages.ParseCallback(strings.NewReader(good)); err != nil {
		t.Fatalf("a real callback is refused: %v", err)
	}
	if _, err := messages.ParseCallback(strings.NewReader(cb("2026-11-22T10:00:00+01:00", "", ""))); err != nil {
		t.Errorf("an RFC 3339 time with an offset is refused: %v", err)
	}
	for _, tt := range []struct{ name, body string }{
		{"href over 2 KiB", cb("2026-11-22T10:00:00.000Z", "https://x.example/"+strings.Repeat("<", 2<<10), "")},
		{"callbackSentAt not a time", cb("yesterday", "", "")},
		{"callbackSentAt too long", cb("2026-11-22T10:00:00."+strings.Repeat("0", 60)+"Z", "", "")},
		{"body over 8 KiB", cb("2026-11-22T10:00:00.000Z", "", `,"pad":"`+strings.Repeat("x", 8<<10)+`"`)},
	} {
		if _, err := messages.ParseCallback(strings.NewReader(tt.body)); !errors.Is(err, messages.ErrInvalidCallback) {
			t.Errorf("%s: err = %v, want ErrInvalidCallback", tt.name, err)
		}
	}
	if messages.MaxCallbackSize != 8<<10 {
		t.Errorf("MaxCallbackSize = %d", messages.MaxCallbackSize)
	}
	// A stored callback with an oversized href no longer decodes either.
	rec := messages.CallbackReceived{Region: "amer-1", ReceivedAt: time.Now(), Callback: messages.Callback{
		WorkflowExecution: messages.WorkflowStatus{ID: exec, Status: "PROCESSED", Href: strings.Repeat("h", 3<<10)}, Account: messages.Ref{ID: acct}}}
	b, _ := messages.Marshal(&rec)
	if _, err := messages.DecodeCallback(b); err == nil {
		t.Error("DecodeCallback accepts an oversized href")
	}
}
