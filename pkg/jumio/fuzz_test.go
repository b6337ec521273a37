package jumio_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kycpipe/kycpipe/pkg/jumio"
)

func addFixtures(f *testing.F, glob string) {
	f.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", glob))
	if err != nil || len(files) == 0 {
		f.Fatalf("no fixtures for %s: %v", glob, err)
	}
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
}

// FuzzParseCallback checks that no body makes the parser panic, that an
// accepted callback always names a well-formed execution and account, and
// that errors never echo the body.
func FuzzParseCallback(f *testing.F) {
	addFixtures(f, "callback_*.json")
	f.Add([]byte(`{"workflowExecution":{"id":"w","status":"PROCESSED"},"account":{"id":"a"}}`))
	f.Add([]byte(`{"workflowExecution":{"id":"w","status":"PROCESSED"},"account":{"id":"a"},"extra":[1,2,{"x":null}]}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, body []byte) {
		cb, err := jumio.ParseCallback(bytes.NewReader(body))
		if err != nil {
			if cb != nil {
				t.Fatal("non-nil callback with error")
			}
			if len(body) > 16 && strings.Contains(err.Error(), string(body)) {
				t.Fatalf("error echoes the body: %v", err)
			}
			return
		}
		if !jumio.ValidID(cb.WorkflowExecution.ID) || !jumio.ValidID(cb.Account.ID) || cb.WorkflowExecution.Status == "" {
			t.Fatalf("accepted a callback without valid IDs: %+v", cb)
		}
		if _, err := json.Marshal(cb); err != nil {
			t.Fatalf("accepted callback does not re-encode: %v", err)
		}
	})
}

// FuzzDecodeWorkflowDetails checks that no payload makes the retrieval
// decoder panic, and that decoded details re-encode and decode again to the
// same capability summary (unknown capabilities survive).
func FuzzDecodeWorkflowDetails(f *testing.F) {
	addFixtures(f, "details_*.json")
	f.Add([]byte(`{"workflow":{"id":"w"},"capabilities":{"x":[{"decision":{"type":"PASSED"}}]}}`))
	f.Add([]byte(`{"workflow":{"id":"w"},"capabilities":{"liveness":"nope"},"extra":1}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		d, err := jumio.DecodeWorkflowDetails(bytes.NewReader(body))
		if err != nil {
			return
		}
		out, err := json.Marshal(d)
		if err != nil {
			t.Fatalf("decoded details do not re-encode: %v", err)
		}
		d2, err := jumio.DecodeWorkflowDetails(bytes.NewReader(out))
		if err != nil {
			t.Fatalf("re-encoded details do not decode: %v\n%s", err, out)
		}
		a, b := d.Capabilities.All(), d2.Capabilities.All()
		if len(a) != len(b) {
			t.Fatalf("capability results changed across a round trip: %d vs %d", len(a), len(b))
		}
		for i := range a {
			if a[i].Name != b[i].Name || a[i].Decision.Type != b[i].Decision.Type || a[i].Decision.Details.Label != b[i].Decision.Details.Label {
				t.Fatalf("capability %d changed: %+v vs %+v", i, a[i], b[i])
			}
		}
	})
}
