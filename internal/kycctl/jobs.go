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
	pipeline.StatusFinalized, pipeline.StatusDecided, pipeline.StatusFailed, StateAwaitingCallback}

// eventScanSlack widens the scan for a job's events around its record's
// times: the record's clock and the NATS server's may differ a little.
const eventScanSlack = time.Minute

func statusCommand() command {
	return command{
		name: "status", synopsis: "JOB_ID [--scan-limit N]",
		summary: "one job: its state, timeline, lifecycle events and decision",
		help: `Reads the job's record (state, region, channel, Jumio account and execution, attempts, rate-limit
waits, polls (scheduled polls that found the execution unfinished: a callback that brings the
decision, or the poll that finds it done, is not counted), last Jumio status, decision, last error,
timeline), then its lifecycle events and decision from the events and decisions streams, from the
job's creation on (messages carrying its Kyc-Job-Id header). The scan reads at most --scan-limit messages per stream.

Web links and SDK tokens are bearer credentials of the end user: they are shown as "present".`,
		flags: func(o *opts, s *config.Set) {
			s.Int(&o.scanLimit, "scan-limit", "", 10000, "read at most this many messages of each stream when looking for the job's events")
		},
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
	EventsFrom                time.Time                 `json:"eventsFrom"`
	EventsScan                map[string]scanResult     `json:"eventsScan"`
	Warnings                  []string                  `json:"warnings,omitempty"`
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
	rec, _, err := store.Get(ctx, id)
	if errors.Is(err, pipeline.ErrJobNotFound) {
		return fmt.Errorf("job %s not found (unknown, or its record expired)", id)
	}
	if err != nil {
		return err
	}
	v := newStatusView(rec)

	// Events and decisions of the job, from its creation on; a finished
	// job's end bounds the scan too.
	v.EventsFrom = rec.CreatedAt.Add(-eventScanSlack)
	var until time.Time
	if rec.Terminal() && !rec.UpdatedAt.IsZero() {
		until = rec.UpdatedAt.Add(5 * eventScanSlack)
	}
	v.EventsScan = map[string]scanResult{}
	v.Events = []eventLine{}
	for _, src := range []struct{ stream, filter string }{
		{e.subj.StreamEvents(), e.subj.Events()},
		{e.subj.StreamDecisions(), e.subj.Decisions()},
	} {
		res, err := scanStream(ctx, e.js, src.stream, []string{src.filter}, v.EventsFrom, until, e.o.scanLimit,
			func(m jetstream.Msg, md *jetstream.MsgMetadata) {
				if m.Headers().Get(messages.HeaderJobID) != id {
					return
				}
				v.Events = append(v.Events, newEventLine(e.subj, src.stream, m.Subject(), md.Sequence.Stream, md.Timestamp, m.Headers(), m.Data()))
			})
		v.EventsScan[src.stream] = res
		if err != nil {
			if ctx.Err() != nil {
				return err
			}
			v.Warnings = append(v.Warnings, fmt.Sprintf("cannot read %s: %v", src.stream, err))
		} else if res.Truncated {
			v.Warnings = append(v.Warnings, fmt.Sprintf("%s: stopped after %d messages (--scan-limit); events may be missing", src.stream, res.Scanned))
		}
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
	fmt.Fprintf(w, "EVENTS (%s)\n", strings.Join(slices.Sorted(maps.Keys(v.EventsScan)), ", "))
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
		help: `States: ACCEPTED, ACCOUNT_CREATED, LAUNCHED, FINALIZED, DECIDED, FAILED, and AWAITING_CALLBACK
(LAUNCHED or FINALIZED: waiting for Jumio); several separated by commas. --older-than keeps the
jobs whose record has not changed for that long. Oldest change first.

Columns: JOB, STATUS, UPDATED (last change of the record, what --older-than filters on), AGE
(since the job was created), REGION, CHANNEL, ACCOUNT, EXECUTION, ERROR (last error code).
Reads every job record of the bucket.`,
		flags: func(o *opts, s *config.Set) {
			s.String(&o.state, "state", "", "", "only jobs in this state (comma-separated; AWAITING_CALLBACK = LAUNCHED or FINALIZED)")
			s.Duration(&o.olderThan, "older-than", "", 0, "only jobs whose record has not changed for this long (e.g. 15m)")
			s.Int(&o.limit, "limit", "", 0, "at most this many (the oldest changes)")
		},
		run: jobs,
	}
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
	store, err := e.jobStore(ctx)
	if err != nil {
		return err
	}
	now := time.Now()
	rows := []jobRow{}
	err = store.List(ctx, func(r *pipeline.JobRecord) bool {
		if states != nil && !states[r.Status] {
			return true
		}
		changed := lastChange(r)
		if e.o.olderThan > 0 && now.Sub(changed) < e.o.olderThan {
			return true
		}
		row := jobRow{JobID: r.JobID, Status: r.Status, CreatedAt: r.CreatedAt, UpdatedAt: changed,
			AgeSeconds: int64(now.Sub(r.CreatedAt) / time.Second), IdleSeconds: int64(now.Sub(changed) / time.Second),
			Region: r.Region, Channel: r.Channel, AccountID: r.AccountID, WorkflowExecutionID: r.WorkflowExecutionID,
			LastError: r.LastError}
		if r.LastError != nil {
			row.LastErrorCode = r.LastError.Code
		}
		rows = append(rows, row)
		return true
	})
	if err != nil {
		return err
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
