package jumio_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/kycpipe/kycpipe/pkg/jumio"
)

func validRequest() *jumio.AccountRequest {
	return &jumio.AccountRequest{
		CustomerInternalReference: "order-1234",
		UserReference:             "user-42",
		WorkflowDefinition:        jumio.WorkflowDefinition{Key: jumio.WorkflowIDSelfie},
		CallbackURL:               "https://hooks.example.com/jumio",
		TokenLifetime:             "30m",
		Web:                       &jumio.WebSettings{SuccessURL: "https://example.com/ok", ErrorURL: "https://example.com/err", Locale: "en-GB"},
	}
}

func TestValidateAccountRequest(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		mutate func(r *jumio.AccountRequest)
		field  string // "" = valid
		code   string
	}{
		{"valid", func(*jumio.AccountRequest) {}, "", ""},
		{"missing reference", func(r *jumio.AccountRequest) { r.CustomerInternalReference = "" }, "customerInternalReference", jumio.CodeRequired},
		{"blank reference", func(r *jumio.AccountRequest) { r.CustomerInternalReference = "   " }, "customerInternalReference", jumio.CodeRequired},
		{"reference too long", func(r *jumio.AccountRequest) { r.CustomerInternalReference = strings.Repeat("x", 101) }, "customerInternalReference", jumio.CodeTooLong},
		{"reference 100 chars ok", func(r *jumio.AccountRequest) { r.CustomerInternalReference = strings.Repeat("é", 100) }, "", ""},
		{"reference with <", func(r *jumio.AccountRequest) { r.CustomerInternalReference = "a<b" }, "customerInternalReference", jumio.CodeForbiddenCharacters},
		{"reference with backtick", func(r *jumio.AccountRequest) { r.CustomerInternalReference = "a`b" }, "customerInternalReference", jumio.CodeForbiddenCharacters},
		{"reference with pipe", func(r *jumio.AccountRequest) { r.CustomerInternalReference = "a|b" }, "customerInternalReference", jumio.CodeForbiddenCharacters},
		{"user reference too long", func(r *jumio.AccountRequest) { r.UserReference = strings.Repeat("u", 101) }, "userReference", jumio.CodeTooLong},
		{"reporting criteria too long", func(r *jumio.AccountRequest) { r.ReportingCriteria = strings.Repeat("r", 256) }, "reportingCriteria", jumio.CodeTooLong},
		{"missing key", func(r *jumio.AccountRequest) { r.WorkflowDefinition.Key = "" }, "workflowDefinition.key", jumio.CodeRequired},
		{"bad key", func(r *jumio.AccountRequest) { r.WorkflowDefinition.Key = "10 164" }, "workflowDefinition.key", jumio.CodeInvalidFormat},
		{"10010 without userReference", func(r *jumio.AccountRequest) {
			r.WorkflowDefinition.Key = jumio.WorkflowWatchlistScreening
			r.UserReference = ""
		}, "userReference", jumio.CodeRequired},
		{"lifetime bad format", func(r *jumio.AccountRequest) { r.TokenLifetime = "30 minutes" }, "tokenLifetime", jumio.CodeInvalidFormat},
		{"lifetime too short", func(r *jumio.AccountRequest) { r.TokenLifetime = "4m" }, "tokenLifetime", jumio.CodeOutOfRange},
		{"lifetime too long", func(r *jumio.AccountRequest) { r.TokenLifetime = "61d" }, "tokenLifetime", jumio.CodeOutOfRange},
		{"lifetime negative", func(r *jumio.AccountRequest) { r.TokenLifetime = "-5m" }, "tokenLifetime", jumio.CodeOutOfRange},
		{"lifetime 60d ok", func(r *jumio.AccountRequest) { r.TokenLifetime = "60d" }, "", ""},
		{"lifetime 300s ok", func(r *jumio.AccountRequest) { r.TokenLifetime = "300s" }, "", ""},
		{"callback http", func(r *jumio.AccountRequest) { r.CallbackURL = "http://hooks.example.com/x" }, "callbackUrl", jumio.CodeInvalidFormat},
		{"callback ip", func(r *jumio.AccountRequest) { r.CallbackURL = "https://10.0.0.1/x" }, "callbackUrl", jumio.CodeInvalidFormat},
		{"callback ipv6", func(r *jumio.AccountRequest) { r.CallbackURL = "https://[::1]/x" }, "callbackUrl", jumio.CodeInvalidFormat},
		{"callback port", func(r *jumio.AccountRequest) { r.CallbackURL = "https://hooks.example.com:8443/x" }, "callbackUrl", jumio.CodeInvalidFormat},
		{"callback fragment", func(r *jumio.AccountRequest) { r.CallbackURL = "https://hooks.example.com/x#frag" }, "callbackUrl", jumio.CodeInvalidFormat},
		{"callback non-ascii", func(r *jumio.AccountRequest) { r.CallbackURL = "https://bücher.example/x" }, "callbackUrl", jumio.CodeInvalidFormat},
		{"callback punycode ok", func(r *jumio.AccountRequest) { r.CallbackURL = "https://xn--bcher-kva.example/x?job=1" }, "", ""},
		{"callback too long", func(r *jumio.AccountRequest) { r.CallbackURL = "https://hooks.example.com/" + strings.Repeat("p", 250) }, "callbackUrl", jumio.CodeInvalidFormat},
		{"locale too long", func(r *jumio.AccountRequest) { r.Web.Locale = "en-GBR" }, "web.locale", jumio.CodeTooLong},
		{"locale bad", func(r *jumio.AccountRequest) { r.Web.Locale = "E1" }, "web.locale", jumio.CodeInvalidFormat},
		{"success url relative", func(r *jumio.AccountRequest) { r.Web.SuccessURL = "/ok" }, "web.successUrl", jumio.CodeInvalidFormat},
		{"credential country", func(r *jumio.AccountRequest) {
			r.WorkflowDefinition.Credentials = []jumio.CredentialDefinition{{Category: "ID", Country: &jumio.PredefinedValue{Values: []string{"US"}}}}
		}, "workflowDefinition.credentials[0].country.values[0]", jumio.CodeInvalidFormat},
		{"credential type", func(r *jumio.AccountRequest) {
			r.WorkflowDefinition.Credentials = []jumio.CredentialDefinition{{Category: "ID", Type: &jumio.PredefinedValue{PredefinedType: "DEFINED", Values: []string{"LIBRARY_CARD"}}}}
		}, "workflowDefinition.credentials[0].type.values[0]", jumio.CodeInvalidValue},
		{"credential category", func(r *jumio.AccountRequest) {
			r.WorkflowDefinition.Credentials = []jumio.CredentialDefinition{{Category: "PHOTO"}}
		}, "workflowDefinition.credentials[0].category", jumio.CodeInvalidValue},
		{"consent ip", func(r *jumio.AccountRequest) {
			r.UserConsent = &jumio.UserConsent{UserIP: "999.1.1.1", Consent: &jumio.Consent{Obtained: "yes", ObtainedAt: "2024-01-01T00:00:00Z"}}
		}, "userConsent.userIp", jumio.CodeInvalidFormat},
		{"consent obtained", func(r *jumio.AccountRequest) {
			r.UserConsent = &jumio.UserConsent{Consent: &jumio.Consent{Obtained: "maybe"}}
		}, "userConsent.consent.obtained", jumio.CodeInvalidValue},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := validRequest()
			tt.mutate(r)
			err := jumio.ValidateAccountRequest(r)
			if tt.field == "" {
				if err != nil {
					t.Fatalf("want valid, got %v", err)
				}
				return
			}
			var ve *jumio.ValidationError
			if !errors.As(err, &ve) || !errors.Is(err, jumio.ErrValidation) {
				t.Fatalf("want *ValidationError, got %v", err)
			}
			for _, f := range ve.Fields {
				if f.Field == tt.field && f.Code == tt.code {
					return
				}
			}
			t.Errorf("want %s/%s in %+v", tt.field, tt.code, ve.Fields)
		})
	}
}

func TestValidationMessagesDoNotEchoValues(t *testing.T) {
	t.Parallel()
	secret := "SECRET-MARKER-9f8e"
	r := validRequest()
	r.CustomerInternalReference = secret + "<" + strings.Repeat("x", 100)
	r.CallbackURL = "http://" + secret + ".example.com:99/x"
	p := &jumio.PreparedData{FirstName: secret + ";", Email: secret, PhoneNumber: secret, DateOfBirth: secret}
	for _, err := range []error{jumio.ValidateAccountRequest(r), jumio.ValidatePreparedData(p)} {
		if err == nil {
			t.Fatal("want error")
		}
		if strings.Contains(err.Error(), secret) {
			t.Errorf("validation error echoes a value: %v", err)
		}
	}
}

func TestValidationErrorsAreSorted(t *testing.T) {
	t.Parallel()
	p := &jumio.PreparedData{FirstName: "<", LastName: "<", Email: "<", PhoneNumber: "<", MiddleName: "<"}
	for i := 0; i < 20; i++ {
		var ve *jumio.ValidationError
		if !errors.As(jumio.ValidatePreparedData(p), &ve) {
			t.Fatal("want validation error")
		}
		for j := 1; j < len(ve.Fields); j++ {
			a, b := ve.Fields[j-1], ve.Fields[j]
			if a.Field > b.Field || (a.Field == b.Field && a.Code > b.Code) {
				t.Fatalf("fields not sorted: %+v", ve.Fields)
			}
		}
	}
}

func TestValidatePreparedData(t *testing.T) {
	t.Parallel()
	ok := &jumio.PreparedData{
		FirstName: "Cortez", LastName: "Crook", Email: "johndoe@example.com", PhoneNumber: "+8009376310",
		DateOfBirth: "1990-08-10", SocialSecurityNumber: "999999999", Sex: "0",
		Address: &jumio.PreparedAddress{Line1: "1302 Fayette drive", PostalCode: "46816", City: "Fort Wayne", Subdivision: "IN", Country: "USA"},
		ID:      &jumio.PreparedDocument{IDNumber: "N1244572", Type: "DRIVER_LICENSE"},
		KYC:     &jumio.PreparedRegistration{RegistrationDate: "2016-06-07", RegistrationIPAddress: "176.80.185.187"},
	}
	if err := jumio.ValidatePreparedData(ok); err != nil {
		t.Fatalf("seed example rejected: %v", err)
	}
	for _, tt := range []struct {
		name  string
		p     jumio.PreparedData
		field string
	}{
		{"name injection", jumio.PreparedData{FirstName: "Robert'); DROP--;"}, "firstName"},
		{"maternal surname", jumio.PreparedData{MaternalSurname: "a%b"}, "maternalSurname"},
		{"email slash", jumio.PreparedData{Email: "a/b@example.com"}, "email"},
		{"email no at", jumio.PreparedData{Email: "example.com"}, "email"},
		{"phone pipe", jumio.PreparedData{PhoneNumber: "+1|2"}, "phoneNumber"},
		{"phone letters", jumio.PreparedData{PhoneNumber: "call me"}, "phoneNumber"},
		{"dob format", jumio.PreparedData{DateOfBirth: "10/08/1990"}, "dateOfBirth"},
		{"ip", jumio.PreparedData{IPAddress: "localhost"}, "ipAddress"},
		{"country", jumio.PreparedData{Address: &jumio.PreparedAddress{Country: "usa"}}, "address.country"},
		{"id type", jumio.PreparedData{ID: &jumio.PreparedDocument{Type: "LIBRARY"}}, "id.type"},
		{"registration ip", jumio.PreparedData{KYC: &jumio.PreparedRegistration{RegistrationIPAddress: "x"}}, "kyc.registrationIpAddress"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var ve *jumio.ValidationError
			if !errors.As(jumio.ValidatePreparedData(&tt.p), &ve) {
				t.Fatal("want validation error")
			}
			for _, f := range ve.Fields {
				if f.Field == tt.field {
					return
				}
			}
			t.Errorf("want field %s in %+v", tt.field, ve.Fields)
		})
	}
}

func TestParseTokenLifetime(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]time.Duration{"5m": 5 * time.Minute, "300s": 5 * time.Minute, "1d": 24 * time.Hour, "+2h": 2 * time.Hour, "60d": 60 * 24 * time.Hour} {
		if got, err := jumio.ParseTokenLifetime(in); err != nil || got != want {
			t.Errorf("ParseTokenLifetime(%q) = %v, %v", in, got, err)
		}
	}
	for _, bad := range []string{"", "5", "m", "5 m", "5w", "1.5h", "299s", "61d", "99999999999999999999d"} {
		if _, err := jumio.ParseTokenLifetime(bad); err == nil {
			t.Errorf("ParseTokenLifetime(%q): want error", bad)
		}
	}
}
