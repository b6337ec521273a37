package soak

import (
	"encoding/base64"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kycpipe/kycpipe/examples/webhook-receiver/receiver"
	"github.com/kycpipe/kycpipe/pkg/jumio/jumiotest"
	"github.com/kycpipe/kycpipe/pkg/messages"
	"github.com/kycpipe/kycpipe/pkg/webhooks"
)

// evaluate turns an end state into the invariants: a lost job, a job both
// decided and dead-lettered, a second decision, an unflagged second
// account each fail theirs.
func TestEvaluate(t *testing.T) {
	accepted := map[string]string{"j1": "r1", "j2": "r2", "j3": "r3"}
	refs := map[string]string{"r1": "j1", "r2": "j2", "r3": "j3"}
	base := func() (*drainResult, jumiotest.Stats) {
		return &drainResult{
				decisionsByJob: map[string]int{"j1": 1, "j2": 1, "j3": 1}, decisionsByExec: map[string]int{"e1": 1, "e2": 1, "e3": 1},
				decisionsByType: map[string]int{"PASSED": 3}, deadByJob: map[string]int{},
			}, jumiotest.Stats{ExecutionsByReference: map[string]int{"r1": 1, "r2": 1, "r3": 1},
				FinalizesByExecution: map[string]int{"e1": 1, "e2": 1, "e3": 1}}
	}
	for _, tc := range []struct {
		name      string
		mutate    func(*drainResult, *jumiotest.Stats, map[string]bool)
		failing   []int // indexes of the invariants that must fail
		okFlagged bool  // OKExceptFlaggedDuplicates
	}{
		{"clean", func(*drainResult, *jumiotest.Stats, map[string]bool) {}, nil, true},
		{"lost", func(d *drainResult, _ *jumiotest.Stats, _ map[string]bool) { delete(d.decisionsByJob, "j2") }, []int{0}, false},
		{"both", func(d *drainResult, _ *jumiotest.Stats, _ map[string]bool) { d.deadByJob["j1"] = 1 }, []int{6}, false},
		{"second decision", func(d *drainResult, _ *jumiotest.Stats, _ map[string]bool) { d.decisionsByExec["e1"] = 2 }, []int{3}, false},
		{"flagged second account", func(_ *drainResult, s *jumiotest.Stats, amb map[string]bool) {
			s.ExecutionsByReference["r3"] = 2
			amb["j3"] = true
		}, []int{1}, true},
		{"silent second account", func(_ *drainResult, s *jumiotest.Stats, _ map[string]bool) { s.ExecutionsByReference["r3"] = 2 }, []int{1, 2}, false},
		{"second finalize", func(_ *drainResult, s *jumiotest.Stats, _ map[string]bool) { s.FinalizesByExecution["e2"] = 2 }, []int{4}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, st := base()
			amb := map[string]bool{}
			tc.mutate(d, &st, amb)
			r := &Report{}
			evaluate(r, accepted, refs, d, amb, st, nil)
			want := map[int]bool{}
			for _, i := range tc.failing {
				want[i] = true
			}
			for i, inv := range r.Invariants {
				if inv.OK == want[i] {
					t.Errorf("invariant %q: OK = %v (%s)", inv.Name, inv.OK, inv.Value)
				}
			}
			if r.OKExceptFlaggedDuplicates() != tc.okFlagged {
				t.Errorf("OKExceptFlaggedDuplicates = %v", !tc.okFlagged)
			}
			// The failure message names exactly what OKExceptFlaggedDuplicates
			// counts: every failing invariant but a flagged second account.
			var names []string
			for _, inv := range r.FailuresExceptFlaggedDuplicates() {
				names = append(names, inv.Name)
			}
			var wantNames []string
			for _, i := range tc.failing {
				if !(i == 1 && tc.okFlagged) {
					wantNames = append(wantNames, r.Invariants[i].Name)
				}
			}
			if !slices.Equal(names, wantNames) {
				t.Errorf("FailuresExceptFlaggedDuplicates = %q, want %q", names, wantNames)
			}
			more := r.FailuresAnd([]Invariant{{Name: "harness: failing"}, {Name: "harness: holding", OK: true}})
			if len(more) != len(wantNames)+1 || more[len(more)-1].Name != "harness: failing" {
				t.Errorf("FailuresAnd = %v, want the soak's failures and the harness's failing one", more)
			}
			if msg := FormatFailures(r.FailuresExceptFlaggedDuplicates()); len(wantNames) > 0 && !strings.Contains(msg, wantNames[0]) {
				t.Errorf("FormatFailures = %q, want it to name %q", msg, wantNames[0])
			}
		})
	}
}

// An erased job is neither decided nor lost; one whose decision is still in
// the stream is counted.
func TestEvaluateErased(t *testing.T) {
	accepted := map[string]string{"j1": "r1", "j2": "r2", "j3": "r3"}
	d := &drainResult{decisionsByJob: map[string]int{"j1": 1, "j3": 1}, decisionsByExec: map[string]int{"e1": 1, "e3": 1},
		decisionsByType: map[string]int{"PASSED": 2}, deadByJob: map[string]int{}}
	r := &Report{}
	evaluate(r, accepted, map[string]string{}, d, nil, jumiotest.Stats{}, map[string]string{"j2": "r2", "j3": "r3"})
	if r.Lost != 0 || r.Erased != 2 || r.ErasedButKept != 1 || r.Decided != 1 || !r.Invariants[0].OK {
		t.Errorf("lost %d, erased %d (kept %d), decided %d; %+v", r.Lost, r.Erased, r.ErasedButKept, r.Decided, r.Invariants[0])
	}
}

// The scan finds references anywhere and job IDs outside their designed
// places, and tells the designed places apart.
func TestScanTarget(t *testing.T) {
	subj := messages.MustSubjects("")
	job, other := "idem_0123456789abcdefghjkmnpqrs", "idem_zzzz456789abcdefghjkmnpqrs"
	eps := []WebhookEndpoint{{ID: "ep_1", Path: "/all"}}
	tg := newScanTarget(subj, map[string]string{job: "cn-000042-warn"}, eps)
	erasedHook := webhooks.MessageID(messages.EventMsgID(messages.KindErased, job), "ep_1")
	otherHook := webhooks.MessageID("wfe-1", "ep_1") // a decision's event ID
	tomb, _ := json.Marshal(map[string]any{"jobId": job, "status": "ERASED"})
	live, _ := json.Marshal(map[string]any{"jobId": job, "status": "DECIDED"})
	for _, tc := range []struct {
		name, stream, subject string
		hdr                   map[string][]string
		data                  string
		want                  string // "" no hit, "finding", or the allowed place
	}{
		{"another job", subj.StreamEvents(), subj.Event("decided"), nil, `{"jobId":"` + other + `","customerInternalReference":"cn-000042"}`, ""},
		{"reference in an email", subj.StreamDLQ(), subj.DLQ("worker"), nil, `{"preparedData":{"email":"em-cn-000042-warn@example.com"}}`, "finding"},
		{"user reference", subj.StreamDecisions(), subj.Decision("PASSED"), nil, `{"userReference":"ur-cn-000042-warn"}`, "finding"},
		{"job ID in a header", subj.StreamDLQ(), subj.DLQ("worker"), map[string][]string{messages.HeaderJobID: {job}}, `{}`, "finding"},
		{"tombstone", "KV_" + subj.BucketJobs(), "$KV." + subj.BucketJobs() + ".job." + job, nil, string(tomb), "tombstone"},
		{"a live record", "KV_" + subj.BucketJobs(), "$KV." + subj.BucketJobs() + ".job." + job, nil, string(live), "finding"},
		{"erased marker", "KV_" + subj.BucketJobs(), "$KV." + subj.BucketJobs() + ".erased.wfe-1", nil, job, "erased-execution marker"},
		{"Idempotency-Key binding", "KV_" + subj.BucketJobs(), "$KV." + subj.BucketJobs() + ".idem.idem_0123456789abcdefghjkmnpqrs", nil, job, "Idempotency-Key binding"},
		{"audit", subj.StreamAudit(), subj.Audit("erasure"), nil, `{"jobId":"` + job + `"}`, "audit record"},
		{"erased event", subj.StreamEvents(), subj.Event(messages.KindErased), nil, `{"jobId":"` + job + `"}`, "erased event"},
		{"erased event's delivery log", subj.StreamWebhookLog(), subj.WebhookLog("ep_1", job), nil, `{"webhookId":"` + erasedHook + `","jobId":"` + job + `"}`, "the erased event's webhook delivery or log"},
		{"a decision's delivery log", subj.StreamWebhookLog(), subj.WebhookLog("ep_1", job), nil, `{"webhookId":"` + otherHook + `","jobId":"` + job + `"}`, "finding"},
		{"object name", "OBJ_KYC_IMAGES", "$O.KYC_IMAGES.M." + base64.URLEncoding.EncodeToString([]byte(job+"/FRONT")), nil, `{}`, "finding"},
		{"reference in a tombstone", "KV_" + subj.BucketJobs(), "$KV." + subj.BucketJobs() + ".job." + job, nil, `{"status":"ERASED","customerInternalReference":"cn-000042-warn","jobId":"` + job + `"}`, "finding"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hits := tg.check(tc.stream, tc.subject, 7, tc.hdr, []byte(tc.data))
			got := ""
			for _, h := range hits {
				if h.Allowed == "" {
					got = "finding"
					break
				}
				got = h.Allowed
			}
			if got != tc.want {
				t.Errorf("hits %+v: got %q, want %q", hits, got, tc.want)
			}
		})
	}
}

// Calls after the 202 are sorted into "on the wire" and late; deletions
// and earlier calls are not findings.
func TestCallsAfterErasure(t *testing.T) {
	at := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	log := jumiotest.CallLog{Enabled: true, ByReference: map[string][]jumiotest.Call{
		"r1": {{At: at.Add(-time.Second), Route: jumiotest.RouteCreateAccount, Status: 200},
			{At: at.Add(300 * time.Millisecond), Route: jumiotest.RouteFinalize, Status: 200},
			{At: at.Add(5 * time.Second), Route: jumiotest.RouteDeleteAccount, Status: 200}},
		"r2": {{At: at.Add(3 * time.Second), Route: jumiotest.RouteStatus, Status: 200}},
	}}
	c := callsAfterErasure([]Erasure{{JobID: "j1", Ref: "r1", Accepted: at}, {JobID: "j2", Ref: "r2", Accepted: at}, {JobID: "j3", Ref: "r3"}}, log)
	if c.Checked != 2 || c.Deletions != 1 || len(c.InFlight) != 1 || len(c.Late) != 1 || !strings.HasPrefix(c.Late[0], "j2 status +3s") {
		t.Errorf("calls report %+v", c)
	}
}

// The journal against the streams: a missing delivery, an event delivered
// under two webhook-ids, a delivery nobody can explain, retries of one id.
func TestCompareWebhooks(t *testing.T) {
	eps := []WebhookEndpoint{{ID: "ep_a", Path: "/all", Types: []string{"*"}}, {ID: "ep_d", Path: "/decisions", Types: []string{"verification.decided"}}}
	events := []streamEvent{
		{ID: "ev1", Type: webhooks.EventDecided, JobID: "j1"},
		{ID: "ev2", Type: webhooks.EventAccepted, JobID: "j1"},
		{ID: "ev1", Type: webhooks.EventDecided, JobID: "j1"}, // republished: the same event
	}
	id := func(ev, ep string) string { return webhooks.MessageID(ev, ep) }
	entries := []receiver.JournalEntry{
		{Path: "/all", WebhookID: id("ev1", "ep_a"), EventSHA256: "h1", JobID: "j1", Outcome: receiver.OutcomeFailed},
		{Path: "/all", WebhookID: id("ev1", "ep_a"), EventSHA256: "h1", JobID: "j1", Outcome: receiver.OutcomeDelivered},
		{Path: "/all", WebhookID: id("ev1", "ep_a"), EventSHA256: "h1", JobID: "j1", Outcome: receiver.OutcomeDuplicate},
		{Path: "/decisions", WebhookID: id("ev1", "ep_d"), EventSHA256: "h1", JobID: "j1", Outcome: receiver.OutcomeDelivered},
	}
	r := compareWebhooks(eps, entries, events, nil, 0)
	if r.Expected != 3 || r.Delivered != 2 || len(r.Missing) != 1 || !strings.Contains(r.Missing[0], "verification.accepted") ||
		len(r.EventsWithSeveralIDs) != 0 || len(r.Unexplained) != 0 || r.Attempts[receiver.OutcomeFailed] != 1 {
		t.Fatalf("report %+v", r)
	}
	for _, inv := range webhookInvariants(r)[:1] {
		if inv.OK {
			t.Errorf("%s passes with a missing delivery", inv.Name)
		}
	}
	entries = append(entries,
		receiver.JournalEntry{Path: "/all", WebhookID: id("ev2", "ep_a"), EventSHA256: "h2", JobID: "j1", Outcome: receiver.OutcomeDelivered},
		receiver.JournalEntry{Path: "/all", WebhookID: "msg_other", EventSHA256: "h2", JobID: "j1", Outcome: receiver.OutcomeDelivered},
		receiver.JournalEntry{Path: "/all", WebhookID: "msg_gone", EventSHA256: "h9", JobID: "j9", Outcome: receiver.OutcomeDelivered})
	r = compareWebhooks(eps, entries, events, map[string]bool{"j9": true}, 1)
	if len(r.Missing) != 0 || len(r.EventsWithSeveralIDs) != 1 || len(r.Unexplained) != 1 || !strings.Contains(r.Unexplained[0], "msg_other") {
		t.Fatalf("report %+v", r)
	}
	for _, inv := range webhookInvariants(r) {
		if inv.OK != strings.HasPrefix(inv.Name, "every event") {
			t.Errorf("%s: OK = %v (%s)", inv.Name, inv.OK, inv.Value)
		}
	}
}
