package messages

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
	"time"
)

// requestSeeds are requests in every shape the fast paths meet, and inputs
// they must leave to encoding/json.
var requestSeeds = []string{
	`{"schema":"kycpipe.verification.v1","jobId":"job-1","region":"EU","customerInternalReference":"order-1","workflowDefinition":{"key":10066},"channel":"API","preparedData":{"email":"jane@example.com"}}`,
	`{"jobId":"bench-1","customerInternalReference":"bench-1","userReference":"crm-customer-record-1","workflowDefinition":{"key":10148},"channel":"API","region":"amer-1","tokenLifetime":"30m",` +
		`"userConsent":{"userIp":"203.0.113.7","userLocation":{"country":"USA","state":"IN"},"consent":{"obtained":"yes","obtainedAt":"2026-11-01T10:00:00Z"}},` +
		`"reportingCriteria":"onboarding","preparedData":{"firstName":"Cortez","middleName":"Alexander","lastName":"Crook","suffix":"Jr","personalNumber":"PN-4471","email":"c@example.com","phoneNumber":"+18009376310","phoneNumber2":"+18009376311",` +
		`"dateOfBirth":"1990-08-10","socialSecurityNumber":"123-45-6789","sex":"M","nationality":"USA","ipAddress":"176.80.185.187","paternalSurname":"P","maternalSurname":"M",` +
		`"address":{"line1":"1302 Fayette Drive","line2":"Apt 4","line3":"c","line4":"d","line5":"e","postalCode":"46816","city":"Fort Wayne","subdivision":"IN","country":"USA"},` +
		`"id":{"idNumber":"X1","type":"PASSPORT","issuingDate":"2020-01-01","expiryDate":"2030-01-01"},"kyc":{"registrationDate":"2016-06-07","registrationIpAddress":"176.80.185.187"}}}`,
	`{"customerInternalReference":"x","workflowDefinition":{"key":"10164","credentials":[{"id":"c1","category":"ID","country":{"predefinedType":"DEFINED","values":["USA","CAN"]},"type":{"values":[]}}]},"channel":"WEB","web":{"successUrl":"https://a.example/ok","errorUrl":"https://a.example/err","locale":"en"},"callbackUrl":"https://a.example/cb","accountId":"a1b2"}`,
	`{"customerInternalReference":"x","workflowDefinition":{"key":1},"channel":"API","parts":[{"classifier":"FRONT","contentType":"image/png","data":"iVBORw0KGgo=","size":8,"sha256":"ab"},{"classifier":"FACE","object":"j/n/FACE"}],"submittedAt":"2026-12-06T10:00:00.123456789Z"}`,
	`{"customerInternalReference":"x","workflowDefinition":{"key":1,"capabilities":{"watchlistScreening":{"additionalProperties":"x"},"b":[1,2,{"c":null}]}}}`,
	`{"customerInternalReference":"a\"b\\c\/d\b\f\n\r\t\u00e9\u2028<>&","workflowDefinition":{"key":"<k>"}}`,
	`{"customerInternalReference":"é 中文 😀","workflowDefinition":{"key":"007"}}`,
	`  {"customerInternalReference" : "x" , "workflowDefinition" : { "key" : 0 } }  `,
	`{"customerInternalReference":null,"web":null,"userConsent":null,"preparedData":null,"parts":null,"submittedAt":null,"workflowDefinition":null}`,
	`{"parts":[],"workflowDefinition":{"credentials":[],"capabilities":{}}}`,
	`{"parts":[null,{"data":""}]}`,
	`null`,
	`{}`,
	`{"jobId":"a","jobId":"b"}`,
	`{"JOBID":"a"}`,
	`{"jobid":"a"}`,
	`{"colour":"red"}`,
	`{"jobId":5}`,
	`{"workflowDefinition":{"key":-0}}`,
	`{"workflowDefinition":{"key":1e3}}`,
	`{"workflowDefinition":{"key":18446744073709551616}}`,
	`{"workflowDefinition":{"key":null}}`,
	`{"parts":[{"size":1.5}]}`,
	`{"parts":[{"data":"!!"}]}`,
	`{"submittedAt":"2026-12-06"}`,
	`{"jobId":"\ud83d\ude00"}`,
	`{"jobId":"\ud800"}`,
	"{\"jobId\":\"\xff\"}",
	"{\"jobId\":\"a\x01\"}",
	`{"jobId":"a"}{}`,
	`{"jobId":"a"} x`,
	`{"jobId":"a",}`,
	`{"jobId" "a"}`,
	`[1,2]`,
	`"x"`,
	``,
	`{"preparedData":{"address":{"line1":"x","line1":"y"}}}`,
	`{"workflowDefinition":{"credentials":[{"country":{"values":["a",null]}}]}}`,
	`{"userConsent":{"userLocation":{"country":"US"},"consent":{"obtained":"yes"}},"web":{}}`,
}

// FuzzRequestCodec checks the request's hand-written JSON against
// encoding/json: whatever the fast decoder accepts, the strict
// encoding/json decoder accepts too, with the same value; what encoding/json
// writes for a request is what the fast encoder writes, with and without
// HTML escaping; and a request encoding/json wrote takes the fast path.
func FuzzRequestCodec(f *testing.F) {
	for _, s := range requestSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var slow, fast VerificationRequest
		slowErr := strictDecode(b, &slow)
		if decodeRequestFast(b, &fast) {
			if slowErr != nil {
				t.Fatalf("fast path accepted what encoding/json refuses (%v): %q", slowErr, b)
			}
			if !reflect.DeepEqual(slow, fast) {
				t.Fatalf("fast path decoded %q as\n%#v\nencoding/json as\n%#v", b, fast, slow)
			}
		}
		if slowErr != nil {
			return
		}
		checkRequestEncoding(t, &slow)
	})
}

func checkRequestEncoding(t *testing.T, req *VerificationRequest) {
	t.Helper()
	for _, esc := range []bool{false, true} {
		want, werr := encodeJSON(req, esc)
		got, ok := appendRequest(nil, req, esc)
		if ok && werr != nil {
			t.Fatalf("fast encoder wrote what encoding/json refuses (%v): %#v", werr, req)
		}
		if ok && !bytes.Equal(got, want) {
			t.Fatalf("escapeHTML %v: fast encoder wrote\n%s\nencoding/json\n%s", esc, got, want)
		}
		if werr != nil || len(req.WorkflowDefinition.Capabilities) > 0 {
			continue
		}
		if !ok {
			t.Fatalf("fast encoder gave up on %#v", req)
		}
		var back VerificationRequest
		if !decodeRequestFast(want, &back) {
			t.Fatalf("fast decoder gave up on encoding/json's output %s", want)
		}
	}
}

// The hand-written encoder matches encoding/json on requests built in code
// too (values no JSON input produces, such as non-UTC times).
func TestRequestEncodingMatchesEncodingJSON(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 12, 6, 10, 0, 0, 500, time.FixedZone("x", 3600))
	reqs := []*VerificationRequest{
		{},
		{CustomerInternalReference: "x\x00\u2029<", WorkflowDefinition: WorkflowDefinition{Key: "1"}, SubmittedAt: &at,
			Parts: []Part{{Classifier: "FRONT", Data: []byte{0, 1, 2, 255}}}},
		{WorkflowDefinition: WorkflowDefinition{Key: "x y", Credentials: []CredentialDefinition{{Country: &PredefinedValue{}}}},
			PreparedData: &PreparedData{Address: &PreparedAddress{}, ID: &PreparedDocument{}, KYC: &PreparedRegistration{}},
			UserConsent:  &UserConsent{UserLocation: &UserLocation{}, Consent: &Consent{}}, Web: &WebSettings{}},
	}
	for _, r := range reqs {
		checkRequestEncoding(t, r)
		var slow VerificationRequest
		b, _ := json.Marshal(r)
		if err := strictDecode(b, &slow); err != nil {
			t.Fatal(err)
		}
	}
}
