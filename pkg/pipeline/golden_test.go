package pipeline

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/kycpipe/kycpipe/internal/golden"
	"github.com/kycpipe/kycpipe/pkg/jumio"
	"github.com/kycpipe/kycpipe/pkg/messages"
	"github.com/kycpipe/kycpipe/pkg/pipeline/pipelinetest"
)

// The golden corpus (testdata/golden at the module root, one directory per
// release, captured from each release's binaries: make golden) must be
// readable by every later release. pkg/messages' golden test decodes the
// wire messages; this one reads what this package owns, through the code
// paths the stages use: job records, the execution index and erased marks
// (stored in a key-value bucket and read with JobStore), rate-limit state
// (SharedLimiter), dead letters (their headers, and their original payload
// by its subject), index entries, and the notifier's delivery jobs, log
// entries, endpoint records and attempt counters.

const goldenDir = "../../testdata/golden"

func goldenCorpus(t *testing.T) map[string]golden.Manifest {
	t.Helper()
	out, _, err := golden.Read(goldenDir)
	if err != nil {
		t.Fatal(err)
	}
	if len(out) < 2 {
		t.Fatalf("golden corpus: %d versions in %s, want the previous release's and the current one", len(out), goldenDir)
	}
	return out
}

// TestGoldenRecordsAndInternalMessages reads every job record, index
// entry, dead letter, rate-limit state and webhook record of every
// release's corpus, and checks the key fields recorded at capture time.
func TestGoldenRecordsAndInternalMessages(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, _, js := pipelinetest.RunJetStream(t)
	buckets := map[string]jetstream.KeyValue{}
	for _, b := range []string{"JOBS", "LIMITS"} {
		kv, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "GOLDEN_" + b})
		if err != nil {
			t.Fatal(err)
		}
		buckets[b] = kv
	}
	store := NewJobStore(buckets["JOBS"], time.Now)
	limiter := NewSharedLimiter(buckets["LIMITS"], jumio.RegionAMER, RateLimits{}, nil, nil)
	subj := messages.MustSubjects("")

	for version, m := range goldenCorpus(t) {
		read := map[string]int{}
		hashes := map[string]string{} // job → requestHash, from its records
		var requests []golden.Entry
		for _, e := range m.Files {
			data, err := os.ReadFile(filepath.Join(goldenDir, version, e.File))
			if err != nil {
				t.Fatal(err)
			}
			where := version + "/" + e.File
			f := func(path string, got any) {
				t.Helper()
				if want, ok := e.Fields[path]; ok && !golden.Same(want, got) {
					t.Errorf("%s: %s = %v (%T), written as %v", where, path, got, got, want)
				}
			}
			key := e.Subject[strings.LastIndex(e.Subject, ".")+1:]
			switch e.Kind {
			case "job_record":
				if _, err := buckets["JOBS"].Put(ctx, "job."+key, data); err != nil {
					t.Fatal(err)
				}
				rec, _, err := store.Get(ctx, key)
				if err != nil {
					t.Errorf("%s: %v", where, err)
					continue
				}
				f("jobId", rec.JobID)
				f("status", rec.Status)
				f("region", rec.Region)
				f("channel", rec.Channel)
				f("customerInternalReference", rec.CustomerInternalReference)
				f("requestHash", rec.RequestHash)
				f("accountId", rec.AccountID)
				f("workflowExecutionId", rec.WorkflowExecutionID)
				f("finalized", rec.Finalized)
				f("announced", rec.Announced)
				f("pollSequence", rec.PollSequence)
				f("attempts", rec.Attempts)
				f("existingAccount", rec.ExistingAccount)
				f("ownAccount", rec.OwnAccount)
				if rec.Decision != nil {
					f("decision.type", rec.Decision.Type)
				}
				if rec.LastError != nil {
					f("lastError.code", rec.LastError.Code)
				}
				if rec.Erasure != nil {
					f("erasure.jumio", rec.Erasure.Jumio)
				}
				if len(rec.Messages) > 0 {
					f("messages.0.kind", rec.Messages[0].Kind)
				}
				if len(rec.Images) > 0 {
					f("images.0", rec.Images[0])
				}
				for _, p := range []string{"decision.type", "lastError.code", "erasure.jumio", "messages.0.kind", "images.0"} {
					if _, written := e.Fields[p]; written && ((p == "decision.type" && rec.Decision == nil) || (p == "lastError.code" && rec.LastError == nil) ||
						(p == "erasure.jumio" && rec.Erasure == nil) || (p == "messages.0.kind" && len(rec.Messages) == 0) || (p == "images.0" && len(rec.Images) == 0)) {
						t.Errorf("%s: %s written, lost in decoding", where, p)
					}
				}
				if rec.RequestHash != "" {
					hashes[rec.JobID] = rec.RequestHash
				}
				// Erased and erasing records must still be seen as such:
				// no stage may start work for them.
				if (rec.Status == StatusErased || rec.Status == StatusErasing) && !rec.Terminal() {
					t.Errorf("%s: an %s record is not terminal", where, rec.Status)
				}
			case "exec_index":
				if _, err := buckets["JOBS"].Put(ctx, "exec."+key, data); err != nil {
					t.Fatal(err)
				}
				job, err := store.JobForExecution(ctx, key)
				if err != nil || !messages.ValidJobID(job) {
					t.Errorf("%s: execution index: %q %v", where, job, err)
				}
				f("jobId", job)
			case "erased_mark":
				if _, err := buckets["JOBS"].Put(ctx, "erased."+key, data); err != nil {
					t.Fatal(err)
				}
				if erased, err := store.ExecutionErased(ctx, key); err != nil || !erased {
					t.Errorf("%s: erased mark not seen: %v %v", where, erased, err)
				}
			case "rate_limit_state":
				lane := strings.TrimPrefix(e.Subject, "$KV."+subj.BucketLimits()+".")
				if _, err := buckets["LIMITS"].Put(ctx, lane, data); err != nil {
					t.Fatal(err)
				}
				st, _, err := limiter.load(ctx, lane)
				if err != nil {
					t.Errorf("%s: %v", where, err)
				}
				var raw map[string]any
				if json.Unmarshal(data, &raw) != nil {
					t.Errorf("%s: not JSON: the limiter would start the key over", where)
				}
				f("tat", st.TAT)
				f("pausedUntil", st.PausedUntil)
				f("factor", st.Factor)
				f("penalties", st.Penalties)
			case "dead_letter":
				h := nats.Header{}
				for k, v := range e.Headers {
					h.Set(k, v)
				}
				dl := deadLetterFrom(1, e.Subject, time.Now(), h, data)
				if dl.Stage == "" || dl.Reason == "" || dl.OriginalSubject == "" || dl.Deliveries < 1 {
					t.Errorf("%s: dead letter headers not read: %+v", where, dl)
				}
				if "kyc.dlq."+dl.Stage != e.Subject {
					t.Errorf("%s: stage %q on subject %s", where, dl.Stage, e.Subject)
				}
				if dl.Reason == messages.ReasonPoison {
					break // kept as received: it never decoded
				}
				if err := decodeOriginal(subj, dl.OriginalSubject, data); err != nil {
					t.Errorf("%s: the original payload (%s): %v", where, dl.OriginalSubject, err)
				}
			case "index_entry":
				var ie IndexEntry
				if err := json.Unmarshal(data, &ie); err != nil || !messages.ValidJobID(ie.JobID) {
					t.Errorf("%s: %v %+v", where, err, ie)
				}
				f("jobId", ie.JobID)
				f("status", ie.Status)
				f("region", ie.Region)
				f("decision", ie.Decision)
				f("channel", ie.Channel)
				f("workflowExecutionId", ie.WorkflowExecutionID)
			case "webhook_job":
				j, err := decodeWebhookJob(data)
				if err != nil {
					t.Errorf("%s: %v", where, err)
					continue
				}
				f("schema", j.Schema)
				f("endpointId", j.EndpointID)
				f("jobId", j.JobID)
				f("webhookId", j.WebhookID)
				f("eventId", j.EventID)
				f("type", j.Type)
				f("stream", j.Stream)
				f("sequence", j.Sequence)
			case "webhook_log":
				var l webhookLogEntry
				if err := json.Unmarshal(data, &l); err != nil {
					t.Errorf("%s: %v", where, err)
				}
				f("endpointId", l.EndpointID)
				f("jobId", l.JobID)
				f("webhookId", l.WebhookID)
				f("eventType", l.EventType)
				f("attempt", l.Attempt)
				f("outcome", l.Outcome)
				f("statusCode", l.StatusCode)
				f("stream", l.Stream)
				f("sequence", l.Sequence)
			case "webhook_endpoint":
				rec, err := decodeEndpointRecord(data)
				if err != nil {
					t.Errorf("%s: %v", where, err)
					continue
				}
				if len(rec.Secrets) == 0 {
					t.Errorf("%s: endpoint without its secret", where)
				}
				f("id", rec.ID)
				f("url", rec.URL)
				f("status", rec.Status)
				if len(rec.EventTypes) > 0 {
					f("eventTypes.0", rec.EventTypes[0])
				}
			case "webhook_attempts":
				var st attemptState
				if err := json.Unmarshal(data, &st); err != nil {
					t.Errorf("%s: %v", where, err)
				}
				f("failed", st.Failed)
				f("next", st.Next)
			case "request":
				requests = append(requests, e)
				continue
			default:
				continue
			}
			read[e.Kind]++
		}
		// A job's request hash, recorded by whoever first stored its record,
		// is what this release computes from the job's message: otherwise
		// every job of the older release still queued would be refused as
		// a conflicting duplicate.
		for _, e := range requests {
			data, err := os.ReadFile(filepath.Join(goldenDir, version, e.File))
			if err != nil {
				t.Fatal(err)
			}
			req, err := messages.DecodeRequest(data)
			if err != nil {
				t.Errorf("%s/%s: %v", version, e.File, err)
				continue
			}
			if want, ok := hashes[req.JobID]; ok {
				read["request hash"]++
				if got := RequestHash(req); got != want {
					t.Errorf("%s/%s: request hash %s, recorded %s", version, e.File, got, want)
				}
			}
		}
		t.Logf("%s: read %v", version, read)
		for _, kind := range []string{"job_record", "exec_index", "dead_letter", "rate_limit_state", "request hash"} {
			if read[kind] == 0 {
				t.Errorf("%s: no %s checked", version, kind)
			}
		}
	}
}

// decodeOriginal decodes a dead letter's original payload by the subject
// it was first published on, as replay and the operators' tools read it.
func decodeOriginal(subj messages.Subjects, subject string, data []byte) error {
	rest, ok := strings.CutPrefix(subject, subj.Prefix()+".")
	if !ok {
		return fmt.Errorf("subject outside the prefix")
	}
	var err error
	switch tok, _, _ := strings.Cut(rest, "."); tok {
	case "jobs":
		_, err = messages.DecodeRequest(data)
	case "callbacks":
		_, err = messages.DecodeCallback(data)
	case "retrieve":
		_, err = messages.DecodeRetrievalTask(data)
	case "webhooks":
		_, err = decodeWebhookJob(data)
	default:
		err = fmt.Errorf("no decoder")
	}
	return err
}
