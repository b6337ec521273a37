package e2e

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/kycpipe/kycpipe/pkg/jumio"
	"github.com/kycpipe/kycpipe/pkg/jumio/jumiotest"
	"github.com/kycpipe/kycpipe/pkg/messages"
	"github.com/kycpipe/kycpipe/pkg/pipeline"
	"github.com/kycpipe/kycpipe/pkg/pipeline/pipelinetest"
)

// syncBuffer collects log output from several goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}
func (b *syncBuffer) Sync() error    { return nil }
func (b *syncBuffer) String() string { b.mu.Lock(); defer b.mu.Unlock(); return b.buf.String() }

// TestNoPIIOrSecretsInLogs runs the full flow with marker values in every
// PII field and every secret, captures all log output of every stage (and of
// the simulator) at debug level, and fails if any marker appears.
func TestNoPIIOrSecretsInLogs(t *testing.T) {
	pii := map[string]string{
		"firstName": "PIIMARKfirstname", "lastName": "PIIMARKlastname", "middleName": "PIIMARKmiddle",
		"email": "piimark.email@example.com", "phoneNumber": "+15550001234", "dateOfBirth": "1961-02-03",
		"socialSecurityNumber": "PIIMARK-SSN-987654320", "personalNumber": "PIIMARK-personal-no",
		"address.line1": "PIIMARK street 77", "address.city": "PIIMARKcity", "address.postalCode": "PIIMARK-zip",
		"id.idNumber": "PIIMARK-DOC-55501",
	}
	secrets := map[string]string{
		"api key": "PIIMARK-api-key-0123456789", "Jumio client secret": "PIIMARK-client-secret-abcdef",
		"NATS password": "PIIMARK-nats-password-xyz", "callback secret": "PIIMARK-callback-path-secret",
	}
	simLog := &syncBuffer{}
	simLogger := zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), simLog, zapcore.DebugLevel))
	c := newClusterWith(t, clusterOptions{
		sim: jumiotest.Options{
			Clients: []jumiotest.ClientCredentials{{ID: "pii-test-client", Secret: secrets["Jumio client secret"]}},
			Logger:  simLogger,
		},
		apiKey:   secrets["api key"],
		natsUser: "kycpipe", natsPassword: secrets["NATS password"],
		env: []string{"KYCPIPE_CALLBACK_SECRET=" + secrets["callback secret"]},
	})
	// The worker must call back on the secret path.
	c.stop(c.procs[1])
	c.procs[1] = c.start("worker", "KYCPIPE_CALLBACK_URL="+c.ingestURL+"/v1/callbacks/jumio/"+secrets["callback secret"])

	prepared := map[string]any{
		"firstName": pii["firstName"], "lastName": pii["lastName"], "middleName": pii["middleName"], "email": pii["email"],
		"phoneNumber": pii["phoneNumber"], "dateOfBirth": pii["dateOfBirth"], "socialSecurityNumber": pii["socialSecurityNumber"],
		"personalNumber": pii["personalNumber"],
		"address":        map[string]any{"line1": pii["address.line1"], "city": pii["address.city"], "postalCode": pii["address.postalCode"], "country": "USA"},
		"id":             map[string]any{"idNumber": pii["id.idNumber"], "type": "PASSPORT"},
	}
	jobs := []map[string]any{
		{"customerInternalReference": "pii-api", "workflowDefinition": map[string]any{"key": 10148}, "channel": "API", "preparedData": prepared},
		{"customerInternalReference": "pii-web", "workflowDefinition": map[string]any{"key": 10164}, "channel": "WEB", "preparedData": prepared},
		{"customerInternalReference": "pii-img", "workflowDefinition": pipelinetest.IDWorkflow(10163), "channel": "API", "preparedData": prepared, "userConsent": pipelinetest.Consent(),
			"parts": []map[string]any{{"classifier": "FRONT", "data": base64.StdEncoding.EncodeToString(jumiotest.PNG(640, 400))}}},
	}
	var ids []string
	for _, j := range jobs {
		ids = append(ids, c.submit(t, j, 202, nil))
	}
	web := c.events.WaitN(t, 1, 60*time.Second, func(m pipelinetest.Received[*messages.Event]) bool {
		return m.Value.JobID == ids[1] && m.Value.Kind == messages.KindLaunched
	}, "launched")[0].Value
	if err := c.sim.CompleteWeb(web.WorkflowExecutionID); err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		c.decision(t, id)
	}
	// A job Jumio refuses, and a submission we refuse: error paths log too.
	c.sim.FailNext(jumiotest.RouteUploadPreparedData, 1, 400)
	failed := c.submit(t, map[string]any{"customerInternalReference": "pii-fail", "workflowDefinition": map[string]any{"key": 10066}, "channel": "API", "preparedData": prepared}, 202, nil)
	bad := map[string]any{"customerInternalReference": "pii-bad", "workflowDefinition": map[string]any{"key": 10066}, "channel": "API",
		"preparedData": map[string]any{"email": "PIIMARK<bad>@example.com", "firstName": pii["firstName"] + ";"}}
	c.submit(t, bad, 422, nil)
	c.events.WaitN(t, 1, 60*time.Second, func(m pipelinetest.Received[*messages.Event]) bool {
		return m.Value.JobID == failed && m.Value.Kind == messages.KindFailed
	}, "failed event")

	// The tokens this run used are secrets too.
	tokens := map[string]string{}
	if u, err := url.Parse(web.Web.Href); err == nil {
		tokens["web authorization token"] = u.Query().Get("authorizationToken")
	}
	jc, err := jumio.New(jumio.Credentials{ClientID: "pii-test-client", ClientSecret: secrets["Jumio client secret"]}, jumio.WithBaseURL(c.sim.URL))
	if err != nil {
		t.Fatal(err)
	}
	if tokens["OAuth access token"], err = jc.AccessToken(context.Background()); err != nil { // the simulator hands back its cached token
		t.Fatal(err)
	}
	kv, err := c.js.KeyValue(context.Background(), c.subj.BucketJobs())
	if err != nil {
		t.Fatal(err)
	}
	store := pipeline.NewJobStore(kv, time.Now)
	for _, id := range ids {
		rec, _, err := store.Get(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		for _, cr := range rec.Credentials {
			if cr.Token != "" {
				tokens["credential token of "+id] = cr.Token
			}
		}
		if rec.SDKToken != "" {
			tokens["sdk token of "+id] = rec.SDKToken
		}
	}

	// Stop everything (flushing the logs), then look.
	for _, p := range c.procs {
		c.stop(p)
	}
	logs := map[string]string{"jumio simulator": simLog.String()}
	for _, p := range c.procs {
		logs[p.Name] += p.Output()
	}
	total := 0
	for _, l := range logs {
		total += len(l)
	}
	if total < 10000 || !strings.Contains(logs["worker"], `"level":"debug"`) && !strings.Contains(logs["worker"], "DEBUG") {
		t.Fatalf("too little log output captured (%d bytes); debug logging not on?", total)
	}
	check := func(kind string, markers map[string]string) {
		for what, marker := range markers {
			if marker == "" {
				continue
			}
			for source, l := range logs {
				if strings.Contains(l, marker) {
					t.Errorf("%s %s appears in the logs of %s", kind, what, source)
				}
			}
		}
	}
	t.Logf("scanned %d bytes of logs from %d sources", total, len(logs))
	check("PII field", pii)
	check("secret", secrets)
	check("token", tokens)
	// The prepared data did reach Jumio (the markers are real data).
	info, _ := c.sim.Execution(web.WorkflowExecutionID)
	if len(info.Parts) == 0 {
		t.Error("the web job acquired nothing")
	}
	var decisions []string
	for _, d := range c.decisions.All() {
		b, _ := json.Marshal(d.Value)
		decisions = append(decisions, string(b))
	}
	for what, marker := range pii {
		for _, d := range decisions {
			if strings.Contains(d, marker) {
				t.Errorf("PII field %s in a decision event without --include-extraction", what)
			}
		}
	}
}
