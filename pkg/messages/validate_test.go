package messages_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/kycpipe/kycpipe/pkg/messages"
)

// userReference has only Jumio's length rule and kycpipe's own
// control-character rule (jumio-api.md §10.7): customerInternalReference's
// forbidden characters do not apply, so base64 signatures pass. The rules are
// shared by the request validation and the Jumio client's check.
func TestUserReferenceRules(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, ref string
		wantCode  string // "" = accepted
	}{
		{"base64 HMAC with / + =", "q/3+Zt9vKx0aL2Yw8pQ1mR4sT7uV0wX3yZ6bC9dE2fA=", ""},
		{"characters forbidden in customerInternalReference", `a<b>"c";d%e{f}g|h` + "`", ""},
		{"100 characters", strings.Repeat("u", 100), ""},
		{"101 characters", strings.Repeat("u", 101), messages.CodeTooLong},
		{"a newline", "u1\nforged", messages.CodeForbiddenCharacters},
		{"a NUL", "u1\x00", messages.CodeForbiddenCharacters},
		{"DEL", "u1\x7f", messages.CodeForbiddenCharacters},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			// The shared account rules (jumio.ValidateAccountRequest uses them).
			var v messages.Validator
			messages.ValidateAccountFields(&v, "", &messages.AccountRequest{CustomerInternalReference: "order-1",
				UserReference: c.ref, WorkflowDefinition: messages.WorkflowDefinition{Key: "10066"}})
			checkField(t, "account rules", v.Err(), "userReference", c.wantCode)
			// The job's validation.
			req := &messages.VerificationRequest{CustomerInternalReference: "order-1", UserReference: c.ref,
				WorkflowDefinition: messages.WorkflowDefinition{Key: "10164"}}
			checkField(t, "request validation", req.Validate(), "userReference", c.wantCode)
		})
	}
}

func checkField(t *testing.T, what string, err error, field, wantCode string) {
	t.Helper()
	var ve *messages.ValidationError
	if err != nil && !errors.As(err, &ve) {
		t.Fatalf("%s: %v is not a ValidationError", what, err)
	}
	var got []string
	if ve != nil {
		for _, f := range ve.Fields {
			if f.Field == field {
				got = append(got, f.Code)
			}
		}
	}
	switch {
	case wantCode == "" && len(got) > 0:
		t.Fatalf("%s: %s refused (%v): %v", what, field, got, err)
	case wantCode != "" && (len(got) != 1 || got[0] != wantCode):
		t.Fatalf("%s: %s codes %v, want exactly [%s] (%v)", what, field, got, wantCode, err)
	}
}

// AlertsHeader names each alert once, sorted, by label (or decision).
func TestAlertsHeader(t *testing.T) {
	t.Parallel()
	got := messages.AlertsHeader([]messages.Alert{
		{Capability: "watchlistScreening", Decision: "WARNING", Label: "ALERT"},
		{Capability: "imageChecks", Decision: "REJECTED"},
		{Capability: "watchlistScreening", Decision: "WARNING", Label: "ALERT"},
	})
	if want := "imageChecks:REJECTED,watchlistScreening:ALERT"; got != want {
		t.Fatalf("AlertsHeader = %q, want %q", got, want)
	}
	if got := messages.AlertsHeader(nil); got != "" {
		t.Fatalf("AlertsHeader(nil) = %q", got)
	}
}

// An accountId must be a Jumio account ID (a UUID): a placeholder or any
// other ID is refused at the door with a field error naming accountId,
// instead of reaching Jumio as PUT /accounts/<placeholder> (a 404 and a
// dead letter).
func TestAccountIDMustBeUUID(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, id string
		ok       bool
	}{
		{"simulator's UUID", "f22a7518-ad22-444b-839f-b5656f2aaa04", true},
		{"upper-case UUID", "F22A7518-AD22-444B-839F-B5656F2AAA04", true},
		{"the example's old placeholder", "REPLACE-WITH-THE-ACCOUNT-ID-OF-A-DECIDED-JOB", false},
		{"a job ID", "job_06h0393mj8kfndysknek4w3np4", false},
		{"UUID without dashes", "f22a7518ad22444b839fb5656f2aaa04", false},
		{"UUID with braces", "{f22a7518-ad22-444b-839f-b5656f2aaa04}", false},
		{"too short", "f22a7518-ad22-444b-839f-b5656f2aaa0", false},
		{"non-hex", "g22a7518-ad22-444b-839f-b5656f2aaa04", false},
		{"trailing newline", "f22a7518-ad22-444b-839f-b5656f2aaa04\n", false},
		{"path traversal", "../x", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			if got := messages.ValidAccountID(c.id); got != c.ok {
				t.Fatalf("ValidAccountID(%q) = %v, want %v", c.id, got, c.ok)
			}
			req := &messages.VerificationRequest{CustomerInternalReference: "order-1", AccountID: c.id,
				WorkflowDefinition: messages.WorkflowDefinition{Key: "10066"}}
			want := messages.CodeInvalidFormat
			if c.ok {
				want = ""
			}
			checkField(t, "request validation", req.Validate(), "accountId", want)
		})
	}
}
