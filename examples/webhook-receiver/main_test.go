package main

import (
	"context"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/kycpipe/kycpipe/examples/webhook-receiver/receiver"
	"github.com/kycpipe/kycpipe/pkg/webhooks"
)

// The receiver, served by run, accepts what pkg/webhooks' Deliverer sends,
// and run stops cleanly when its context ends.
func TestRunWithDeliverer(t *testing.T) {
	t.Parallel()
	secret := webhooks.NewSecret()
	rc, err := receiver.NewReceiver(receiver.Config{Secrets: []webhooks.Secret{webhooks.NewSecret(), secret}})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- run(ctx, ln, rc.Handler()) }()

	d, err := webhooks.NewDeliverer(webhooks.Policy{AllowInsecure: true, AllowPrivate: true})
	if err != nil {
		t.Fatal(err)
	}
	defer d.CloseIdleConnections()
	body, err := webhooks.EncodePayload(webhooks.EventDecided, time.Now().Add(-2*time.Second), []byte(`{"schema":"kycpipe.decision.v1","jobId":"job_42"}`))
	if err != nil {
		t.Fatal(err)
	}
	id := webhooks.MessageID("wfe-1", "ep_1")
	url := "http://" + ln.Addr().String() + "/kyc"
	for i := range 2 { // the second is a redelivery
		res := d.Deliver(t.Context(), url, id, time.Now(), body, []webhooks.Secret{secret})
		if res.Class != webhooks.ClassDelivered || res.StatusCode != http.StatusNoContent {
			t.Fatalf("delivery %d: %+v", i+1, res)
		}
	}
	if s := rc.Stats(); s.Delivered != 1 || s.Duplicates != 1 {
		t.Fatalf("stats %+v, want 1 delivered and 1 duplicate", s)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("run did not stop")
	}
}

// Bad failure-injection settings stop the receiver before it listens.
func TestStartRefusesBadSettings(t *testing.T) {
	t.Parallel()
	secret := webhooks.NewSecret().Reveal()
	for _, o := range []options{
		{failureRate: "x", hangRate: "0"},
		{failureRate: "0", hangRate: "often"},
		{failureRate: "0.5", hangRate: "0.6"},
		{failureRate: "0", hangRate: "0", journal: "/nonexistent-dir/journal"},
	} {
		if err := start("127.0.0.1:0", secret, o); err == nil {
			t.Errorf("start(%+v) = nil, want an error", o)
		}
	}
}
