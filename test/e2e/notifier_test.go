package e2e

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/kycpipe/kycpipe/pkg/pipeline"
	"github.com/kycpipe/kycpipe/pkg/pipeline/pipelinetest"
	"github.com/kycpipe/kycpipe/pkg/webhooks"
)

// webhookRequest is one request the test receiver got.
type webhookRequest struct {
	header http.Header
	body   []byte
}

// TestNotifierKilledMidDelivery: an endpoint registered over ingest's API
// receives a job's decision from the notifier binary. The notifier is
// SIGKILLed while the endpoint holds the first attempt; a fresh notifier
// delivers it, with the same webhook-id, signed so that the Standard
// Webhooks reference library verifies it.
func TestNotifierKilledMidDelivery(t *testing.T) {
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	c := newClusterWith(t, clusterOptions{env: []string{"KYCPIPE_WEBHOOK_ALLOW_INSECURE=true", "KYCPIPE_WEBHOOK_ALLOW_PRIVATE=true",
		"KYCPIPE_WEBHOOK_SECRET_KEY=" + base64.StdEncoding.EncodeToString(key)}})

	held := make(chan string, 1) // the webhook-id of the attempt being held
	got := make(chan webhookRequest, 16)
	var once sync.Once
	rc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		first := false
		once.Do(func() { first = true })
		if first {
			// Hold the first attempt until its sender dies.
			held <- r.Header.Get(webhooks.HeaderID)
			<-r.Context().Done()
			return
		}
		got <- webhookRequest{header: r.Header.Clone(), body: body}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(rc.Close)

	// Register over ingest's API (the bare key has every scope).
	reg, _ := json.Marshal(map[string]any{"url": rc.URL + "/kyc", "eventTypes": []string{string(webhooks.EventDecided)}})
	req, _ := http.NewRequest(http.MethodPost, c.ingestURL+"/v1/webhook-endpoints", bytes.NewReader(reg))
	req.Header.Set("Authorization", "Bearer "+c.apiKey)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var ep pipeline.WebhookEndpointCreated
	_ = json.NewDecoder(resp.Body).Decode(&ep)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated || ep.Secret == "" {
		t.Fatalf("register: %d %+v", resp.StatusCode, ep)
	}

	notifier := c.start("notifier")
	dec := c.decision(t, c.submit(t, emailJob("e2e-webhook-1"), 202, nil))
	wantID := webhooks.MessageID(dec.WorkflowExecutionID, ep.ID)
	if id := pipelinetest.WaitFor(t, held, 60*time.Second, "the first attempt"); id != wantID {
		t.Fatalf("first attempt webhook-id %s, want %s", id, wantID)
	}
	notifier.Kill()
	if !notifier.KilledBySignal() {
		t.Fatalf("notifier exited with %v, want SIGKILL", notifier.Cmd.ProcessState)
	}
	t.Logf("---- killed notifier output ----\n%s", notifier.Output())

	c.start("notifier")
	r := pipelinetest.WaitFor(t, got, 60*time.Second, "the delivery after the crash")
	if id := r.header.Get(webhooks.HeaderID); id != wantID {
		t.Errorf("redelivered with webhook-id %s, want %s", id, wantID)
	}
	lib, err := standardwebhooks.NewWebhook(ep.Secret)
	if err != nil {
		t.Fatal(err)
	}
	if err := lib.Verify(r.body, r.header); err != nil {
		t.Errorf("the reference library rejects the delivery: %v", err)
	}
	var p webhooks.Payload
	if err := json.Unmarshal(r.body, &p); err != nil || p.Type != webhooks.EventDecided {
		t.Fatalf("payload %s: %v", r.body, err)
	}
	var data struct{ JobID, WorkflowExecutionID string }
	if err := json.Unmarshal(p.Data, &data); err != nil || data.WorkflowExecutionID != dec.WorkflowExecutionID || data.JobID != dec.JobID {
		t.Errorf("data %s", p.Data)
	}
	select {
	case extra := <-got:
		t.Errorf("a second delivery after the crash: %s", extra.header.Get(webhooks.HeaderID))
	default:
	}
}
