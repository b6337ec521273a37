package kycctl_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/kycpipe/kycpipe/pkg/messages"
	"github.com/kycpipe/kycpipe/pkg/pipeline"
	"github.com/kycpipe/kycpipe/pkg/pipeline/pipelinetest"
	"github.com/kycpipe/kycpipe/pkg/webhooks"
)

// TestWebhooksCommands: every kycctl webhooks command against an embedded
// NATS server, the registry ingest uses and a running notifier. The secret
// is printed by add and rotate only.
func TestWebhooksCommands(t *testing.T) {
	t.Parallel()
	ns, _, js := pipelinetest.RunJetStream(t)
	ctx := context.Background()
	topo := pipeline.Topology{}.WithDefaults()
	if err := pipeline.Provision(ctx, js, topo); err != nil {
		t.Fatal(err)
	}
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	env := map[string]string{"KYCPIPE_NATS_URL": ns.ClientURL(), "KYCPIPE_WEBHOOK_ALLOW_INSECURE": "true",
		"KYCPIPE_WEBHOOK_ALLOW_PRIVATE": "true", "KYCPIPE_WEBHOOK_SECRET_KEY": base64.StdEncoding.EncodeToString(key)}
	run := func(args ...string) result {
		t.Helper()
		cctx, cancel := context.WithTimeout(ctx, pipelinetest.DefaultTimeout)
		defer cancel()
		return kycctlRun(t, cctx, env, nil, args...)
	}
	got := make(chan http.Header, 16)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		if r.URL.Path == "/hook" { // the other endpoint is on /other
			got <- r.Header.Clone()
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(srv.Close)

	// add: the secret, once.
	created := decodeJSON[pipeline.WebhookEndpointCreated](t, run("webhooks", "add", srv.URL+"/hook", "--events", "verification.*", "--description", "CRM sync", "--json"))
	if !strings.HasPrefix(created.Secret, "whsec_") || created.Status != pipeline.WebhookEnabled || created.Description != "CRM sync" {
		t.Fatalf("add: %+v", created)
	}
	id := created.ID
	r := run("webhooks", "add", srv.URL+"/other")
	contains(t, r, "secret", "whsec_", "shown only now", "event types", "*")
	secret2 := r.out[strings.Index(r.out, "whsec_"):]
	secret2 = secret2[:strings.IndexAny(secret2, " \n")]

	// The rules apply here too.
	strict := map[string]string{"KYCPIPE_NATS_URL": ns.ClientURL()}
	if r := kycctlRun(t, ctx, strict, nil, "webhooks", "add", srv.URL+"/hook"); r.err == nil || !strings.Contains(r.err.Error(), "insecure_scheme") {
		t.Errorf("http without KYCPIPE_WEBHOOK_ALLOW_INSECURE: %s", r)
	}
	if r := run("webhooks", "add", "https://127.0.0.1:1/x", "--events", "verification.approved"); r.err == nil || !strings.Contains(r.err.Error(), "eventTypes[0]") {
		t.Errorf("an unknown event type: %s", r)
	}

	// list and show: no secret.
	list := decodeJSON[[]pipeline.WebhookEndpoint](t, run("webhooks", "list", "--json"))
	if len(list) != 2 || list[0].ID != id {
		t.Errorf("list: %+v", list)
	}
	for _, r := range []result{run("webhooks", "list"), run("webhooks", "show", id), run("webhooks", "show", id, "--json")} {
		contains(t, r, id)
		lacks(t, r, created.Secret, secret2, "whsec_")
	}
	contains(t, run("webhooks", "list"), "ENABLED", "verification.*", "CRM sync")

	// update, disable, enable.
	up := decodeJSON[pipeline.WebhookEndpoint](t, run("webhooks", "update", id, "--events", "verification.decided,verification.failed", "--json"))
	if strings.Join(up.EventTypes, ",") != "verification.decided,verification.failed" || up.URL != srv.URL+"/hook" {
		t.Errorf("update: %+v", up)
	}
	if r := run("webhooks", "update", id); r.err == nil {
		t.Errorf("update without changes: %s", r)
	}
	if r := run("webhooks", "update", id, "--url", "ftp://x"); r.err == nil || !strings.Contains(r.err.Error(), "url") {
		t.Errorf("update to a bad URL: %s", r)
	}
	contains(t, run("webhooks", "disable", id), "DISABLED", "operator")
	contains(t, run("webhooks", "list"), "DISABLED (operator)")
	if ep := decodeJSON[pipeline.WebhookEndpoint](t, run("webhooks", "enable", id, "--json")); ep.Status != pipeline.WebhookEnabled || ep.DisabledReason != "" {
		t.Errorf("enable: %+v", ep)
	}

	// rotate: the new secret, once; both sign.
	rot := decodeJSON[pipeline.WebhookSecretRotated](t, run("webhooks", "rotate", id, "--json"))
	if !strings.HasPrefix(rot.Secret, "whsec_") || rot.Secret == created.Secret || rot.PreviousSecretExpiresAt.Before(time.Now().Add(23*time.Hour)) {
		t.Errorf("rotate: %+v", rot)
	}

	// A notifier delivers a decision; deliveries shows it; resend sends it
	// again with the same webhook-id.
	nctx, stop := context.WithCancel(ctx)
	n, err := pipeline.NewNotifier(nctx, js, pipeline.NotifierConfig{Topology: topo, Logger: pipelinetest.Logger(t),
		Webhooks: pipeline.WebhookSettings{Policy: webhooks.Policy{AllowInsecure: true, AllowPrivate: true}, SecretKey: key}})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- n.Run(nctx) }()
	t.Cleanup(func() { stop(); <-done })
	pipelinetest.Eventually(t, pipelinetest.DefaultTimeout, func() bool { return n.Ready(ctx) == nil }, "notifier not ready")
	b, _ := messages.Marshal(&messages.DecisionEvent{JobID: "job-ctl-1", WorkflowExecutionID: "exec-ctl-1", Decision: messages.DecisionSummary{Type: "PASSED"}, DecidedAt: time.Now()})
	m := nats.NewMsg(topo.Subjects.Decision("PASSED"))
	m.Data = b
	m.Header.Set(messages.HeaderMsgID, "exec-ctl-1")
	if _, err := js.PublishMsg(ctx, m); err != nil {
		t.Fatal(err)
	}
	h := pipelinetest.WaitFor(t, got, pipelinetest.DefaultTimeout, "the delivery")
	wid := h.Get(webhooks.HeaderID)
	if sigs := strings.Fields(h.Get(webhooks.HeaderSignature)); wid != webhooks.MessageID("exec-ctl-1", id) || len(sigs) != 2 {
		t.Errorf("delivery: id %s, signatures %v", wid, sigs)
	}
	var attempts []pipeline.WebhookAttempt
	eventually(t, "the delivery in the log", func() result { return run("webhooks", "deliveries", id, "--json") }, func(r result) bool {
		attempts = decodeJSON[[]pipeline.WebhookAttempt](t, r)
		return len(attempts) == 1
	})
	if a := attempts[0]; a.WebhookID != wid || a.Outcome != pipeline.AttemptDelivered || a.JobID != "job-ctl-1" || a.StatusCode != 204 {
		t.Errorf("deliveries: %+v", a)
	}
	r = run("webhooks", "deliveries", id)
	contains(t, r, "WEBHOOK ID", wid, "decided", "job-ctl-1", "delivered", "204")
	lacks(t, r, "whsec_")
	contains(t, run("webhooks", "resend", id, wid), "queued "+wid)
	if again := pipelinetest.WaitFor(t, got, pipelinetest.DefaultTimeout, "the resent delivery"); again.Get(webhooks.HeaderID) != wid {
		t.Errorf("resent with id %s, want %s", again.Get(webhooks.HeaderID), wid)
	}
	if r := run("webhooks", "resend", id, "msg_unknown"); r.err == nil || !strings.Contains(r.err.Error(), "unknown webhook delivery") {
		t.Errorf("resend of an unknown delivery: %s", r)
	}

	// delete.
	contains(t, run("webhooks", "delete", id), "deleted "+id)
	if r := run("webhooks", "show", id); r.err == nil || !strings.Contains(r.err.Error(), "unknown webhook endpoint") {
		t.Errorf("show after delete: %s", r)
	}
	if list := decodeJSON[[]pipeline.WebhookEndpoint](t, run("webhooks", "list", "--json")); len(list) != 1 {
		t.Errorf("list after delete: %+v", list)
	}

	// Help names every command; a group alone lists them.
	for _, name := range []string{"add", "list", "show", "update", "disable", "enable", "delete", "rotate", "deliveries", "resend"} {
		r := ctl(t, "nats://127.0.0.1:1", "webhooks", name, "--help")
		if r.err != nil || !strings.HasPrefix(r.out, "Usage: kycctl webhooks "+name) || !strings.Contains(r.out, "KYCPIPE_WEBHOOK_SECRET_KEY") {
			t.Errorf("webhooks %s --help: %s", name, r)
		}
	}
	if r := ctl(t, "nats://127.0.0.1:1", "webhooks"); r.err == nil || !strings.Contains(r.err.Error(), "add, list, show") {
		t.Errorf("webhooks alone: %s", r)
	}
}
