package docs_test

// The webhook endpoint routes against the document: every documented
// status of every /v1/webhook-endpoints operation is triggered on real
// handlers (with a notifier delivering to a local receiver), and the
// documented request examples are bodies the server accepts.

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/kycpipe/kycpipe/internal/localstack"
	"github.com/kycpipe/kycpipe/pkg/messages"
	"github.com/kycpipe/kycpipe/pkg/pipeline"
	"github.com/kycpipe/kycpipe/pkg/pipeline/pipelinetest"
	"github.com/kycpipe/kycpipe/pkg/webhooks"
)

// devWebhooks lets endpoints live on loopback over http (the test receiver).
var devWebhooks = pipeline.WebhookSettings{Policy: webhooks.Policy{AllowInsecure: true, AllowPrivate: true}}

// checkWebhookRequest decodes a documented request example strictly, as the
// routes do, and applies the rules the registry applies (the example hosts
// resolve to a public address here).
func checkWebhookRequest(t *testing.T, where string, raw []byte) {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	var url, desc *string
	var types *[]string
	if strings.Contains(where, "/patch/") {
		var p pipeline.WebhookEndpointPatch
		if err := dec.Decode(&p); err != nil {
			t.Errorf("%s: the route would answer 400: %v", where, err)
			return
		}
		url, types, desc = p.URL, p.EventTypes, p.Description
	} else {
		var in pipeline.WebhookEndpointInput
		if err := dec.Decode(&in); err != nil {
			t.Errorf("%s: the route would answer 400: %v", where, err)
			return
		}
		url, types, desc = &in.URL, &in.EventTypes, &in.Description
	}
	policy := webhooks.Policy{Resolver: webhooks.ResolverFunc(func(context.Context, string) ([]netip.Addr, error) {
		return []netip.Addr{netip.MustParseAddr("93.184.216.34")}, nil
	})}
	if url != nil {
		if _, err := policy.CheckURL(context.Background(), *url); err != nil {
			t.Errorf("%s: the route would refuse the URL: %v", where, err)
		}
	}
	if types != nil {
		if err := webhooks.ValidateEventTypes(*types); err != nil {
			t.Errorf("%s: the route would refuse the event types: %v", where, err)
		}
	}
	if desc != nil && len(*desc) > pipeline.MaxWebhookDescription {
		t.Errorf("%s: description too long", where)
	}
}

// webhookIngest serves another ingest on the stack's JetStream with the
// given keys and webhook settings; broken closes its NATS connection once
// it is built.
func webhookIngest(t *testing.T, s *localstack.Stack, keys []string, broken bool) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), pipelinetest.DefaultTimeout)
	defer cancel()
	nc, err := nats.Connect(s.NATSURL, nats.MaxReconnects(0))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	apiKeys, err := pipeline.NewAPIKeys(keys)
	if err != nil {
		t.Fatal(err)
	}
	in, err := pipeline.NewIngest(ctx, nc, js, pipeline.IngestConfig{Topology: s.Topology, APIKeys: apiKeys, Webhooks: devWebhooks,
		PublishTimeout: 2 * time.Second, Logger: pipelinetest.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	if broken {
		nc.Close()
	}
	srv := httptest.NewServer(in.Handler())
	t.Cleanup(srv.Close)
	return srv.URL
}

// checkWebhookRoutes triggers every documented status of the webhook
// endpoint routes and checks each answer against the document.
func checkWebhookRoutes(t *testing.T, c *conformance, s *localstack.Stack) {
	t.Helper()
	const readKey = "read-only-key-0123456789"
	base := webhookIngest(t, s, []string{s.APIKey, "support:read:" + readKey}, false)
	broken := webhookIngest(t, s, []string{s.APIKey}, true)
	admin := map[string]string{"Authorization": "Bearer " + s.APIKey}
	reader := map[string]string{"Authorization": "Bearer " + readKey}
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) }))
	t.Cleanup(receiver.Close)

	const (
		collection = "/v1/webhook-endpoints"
		one        = "/v1/webhook-endpoints/{id}"
		rotate     = "/v1/webhook-endpoints/{id}/rotate-secret"
		deliveries = "/v1/webhook-endpoints/{id}/deliveries"
		resend     = "/v1/webhook-endpoints/{id}/deliveries/{webhookId}/resend"
	)
	do := func(what, method, template, url, ct string, body []byte, h map[string]string, want int) answer {
		t.Helper()
		a := call(t, method, url, ct, body, h)
		if a.status != want {
			t.Errorf("%s: %d %s, want %d", what, a.status, a.body, want)
		}
		c.check(t, what, strings.ToLower(method), template, a)
		return a
	}
	valid, _ := json.Marshal(map[string]any{"url": receiver.URL + "/kyc", "eventTypes": []string{"*"}, "description": "docs test"})
	huge := append([]byte(`{"description":"`), append(bytes.Repeat([]byte("x"), 64<<10), []byte(`"}`)...)...)

	// Register.
	a := do("register", "POST", collection, base+collection, "application/json", valid, admin, http.StatusCreated)
	var created pipeline.WebhookEndpointCreated
	if err := json.Unmarshal(a.body, &created); err != nil || a.header.Get("Location") != collection+"/"+created.ID {
		t.Fatalf("register: %s, Location %q (%v)", a.body, a.header.Get("Location"), err)
	}
	id := created.ID
	do("register, malformed", "POST", collection, base+collection, "application/json", []byte(`{"url":`), admin, http.StatusBadRequest)
	do("register, unknown field", "POST", collection, base+collection, "application/json", []byte(`{"url":"https://x.example","eventTypes":["*"],"secret":"mine"}`), admin, http.StatusBadRequest)
	do("register without key", "POST", collection, base+collection, "application/json", valid, nil, http.StatusUnauthorized)
	do("register without admin scope", "POST", collection, base+collection, "application/json", valid, reader, http.StatusForbidden)
	do("register, huge", "POST", collection, base+collection, "application/json", huge, admin, http.StatusRequestEntityTooLarge)
	do("register, text", "POST", collection, base+collection, "text/plain", valid, admin, http.StatusUnsupportedMediaType)
	do("register, rules", "POST", collection, base+collection, "application/json", []byte(`{"url":"ftp://x.example","eventTypes":["verification.approved"]}`), admin, http.StatusUnprocessableEntity)
	do("register, JetStream gone", "POST", collection, broken+collection, "application/json", valid, admin, http.StatusServiceUnavailable)

	// List and read.
	do("list", "GET", collection, base+collection, "", nil, admin, http.StatusOK)
	do("list without key", "GET", collection, base+collection, "", nil, nil, http.StatusUnauthorized)
	do("list without admin scope", "GET", collection, base+collection, "", nil, reader, http.StatusForbidden)
	do("list, JetStream gone", "GET", collection, broken+collection, "", nil, admin, http.StatusServiceUnavailable)
	if a := do("get", "GET", one, base+collection+"/"+id, "", nil, admin, http.StatusOK); bytes.Contains(a.body, []byte("whsec_")) {
		t.Errorf("GET shows the secret: %s", a.body)
	}
	do("get without key", "GET", one, base+collection+"/"+id, "", nil, nil, http.StatusUnauthorized)
	do("get without admin scope", "GET", one, base+collection+"/"+id, "", nil, reader, http.StatusForbidden)
	do("get unknown", "GET", one, base+collection+"/ep_00000000000000000000000000", "", nil, admin, http.StatusNotFound)
	do("get, JetStream gone", "GET", one, broken+collection+"/"+id, "", nil, admin, http.StatusServiceUnavailable)

	// Change.
	patch := []byte(`{"description":"docs test, changed"}`)
	do("patch", "PATCH", one, base+collection+"/"+id, "application/json", patch, admin, http.StatusOK)
	do("patch, malformed", "PATCH", one, base+collection+"/"+id, "application/json", []byte(`[`), admin, http.StatusBadRequest)
	do("patch without key", "PATCH", one, base+collection+"/"+id, "application/json", patch, nil, http.StatusUnauthorized)
	do("patch without admin scope", "PATCH", one, base+collection+"/"+id, "application/json", patch, reader, http.StatusForbidden)
	do("patch unknown", "PATCH", one, base+collection+"/ep_00000000000000000000000000", "application/json", patch, admin, http.StatusNotFound)
	do("patch, huge", "PATCH", one, base+collection+"/"+id, "application/json", huge, admin, http.StatusRequestEntityTooLarge)
	do("patch, text", "PATCH", one, base+collection+"/"+id, "text/plain", patch, admin, http.StatusUnsupportedMediaType)
	do("patch, rules", "PATCH", one, base+collection+"/"+id, "application/json", []byte(`{"status":"PAUSED","eventTypes":[]}`), admin, http.StatusUnprocessableEntity)
	do("patch, JetStream gone", "PATCH", one, broken+collection+"/"+id, "application/json", patch, admin, http.StatusServiceUnavailable)

	// Rotate.
	if a := do("rotate", "POST", rotate, base+collection+"/"+id+"/rotate-secret", "", nil, admin, http.StatusOK); !bytes.Contains(a.body, []byte("whsec_")) {
		t.Errorf("rotate: %s", a.body)
	}
	do("rotate without key", "POST", rotate, base+collection+"/"+id+"/rotate-secret", "", nil, nil, http.StatusUnauthorized)
	do("rotate without admin scope", "POST", rotate, base+collection+"/"+id+"/rotate-secret", "", nil, reader, http.StatusForbidden)
	do("rotate unknown", "POST", rotate, base+collection+"/ep_00000000000000000000000000/rotate-secret", "", nil, admin, http.StatusNotFound)
	do("rotate, JetStream gone", "POST", rotate, broken+collection+"/"+id+"/rotate-secret", "", nil, admin, http.StatusServiceUnavailable)

	// A delivery, by a notifier, of an event published on JetStream.
	ctx, cancel := context.WithTimeout(context.Background(), pipelinetest.DefaultTimeout)
	defer cancel()
	if _, err := s.AddNotifier(ctx, func(n *pipeline.NotifierConfig) { n.Webhooks = devWebhooks }); err != nil {
		t.Fatal(err)
	}
	ev, _ := messages.Marshal(&messages.Event{Kind: messages.KindAccepted, JobID: "job-docs-hook", At: time.Now()})
	pipelinetest.Eventually(t, pipelinetest.DefaultTimeout, func() bool {
		// Until the notifier, which may still be loading the endpoints,
		// has fanned one out (the event ID dedupes nothing here: each
		// publish is a new event of the same job).
		m := nats.NewMsg(s.Topology.Subjects.Event(messages.KindAccepted))
		m.Data = ev
		if _, err := s.JS.PublishMsg(ctx, m); err != nil {
			return false
		}
		a := call(t, http.MethodGet, base+collection+"/"+id+"/deliveries", "", nil, admin)
		return a.status == http.StatusOK && bytes.Contains(a.body, []byte(`"delivered"`))
	}, "no delivery in the log")
	a = do("deliveries", "GET", deliveries, base+collection+"/"+id+"/deliveries?limit=10", "", nil, admin, http.StatusOK)
	var log struct{ Deliveries []pipeline.WebhookAttempt }
	if err := json.Unmarshal(a.body, &log); err != nil || len(log.Deliveries) == 0 {
		t.Fatalf("deliveries: %s %v", a.body, err)
	}
	wid := log.Deliveries[0].WebhookID
	do("deliveries, bad limit", "GET", deliveries, base+collection+"/"+id+"/deliveries?limit=0", "", nil, admin, http.StatusBadRequest)
	do("deliveries without key", "GET", deliveries, base+collection+"/"+id+"/deliveries", "", nil, nil, http.StatusUnauthorized)
	do("deliveries without admin scope", "GET", deliveries, base+collection+"/"+id+"/deliveries", "", nil, reader, http.StatusForbidden)
	do("deliveries unknown", "GET", deliveries, base+collection+"/ep_00000000000000000000000000/deliveries", "", nil, admin, http.StatusNotFound)
	do("deliveries, JetStream gone", "GET", deliveries, broken+collection+"/"+id+"/deliveries", "", nil, admin, http.StatusServiceUnavailable)

	// Resend.
	resendURL := base + collection + "/" + id + "/deliveries/" + wid + "/resend"
	do("resend", "POST", resend, resendURL, "", nil, admin, http.StatusAccepted)
	do("resend without key", "POST", resend, resendURL, "", nil, nil, http.StatusUnauthorized)
	do("resend without admin scope", "POST", resend, resendURL, "", nil, reader, http.StatusForbidden)
	do("resend unknown", "POST", resend, base+collection+"/"+id+"/deliveries/msg_nope/resend", "", nil, admin, http.StatusNotFound)
	do("resend, JetStream gone", "POST", resend, broken+collection+"/"+id+"/deliveries/"+wid+"/resend", "", nil, admin, http.StatusServiceUnavailable)
	do("disable", "PATCH", one, base+collection+"/"+id, "application/json", []byte(`{"status":"DISABLED"}`), admin, http.StatusOK)
	do("resend, disabled", "POST", resend, resendURL, "", nil, admin, http.StatusConflict)

	// Delete.
	do("delete without key", "DELETE", one, base+collection+"/"+id, "", nil, nil, http.StatusUnauthorized)
	do("delete without admin scope", "DELETE", one, base+collection+"/"+id, "", nil, reader, http.StatusForbidden)
	do("delete, JetStream gone", "DELETE", one, broken+collection+"/"+id, "", nil, admin, http.StatusServiceUnavailable)
	do("delete", "DELETE", one, base+collection+"/"+id, "", nil, admin, http.StatusNoContent)
	do("delete again", "DELETE", one, base+collection+"/"+id, "", nil, admin, http.StatusNotFound)
}
