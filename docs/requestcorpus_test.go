package docs_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/kycpipe/kycpipe/pkg/jumio"
	"github.com/kycpipe/kycpipe/pkg/messages"
)

// TestRequestSchemaAgreesWithValidate runs a corpus of requests through the
// server's decoding and validation (messages.DecodeRequest, Validate) and
// through the VerificationRequest schema. Where the two disagree the case
// says so: the schema is looser on rules JSON Schema cannot state simply
// (serverOnly) and stricter on spellings the server tolerates (schemaOnly).
// A pattern or enum drifting from the Go rules fails here.
func TestRequestSchemaAgreesWithValidate(t *testing.T) {
	t.Parallel()
	loose, _ := validators(t)
	base := func() map[string]any {
		return map[string]any{
			"customerInternalReference": "order-2026-0100",
			"workflowDefinition":        map[string]any{"key": 10066},
			"channel":                   "API",
			"preparedData":              map[string]any{"email": "jane.doe@example.com"},
		}
	}
	web := func() map[string]any {
		return map[string]any{
			"customerInternalReference": "order-2026-0101",
			"workflowDefinition":        map[string]any{"key": 10164},
		}
	}
	png := "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
	const (
		both       = iota // server and schema agree
		serverOnly        // only the server refuses
		schemaOnly        // only the schema refuses
	)
	type tc struct {
		name   string
		req    map[string]any
		set    map[string]any // dotted path → value (nil deletes)
		want   string         // "" (accepted), "400", or "field code"
		agrees int
	}
	long := strings.Repeat("x", 101)
	cases := []tc{
		// accepted
		{"minimal API job", base(), nil, "", both},
		{"minimal web job", web(), nil, "", both},
		{"every field", base(), map[string]any{
			"schema": "kycpipe.verification.v1", "jobId": "order-2026-0100-kyc", "region": "emea-1",
			"accountId": "f22a7518-ad22-444b-839f-b5656f2aaa04", "userReference": "customer-1", "reportingCriteria": "campaign 7",
			"callbackUrl": "https://kyc.example.com/v1/callbacks/jumio?region=emea-1", "tokenLifetime": "1d",
			"workflowDefinition.key": "10011", "workflowDefinition.capabilities": map[string]any{"watchlistScreening": map[string]any{"searchProfile": "default"}},
			"web": map[string]any{"successUrl": "https://shop.example.com/ok", "errorUrl": "http://shop.example.com/err", "locale": "zh_CN"},
			"userConsent": map[string]any{"userIp": "2001:db8::7", "userLocation": map[string]any{"country": "DEU", "state": "BE"},
				"consent": map[string]any{"obtained": "na", "obtainedAt": "2026-11-22T10:00:00.123+01:00"}},
			"preparedData": map[string]any{"firstName": "Jane", "lastName": "Doe", "middleName": "Q", "paternalSurname": "Pérez", "maternalSurname": "García",
				"suffix": "Jr.", "email": "jane.doe@example.com", "phoneNumber": "+4930123456", "phoneNumber2": "4930123457", "dateOfBirth": "1990-02-28",
				"socialSecurityNumber": "123-45-6789", "sex": "F", "nationality": "DEU", "personalNumber": "X123", "ipAddress": "198.51.100.4",
				"address": map[string]any{"line1": "Unter den Linden 1", "line2": "c/o Example", "postalCode": "10117", "city": "Berlin", "subdivision": "BE", "country": "DE"},
				"id":      map[string]any{"idNumber": "C01X00T47", "type": "ID_CARD", "issuingDate": "2020-01-01", "expiryDate": "2030-01-01"},
				"kyc":     map[string]any{"registrationDate": "2016-06-07", "registrationIpAddress": "176.80.185.187"}},
			"parts": []any{map[string]any{"classifier": "FRONT", "contentType": "image/png", "data": png}, map[string]any{"classifier": "FACE", "data": png}},
		}, "", both},
		{"credentials", web(), map[string]any{"workflowDefinition.credentials": []any{
			map[string]any{"category": "ID", "country": map[string]any{"predefinedType": "DEFINED", "values": []any{"USA", "CAN"}},
				"type": map[string]any{"predefinedType": "RECOMMENDED", "values": []any{"PASSPORT"}}},
			map[string]any{"id": "7d6a8b2c-1e3f-4a5b-9c8d-0e1f2a3b4c5d", "category": "FACEMAP", "type": map[string]any{"values": []any{"IPROOV_PREMIUM"}}},
		}}, "", both},
		{"workflow 10010 with userReference", web(), map[string]any{"workflowDefinition.key": 10010, "userReference": "customer-2"}, "", both},
		{"custom workflow key", web(), map[string]any{"workflowDefinition.key": "acme_onboarding-2"}, "", both},
		{"userReference is a base64 HMAC", base(), map[string]any{"userReference": "q/3+Zt9vKx0aL2Yw8pQ1mR4sT7uV0wX3yZ6bC9dE2fA="}, "", both},

		// refused by both
		{"no customerInternalReference", base(), map[string]any{"customerInternalReference": nil}, "customerInternalReference required", both},
		{"blank customerInternalReference", base(), map[string]any{"customerInternalReference": "   "}, "customerInternalReference required", both},
		{"forbidden character", base(), map[string]any{"customerInternalReference": "order<1>"}, "customerInternalReference forbidden_characters", both},
		{"control character", base(), map[string]any{"customerInternalReference": "order\u00011"}, "customerInternalReference forbidden_characters", both},
		{"reference too long", base(), map[string]any{"customerInternalReference": long}, "customerInternalReference too_long", both},
		{"userReference with a control character", base(), map[string]any{"userReference": "a\tb"}, "userReference forbidden_characters", both},
		{"userReference too long", base(), map[string]any{"userReference": long}, "userReference too_long", both},
		{"reportingCriteria newline", base(), map[string]any{"reportingCriteria": "a\nb"}, "reportingCriteria forbidden_characters", both},
		{"unknown property", base(), map[string]any{"favouriteColour": "red"}, "400", both},
		{"unknown nested property", base(), map[string]any{"preparedData.shoeSize": 42}, "400", both},
		{"other schema version", base(), map[string]any{"schema": "kycpipe.verification.v2"}, "400", both},
		{"jobId with a leading dash", base(), map[string]any{"jobId": "-job"}, "jobId invalid_format", both},
		{"jobId too long", base(), map[string]any{"jobId": strings.Repeat("j", 65)}, "jobId invalid_format", both},
		{"unknown region", base(), map[string]any{"region": "mars-1"}, "region invalid_value", both},
		{"bad accountId", base(), map[string]any{"accountId": "acc/1"}, "accountId invalid_format", both},
		{"placeholder accountId", base(), map[string]any{"accountId": "REPLACE-WITH-THE-ACCOUNT-ID-OF-A-DECIDED-JOB"}, "accountId invalid_format", both},
		{"accountId without dashes", base(), map[string]any{"accountId": "f22a7518ad22444b839fb5656f2aaa04"}, "accountId invalid_format", both},
		{"no workflow", base(), map[string]any{"workflowDefinition": nil}, "workflowDefinition.key required", both},
		{"bad workflow key", base(), map[string]any{"workflowDefinition.key": "10 066"}, "workflowDefinition.key invalid_format", both},
		{"negative workflow key", base(), map[string]any{"workflowDefinition.key": -1}, "400", both},
		{"fractional workflow key", base(), map[string]any{"workflowDefinition.key": 10066.5}, "400", both},
		{"bad capability name", base(), map[string]any{"workflowDefinition.capabilities": map[string]any{"bad name": true}}, "workflowDefinition.capabilities invalid_format", both},
		{"unknown channel", base(), map[string]any{"channel": "FAX"}, "channel invalid_value", both},
		{"http callback", base(), map[string]any{"callbackUrl": "http://kyc.example.com/cb"}, "callbackUrl invalid_format", both},
		{"callback with port", base(), map[string]any{"callbackUrl": "https://kyc.example.com:8443/cb"}, "callbackUrl invalid_format", both},
		{"callback with fragment", base(), map[string]any{"callbackUrl": "https://kyc.example.com/cb#x"}, "callbackUrl invalid_format", both},
		{"callback with credentials", base(), map[string]any{"callbackUrl": "https://u:p@kyc.example.com/cb"}, "callbackUrl invalid_format", both},
		{"callback without a dot", base(), map[string]any{"callbackUrl": "https://localhost/cb"}, "callbackUrl invalid_format", both},
		{"callback with a space", base(), map[string]any{"callbackUrl": "https://kyc.example.com/a b"}, "callbackUrl invalid_format", both},
		{"tokenLifetime format", base(), map[string]any{"tokenLifetime": "30 minutes"}, "tokenLifetime invalid_format", both},
		{"bad locale", web(), map[string]any{"web": map[string]any{"locale": "english"}}, "web.locale too_long", both},
		{"bad successUrl", web(), map[string]any{"web": map[string]any{"successUrl": "ftp://shop.example.com/ok"}}, "web.successUrl invalid_format", both},
		{"bad userIp", base(), map[string]any{"userConsent": map[string]any{"userIp": "999.1.1.1"}}, "userConsent.userIp invalid_format", both},
		{"alpha-2 consent country", base(), map[string]any{"userConsent": map[string]any{"userLocation": map[string]any{"country": "US"}}}, "userConsent.userLocation.country invalid_format", both},
		{"consent without country", base(), map[string]any{"userConsent": map[string]any{"userLocation": map[string]any{"state": "CA"}}}, "userConsent.userLocation.country invalid_format", both},
		{"consent maybe", base(), map[string]any{"userConsent": map[string]any{"consent": map[string]any{"obtained": "maybe"}}}, "userConsent.consent.obtained invalid_value", both},
		{"consent time", base(), map[string]any{"userConsent": map[string]any{"consent": map[string]any{"obtained": "yes", "obtainedAt": "yesterday"}}}, "userConsent.consent.obtainedAt invalid_format", both},
		{"email without @", base(), map[string]any{"preparedData.email": "jane.example.com"}, "preparedData.email invalid_format", both},
		{"email with a space", base(), map[string]any{"preparedData.email": "jane doe@example.com"}, "preparedData.email invalid_format", both},
		{"email forbidden", base(), map[string]any{"preparedData.email": "jane<doe>@example.com"}, "preparedData.email forbidden_characters", both},
		{"short phone", base(), map[string]any{"preparedData.phoneNumber": "12"}, "preparedData.phoneNumber invalid_format", both},
		{"month 13", base(), map[string]any{"preparedData.dateOfBirth": "1990-13-01"}, "preparedData.dateOfBirth invalid_format", both},
		{"name forbidden", base(), map[string]any{"preparedData.firstName": "Jane|Joe"}, "preparedData.firstName forbidden_characters", both},
		{"surname forbidden", base(), map[string]any{"preparedData.maternalSurname": "a%b"}, "preparedData.maternalSurname forbidden_characters", both},
		{"lower-case address country", base(), map[string]any{"preparedData.address": map[string]any{"country": "usa"}}, "preparedData.address.country invalid_format", both},
		{"library card", base(), map[string]any{"preparedData.id": map[string]any{"type": "LIBRARY_CARD"}}, "preparedData.id.type invalid_value", both},
		{"registration ip", base(), map[string]any{"preparedData.kyc": map[string]any{"registrationIpAddress": "nope"}}, "preparedData.kyc.registrationIpAddress invalid_format", both},
		{"images on the web channel", web(), map[string]any{"parts": []any{map[string]any{"classifier": "FRONT", "data": png}}}, "parts invalid_value", both},
		{"unknown classifier", base(), map[string]any{"parts": []any{map[string]any{"classifier": "SIDE", "data": png}}}, "parts[0].classifier invalid_value", both},
		{"gif", base(), map[string]any{"parts": []any{map[string]any{"classifier": "FRONT", "contentType": "image/gif", "data": png}}}, "parts[0].contentType invalid_value", both},
		{"data and object", base(), map[string]any{"parts": []any{map[string]any{"classifier": "FRONT", "data": png, "object": "job_1/abc/FRONT"}}}, "parts[0] invalid_value", both},
		{"neither data nor object", base(), map[string]any{"parts": []any{map[string]any{"classifier": "FRONT"}}}, "parts[0] invalid_value", both},
		{"bad object name", base(), map[string]any{"parts": []any{map[string]any{"classifier": "FRONT", "object": "../etc/passwd"}}}, "parts[0].object invalid_format", both},
		{"unknown category", web(), map[string]any{"workflowDefinition.credentials": []any{map[string]any{"category": "FINGERPRINT"}}}, "workflowDefinition.credentials[0].category invalid_value", both},
		{"alpha-2 credential country", web(), map[string]any{"workflowDefinition.credentials": []any{map[string]any{"category": "ID", "country": map[string]any{"values": []any{"US"}}}}}, "workflowDefinition.credentials[0].country.values[0] invalid_format", both},
		{"facemap type for an ID", web(), map[string]any{"workflowDefinition.credentials": []any{map[string]any{"category": "ID", "type": map[string]any{"values": []any{"IPROOV_STANDARD"}}}}}, "workflowDefinition.credentials[0].type.values[0] invalid_value", both},
		{"predefinedType maybe", web(), map[string]any{"workflowDefinition.credentials": []any{map[string]any{"country": map[string]any{"predefinedType": "MAYBE", "values": []any{"USA"}}}}}, "workflowDefinition.credentials[0].country.predefinedType invalid_value", both},
		{"no values", web(), map[string]any{"workflowDefinition.credentials": []any{map[string]any{"country": map[string]any{"predefinedType": "DEFINED"}}}}, "workflowDefinition.credentials[0].country.values required", both},
		{"workflow 10010 without userReference", web(), map[string]any{"workflowDefinition.key": "10010"}, "userReference required", both},

		// refused by the server only: rules the schema states in words
		{"callback to an IP address", base(), map[string]any{"callbackUrl": "https://192.0.2.10/cb"}, "callbackUrl invalid_format", serverOnly},
		{"tokenLifetime over 60d", base(), map[string]any{"tokenLifetime": "90d"}, "tokenLifetime out_of_range", serverOnly},
		{"tokenLifetime under 5m", base(), map[string]any{"tokenLifetime": "60s"}, "tokenLifetime out_of_range", serverOnly},
		{"two FRONT images", base(), map[string]any{"parts": []any{map[string]any{"classifier": "FRONT", "data": png}, map[string]any{"classifier": "FRONT", "data": png}}}, "parts[1].classifier invalid_value", serverOnly},
		{"API job without data", base(), map[string]any{"preparedData": nil}, "channel invalid_value", serverOnly},
		{"reference of a no-break space", base(), map[string]any{"customerInternalReference": "\u00a0"}, "customerInternalReference required", serverOnly},

		// refused by the schema only: spellings the server tolerates
		{"lower-case channel", base(), map[string]any{"channel": "api"}, "", schemaOnly},
		{"lower-case region", base(), map[string]any{"region": "us"}, "", schemaOnly},
		{"empty schema", base(), map[string]any{"schema": ""}, "", schemaOnly},
		{"empty jobId", base(), map[string]any{"jobId": ""}, "", schemaOnly},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req := c.req
			for path, v := range c.set {
				setPath(req, path, v)
			}
			raw, err := json.Marshal(req)
			if err != nil {
				t.Fatal(err)
			}
			server := serverVerdict(raw)
			if !verdictMatches(server, c.want) {
				t.Fatalf("server: %s, want %q", server, c.want)
			}
			schemaErr := loose.validateJSON(messageLoc(messageSchemas[0].file), raw)
			serverOK := c.want == ""
			wantSchemaOK := serverOK
			switch c.agrees {
			case serverOnly:
				wantSchemaOK = true
			case schemaOnly:
				wantSchemaOK = false
			}
			if (schemaErr == nil) != wantSchemaOK {
				t.Errorf("schema accepts=%v, want %v (server: %s); %v", schemaErr == nil, wantSchemaOK, server, schemaErr)
			}
		})
	}
}

// serverVerdict is "" (accepted), "400: …" or the list of "field code".
func serverVerdict(raw []byte) string {
	req, err := messages.DecodeRequest(raw)
	if err != nil {
		return "400: " + err.Error()
	}
	err = req.Validate()
	var ve *jumio.ValidationError
	if !errors.As(err, &ve) {
		if err != nil {
			return "error: " + err.Error()
		}
		return ""
	}
	var out []string
	for _, f := range ve.Fields {
		out = append(out, f.Field+" "+f.Code)
	}
	return strings.Join(out, "; ")
}

func verdictMatches(got, want string) bool {
	switch {
	case want == "":
		return got == ""
	case want == "400":
		return strings.HasPrefix(got, "400: ")
	}
	for _, v := range strings.Split(got, "; ") {
		if v == want {
			return true
		}
	}
	return false
}

// setPath sets (or, for nil, deletes) a dotted path in a JSON object.
func setPath(m map[string]any, path string, v any) {
	keys := strings.Split(path, ".")
	for _, k := range keys[:len(keys)-1] {
		next, ok := m[k].(map[string]any)
		if !ok {
			next = map[string]any{}
			m[k] = next
		}
		m = next
	}
	if v == nil {
		delete(m, keys[len(keys)-1])
		return
	}
	m[keys[len(keys)-1]] = v
}
