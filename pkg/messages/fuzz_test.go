package messages_test

import (
	"encoding/json"
	"testing"

	"github.com/kycpipe/kycpipe/pkg/messages"
)

// FuzzDecodeRequest checks that no input makes the strict decoder or the
// validator panic, and that an accepted request re-encodes and decodes again.
func FuzzDecodeRequest(f *testing.F) {
	f.Add([]byte(validJSON))
	f.Add([]byte(`{"customerInternalReference":"x","workflowDefinition":{"key":"10164","credentials":[{"category":"ID","country":{"values":["USA"]}}]},"channel":"WEB","web":{"locale":"en"}}`))
	f.Add([]byte(`{"customerInternalReference":"x","workflowDefinition":{"key":1},"channel":"API","parts":[{"classifier":"FRONT","data":"iVBORw0KGgo="}]}`))
	f.Add([]byte(`{"tokenLifetime":"5m","callbackUrl":"https://a.example/cb"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := messages.DecodeRequest(b)
		if err != nil {
			return
		}
		_ = r.Validate()
		out, err := json.Marshal(r)
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		if _, err := messages.DecodeRequest(out); err != nil {
			t.Fatalf("re-encoded request does not decode: %v\n%s", err, out)
		}
	})
}

// FuzzDecodeCallback covers the received-callback decoder.
func FuzzDecodeCallback(f *testing.F) {
	f.Add([]byte(`{"region":"amer-1","jobId":"j-1","callback":{"workflowExecution":{"id":"w-1","status":"PROCESSED"},"account":{"id":"a-1"}}}`))
	f.Add([]byte(`{"callback":{}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := messages.DecodeCallback(b)
		if err != nil {
			return
		}
		if c.Callback.WorkflowExecution.ID == "" || c.Callback.Account.ID == "" {
			t.Fatalf("accepted a callback without IDs: %+v", c)
		}
	})
}

// FuzzDecodeEvents covers the lifecycle-event and decision decoders.
func FuzzDecodeEvents(f *testing.F) {
	f.Add([]byte(`{"kind":"failed","jobId":"j","error":{"code":"x","message":"y","status":400}}`))
	f.Add([]byte(`{"workflowExecutionId":"w","decision":{"type":"PASSED","riskScore":1.5},"capabilities":{"a":[{"decision":"PASSED"}]}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = messages.DecodeEvent(b)
		_, _ = messages.DecodeDecision(b)
	})
}
