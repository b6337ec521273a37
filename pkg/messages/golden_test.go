package messages_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kycpipe/kycpipe/internal/golden"
	"github.com/kycpipe/kycpipe/pkg/messages"
)

// The golden corpus (testdata/golden at the module root, one directory per
// release) holds every message each release wrote, captured from its own
// binaries at work (make golden; docs/OPERATIONS.md, "Upgrades"). Every
// release must decode all of them, forever: old messages sit in streams
// and dead-letter queues for weeks, and during a rolling upgrade old and
// new processes read each other's messages. This test decodes the corpus's
// messages with this package's decoders and checks that each key field
// recorded at capture time comes out with its value. (pkg/pipeline's
// golden test covers job records, dead letters and the internal messages.)

const goldenDir = "../../testdata/golden"

// goldenVersions reads every version's manifest; every file of a version's
// directory must be in its manifest: nothing in the corpus escapes the tests.
func goldenVersions(t *testing.T) map[string]golden.Manifest {
	t.Helper()
	out, unlisted, err := golden.Read(goldenDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range unlisted {
		t.Errorf("%s is not in the manifest", f)
	}
	if len(out) < 2 {
		t.Fatalf("golden corpus: %d versions in %s, want the previous release's and the current one", len(out), goldenDir)
	}
	return out
}

// goldenField compares a decoded value with the value the writer put under
// path. Absent paths were not written and are not checked.
func goldenField(t *testing.T, where string, e golden.Entry, path string, got any) {
	t.Helper()
	want, ok := e.Fields[path]
	if !ok {
		return
	}
	if golden.Same(want, got) {
		return
	}
	t.Errorf("%s: %s = %v (%T), written as %v", where, path, got, got, want)
}

// decodeGolden decodes one payload of a kind this package owns and checks
// its key fields; it reports false for kinds it does not own.
func decodeGolden(t *testing.T, where string, e golden.Entry, kind string, data []byte) bool {
	t.Helper()
	f := func(path string, got any) { goldenField(t, where, e, path, got) }
	switch kind {
	case "request":
		r, err := messages.DecodeRequest(data)
		if err != nil {
			t.Errorf("%s: %v", where, err)
			return true
		}
		if err := r.Validate(); err != nil {
			t.Errorf("%s: a request the writer accepted fails validation: %v", where, err)
		}
		f("schema", r.Schema)
		f("jobId", r.JobID)
		f("customerInternalReference", r.CustomerInternalReference)
		f("userReference", r.UserReference)
		f("accountId", r.AccountID)
		f("channel", r.Channel)
		f("region", r.Region)
		f("workflowDefinition.key", r.WorkflowDefinition.Key)
		if len(r.Parts) > 0 {
			f("parts.0.classifier", r.Parts[0].Classifier)
			f("parts.0.object", r.Parts[0].Object)
		}
		if r.PreparedData != nil {
			f("preparedData.email", r.PreparedData.Email)
		}
	case "callback":
		c, err := messages.DecodeCallback(data)
		if err != nil {
			t.Errorf("%s: %v", where, err)
			return true
		}
		f("schema", c.Schema)
		f("region", c.Region)
		f("jobId", c.JobID)
		f("callback.workflowExecution.id", c.Callback.WorkflowExecution.ID)
		f("callback.workflowExecution.status", c.Callback.WorkflowExecution.Status)
		f("callback.account.id", c.Callback.Account.ID)
	case "retrieval_task":
		r, err := messages.DecodeRetrievalTask(data)
		if err != nil {
			t.Errorf("%s: %v", where, err)
			return true
		}
		f("schema", r.Schema)
		f("jobId", r.JobID)
		f("region", r.Region)
		f("accountId", r.AccountID)
		f("workflowExecutionId", r.WorkflowExecutionID)
		f("deadline", r.Deadline)
	case "event":
		ev, err := messages.DecodeEvent(data)
		if err != nil {
			t.Errorf("%s: %v", where, err)
			return true
		}
		f("schema", ev.Schema)
		f("kind", ev.Kind)
		f("jobId", ev.JobID)
		f("region", ev.Region)
		f("accountId", ev.AccountID)
		f("workflowExecutionId", ev.WorkflowExecutionID)
		f("customerInternalReference", ev.CustomerInternalReference)
		if ev.Web != nil {
			f("web.href", ev.Web.Href)
		}
		if ev.SDK != nil {
			f("sdk.token", ev.SDK.Token)
		}
		if ev.Error != nil {
			f("error.code", ev.Error.Code)
		}
		f("at", ev.At)
		for _, p := range []string{"web.href", "sdk.token", "error.code"} {
			if _, written := e.Fields[p]; written && ((p == "web.href" && ev.Web == nil) || (p == "sdk.token" && ev.SDK == nil) || (p == "error.code" && ev.Error == nil)) {
				t.Errorf("%s: %s written, lost in decoding", where, p)
			}
		}
	case "decision":
		d, err := messages.DecodeDecision(data)
		if err != nil {
			t.Errorf("%s: %v", where, err)
			return true
		}
		f("schema", d.Schema)
		f("jobId", d.JobID)
		f("region", d.Region)
		f("accountId", d.AccountID)
		f("workflowExecutionId", d.WorkflowExecutionID)
		f("customerInternalReference", d.CustomerInternalReference)
		f("status", d.Status)
		f("decision.type", d.Decision.Type)
		f("decision.label", d.Decision.Label)
		f("decision.riskScore", d.Decision.RiskScore)
		if len(d.Alerts) > 0 {
			f("alerts.0.capability", d.Alerts[0].Capability)
		} else if _, written := e.Fields["alerts.0.capability"]; written {
			t.Errorf("%s: alerts written, lost in decoding", where)
		}
		f("decidedAt", d.DecidedAt)
	case "erasure_task":
		et, err := messages.DecodeErasureTask(data)
		if err != nil {
			t.Errorf("%s: %v", where, err)
			return true
		}
		f("schema", et.Schema)
		f("jobId", et.JobID)
		f("source", et.Source)
		f("actor", et.Actor)
		f("requestedAt", et.RequestedAt)
	case "audit":
		a, err := messages.DecodeAudit(data)
		if err != nil {
			t.Errorf("%s: %v", where, err)
			return true
		}
		f("schema", a.Schema)
		f("action", a.Action)
		f("jobId", a.JobID)
		f("actor", a.Actor)
		f("source", a.Source)
		f("jumio", a.Jumio)
		if a.Removed != nil {
			f("removed.messages", a.Removed.Messages)
		}
	default:
		return false
	}
	return true
}

// TestGoldenMessagesDecode decodes every message of every release's corpus
// that this package has a decoder for, dead letters' original payloads
// included (poison ones never decoded and are kept as received).
func TestGoldenMessagesDecode(t *testing.T) {
	t.Parallel()
	for version, m := range goldenVersions(t) {
		decoded := map[string]int{}
		for _, e := range m.Files {
			data, err := os.ReadFile(filepath.Join(goldenDir, version, e.File))
			if err != nil {
				t.Fatal(err)
			}
			where := version + "/" + e.File
			kind := e.Kind
			if kind == "dead_letter" {
				if e.Headers[messages.HeaderReason] == messages.ReasonPoison {
					continue
				}
				kind, _ = e.Fields["originalKind"].(string)
			}
			if decodeGolden(t, where, e, kind, data) {
				decoded[e.Kind]++
			}
		}
		t.Logf("%s: decoded %v", version, decoded)
		for _, kind := range []string{"request", "callback", "retrieval_task", "event", "decision"} {
			if decoded[kind] == 0 {
				t.Errorf("%s: no %s in the corpus", version, kind)
			}
		}
	}
}

// TestGoldenSchemas checks that every schema a corpus names is one this
// release decodes: a writer's schema version never goes away.
func TestGoldenSchemas(t *testing.T) {
	t.Parallel()
	known := map[string]bool{messages.SchemaVerification: true, messages.SchemaEvent: true, messages.SchemaCallback: true,
		messages.SchemaDecision: true, messages.SchemaRetrievalTask: true, messages.SchemaErasureTask: true, messages.SchemaAudit: true}
	for version, m := range goldenVersions(t) {
		for _, e := range m.Files {
			s, ok := e.Fields["schema"].(string)
			if ok && strings.HasPrefix(s, "kycpipe.") && !known[s] && e.Kind != "webhook_job" {
				t.Errorf("%s/%s: schema %s is not decoded any more", version, e.File, s)
			}
		}
	}
}
