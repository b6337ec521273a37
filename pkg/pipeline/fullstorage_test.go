package pipeline_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/kycpipe/kycpipe/internal/localstack"
	"github.com/kycpipe/kycpipe/pkg/messages"
	"github.com/kycpipe/kycpipe/pkg/natsembed"
	"github.com/kycpipe/kycpipe/pkg/pipeline"
	"github.com/kycpipe/kycpipe/pkg/pipeline/pipelinetest"
)

// Full storage (docs/OPERATIONS.md, "When storage is full"): a full jobs
// stream or a full JetStream store makes ingest answer 503 with
// Retry-After and store nothing; once there is room again, every job
// accepted before is decided exactly once and new submissions go through.

// refused checks that a submission was refused the way clients can rely on:
// 503, a Retry-After of at least a second, a problem body, and nothing
// stored under the job ID.
func refused(t *testing.T, b *bundle, r response, jobID string) {
	t.Helper()
	if r.status != http.StatusServiceUnavailable {
		t.Fatalf("submission answered %d, want 503: %s", r.status, r.body)
	}
	if ra, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || ra < 1 {
		t.Errorf("Retry-After %q, want whole seconds ≥ 1", r.header.Get("Retry-After"))
	}
	var p pipeline.Problem
	if r.header.Get("Content-Type") != "application/problem+json" || json.Unmarshal(r.body, &p) != nil || p.Type != pipeline.ProblemUnavailable {
		t.Errorf("503 body %s (%s)", r.body, r.header.Get("Content-Type"))
	}
	if g := b.do(t, http.MethodGet, "/v1/verifications/"+jobID, "", nil, nil); g.status != http.StatusNotFound {
		t.Errorf("a refused job is visible: GET answered %d %s", g.status, g.body)
	}
}

// submitKey posts job with an Idempotency-Key and returns the answer.
func submitKey(t *testing.T, b *bundle, job map[string]any, key string) response {
	t.Helper()
	raw, err := json.Marshal(job)
	if err != nil {
		t.Fatal(err)
	}
	return b.do(t, http.MethodPost, "/v1/verifications", "application/json", bytes.NewReader(raw), map[string]string{"Idempotency-Key": key})
}

// drainedAndDecided starts a worker and checks that every job ends in one
// decision with one Jumio account.
func drainedAndDecided(t *testing.T, b *bundle, refs map[string]string) {
	t.Helper()
	if _, err := b.stack.AddWorker(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	for ref, id := range refs {
		b.waitDecision(t, id)
		if n := b.sim.Stats().AccountsByReference[ref]; n != 1 {
			t.Errorf("%s: %d Jumio accounts, want 1", ref, n)
		}
	}
	if n := len(b.dlq.All()); n != 0 {
		t.Errorf("%d dead letters", n)
	}
}

// When the jobs stream reaches its MaxMsgs or MaxBytes (discard new),
// ingest refuses further jobs with 503 + Retry-After and keeps no trace of
// them; the jobs already queued are all processed once workers drain the
// stream, and the refused job goes through when its client retries. The
// limits are read back from the provisioned stream, whatever the topology's
// defaults.
func TestFullJobsStreamRefusesSubmissions(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		limit func(*pipeline.Topology)
	}{
		{"MaxMsgs", func(tp *pipeline.Topology) { tp.JobsMaxMsgs = 4 }},
		{"MaxBytes", func(tp *pipeline.Topology) { tp.JobsMaxBytes = 4 << 10 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, func(o *localstack.Options) { tc.limit(&o.Topology); o.Workers = 0 })
			ctx := context.Background()
			st, err := b.stack.JS.Stream(ctx, b.subj.StreamJobs())
			if err != nil {
				t.Fatal(err)
			}
			info, err := st.Info(ctx)
			if err != nil {
				t.Fatal(err)
			}
			cfg := info.Config
			if cfg.Discard != jetstream.DiscardNew {
				t.Fatalf("the jobs stream discards %v when full; it must refuse new jobs (DiscardNew)", cfg.Discard)
			}
			// Fill it: no worker runs, so nothing leaves the queue.
			accepted := map[string]string{}
			var full response
			var fullKey string
			for i := 0; ; i++ {
				if i > 1000 {
					t.Fatalf("1000 jobs accepted under MaxMsgs %d / MaxBytes %d", cfg.MaxMsgs, cfg.MaxBytes)
				}
				key := fmt.Sprintf("full-%s-%03d", tc.name, i)
				r := submitKey(t, b, emailJob(key), key)
				if r.status != http.StatusAccepted {
					full, fullKey = r, key
					break
				}
				var out struct{ JobID string }
				r.json(t, &out)
				accepted[key] = out.JobID
			}
			if len(accepted) == 0 {
				t.Fatal("no job fits in the jobs stream")
			}
			refused(t, b, full, messages.IdempotentJobID(fullKey))
			t.Logf("jobs stream limits %d messages / %d bytes: %d jobs accepted, then 503 with Retry-After %ss",
				cfg.MaxMsgs, cfg.MaxBytes, len(accepted), full.header.Get("Retry-After"))
			var p pipeline.Problem
			_ = json.Unmarshal(full.body, &p)
			if p.Detail != "the job queue is full; retry later" {
				t.Errorf("503 detail %q", p.Detail)
			}
			info, _ = st.Info(ctx)
			if (cfg.MaxMsgs > 0 && info.State.Msgs > uint64(cfg.MaxMsgs)) || (cfg.MaxBytes > 0 && info.State.Bytes > uint64(cfg.MaxBytes)) ||
				info.State.Msgs != uint64(len(accepted)) {
				t.Errorf("jobs stream holds %d messages / %d bytes for %d accepted jobs (limits %d / %d)",
					info.State.Msgs, info.State.Bytes, len(accepted), cfg.MaxMsgs, cfg.MaxBytes)
			}

			// A worker drains the queue; the refused job's client retries.
			drainedAndDecided(t, b, accepted)
			r := submitKey(t, b, emailJob(fullKey), fullKey)
			if r.status != http.StatusAccepted {
				t.Fatalf("retry after the queue drained: %d %s", r.status, r.body)
			}
			b.waitDecision(t, messages.IdempotentJobID(fullKey))
		})
	}
}

// When JetStream's store limit (max_file_store) is reached, every write
// fails with "insufficient resources": ingest answers 503 + Retry-After
// and stores nothing, and a worker that takes a queued job meanwhile keeps
// it, without calling Jumio, until its record can be created. Once space is freed (here
// by deleting the stream that filled the store), every job is decided with
// one account, and the refused job goes through on retry. The limit is set
// from the store's actual usage after provisioning, so the test holds
// whatever byte limits the topology's streams reserve. (A server whose
// max_file_store is below the sum of the streams' MaxBytes refuses to
// create or update them, error 10047: that is why the limit comes after
// provisioning.)
func TestFullStoreRefusesSubmissionsAndResumes(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	port := freeTCPPort(t)
	ctx := context.Background()

	// The pipeline is provisioned on an unlimited server; then the server
	// restarts under it (same store, same port: every client reconnects)
	// with a store limit just above what is used.
	ns, err := natsembed.Run(natsembed.Options{StoreDir: dir, Port: port})
	if err != nil {
		t.Fatal(err)
	}
	b := setup(t, func(o *localstack.Options) { o.NATSURL, o.Workers = ns.ClientURL(), 0 })
	ai, err := b.stack.JS.AccountInfo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ns.Shutdown()
	ns.WaitForShutdown()
	const headroom = 512 << 10
	limit := int64(ai.Store) + headroom
	startLimited(t, dir, port, limit)
	pipelinetest.Eventually(t, waitLong, func() bool {
		_, err := b.stack.JS.AccountInfo(ctx)
		return err == nil
	}, "JetStream not back after the restart")

	accepted := map[string]string{}
	for i := range 3 {
		key := fmt.Sprintf("store-full-%d", i)
		r := submitKey(t, b, emailJob(key), key)
		if r.status != http.StatusAccepted {
			t.Fatalf("submission %d before the store is full: %d %s", i, r.status, r.body)
		}
		accepted[key] = messages.IdempotentJobID(key)
	}

	// Something else fills the store. (A new stream cannot be created now:
	// the streams' reservations exceed the limit.) Filler keys in the
	// job-state bucket, under a prefix no job uses, can be purged later.
	bucket := "KV_" + b.subj.BucketJobs()
	fillSubject := "$KV." + b.subj.BucketJobs() + ".filler.>"
	chunk := make([]byte, 16<<10)
	for i := 0; ; i++ {
		if i > 2*headroom/len(chunk) {
			t.Fatal("the store limit was never reached")
		}
		_, err := b.stack.JS.Publish(ctx, fmt.Sprintf("$KV.%s.filler.%d", b.subj.BucketJobs(), i), chunk)
		var apiErr *jetstream.APIError
		if errors.As(err, &apiErr) && apiErr.ErrorCode == errCodeInsufficientResources {
			break
		}
		if err != nil {
			t.Fatalf("filling: %v", err)
		}
	}
	full := submitKey(t, b, emailJob("store-full-refused"), "store-full-refused")
	refused(t, b, full, messages.IdempotentJobID("store-full-refused"))
	if ai, err := b.stack.JS.AccountInfo(ctx); err == nil {
		t.Logf("store limit %d bytes, %d used: submission refused with 503, Retry-After %ss", limit, ai.Store, full.header.Get("Retry-After"))
	}

	// A worker takes the queued jobs while the store is full: it cannot
	// create their records (the job message is the record of acceptance
	// until then), so it makes no Jumio call and no job advances.
	if _, err := b.stack.AddWorker(ctx, nil); err != nil {
		t.Fatal(err)
	}
	pipelinetest.Eventually(t, waitLong, func() bool {
		c, err := b.stack.JS.Consumer(ctx, b.subj.StreamJobs(), pipeline.ConsumerWorker)
		if err != nil {
			return false
		}
		ci, err := c.Info(ctx)
		return err == nil && ci.Delivered.Consumer >= uint64(len(accepted))
	}, "no worker took the queued jobs")
	if n := b.sim.Stats().AccountsCreated; n != 0 {
		t.Errorf("%d Jumio accounts created for jobs whose records cannot be stored", n)
	}
	for ref, id := range accepted {
		if v := b.job(t, id); v.Status != pipeline.StatusAccepted {
			t.Errorf("%s advanced to %s while nothing can be stored", ref, v.Status)
		}
	}

	// Space is freed: everything resumes.
	kvStream, err := b.stack.JS.Stream(ctx, bucket)
	if err != nil {
		t.Fatal(err)
	}
	if err := kvStream.Purge(ctx, jetstream.WithPurgeSubject(fillSubject)); err != nil {
		t.Fatal(err)
	}
	freed := time.Now()
	for ref, id := range accepted {
		b.waitDecision(t, id)
		if n := b.sim.Stats().AccountsByReference[ref]; n != 1 {
			t.Errorf("%s: %d Jumio accounts, want 1", ref, n)
		}
	}
	t.Logf("space freed: the %d jobs held meanwhile decided within %s, one Jumio account each", len(accepted), time.Since(freed).Round(time.Millisecond))
	r := submitKey(t, b, emailJob("store-full-refused"), "store-full-refused")
	if r.status != http.StatusAccepted {
		t.Fatalf("retry after space was freed: %d %s", r.status, r.body)
	}
	b.waitDecision(t, messages.IdempotentJobID("store-full-refused"))
	if n := len(b.dlq.All()); n != 0 {
		t.Errorf("%d dead letters", n)
	}
}

// errCodeInsufficientResources is JetStream's "insufficient resources"
// (10023): the server's store limit is reached.
const errCodeInsufficientResources jetstream.ErrorCode = 10023

// startLimited starts an embedded server on dir and port whose file store
// is limited to maxStore bytes.
func startLimited(t *testing.T, dir string, port int, maxStore int64) {
	t.Helper()
	ns, err := natsembed.Run(natsembed.Options{StoreDir: dir, Port: port, MaxStore: maxStore})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
}

func freeTCPPort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
