package webhooks_test

import (
	"net/http"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/kycpipe/kycpipe/pkg/webhooks"
)

// The reference Go library of Standard Webhooks verifies what this package
// signs, and this package verifies what the library signs: an independent
// check that the two read the specification the same way.
func TestStandardWebhooksLibrary(t *testing.T) {
	t.Parallel()
	// The test vector, through the library's signer.
	lib, err := standardwebhooks.NewWebhook(specSecret)
	if err != nil {
		t.Fatal(err)
	}
	libSig, err := lib.Sign(specID, time.Unix(specTimestamp, 0), []byte(specBody))
	if err != nil || libSig != specSignature {
		t.Fatalf("library Sign = %q, %v; want the spec's %q", libSig, err, specSignature)
	}

	// The library verifies against the wall clock (5 minutes tolerance), so
	// sign with the current time.
	oldS, newS := webhooks.NewSecret(), webhooks.NewSecret()
	now := time.Now()
	body := []byte(`{"type":"verification.decided","timestamp":"2026-12-06T10:00:00Z","data":{"jobId":"job_1"}}`)
	h := http.Header{}
	if err := webhooks.SetHeaders(h, []webhooks.Secret{newS, oldS}, webhooks.MessageID("exec-1", "ep_1"), now, body); err != nil {
		t.Fatal(err)
	}
	for name, s := range map[string]webhooks.Secret{"new": newS, "old": oldS} {
		wh, err := standardwebhooks.NewWebhook(s.Reveal())
		if err != nil {
			t.Fatal(err)
		}
		if err := wh.Verify(body, h); err != nil {
			t.Errorf("library rejects our signature with the %s secret: %v", name, err)
		}
		if err := wh.Verify(append([]byte{' '}, body...), h); err == nil {
			t.Errorf("library accepts a tampered body with the %s secret", name)
		}
	}

	// The other way round: the library signs, our Verifier checks.
	wh, err := standardwebhooks.NewWebhook(newS.Reveal())
	if err != nil {
		t.Fatal(err)
	}
	sig, err := wh.Sign("msg_from_library", now, body)
	if err != nil {
		t.Fatal(err)
	}
	h2 := http.Header{}
	h2.Set(standardwebhooks.HeaderWebhookID, "msg_from_library")
	h2.Set(standardwebhooks.HeaderWebhookTimestamp, h.Get(webhooks.HeaderTimestamp))
	h2.Set(standardwebhooks.HeaderWebhookSignature, sig)
	v := &webhooks.Verifier{Secrets: []webhooks.Secret{oldS, newS}, Now: func() time.Time { return now }}
	if err := v.Verify(h2, body); err != nil {
		t.Fatalf("our Verifier rejects the library's signature: %v", err)
	}
}
