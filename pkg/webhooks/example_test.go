package webhooks_test

import (
	"fmt"
	"net/http"
	"time"

	"github.com/kycpipe/kycpipe/pkg/webhooks"
)

// Signing the Standard Webhooks test vector.
func ExampleSign() {
	secret, err := webhooks.ParseSecret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	if err != nil {
		panic(err)
	}
	fmt.Println(webhooks.Sign(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", time.Unix(1614265330, 0), []byte(`{"test": 2432232314}`)))
	fmt.Println(secret) // never the key
	// Output:
	// v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=
	// whsec_[REDACTED]
}

// A receiver checks a delivery.
func ExampleVerifier_Verify() {
	secret, _ := webhooks.ParseSecret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	h := http.Header{}
	h.Set("webhook-id", "msg_p5jXN8AQM9LWM0D4loKWxJek")
	h.Set("webhook-timestamp", "1614265330")
	h.Set("webhook-signature", "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
	v := &webhooks.Verifier{
		Secrets: []webhooks.Secret{secret},
		Now:     func() time.Time { return time.Unix(1614265330+60, 0) }, // a minute later
	}
	fmt.Println(v.Verify(h, []byte(`{"test": 2432232314}`)))
	fmt.Println(v.Verify(h, []byte(`{"test": 2432232315}`)))
	// Output:
	// <nil>
	// webhooks: verify: webhooks: no matching signature
}

// The default retry schedule, attempt by attempt.
func ExampleSchedule_Delay() {
	s := webhooks.DefaultSchedule()
	for attempt := 1; attempt <= s.MaxAttempts(); attempt++ {
		wait, retry := s.Delay(attempt, 0)
		if !retry {
			fmt.Printf("attempt %d failed: dead-letter\n", attempt)
			break
		}
		fmt.Printf("attempt %d failed: retry in %s\n", attempt, wait)
	}
	// A 429 with Retry-After: 3600 after the first attempt waits the hour.
	wait, _ := s.Delay(1, time.Hour)
	fmt.Println(wait)
	// Output:
	// attempt 1 failed: retry in 5s
	// attempt 2 failed: retry in 5m0s
	// attempt 3 failed: retry in 30m0s
	// attempt 4 failed: retry in 2h0m0s
	// attempt 5 failed: retry in 5h0m0s
	// attempt 6 failed: retry in 10h0m0s
	// attempt 7 failed: retry in 10h0m0s
	// attempt 8 failed: dead-letter
	// 1h0m0s
}

// The webhook-id of an event for an endpoint is the same at every retry.
func ExampleMessageID() {
	a := webhooks.MessageID("wfe-7e6c", "ep_01")
	b := webhooks.MessageID("wfe-7e6c", "ep_01")
	fmt.Println(a == b, len(a))
	// Output: true 30
}
