package kycctl

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/kycpipe/kycpipe/internal/config"
	"github.com/kycpipe/kycpipe/pkg/messages"
	"github.com/kycpipe/kycpipe/pkg/pipeline"
)

// StateAwaitingCallback selects the jobs waiting for Jumio: LAUNCHED (the
// end user has the web link or SDK token) or FINALIZED (Jumio processes).
const StateAwaitingCallback = "AWAITING_CALLBACK"

var jobStates = []string{pipeline.StatusAccepted, pipeline.StatusAccountCreated, pipeline.StatusLaunched,
	pipeline.StatusFinalized, pipeline.StatusDecided, pipeline.StatusFailed, pipeline.StatusErasing, StateAwaitingCallback}

func statusCommand() command {
	return command{
		name: "status", synopsis: "JOB_ID",
		summary: "one job: its state, timeline, lifecycle events and decision",
		help: `Reads the job's record (state, region, channel, Jumio account and execution, attempts, rate-limit
waits, polls (scheduled polls that found the execution unfinished: a callback that brings the
decision, or the poll that finds it done, is not counted), last Jumio status, decision, last error,
timeline), then every message the record lists (its lifecycle events, its decision and its dead
letters), each by its stream sequence: no stream is scanned, however large. A message the record
lists but the stream no longer holds (past the stream's retention, a replayed dead letter) is
reported as gone. A job accepted but not yet picked up by a worker has no record yet: it is shown
from its message in the jobs queue (ACCEPTED, its submission in the timeline).

Web links and SDK tokens are bearer credentials of the end user: they are shown as "present".
Dead letters show their stage, reason and error, not their payload (see kycctl dlq show).`,
		run: status,
	}
}

// statusView is what status shows: the public view of the job
// (pipeline.NewJobView) plus the record's operational details. It holds
// no applicant data and no bearer credentials.
type statusView struct {
	JobID                     string                    `json:"jobId"`
	Status                    string                    `json:"status"`
	CustomerInternalReference string                    `json:"customerInternalReference,omitempty"`
	Region                    string                    `json:"region"`
	Channel                   string                    `json:"channel"`
	AccountID                 string                    `json:"accountId,omitempty"`
	WorkflowExecutionID       string                    `json:"workflowExecutionId,omitempty"`
	CreatedAt                 time.Time                 `json:"createdAt"`
	UpdatedAt                 time.Time                 `json:"updatedAt,omitzero"`
	WebLink                   string                    `json:"webLink,omitempty"`  // "present"
	SDKToken                  string                    `json:"sdkToken,omitempty"` // "present"
	Uploaded                  []string                  `json:"uploaded,omitempty"`
	Finalized                 bool                      `json:"finalized"`
	Announced                 bool                      `json:"announced"`
	Attempts                  int                       `json:"attempts"`
	Throttled                 int                       `json:"throttled"`
	Polls                     int                       `json:"polls"` // scheduled polls that found the execution unfinished (not callbacks, not the deciding poll)
	PollDeadline              time.Time                 `json:"pollDeadline,omitzero"`
	LastJumioStatus           string                    `json:"lastJumioStatus,omitempty"`
	AmbiguousCreates          int                       `json:"ambiguousCreates,omitempty"`
	Decision                  *messages.DecisionSummary `json:"decision,omitempty"`
	DecidedAt                 time.Time                 `json:"decidedAt,omitzero"`
	Error                     *pipeline.JobViewError    `json:"error,omitempty"`     // why a FAILED job failed
	LastError                 *messages.ErrorInfo       `json:"lastError,omitempty"` // the last error seen (a running job may be retrying)
	Timeline                  []pipeline.TimelineEntry  `json:"timeline"`
	Events                    []eventLine               `json:"events"`
	// Messages are the messages the record lists, and whether each is
	// still stored.
	Messages []messageRead `json:"messages"`
	Warnings []string      `json:"warnings,omitempty"`
}

// messageRead is one message a job record lists, as status read it.
type messageRead struct {
	Stream string `json:"stream"`
	Seq    uint64 `json:"seq"`
	Kind   string `json:"kind"`
	Gone   bool   `json:"gone,omitempty"` // the stream no longer holds it
}

func status(ctx context.Context, e *env) error {
	if len(e.o.positional) != 1 {
		return errors.New("usage: kycctl status JOB_ID")
	}
	id := e.o.positional[0]
	if !messages.ValidJobID(id) {
		return fmt.Errorf("%q is not a job ID (1-64 letters, digits, '-' or '_')", id)
	}
	if err := e.connect(); err != nil {
		return err
	}
	store, err := e.jobStore(ctx)
	if err != nil {
		return err
	}
	// A job accepted but not yet picked up by a worker has no record yet:
	// its pending message stands for it (ACCEPTED).
	rec, err := pipeline.LookupJob(ctx, e.js, store, e.subj, id)
	if errors.Is(err, pipeline.ErrJobNotFound) {
		return fmt.Errorf("job %s not found (unknown, or its record expired)", id)
	}
	if err != nil {
		return err
	}
	v := newStatusView(rec)
	v.Events, v.Messages = []eventLine{}, []messageRead{}
	streams := map[string]jetstream.Stream{}
	for _, ref := range rec.Messages {
		read := messageRead{Stream: ref.Stream, Seq: ref.Seq, Kind: ref.Kind}
		st, ok := streams[ref.Stream]
		if !ok {
			if st, err = e.js.Stream(ctx, ref.Stream); err != nil {
				if ctx.Err() != nil {
					return err
				}
				v.Warnings = append(v.Warnings, fmt.Sprintf("cannot read %s: %v", ref.Stream, err))
				continue
			}
			streams[ref.Stream] = st
		}
		m, err := st.GetMsg(ctx, ref.Seq)
		switch {
		case errors.Is(err, jetstream.ErrMsgNotFound):
			read.Gone = true
			v.Warnings = append(v.Warnings, fmt.Sprintf("%s#%d (%s) is no longer stored (past the stream's retention, replayed or deleted)", ref.Stream, ref.Seq, ref.Kind))
		case err != nil:
			if ctx.Err() != nil {
				return err
			}
			v.Warnings = append(v.Warnings, fmt.Sprintf("cannot read %s#%d: %v", ref.Stream, ref.Seq, err))
		default:
			v.Events = append(v.Events, newEventLine(e.subj, ref.Stream, m.Subject, m.Sequence, m.Time, m.Header, m.Data))
		}
		v.Messages = append(v.Messages, read)
	}
	sort.SliceStable(v.Events, func(i, j int) bool { return v.Events[i].Time.Before(v.Events[j].Time) })
	for _, w := range v.Warnings {
		fmt.Fprintln(e.errOut, "warning:", w)
	}
	return e.emit(v, func(w *tabwriter.Writer) { v.table(w) })
}

func newStatusView(rec *pipeline.JobRecord) statusView {
	jv := pipeline.NewJobView(rec)
	v := statusView{
		JobID: jv.JobID, Status: jv.Status, CustomerInternalReference: rec.CustomerInternalReference,
		Region: rec.Region, Channel: rec.Channel, AccountID: jv.AccountID, WorkflowExecutionID: jv.WorkflowExecutionID,
		CreatedAt: jv.CreatedAt, UpdatedAt: jv.UpdatedAt, Uploaded: rec.Uploaded, Finalized: rec.Finalized,
		Announced: rec.Announced, Attempts: rec.Attempts, Throttled: rec.Throttled, Polls: rec.Polls,
		PollDeadline: rec.PollDeadline, LastJumioStatus: rec.LastStatus, AmbiguousCreates: rec.AmbiguousCreates,
		Decision: jv.Decision, DecidedAt: rec.DecidedAt, Error: jv.Error, LastError: rec.LastError,
		Timeline: rec.Timeline,
	}
	// The link and the token are the end user's bearer credentials.
	if jv.Web != nil {
		v.WebLink = "present"
	}
	if jv.SDK != nil {
		v.SDKToken = "present"
	}
	if v.Timeline == nil {
		v.Timeline = []pipeline.TimelineEntry{}
	}
	return v
}

func (v statusView) table(w *tabwriter.Writer) {
	now := time.Now()
	kv := func(k, val string) { fmt.Fprintf(w, "%s\t%s\n", k, val) }
	kv("job", v.JobID)
	kv("status", v.Status)
	kv("reference", orDash(v.CustomerInternalReference))
	kv("region", v.Region)
	kv("channel", v.Channel)
	kv("created", fmt.Sprintf("%s (%s ago)", ts(v.CreatedAt), human(now.Sub(v.CreatedAt))))
	switch {
	case v.UpdatedAt.IsZero():
		kv("updated", "- (not picked up by a worker yet)")
	case v.Status == pipeline.StatusAccepted && !v.UpdatedAt.After(v.CreatedAt):
		kv("updated", fmt.Sprintf("%s (%s ago; no worker progress yet)", ts(v.UpdatedAt), human(now.Sub(v.UpdatedAt))))
	default:
		kv("updated", fmt.Sprintf("%s (%s ago)", ts(v.UpdatedAt), human(now.Sub(v.UpdatedAt))))
	}
	kv("account", orDash(v.AccountID))
	kv("execution", orDash(v.WorkflowExecutionID))
	if v.Channel == messages.ChannelWeb {
		kv("web link", orDash(v.WebLink))
	}
	if v.Channel == messages.ChannelSDK {
		kv("sdk token", orDash(v.SDKToken))
	}
	if len(v.Uploaded) > 0 {
		kv("uploaded", strings.Join(v.Uploaded, ", "))
	}
	kv("attempts", fmt.Sprintf("%d (retryable failures; the retry budget)", v.Attempts))
	kv("throttled", fmt.Sprintf("%d (rate-limit waits)", v.Throttled))
	kv("polls", fmt.Sprintf("%d (scheduled polls that found the execution unfinished)", v.Polls))
	if !v.PollDeadline.IsZero() {
		kv("poll deadline", ts(v.PollDeadline))
	}
	kv("last Jumio status", orDash(v.LastJumioStatus))
	if v.AmbiguousCreates > 0 {
		kv("ambiguous creates", fmt.Sprintf("%d (a redelivery may have left an orphan Jumio account)", v.AmbiguousCreates))
	}
	if d := v.Decision; d != nil {
		s := d.Type
		if d.Label != "" {
			s += " label=" + d.Label
		}
		if d.RiskScore != nil {
			s += fmt.Sprintf(" risk=%g", *d.RiskScore)
		}
		if !v.DecidedAt.IsZero() {
			s += " at " + ts(v.DecidedAt)
		}
		kv("decision", s)
	} else {
		kv("decision", "-")
	}
	if le := v.LastError; le != nil {
		s := le.Code + ": " + le.Message
		if le.Status != 0 {
			s += fmt.Sprintf(" (HTTP %d)", le.Status)
		}
		kv("last error", s)
	} else {
		kv("last error", "-")
	}

	fmt.Fprintln(w)
	fmt.Fprintln(w, "TIMELINE")
	fmt.Fprintln(w, "AT\tSTATUS\tNOTE")
	for _, t := range v.Timeline {
		fmt.Fprintf(w, "%s\t%s\t%s\n", tsMilli(t.At), t.Status, orDash(t.Note))
	}

	fmt.Fprintln(w)
	fmt.Fprintf(w, "EVENTS (the %d message(s) the record lists)\n", len(v.Messages))
	fmt.Fprintln(w, "TIME\tSTREAM#SEQ\tKIND\tDETAIL")
	for _, l := range v.Events {
		fmt.Fprintf(w, "%s\t%s#%d\t%s\t%s\n", tsMilli(l.Time), l.Stream, l.Sequence, l.Kind, l.detail())
	}
	if len(v.Events) == 0 {
		fmt.Fprintln(w, "(none found)")
	}
}

func jobsCommand() command {
	return command{
		name: "jobs", synopsis: "[--state FAILED|ACCEPTED|…|AWAITING_CALLBACK] [--older-than 15m] [--limit N]",
		summary: "list jobs by state; with --older-than, the ones that have not moved (stuck)",
		help: `States: ACCEPTED, ACCOUNT_CREATED, LAUNCHED, FINALIZED, DECIDED, FAILED, ERASING, and
AWAITING_CALLBACK (LAUNCHED or FINALIZED: waiting for Jumio); several separated by commas.
--older-than keeps the jobs whose record has not changed for that long. Oldest change first.

Columns: JOB, STATUS, UPDATED (last change of the record, what --older-than filters on), AGE
(since the job was created), REGION, CHANNEL, ACCOUNT, EXECUTION, ERROR (last error code).
Reads the job index (KYC_INDEX) in the order jobs last changed state, and the records of the jobs
it lists: with --older-than it stops at the first job that moved since, and with --limit at the
limit, so a listing costs the jobs it shows, not the number of jobs stored. ACCEPTED also lists the
jobs accepted but not yet picked up by a worker (they have no record yet), read from their messages
in the jobs queue (KYC_JOBS) in the order they were submitted: a queue that no worker drains shows
here.`,
		flags: func(o *opts, s *config.Set) {
			s.String(&o.state, "state", "", "", "only jobs in this state (comma-separated; AWAITING_CALLBACK = LAUNCHED or FINALIZED)")
			s.Duration(&o.olderThan, "older-than", "", 0, "only jobs whose record has not changed for this long (e.g. 15m)")
			s.Int(&o.limit, "limit", "", 0, "at most this many (the oldest changes)")
		},
		run: jobs,
	}
}

// pendingJobs returns the jobs accepted but not yet picked up by a worker
// (pipeline.PendingJobs), oldest first, that q's cut (ChangedBefore: their
// submission) and limit keep.
func pendingJobs(ctx context.Context, e *env, store *pipeline.JobStore, q pipeline.JobQuery) ([]*pipeline.JobRecord, error) {
	var out []*pipeline.JobRecord
	err := pipeline.PendingJobs(ctx, e.js, store, e.subj, func(r *pipeline.JobRecord) bool {
		if !q.ChangedBefore.IsZero() && !lastChange(r).Before(q.ChangedBefore) {
			return false // oldest first: the rest are newer still
		}
		out = append(out, r)
		return q.Limit == 0 || len(out) < q.Limit
	})
	return out, err
}

// lastChange is when a record last changed: a record no worker has
// touched yet has no UpdatedAt (pipeline.Submitter sets only CreatedAt).
func lastChange(r *pipeline.JobRecord) time.Time {
	if r.UpdatedAt.IsZero() {
		return r.CreatedAt
	}
	return r.UpdatedAt
}

type jobRow struct {
	JobID               string              `json:"jobId"`
	Status              string              `json:"status"`
	CreatedAt           time.Time           `json:"createdAt"`
	UpdatedAt           time.Time           `json:"updatedAt"` // the last change (createdAt for a record never updated)
	AgeSeconds          int64               `json:"ageSeconds"`
	IdleSeconds         int64               `json:"idleSeconds"`
	Region              string              `json:"region"`
	Channel             string              `json:"channel"`
	AccountID           string              `json:"accountId,omitempty"`
	WorkflowExecutionID string              `json:"workflowExecutionId,omitempty"`
	LastErrorCode       string              `json:"lastErrorCode,omitempty"`
	LastError           *messages.ErrorInfo `json:"lastError,omitempty"`
}

// parseStates expands --state into the record statuses it selects (nil:
// every status).
func parseStates(s string) (map[string]bool, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	out := map[string]bool{}
	for _, st := range splitList(s) {
		st = strings.ToUpper(st)
		if !slices.Contains(jobStates, st) {
			return nil, fmt.Errorf("unknown --state %q: want one of %s", st, strings.Join(jobStates, ", "))
		}
		if st == StateAwaitingCallback {
			out[pipeline.StatusLaunched], out[pipeline.StatusFinalized] = true, true
			continue
		}
		out[st] = true
	}
	return out, nil
}

func jobs(ctx context.Context, e *env) error {
	states, err := parseStates(e.o.state)
	if err != nil {
		return err
	}
	if e.o.olderThan < 0 || e.o.limit < 0 {
		return errors.New("--older-than and --limit must not be negative")
	}
	if err := e.connect(); err != nil {
		return err
	}
	idx, err := pipeline.NewJobIndex(ctx, e.js, e.topo)
	if err != nil {
		return err
	}
	now := time.Now()
	q := pipeline.JobQuery{Limit: e.o.limit}
	if e.o.olderThan > 0 {
		q.ChangedBefore = now.Add(-e.o.olderThan)
	}
	var recs []*pipeline.JobRecord
	if states == nil {
		if recs, err = idx.Oldest(ctx, q); err != nil {
			return err
		}
	}
	for _, st := range slices.Sorted(maps.Keys(states)) {
		q.Status = st
		found, err := idx.Oldest(ctx, q)
		if err != nil {
			return err
		}
		recs = append(recs, found...)
	}
	if states == nil || states[pipeline.StatusAccepted] {
		// A job no worker has picked up yet has no record, so the index
		// does not list it: its message in the jobs queue stands for it.
		pending, err := pendingJobs(ctx, e, idx.Store(), q)
		if err != nil {
			return err
		}
		recs = append(recs, pending...)
	}
	rows := []jobRow{}
	for _, r := range recs {
		changed := lastChange(r)
		row := jobRow{JobID: r.JobID, Status: r.Status, CreatedAt: r.CreatedAt, UpdatedAt: changed,
			AgeSeconds: int64(now.Sub(r.CreatedAt) / time.Second), IdleSeconds: int64(now.Sub(changed) / time.Second),
			Region: r.Region, Channel: r.Channel, AccountID: r.AccountID, WorkflowExecutionID: r.WorkflowExecutionID,
			LastError: r.LastError}
		if r.LastError != nil {
			row.LastErrorCode = r.LastError.Code
		}
		rows = append(rows, row)
	}
	sort.SliceStable(rows, func(i, j int) bool {
		if !rows[i].UpdatedAt.Equal(rows[j].UpdatedAt) {
			return rows[i].UpdatedAt.Before(rows[j].UpdatedAt)
		}
		return rows[i].JobID < rows[j].JobID
	})
	if e.o.limit > 0 && len(rows) > e.o.limit {
		rows = rows[:e.o.limit]
	}
	return e.emit(rows, func(w *tabwriter.Writer) {
		fmt.Fprintln(w, "JOB\tSTATUS\tUPDATED\tAGE\tREGION\tCHANNEL\tACCOUNT\tEXECUTION\tERROR")
		for _, r := range rows {
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.JobID, r.Status, ts(r.UpdatedAt), human(now.Sub(r.CreatedAt)),
				r.Region, r.Channel, orDash(r.AccountID), orDash(r.WorkflowExecutionID), orDash(r.LastErrorCode))
		}
		if len(rows) == 0 {
			fmt.Fprintln(w, "(no jobs)")
		}
	})
}
