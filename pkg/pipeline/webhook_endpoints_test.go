package pipeline_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/kycpipe/kycpipe/pkg/messages"
	"github.com/kycpipe/kycpipe/pkg/pipeline"
	"github.com/kycpipe/kycpipe/pkg/pipeline/pipelinetest"
	"github.com/kycpipe/kycpipe/pkg/webhooks"
)

// fieldCodes returns "field:code" of a validation error's fields.
func fieldCodes(t *testing.T, err error) []string {
	t.Helper()
	var ve *webhooks.ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("want a *webhooks.ValidationError, got %v", err)
	}
	var out []string
	for _, f := range ve.Fields {
		out = append(out, f.Field+":"+f.Code)
	}
	return out
}

// Registration applies the URL policy (SSRF defence) and the event type
// rules; every change is checked the same way.
func TestWebhookEndpointRules(t *testing.T) {
	t.Parallel()
	resolver := webhooks.ResolverFunc(func(_ context.Context, host string) ([]netip.Addr, error) {
		switch host {
		case "hooks.partner.example":
			return []netip.Addr{netip.MustParseAddr("93.184.216.34")}, nil
		case "localhost.attacker.example": // a public name pointing at loopback
			return []netip.Addr{netip.MustParseAddr("93.184.216.34"), netip.MustParseAddr("127.0.0.1")}, nil
		case "flaky-dns.example":
			return nil, &net.DNSError{Err: "server misbehaving", Name: host, IsTemporary: true}
		}
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	})
	h := newHooks(t, pipeline.WebhookSettings{Policy: webhooks.Policy{Resolver: resolver}}, nil)
	ctx := context.Background()
	create := func(url string, types []string, desc string) error {
		_, _, err := h.reg.Create(ctx, pipeline.WebhookEndpointInput{URL: url, EventTypes: types, Description: desc})
		return err
	}
	for _, tt := range []struct {
		url   string
		types []string
		desc  string
		want  []string
	}{
		{"", []string{"*"}, "", []string{"url:required"}},
		{"http://hooks.partner.example/kyc", []string{"*"}, "", []string{"url:insecure_scheme"}},
		{"https://localhost.attacker.example/kyc", []string{"*"}, "", []string{"url:forbidden_address"}},
		{"https://127.0.0.1/kyc", []string{"*"}, "", []string{"url:forbidden_address"}},
		{"https://169.254.169.254/latest/meta-data", []string{"*"}, "", []string{"url:forbidden_address"}},
		{"https://nowhere.example/kyc", []string{"*"}, "", []string{"url:unresolvable"}},
		{"https://hooks.partner.example/kyc", nil, "", []string{"eventTypes:required"}},
		{"https://hooks.partner.example/kyc", []string{"verification.approved"}, "", []string{"eventTypes[0]:invalid_format"}},
		{"https://hooks.partner.example/kyc", []string{"*"}, strings.Repeat("x", 513), []string{"description:too_long"}},
		{"ftp://hooks.partner.example", []string{"bogus"}, "a\x00b", []string{"url:insecure_scheme", "eventTypes[0]:invalid_format", "description:invalid_format"}},
	} {
		got := fieldCodes(t, create(tt.url, tt.types, tt.desc))
		if !slices.Equal(got, tt.want) {
			t.Errorf("create(%q, %v): %v, want %v", tt.url, tt.types, got, tt.want)
		}
	}
	if err := create("https://flaky-dns.example/kyc", []string{"*"}, ""); !errors.Is(err, webhooks.ErrResolve) || errors.Is(err, webhooks.ErrValidation) {
		t.Errorf("a temporary DNS failure: %v, want ErrResolve (503), not a validation error", err)
	}
	if list, err := h.reg.List(ctx); err != nil || len(list) != 0 {
		t.Fatalf("refused registrations stored something: %v %v", list, err)
	}

	a, secret, err := h.reg.Create(ctx, pipeline.WebhookEndpointInput{URL: "https://hooks.partner.example/kyc", EventTypes: []string{"verification.decided"}, Description: "CRM"})
	if err != nil {
		t.Fatal(err)
	}
	if !pipeline.ValidWebhookEndpointID(a.ID) || a.Status != pipeline.WebhookEnabled || !strings.HasPrefix(secret.Reveal(), "whsec_") || a.CreatedAt.IsZero() {
		t.Errorf("created %+v", a)
	}
	b, _, err := h.reg.Create(ctx, pipeline.WebhookEndpointInput{URL: "https://93.184.216.34/hooks", EventTypes: []string{"*"}})
	if err != nil {
		t.Fatal(err)
	}
	list, err := h.reg.List(ctx)
	if err != nil || len(list) != 2 || list[0].ID != a.ID || list[1].ID != b.ID {
		t.Errorf("list: %+v %v", list, err)
	}

	// Changes are checked like registrations; a refused change changes nothing.
	bad := "https://127.0.0.1/x"
	badStatus := "PAUSED"
	if got := fieldCodes(t, func() error {
		_, err := h.reg.Update(ctx, a.ID, pipeline.WebhookEndpointPatch{URL: &bad, Status: &badStatus})
		return err
	}()); !slices.Equal(got, []string{"url:forbidden_address", "status:" + messages.CodeInvalidValue}) {
		t.Errorf("bad patch: %v", got)
	}
	newURL, types, off := "https://hooks.partner.example/v2", []string{"verification.*"}, pipeline.WebhookDisabled
	got, err := h.reg.Update(ctx, a.ID, pipeline.WebhookEndpointPatch{URL: &newURL, EventTypes: &types, Status: &off})
	if err != nil {
		t.Fatal(err)
	}
	if got.URL != newURL || !slices.Equal(got.EventTypes, types) || got.Status != pipeline.WebhookDisabled ||
		got.DisabledReason != pipeline.DisabledByOperator || got.Description != "CRM" || got.UpdatedAt.Before(got.CreatedAt) {
		t.Errorf("patched: %+v", got)
	}
	on := pipeline.WebhookEnabled
	if got, err = h.reg.Update(ctx, a.ID, pipeline.WebhookEndpointPatch{Status: &on}); err != nil || got.DisabledReason != "" || !got.Enabled() {
		t.Errorf("enabled again: %+v %v", got, err)
	}

	// Delete removes the endpoint and its pending deliveries.
	h.publish(t, h.subj.WebhookDelivery(b.ID, "job-del-1"), "d1", "job-del-1", []byte(`{}`))
	h.publish(t, h.subj.WebhookDelivery(a.ID, "job-del-1"), "d2", "job-del-1", []byte(`{}`))
	if err := h.reg.Delete(ctx, b.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := h.reg.Get(ctx, b.ID); !errors.Is(err, pipeline.ErrWebhookEndpointNotFound) {
		t.Errorf("get after delete: %v", err)
	}
	if err := h.reg.Delete(ctx, b.ID); !errors.Is(err, pipeline.ErrWebhookEndpointNotFound) {
		t.Errorf("second delete: %v", err)
	}
	st, _ := h.js.Stream(ctx, h.subj.StreamWebhooks())
	info, err := st.Info(ctx, jetstream.WithSubjectFilter(h.subj.WebhookDeliveries()))
	if err != nil || info.State.Subjects[h.subj.WebhookDelivery(b.ID, "job-del-1")] != 0 || info.State.Subjects[h.subj.WebhookDelivery(a.ID, "job-del-1")] != 1 {
		t.Errorf("pending deliveries after deleting %s: %v %v", b.ID, info.State.Subjects, err)
	}
	for _, id := range []string{"ep_nope", "../ep", ""} {
		if _, err := h.reg.Get(ctx, id); !errors.Is(err, pipeline.ErrWebhookEndpointNotFound) {
			t.Errorf("get %q: %v", id, err)
		}
	}
}

// With KYCPIPE_WEBHOOK_SECRET_KEY secrets are sealed at rest; a notifier
// without the key (or with another) sends nothing and one with it delivers.
// Without a key they are stored as they are.
func TestWebhookSecretsAtRest(t *testing.T) {
	t.Parallel()
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	parsed, err := pipeline.ParseWebhookSecretKey(base64.StdEncoding.EncodeToString(key))
	if err != nil || !bytes.Equal(parsed, key) {
		t.Fatalf("ParseWebhookSecretKey: %v", err)
	}
	for _, bad := range []string{"", "c2hvcnQ=", "not base64!", base64.StdEncoding.EncodeToString(make([]byte, 31))} {
		if _, err := pipeline.ParseWebhookSecretKey(bad); err == nil || strings.Contains(err.Error(), bad) && bad != "" {
			t.Errorf("ParseWebhookSecretKey(%q): %v", bad, err)
		}
	}

	h := newHooks(t, pipeline.WebhookSettings{Policy: devPolicy, SecretKey: key}, nil)
	rc := newReceiver(t, nil)
	ep, secret := h.register(t, rc.srv.URL, "*")
	ctx := context.Background()
	kv, err := h.js.KeyValue(ctx, h.subj.BucketWebhookEndpoints())
	if err != nil {
		t.Fatal(err)
	}
	raw, err := kv.Get(ctx, "ep."+ep.ID)
	if err != nil {
		t.Fatal(err)
	}
	keyB64 := strings.TrimPrefix(secret.Reveal(), "whsec_")
	if bytes.Contains(raw.Value(), []byte(keyB64)) || !bytes.Contains(raw.Value(), []byte("v1:aesgcm:")) {
		t.Errorf("the stored record holds the secret in clear: %s", raw.Value())
	}

	// A notifier with another key cannot sign: the delivery is attempted
	// and handed back, never sent.
	other := make([]byte, 32)
	_, _ = rand.Read(other)
	wrongCtx, stopWrong := context.WithCancel(ctx)
	wrong, err := pipeline.NewNotifier(wrongCtx, h.js, pipeline.NotifierConfig{Topology: h.topo, Logger: pipelinetest.Logger(t),
		Webhooks: pipeline.WebhookSettings{Policy: devPolicy, SecretKey: other}, Backoff: pipeline.Backoff{Initial: 10 * time.Millisecond, Max: 50 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- wrong.Run(wrongCtx) }()
	h.publishEvent(t, messages.KindAccepted, "job-sealed-1")
	cons, err := h.js.Consumer(ctx, h.subj.StreamWebhooks(), pipeline.ConsumerNotifierDelivery)
	if err != nil {
		t.Fatal(err)
	}
	pipelinetest.Eventually(t, waitLong, func() bool {
		info, err := cons.Info(ctx)
		return err == nil && info.NumRedelivered > 0
	}, "the delivery was never tried by the notifier with the wrong key")
	stopWrong()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if n := len(rc.requests()); n != 0 {
		t.Fatalf("a notifier with the wrong key sent %d requests", n)
	}

	// The right key: delivered, verifiable with the secret shown at creation.
	h.startNotifier(t, func(c *pipeline.NotifierConfig) { c.Webhooks.SecretKey = key })
	r := rc.next(t)
	if err := (&webhooks.Verifier{Secrets: []webhooks.Secret{secret}}).Verify(r.header, r.body); err != nil {
		t.Errorf("signature: %v", err)
	}

	// Without a key: stored as is.
	plain := newHooks(t, pipeline.WebhookSettings{Policy: devPolicy}, nil)
	ep2, secret2 := plain.register(t, "http://127.0.0.1:9/hook", "*")
	kv2, _ := plain.js.KeyValue(ctx, plain.subj.BucketWebhookEndpoints())
	raw2, err := kv2.Get(ctx, "ep."+ep2.ID)
	if err != nil || !bytes.Contains(raw2.Value(), []byte("v1:plain:"+secret2.Reveal())) {
		t.Errorf("plain storage: %s %v", raw2.Value(), err)
	}
	// A registry with a key still reads plain secrets (a key added later).
	if _, _, err := plain.reg.RotateSecret(ctx, ep2.ID); err != nil {
		t.Fatal(err)
	}
}

// EraseWebhookData removes a job's pending deliveries, delivery log and
// attempt counters, and nothing of other jobs.
func TestEraseWebhookData(t *testing.T) {
	t.Parallel()
	h := newHooks(t, pipeline.WebhookSettings{Policy: devPolicy}, nil)
	rc := newReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusInternalServerError) })
	ep, _ := h.register(t, rc.srv.URL, "*")
	sched, _ := webhooks.NewSchedule(time.Hour)
	h.startNotifier(t, func(c *pipeline.NotifierConfig) { c.Schedule = &sched })
	for _, job := range []string{"job-erase-a", "job-erase-b"} {
		h.publishEvent(t, messages.KindAccepted, job)
		h.publishEvent(t, messages.KindLaunched, job)
	}
	h.waitAttempts(t, ep.ID, 4) // each failed once; retries wait an hour
	ctx := context.Background()
	count := func(stream, filter string) int { return h.countSubject(t, stream, filter) }
	attemptsStream, attemptsPrefix := "KV_"+h.subj.BucketWebhookAttempts(), "$KV."+h.subj.BucketWebhookAttempts()+".att."
	pipelinetest.Eventually(t, waitLong, func() bool { return count(attemptsStream, attemptsPrefix+"job-erase-a.>") == 2 }, "attempt counters")
	for _, job := range []string{"job-erase-a", "job-erase-b"} {
		if p, l := count(h.subj.StreamWebhooks(), h.subj.WebhookDeliveriesOfJob(job)), count(h.subj.StreamWebhookLog(), h.subj.WebhookLogsOfJob(job)); p != 2 || l != 2 {
			t.Fatalf("%s before erasure: %d pending, %d log entries", job, p, l)
		}
	}
	removed, err := pipeline.EraseWebhookData(ctx, h.js, h.topo, "job-erase-a")
	if err != nil {
		t.Fatal(err)
	}
	if removed != 6 {
		t.Errorf("removed %d messages, want 6 (2 pending, 2 log entries, 2 counters)", removed)
	}
	if p, l, a := count(h.subj.StreamWebhooks(), h.subj.WebhookDeliveriesOfJob("job-erase-a")),
		count(h.subj.StreamWebhookLog(), h.subj.WebhookLogsOfJob("job-erase-a")), count(attemptsStream, attemptsPrefix+"job-erase-a.>"); p+l+a != 0 {
		t.Errorf("left after erasure: %d pending, %d log entries, %d counters", p, l, a)
	}
	if p, l, a := count(h.subj.StreamWebhooks(), h.subj.WebhookDeliveriesOfJob("job-erase-b")),
		count(h.subj.StreamWebhookLog(), h.subj.WebhookLogsOfJob("job-erase-b")), count(attemptsStream, attemptsPrefix+"job-erase-b.>"); p != 2 || l != 2 || a != 2 {
		t.Errorf("the other job lost data: %d pending, %d log entries, %d counters", p, l, a)
	}
	for _, a := range h.attempts(t, ep.ID) {
		if a.JobID == "job-erase-a" {
			t.Errorf("the endpoint's log still shows the erased job: %+v", a)
		}
	}
	if removed, err := pipeline.EraseWebhookData(ctx, h.js, h.topo, "job-erase-a"); err != nil || removed != 0 {
		t.Errorf("second erasure: %d, %v", removed, err)
	}
	if _, err := pipeline.EraseWebhookData(ctx, h.js, h.topo, "job.*"); err == nil {
		t.Errorf("a wildcard job ID was accepted")
	}
}

// An endpoint that a lagging replica does not know yet is not "not found":
// the bucket stream's leader confirms before an endpoint is taken for
// deleted (a delivery for a deleted endpoint is dropped). Found by the
// soak: webhook deliveries lost around node losses.
func TestWebhookEndpointALaggingReplicaDoesNotKnow(t *testing.T) {
	t.Parallel()
	h := newHooks(t, pipeline.WebhookSettings{Policy: devPolicy}, nil)
	replica := freezeReplica(t, h.js, h.subj.BucketWebhookEndpoints()) // before the endpoint exists
	ep, _ := h.register(t, "http://127.0.0.1:9/hook", "*")
	replica.serve()
	defer replica.stop()
	ctx := context.Background()
	got, err := h.reg.Get(ctx, ep.ID)
	if err != nil || got.ID != ep.ID {
		t.Fatalf("Get with a lagging replica: %+v, %v; want the endpoint", got, err)
	}
	if _, err := h.reg.Get(ctx, "ep_00000000000000000000000000"); !errors.Is(err, pipeline.ErrWebhookEndpointNotFound) {
		t.Errorf("Get of an unknown endpoint: %v, want ErrWebhookEndpointNotFound", err)
	}
}
