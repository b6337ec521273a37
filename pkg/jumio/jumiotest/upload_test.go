package jumiotest

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/kycpipe/kycpipe/pkg/jumio"
)

func TestUploadChecks(t *testing.T) {
	t.Parallel()
	e := setup(t, Options{MaxUploadSize: 64 << 10})
	tok := e.token()
	ar := e.createAccount(tok, accountReq("uploads", jumio.WorkflowIDIV))
	other := e.createAccount(tok, accountReq("uploads-2", jumio.WorkflowIDIV))
	id, selfie := credOf(t, ar, jumio.CategoryID), credOf(t, ar, jumio.CategorySelfie)
	frontURL, _ := id.API.PartURL(jumio.PartFront)
	faceURL, _ := selfie.API.PartURL(jumio.PartFace)
	wrongClassifier := strings.Replace(frontURL, "/parts/FRONT", "/parts/FACE", 1)
	noise := bytes.Repeat([]byte{0xFF, 0xD8, 0xFF, 0x00}, 20<<10) // JPEG magic, 80 KiB

	tests := []struct {
		name    string
		method  string
		url     string
		data    []byte
		field   string
		opts    []reqOpt
		status  int
		remains string // api.parts keys left, on success
	}{
		{"PNG front", "POST", frontURL, frontPNG(), "file", nil, 200, "back"},
		{"replace front with PUT", "PUT", frontURL, JPEG(800, 500), "file", nil, 200, "back"},
		{"PUT with nothing to replace", "PUT", faceURL, JPEG(480, 640), "file", nil, 405, ""},
		{"GIF", "POST", faceURL, []byte("GIF89a\x01\x00\x01\x00"), "file", nil, 400, ""},
		{"text", "POST", faceURL, []byte("hello"), "file", nil, 400, ""},
		{"too small", "POST", faceURL, PNG(300, 200), "file", nil, 400, ""},
		{"too large dimensions", "POST", faceURL, PNG(8001, 10), "file", nil, 400, ""},
		{"over max size", "POST", faceURL, noise, "file", nil, 400, ""},
		{"missing file field", "POST", faceURL, frontPNG(), "image", nil, 400, ""},
		{"classifier not of this credential", "POST", wrongClassifier, frontPNG(), "file", nil, 404, ""},
		{"OAuth token", "POST", faceURL, frontPNG(), "file", []reqOpt{bearer(tok)}, 401, ""},
		{"other execution's token", "POST", faceURL, frontPNG(), "file", []reqOpt{bearer(other.WorkflowExecution.Credentials[0].API.Token)}, 401, ""},
		{"no token", "POST", faceURL, frontPNG(), "file", []reqOpt{header("Authorization", "")}, 401, ""},
		{"without /link prefix", "POST", strings.Replace(faceURL, "/link/", "/", 1), frontPNG(), "file", nil, 404, ""},
		{"JPEG face", "POST", faceURL, JPEG(480, 640), "file", nil, 200, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body, ct := multipartFile(t, tt.field, tt.data)
			opts := append([]reqOpt{bearer(id.API.Token), header("Content-Type", ct)}, tt.opts...)
			r := e.do(tt.method, tt.url, body, opts...)
			if r.status != tt.status {
				t.Fatalf("got %d %s, want %d", r.status, r.body, tt.status)
			}
			if r.status != 200 {
				r.problem(t)
				if r.status == 405 && r.header.Get("Allow") != "POST" {
					t.Errorf("Allow = %q", r.header.Get("Allow"))
				}
				return
			}
			var ur jumio.UploadResponse
			r.decode(t, &ur)
			if ur.Account.ID != ar.Account.ID || ur.WorkflowExecution.ID != ar.WorkflowExecution.ID ||
				ur.Credential == nil || ur.Part == nil || !uuidV4.MatchString(ur.Part.ID) || ur.API.Token != id.API.Token ||
				ur.API.WorkflowExecution != id.API.WorkflowExecution || ur.Timestamp == "" {
				t.Errorf("upload response = %s", r.body)
			}
			var keys []string
			for k := range ur.API.Parts {
				keys = append(keys, k)
			}
			if strings.Join(keys, ",") != tt.remains {
				t.Errorf("remaining parts = %v, want %q", keys, tt.remains)
			}
		})
	}
	st := e.s.Stats()
	if st.Uploads != 3 || st.UploadsByExecution[ar.WorkflowExecution.ID] != 3 || st.Responses["upload_part"]["400"] != 6 ||
		st.Refusals[RefusalImage] != 5 {
		t.Errorf("stats = %+v", st)
	}
	info, _ := e.s.Execution(ar.WorkflowExecution.ID)
	if !info.Started || strings.Join(info.Parts, ",") != "FRONT,FACE" {
		t.Errorf("execution = %+v", info)
	}

	// Retrieval serves the bytes last uploaded, with their content type.
	r := e.do(http.MethodGet, "/api/v1/accounts/"+ar.Account.ID+"/credentials/"+id.ID+"/parts/FRONT", nil, bearer(tok))
	if r.status != 200 || r.header.Get("Content-Type") != "image/jpeg" || !bytes.Equal(r.body, JPEG(800, 500)) {
		t.Errorf("get part: %d %s", r.status, r.header.Get("Content-Type"))
	}
	if r := e.do(http.MethodGet, "/api/v1/accounts/"+ar.Account.ID+"/credentials/"+id.ID+"/parts/BACK", nil, bearer(tok)); r.status != 404 {
		t.Errorf("missing part: %d", r.status)
	}
}

func TestPreparedData(t *testing.T) {
	t.Parallel()
	e := setup(t, Options{})
	tok := e.token()
	ar := e.createAccount(tok, accountReq("prepared", jumio.WorkflowEmailVerification))
	data := credOf(t, ar, jumio.CategoryData)

	bad := e.uploadPrepared(data, map[string]any{"firstName": "Jane<script>", "email": "jane@example.com", "phoneNumber": "12|34"})
	if bad.status != 400 {
		t.Fatalf("forbidden characters: %d %s", bad.status, bad.body)
	}
	p := bad.problem(t)
	if !strings.Contains(p.Detail, "firstName must not contain") || !strings.Contains(p.Detail, "phoneNumber") ||
		strings.Contains(p.Detail, "script") || strings.Contains(p.Detail, "12|34") {
		t.Errorf("detail = %q", p.Detail)
	}
	if r := e.uploadPrepared(data, "not an object"); r.status != 400 {
		t.Errorf("non-object body: %d", r.status)
	}

	r := e.uploadPrepared(data, map[string]any{"email": "jane@example.com", "futureField": 1})
	mustOK(t, r, "prepared data")
	if !strings.Contains(string(r.body), `"parts":{}`) {
		t.Errorf("api.parts is not {}: %s", r.body)
	}
	// PUT replaces it
	u, _ := data.API.PartURL(jumio.PartPreparedData)
	r = e.do(http.MethodPut, u, strings.NewReader(`{"email":"john@example.org"}`), bearer(data.API.Token), header("Content-Type", "application/json"))
	mustOK(t, r, "replace prepared data")

	r = e.do(http.MethodGet, "/api/v1/accounts/"+ar.Account.ID+"/credentials/"+data.ID+"/parts/PREPARED_DATA", nil, bearer(tok))
	var pd jumio.PreparedData
	if r.status != 200 || r.header.Get("Content-Type") != "application/json" || json.Unmarshal(r.body, &pd) != nil || pd.Email != "john@example.org" {
		t.Errorf("get prepared data: %d %s", r.status, r.body)
	}
	if st := e.s.Stats(); st.Uploads != 2 || st.Requests["upload_prepared_data"] != 4 {
		t.Errorf("stats = %+v", st)
	}
}

func TestFinalizeAPIFlow(t *testing.T) {
	t.Parallel()
	e := setup(t, Options{})
	tok := e.token()
	req := accountReq("api-flow", jumio.WorkflowIDIV)
	req.UserReference = "user-1"
	ar := e.createAccount(tok, req)
	id := credOf(t, ar, jumio.CategoryID)
	e.completeAPI(ar)

	// finalize answered {timestamp, account, workflowExecution}; a second one is refused
	r := e.finalize(id)
	if r.status != http.StatusForbidden {
		t.Fatalf("second finalize: %d %s", r.status, r.body)
	}
	r.problem(t)
	if r := e.upload(id, jumio.PartFront, frontPNG()); r.status != http.StatusForbidden {
		t.Fatalf("upload after finalize: %d", r.status)
	}
	if got := e.status(tok, ar); got != jumio.StatusProcessed {
		t.Fatalf("status = %s", got)
	}

	d := e.details(tok, ar)
	if d.Workflow.Status != jumio.StatusProcessed || d.Workflow.DefinitionKey != "10011" || d.Workflow.UserReference != "user-1" ||
		d.Workflow.CustomerInternalReference != "api-flow" || d.Account.ID != ar.Account.ID {
		t.Errorf("workflow = %+v", d.Workflow)
	}
	if d.CreatedAt == "" || d.StartedAt == "" || d.CompletedAt == "" || d.Steps == nil || d.Steps.Href != e.s.URL+execPath(ar)+"/steps" {
		t.Errorf("timestamps/steps: %+v", d)
	}
	if d.Decision.Type != jumio.DecisionPassed || d.Decision.Details.Label != jumio.DecisionPassed || d.Decision.Risk == nil || d.Decision.Risk.Score != ScorePassed {
		t.Errorf("decision = %+v", d.Decision)
	}
	if d.Consent == nil || d.Consent.Obtained != "yes" {
		t.Errorf("consent = %+v", d.Consent)
	}
	if len(d.Credentials) != 2 { // ID and SELFIE: FACEMAP is not acquired over the API
		t.Fatalf("credentials = %+v", d.Credentials)
	}
	for _, c := range d.Credentials {
		for _, p := range c.Parts {
			if p.Href != e.s.URL+"/api/v1/accounts/"+ar.Account.ID+"/credentials/"+c.ID+"/parts/"+p.Classifier {
				t.Errorf("part href = %s", p.Href)
			}
			if r := e.do(http.MethodGet, p.Href, nil, bearer(tok)); r.status != 200 || !strings.HasPrefix(r.header.Get("Content-Type"), "image/") {
				t.Errorf("GET %s: %d", p.Classifier, r.status)
			}
		}
		if c.Consent == nil || c.Consent.CollectedBy != "CUSTOMER" {
			t.Errorf("credential consent = %+v", c.Consent)
		}
	}
	caps := d.Capabilities
	if len(caps.Usability) != 2 || len(caps.Extraction) != 1 || len(caps.Similarity) != 1 || len(caps.Liveness) != 1 ||
		len(caps.DataChecks) != 1 || len(caps.ImageChecks) != 1 || len(caps.Other) != 0 {
		t.Fatalf("capabilities = %+v", caps)
	}
	for _, g := range caps.All() {
		if g.Decision.Type != jumio.DecisionPassed {
			t.Errorf("%s = %+v", g.Name, g.Decision)
		}
	}
	ext := caps.Extraction[0].Data
	if ext == nil || ext.FirstName != "JOHN JACOB" || ext.LastName != "SMITH" || ext.Type != "DRIVING_LICENSE" || ext.CurrentAge == "" {
		t.Errorf("extraction = %+v", ext)
	}
	if l := caps.Liveness[0].Data; l == nil || l.Type != "JUMIO_STANDARD" || l.PredictedAge == nil || l.AgeConfidenceRange == "" {
		t.Errorf("liveness = %+v", l)
	}
	if s := caps.Similarity[0]; s.Data == nil || s.Data.Similarity != "MATCH" || s.Decision.Details.Label != "MATCH" || len(s.Credentials) != 2 {
		t.Errorf("similarity = %+v", s)
	}
	if ic := caps.ImageChecks[0].Data; ic == nil || ic.FaceSearchFindings == nil || ic.FaceSearchFindings.Status != "DONE" {
		t.Errorf("imageChecks = %+v", ic)
	}

	r = e.do(http.MethodGet, execPath(ar)+"/steps", nil, bearer(tok))
	var steps jumio.Steps
	r.decode(t, &steps)
	if len(steps.Steps) != 1 || steps.Steps[0].Name != "ID_IV" || len(steps.Steps[0].CapabilityIDs) != 7 ||
		steps.Steps[0].Decision.Type != jumio.DecisionPassed {
		t.Errorf("steps = %s", r.body)
	}

	st := e.s.Stats()
	if st.Finalizes != 1 || st.FinalizeAttempts != 2 || st.FinalizesByExecution[ar.WorkflowExecution.ID] != 1 || st.Uploads != 3 {
		t.Errorf("stats = %+v", st)
	}
	if info, _ := e.s.Execution(ar.WorkflowExecution.ID); !info.Finalized || info.Channel != jumio.ChannelAPI || info.Decision == nil {
		t.Errorf("execution = %+v", info)
	}
}

func TestFinalizeMissingParts(t *testing.T) {
	t.Parallel()
	e := setup(t, Options{})
	tok := e.token()
	ar := e.createAccount(tok, accountReq("missing-parts", jumio.WorkflowIDIV))
	id := credOf(t, ar, jumio.CategoryID)
	mustOK(t, e.upload(id, jumio.PartFront, frontPNG()), "front")
	mustOK(t, e.upload(credOf(t, ar, jumio.CategorySelfie), jumio.PartFace, PNG(480, 640)), "face")
	mustOK(t, e.do(http.MethodPut, id.API.WorkflowExecution, strings.NewReader(`{"ignored":true}`), bearer(id.API.Token),
		header("Content-Type", "application/json")), "finalize with a body")

	d := e.details(tok, ar)
	if d.Decision.Type != jumio.DecisionRejected || d.Decision.Risk.Score <= 70 {
		t.Fatalf("decision = %+v", d.Decision)
	}
	labels := map[string]string{}
	for _, g := range d.Capabilities.All() {
		labels[g.Name] += g.Decision.Type + "/" + g.Decision.Details.Label + " "
	}
	want := map[string]string{
		"usability":   "NOT_EXECUTED/NOT_UPLOADED PASSED/OK ",
		"similarity":  "NOT_EXECUTED/PRECONDITION_NOT_FULFILLED ",
		"imageChecks": "NOT_EXECUTED/PRECONDITION_NOT_FULFILLED ",
		"extraction":  "NOT_EXECUTED/PRECONDITION_NOT_FULFILLED ",
		"dataChecks":  "NOT_EXECUTED/PRECONDITION_NOT_FULFILLED ",
		"liveness":    "PASSED/OK ",
	}
	for k, v := range want {
		if labels[k] != v {
			t.Errorf("%s = %q, want %q", k, labels[k], v)
		}
	}
	if ext := d.Capabilities.Extraction[0].Data; ext == nil || ext.FirstName != "" {
		t.Errorf("extraction data of a not-executed result = %+v, want {}", ext)
	}
}

func TestFinalizeNothingUploaded(t *testing.T) {
	t.Parallel()
	e := setup(t, Options{})
	tok := e.token()
	ar := e.createAccount(tok, accountReq("empty", jumio.WorkflowEmailVerification))
	mustOK(t, e.finalize(ar.WorkflowExecution.Credentials[0]), "finalize")
	d := e.details(tok, ar)
	if d.Decision.Type != jumio.DecisionNotExecuted || d.Decision.Risk.Score != -1 ||
		d.Capabilities.EmailVerification[0].Decision.Details.Label != "NOT_ENOUGH_DATA" {
		t.Fatalf("details = %+v", d)
	}
}
