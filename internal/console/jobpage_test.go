package console_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/kycpipe/kycpipe/pkg/messages"
	"github.com/kycpipe/kycpipe/pkg/pipeline"
	"github.com/kycpipe/kycpipe/pkg/pipeline/pipelinetest"
)

// TestJobPageRequestFromTheQueue: a job's page finds the job's request in
// the jobs queue by the sequence its record holds (a job published on the
// shared submission subject), and only if the message there is the job's.
func TestJobPageRequestFromTheQueue(t *testing.T) {
	t.Parallel()
	f := startFixture(t, fixtureOpts{}) // no worker: queued messages stay
	ctx := t.Context()
	publish := func(jobID, email string) uint64 {
		t.Helper()
		b := []byte(`{"jobId":"` + jobID + `","customerInternalReference":"order-` + jobID + `","workflowDefinition":{"key":10066},` +
			`"channel":"API","preparedData":{"email":"` + email + `"}}`)
		ack, err := f.stack.JS.PublishMsg(ctx, &nats.Msg{Subject: f.subj.JobsSubmit(), Data: b, Header: nats.Header{messages.HeaderMsgID: {jobID}}})
		if err != nil {
			t.Fatal(err)
		}
		return ack.Sequence
	}
	own := publish("queued-job-1", piiMarker+"@example.com")
	other := publish("queued-job-2", "other@example.com")
	// queued-job-3's recorded sequence holds another job's message.
	for id, seq := range map[string]uint64{"queued-job-1": own, "queued-job-3": other} {
		f.createRecord(t, &pipeline.JobRecord{JobID: id, Status: pipeline.StatusAccepted, Region: "amer-1", Channel: messages.ChannelAPI,
			CustomerInternalReference: "order-" + id, CreatedAt: time.Now().UTC(), JobSeq: seq})
	}
	ops := f.browser(t)
	ops.signIn(opsKey)
	for _, c := range []struct{ id, where string }{
		{"queued-job-1", "from the job&#39;s message in the queue"},
		{"queued-job-3", "not held: the job&#39;s message leaves the queue"},
	} {
		p := ops.get("/console/jobs/" + c.id)
		if p.status != http.StatusOK {
			t.Fatalf("%s: %d", c.id, p.status)
		}
		contains(t, p, c.where)
		lacks(t, p, piiMarker) // masked
	}
	revealed := ops.action("/console/jobs/queued-job-1", "/console/jobs/queued-job-1/reveal", nil)
	contains(t, revealed, piiMarker)
	lacks(t, ops.action("/console/jobs/queued-job-3", "/console/jobs/queued-job-3/reveal", nil), "other@example.com")
}

// TestJobPageWithALaggingReplica: while the replica answering direct gets
// of the job-state bucket has not seen a job (accepted a moment before, or
// a replica cut off from its peers), the job's page and a search by its ID
// still find it: "unknown" is confirmed by the bucket stream's leader. A
// job the leader does not know either is still 404.
func TestJobPageWithALaggingReplica(t *testing.T) {
	t.Parallel()
	f := startFixture(t, fixtureOpts{})
	replica := freezeBucket(t, f.stack.JS, f.subj.BucketJobs()) // before the job exists
	id := f.submit(t, emailJob("order-lagging-1", "cust-lagging-1", "lagging@example.com"))
	replica.serve(t)
	defer replica.stop(t)
	// The replica answering direct gets does not know the job.
	m, err := f.stack.JS.Conn().Request("$JS.API.DIRECT.GET.KV_"+f.subj.BucketJobs()+".$KV."+f.subj.BucketJobs()+".job."+id, nil, testTimeout)
	if err != nil {
		t.Fatal(err)
	}
	if st := m.Header.Get("Status"); st != "404" {
		t.Fatalf("direct get of the record from the lagging replica: status %q, want 404", st)
	}

	b := f.browser(t)
	b.signIn(viewerKey)
	p := b.get("/console/jobs/" + id)
	if p.status != http.StatusOK {
		t.Fatalf("job page with a lagging replica: %d", p.status)
	}
	contains(t, p, id, ">ACCEPTED<")
	if s := b.get("/console/jobs?q=" + id); !strings.Contains(s.body, `href="/console/jobs/`+id+`"`) {
		t.Errorf("search by job ID with a lagging replica: not found")
	}
	if p := b.get("/console/jobs/job_00000000000000000000000000"); p.status != http.StatusNotFound {
		t.Errorf("unknown job: %d", p.status)
	}
}

// frozenBucket stands in for a replica of a key-value bucket that stopped
// replicating: a sealed mirror of the bucket's stream, frozen as it was
// when made. While it serves, it alone answers direct gets; the bucket's
// own stream answers only requests to its leader ($JS.API.STREAM.MSG.GET).
// (pkg/pipeline's stale_test.go has the same stand-in.)
type frozenBucket struct {
	js     jetstream.JetStream
	origin string
	mirror jetstream.StreamConfig
}

func freezeBucket(t *testing.T, js jetstream.JetStream, bucket string) *frozenBucket {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	fb := &frozenBucket{js: js, origin: "KV_" + bucket}
	origin, err := js.Stream(ctx, fb.origin)
	if err != nil {
		t.Fatal(err)
	}
	last := origin.CachedInfo().State.LastSeq
	// nats-server makes a mirror answer direct gets whenever its origin
	// allows them: the origin's are off while the mirror is made.
	fb.originDirect(t, false)
	fb.mirror = jetstream.StreamConfig{Name: "FROZEN_" + bucket, Mirror: &jetstream.StreamSource{Name: fb.origin},
		MaxBytes: 64 << 20, Storage: jetstream.FileStorage}
	m, err := js.CreateStream(ctx, fb.mirror)
	if err != nil {
		t.Fatal(err)
	}
	pipelinetest.Eventually(t, testTimeout, func() bool {
		info, err := m.Info(ctx)
		return err == nil && info.State.LastSeq >= last
	}, "the mirror never caught up with the bucket")
	fb.mirror.Sealed = true
	sealed, err := js.UpdateStream(ctx, fb.mirror)
	if err != nil {
		t.Fatalf("seal the mirror: %v", err)
	}
	fb.mirror = sealed.CachedInfo().Config
	fb.originDirect(t, true)
	t.Cleanup(func() { _ = js.DeleteStream(context.Background(), fb.mirror.Name) })
	return fb
}

// serve makes the frozen copy answer every direct get of the bucket.
func (fb *frozenBucket) serve(t *testing.T) {
	t.Helper()
	fb.mirror.MirrorDirect = true
	fb.updateMirror(t)
	fb.originDirect(t, false)
}

// stop lets the bucket's stream answer direct gets again.
func (fb *frozenBucket) stop(t *testing.T) {
	t.Helper()
	fb.mirror.MirrorDirect = false
	fb.updateMirror(t)
	fb.originDirect(t, true)
}

func (fb *frozenBucket) updateMirror(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	if _, err := fb.js.UpdateStream(ctx, fb.mirror); err != nil {
		t.Fatalf("mirror: %v", err)
	}
}

func (fb *frozenBucket) originDirect(t *testing.T, on bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	st, err := fb.js.Stream(ctx, fb.origin)
	if err != nil {
		t.Fatal(err)
	}
	cfg := st.CachedInfo().Config
	cfg.AllowDirect = on
	if _, err := fb.js.UpdateStream(ctx, cfg); err != nil {
		t.Fatalf("bucket stream: %v", err)
	}
}

// TestJobPageDrawsRecordedEventsFromTheRecord: the accepted, launched and
// finalized events whose time the record holds are shown without reading
// them (one cold block read fewer per page); events recorded without a
// time, failed events and decisions are read.
func TestJobPageDrawsRecordedEventsFromTheRecord(t *testing.T) {
	t.Parallel()
	f := startFixture(t, fixtureOpts{})
	ctx := t.Context()
	events, err := f.stack.JS.Stream(ctx, f.subj.StreamEvents())
	if err != nil {
		t.Fatal(err)
	}
	info, err := events.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 12, 7, 9, 30, 0, 0, time.UTC)
	// Sequences past the stream's last: nothing is stored there, so a
	// read would say "no longer stored".
	next := info.State.LastSeq + 100
	f.createRecord(t, &pipeline.JobRecord{JobID: "recorded-events-1", Status: pipeline.StatusFinalized, Region: "amer-1",
		Channel: messages.ChannelWeb, CreatedAt: at, Messages: []pipeline.MessageRef{
			{Stream: f.subj.StreamEvents(), Seq: next, Kind: "event:accepted", At: at.Add(time.Second)},
			{Stream: f.subj.StreamEvents(), Seq: next + 1, Kind: "event:finalized", At: at.Add(2 * time.Second)},
			{Stream: f.subj.StreamEvents(), Seq: next + 2, Kind: "event:launched"}, // no time: read
		}})
	ops := f.browser(t)
	ops.signIn(opsKey)
	p := ops.get("/console/jobs/recorded-events-1")
	if p.status != http.StatusOK {
		t.Fatalf("job page: %d", p.status)
	}
	contains(t, p, "event accepted")
	contains(t, p, "event finalized")
	contains(t, p, "web link handed over")
	lacks(t, p, fmt.Sprintf("#%d (event:accepted) is no longer stored", next))
	lacks(t, p, fmt.Sprintf("#%d (event:finalized) is no longer stored", next+1))
	contains(t, p, fmt.Sprintf("#%d (event:launched) is no longer stored", next+2))
}

// TestJobPageDrawsTheDecisionFromTheRecord: a decision whose detail the
// record holds (capabilities, alerts, whether the event holds extracted
// data) is shown without reading the event (one read per page: the
// record); revealing the extracted data reads it.
func TestJobPageDrawsTheDecisionFromTheRecord(t *testing.T) {
	t.Parallel()
	f := startFixture(t, fixtureOpts{})
	ctx := t.Context()
	decisions, err := f.stack.JS.Stream(ctx, f.subj.StreamDecisions())
	if err != nil {
		t.Fatal(err)
	}
	info, err := decisions.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 12, 7, 9, 30, 0, 0, time.UTC)
	seq := info.State.LastSeq + 100 // nothing stored there: a read says "no longer stored"
	f.createRecord(t, &pipeline.JobRecord{JobID: "recorded-decision-1", Status: pipeline.StatusDecided, Region: "amer-1",
		Channel: messages.ChannelAPI, CreatedAt: at, LastStatus: "PROCESSED", DecidedAt: at.Add(time.Minute),
		Decision: &messages.DecisionSummary{Type: messages.DecisionPassed, Label: "OK"},
		DecisionDetail: &pipeline.DecisionDetail{Extraction: true,
			Capabilities: map[string][]messages.CapabilitySummary{
				"similarity":         {{Decision: "PASSED", Label: "MATCH", Data: &messages.CapabilityData{Similarity: "MATCH"}}},
				"watchlistScreening": {{Decision: "WARNING", Label: "ALERT"}},
			},
			Alerts: []messages.Alert{{Capability: "watchlistScreening", Decision: "WARNING", Label: "ALERT"}}},
		Messages: []pipeline.MessageRef{{Stream: f.subj.StreamDecisions(), Seq: seq, Kind: "decision", At: at.Add(time.Minute)}}})
	ops := f.browser(t)
	ops.signIn(opsKey)
	p := ops.get("/console/jobs/recorded-decision-1")
	if p.status != http.StatusOK {
		t.Fatalf("job page: %d", p.status)
	}
	contains(t, p, "decision published", "PASSED (OK), Jumio status PROCESSED", "similarity", "MATCH", "watchlistScreening",
		"watchlistScreening: WARNING ALERT", `data-field="extraction"`)
	lacks(t, p, fmt.Sprintf("#%d (decision) is no longer stored", seq), "no decision event held")

	revealed := ops.action("/console/jobs/recorded-decision-1", "/console/jobs/recorded-decision-1/reveal", url.Values{"field": {"extraction"}})
	contains(t, revealed, fmt.Sprintf("#%d (decision) is no longer stored", seq), "no decision event held")
}
