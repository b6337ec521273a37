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
