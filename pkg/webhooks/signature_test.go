package webhooks_test

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kycpipe/kycpipe/pkg/webhooks"
)

// The Standard Webhooks test vector.
const (
	specID        = "msg_p5jXN8AQM9LWM0D4loKWxJek"
	specTimestamp = 1614265330
	specBody      = `{"test": 2432232314}`
	specSignature = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
)

func TestSignSpecVector(t *testing.T) {
	t.Parallel()
	got := webhooks.Sign(mustSecret(t, specSecret), specID, time.Unix(specTimestamp, 0), []byte(specBody))
	if got != specSignature {
		t.Fatalf("Sign = %q, want %q", got, specSignature)
	}
}

func TestSignatureHeaderRotation(t *testing.T) {
	t.Parallel()
	oldS, newS, other := webhooks.NewSecret(), webhooks.NewSecret(), webhooks.NewSecret()
	ts := time.Unix(1_800_000_000, 0)
	body := []byte(`{"type":"verification.decided"}`)
	h := http.Header{}
	if err := webhooks.SetHeaders(h, []webhooks.Secret{newS, {}, oldS}, "msg_1", ts, body); err != nil {
		t.Fatal(err)
	}
	sigs := strings.Split(h.Get(webhooks.HeaderSignature), " ")
	if len(sigs) != 2 || sigs[0] != webhooks.Sign(newS, "msg_1", ts, body) || sigs[1] != webhooks.Sign(oldS, "msg_1", ts, body) {
		t.Fatalf("signatures = %q, want the new then the old one, zero secret skipped", sigs)
	}
	if h.Get(webhooks.HeaderID) != "msg_1" || h.Get(webhooks.HeaderTimestamp) != "1800000000" {
		t.Fatalf("headers = %v", h)
	}
	now := func() time.Time { return ts }
	for name, secrets := range map[string][]webhooks.Secret{"old": {oldS}, "new": {newS}, "other then old": {other, oldS}} {
		v := &webhooks.Verifier{Secrets: secrets, Now: now}
		if err := v.Verify(h, body); err != nil {
			t.Errorf("verifier with %s secret: %v", name, err)
		}
	}
	v := &webhooks.Verifier{Secrets: []webhooks.Secret{other}, Now: now}
	if err := v.Verify(h, body); !errors.Is(err, webhooks.ErrNoMatchingSignature) {
		t.Errorf("unrelated secret: err = %v, want ErrNoMatchingSignature", err)
	}
	if _, err := webhooks.SignatureHeader(nil, "msg_1", ts, body); !errors.Is(err, webhooks.ErrNoSecret) {
		t.Errorf("no secret: err = %v, want ErrNoSecret", err)
	}
	h2 := http.Header{}
	if err := webhooks.SetHeaders(h2, []webhooks.Secret{{}}, "msg_1", ts, body); !errors.Is(err, webhooks.ErrNoSecret) || len(h2) != 0 {
		t.Errorf("zero secret only: err = %v, headers %v; want ErrNoSecret and no header", err, h2)
	}
}

func TestVerify(t *testing.T) {
	t.Parallel()
	secret := mustSecret(t, specSecret)
	at := time.Unix(specTimestamp, 0)
	valid := func() http.Header {
		h := http.Header{}
		h.Set("webhook-id", specID)
		h.Set("webhook-timestamp", strconv.Itoa(specTimestamp))
		h.Set("webhook-signature", specSignature)
		return h
	}
	with := func(k, v string) http.Header { h := valid(); h.Set(k, v); return h }
	without := func(k string) http.Header { h := valid(); h.Del(k); return h }
	tests := []struct {
		name      string
		h         http.Header
		body      string
		now       time.Time
		tolerance time.Duration
		secrets   []webhooks.Secret
		want      error // nil: verifies
	}{
		{name: "spec vector", h: valid()},
		{name: "among other signatures", h: with("webhook-signature", "v1a,AAAA v1,bm90IGl0 "+specSignature+" v2,xyz")},
		{name: "extra spaces", h: with("webhook-signature", "  v1,!!notbase64   "+specSignature+"  ")},
		{name: "second of two secrets", h: valid(), secrets: []webhooks.Secret{webhooks.NewSecret(), secret}},
		{name: "exactly at the tolerance, old", h: valid(), now: at.Add(5 * time.Minute)},
		{name: "exactly at the tolerance, new", h: valid(), now: at.Add(-5 * time.Minute)},
		{name: "too old", h: valid(), now: at.Add(5*time.Minute + time.Second), want: webhooks.ErrTimestampTooOld},
		{name: "too new", h: valid(), now: at.Add(-5*time.Minute - time.Second), want: webhooks.ErrTimestampTooNew},
		{name: "custom tolerance accepts", h: valid(), now: at.Add(time.Hour), tolerance: 2 * time.Hour},
		{name: "custom tolerance refuses", h: valid(), now: at.Add(2 * time.Minute), tolerance: time.Minute, want: webhooks.ErrTimestampTooOld},
		{name: "missing id", h: without("webhook-id"), want: webhooks.ErrMissingHeaders},
		{name: "missing timestamp", h: without("webhook-timestamp"), want: webhooks.ErrMissingHeaders},
		{name: "missing signature", h: without("webhook-signature"), want: webhooks.ErrMissingHeaders},
		{name: "timestamp not a number", h: with("webhook-timestamp", "2021-02-25T15:02:10Z"), want: webhooks.ErrInvalidTimestamp},
		{name: "timestamp in milliseconds", h: with("webhook-timestamp", "1614265330000"), want: webhooks.ErrTimestampTooNew},
		{name: "timestamp overflowing int64", h: with("webhook-timestamp", "99999999999999999999"), want: webhooks.ErrInvalidTimestamp},
		{name: "hostile negative timestamp", h: with("webhook-timestamp", "-9223372036854775808"), want: webhooks.ErrTimestampTooOld},
		{name: "tampered body", h: valid(), body: `{"test": 2432232315}`, want: webhooks.ErrNoMatchingSignature},
		{name: "tampered id", h: with("webhook-id", specID+"x"), want: webhooks.ErrNoMatchingSignature},
		{name: "tampered timestamp", h: with("webhook-timestamp", strconv.Itoa(specTimestamp+1)), want: webhooks.ErrNoMatchingSignature},
		{name: "wrong secret", h: valid(), secrets: []webhooks.Secret{webhooks.NewSecret()}, want: webhooks.ErrNoMatchingSignature},
		{name: "signature without version", h: with("webhook-signature", strings.TrimPrefix(specSignature, "v1,")), want: webhooks.ErrNoMatchingSignature},
		{name: "signature of another version", h: with("webhook-signature", "v2,"+strings.TrimPrefix(specSignature, "v1,")), want: webhooks.ErrNoMatchingSignature},
		{name: "truncated signature", h: with("webhook-signature", specSignature[:20]), want: webhooks.ErrNoMatchingSignature},
		{name: "no secret", h: valid(), secrets: []webhooks.Secret{{}}, want: webhooks.ErrNoSecret},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			body, now, secrets := tt.body, tt.now, tt.secrets
			if body == "" {
				body = specBody
			}
			if now.IsZero() {
				now = at
			}
			if secrets == nil {
				secrets = []webhooks.Secret{secret}
			}
			v := &webhooks.Verifier{Secrets: secrets, Tolerance: tt.tolerance, Now: func() time.Time { return now }}
			err := v.Verify(tt.h, []byte(body))
			if tt.want == nil && err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("Verify: err = %v, want %v", err, tt.want)
			}
			if err != nil && strings.Contains(err.Error(), "MfKQ") {
				t.Fatalf("error %q contains the secret", err)
			}
		})
	}
}

// The zero Verifier refuses everything.
func TestVerifierZeroValue(t *testing.T) {
	t.Parallel()
	h := http.Header{}
	h.Set("webhook-id", specID)
	h.Set("webhook-timestamp", strconv.FormatInt(time.Now().Unix(), 10))
	h.Set("webhook-signature", specSignature)
	var v webhooks.Verifier
	if err := v.Verify(h, []byte(specBody)); !errors.Is(err, webhooks.ErrNoSecret) {
		t.Fatalf("err = %v, want ErrNoSecret", err)
	}
}
