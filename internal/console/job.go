package console

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/kycpipe/kycpipe/pkg/messages"
	"github.com/kycpipe/kycpipe/pkg/pipeline"
)

// A job's page: its IDs and state, the decision with each capability, the
// last error and what to do about it, the timeline of every step and event
// (the record's status changes, and every message the record lists, read
// by sequence: events, decision, dead letters), the replay and erase
// buttons, and the job's personal data, masked until an operator with the
// admin scope reveals it: each reveal appends an audit record
// (kyc.audit.reveal: the key's name, the job and the fields).

// Personal fields of a job, as revealed and audited.
const (
	fieldCustomerRef  = "customerInternalReference"
	fieldUserRef      = "userReference"
	fieldPreparedData = "preparedData"
	fieldExtraction   = "extraction"
)

var personalFields = []string{fieldCustomerRef, fieldUserRef, fieldPreparedData, fieldExtraction}

type personalField struct {
	Name, Label string
	Present     bool   // kycpipe holds a value
	Where       string // where it was found (or why it is not)
	Revealed    bool
	Value       string
	Block       bool // shown as a preformatted block
}

type jobData struct {
	ID, Status, Region, Channel, AccountID, ExecutionID string
	Created, Updated                                    time.Time
	Erasure                                             *pipeline.Erasure
	Personal                                            []personalField
	AnyPersonal                                         bool
	Revealed                                            bool
	Decision                                            *decisionView
	LastError                                           *errorView
	Timeline                                            []timelineRow
	Elapsed                                             time.Duration // creation to the last step
	DeadLetters                                         []jobLetter
	CanReplay                                           bool
	CanErase                                            bool
	Attempts, Throttled, Polls                          int
	LastJumioStatus                                     string
	Warnings                                            []string
}

type decisionView struct {
	Type, Label, Risk string
	DecidedAt         time.Time
	Capabilities      []capabilityRow
	Alerts            []string
}

type capabilityRow struct {
	Name, Decision, Label, Data string
}

type errorView struct {
	Code, Message string
	Status        int
	Advice        string
}

type timelineRow struct {
	At     time.Time
	Since  time.Duration // since the row before (0 for the first)
	Kind   string        // status, event, decision, dead letter
	Title  string
	Detail string
	Ref    string // stream#seq of a message
	Link   string // a dead letter's page
}

type jobLetter struct {
	Seq    uint64
	Stage  string
	Reason string
	Error  string
	Gone   bool
}

// jobMessages is what the messages a record lists hold.
type jobMessages struct {
	rows     []timelineRow
	decision *messages.DecisionEvent
	alerts   []string // the decision's alerts (DESIGN 3.2: capabilities worse than the overall decision)
	letters  []jobLetter
	request  *messages.VerificationRequest // from a dead letter of the job message
	warnings []string
}

// readJobMessages reads every message the record lists, by sequence,
// but those the record itself tells enough of (fromRecord). readDecision
// reads the decision event even so (its extracted data is revealed).
func (c *Console) readJobMessages(ctx context.Context, rec *pipeline.JobRecord, readDecision bool) jobMessages {
	var out jobMessages
	got := c.fetchJobMessages(ctx, rec, readDecision)
	for i, ref := range rec.Messages {
		if fromRecord(rec, ref, readDecision) {
			out.rows = append(out.rows, recordedRow(rec, ref))
			if ref.Kind == pipeline.MessageKindDecision {
				out.alerts = alertTexts(rec.DecisionDetail.Alerts)
			}
			continue
		}
		if got[i].streamErr != nil {
			out.warnings = append(out.warnings, fmt.Sprintf("cannot read %s: %s", ref.Stream, errText(got[i].streamErr)))
			continue
		}
		m, err := got[i].msg, got[i].err
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			if ref.Kind == pipeline.MessageKindDeadLetter {
				out.letters = append(out.letters, jobLetter{Seq: ref.Seq, Gone: true})
			}
			out.warnings = append(out.warnings, fmt.Sprintf("%s#%d (%s) is no longer stored: past its stream's retention, replayed or deleted.", ref.Stream, ref.Seq, ref.Kind))
			continue
		}
		if err != nil {
			out.warnings = append(out.warnings, fmt.Sprintf("cannot read %s#%d: %s", ref.Stream, ref.Seq, errText(err)))
			continue
		}
		row := timelineRow{At: m.Time, Ref: fmt.Sprintf("%s#%d", ref.Stream, ref.Seq)}
		switch {
		case ref.Stream == c.subj.StreamDLQ():
			dl := jobLetter{Seq: ref.Seq, Stage: m.Header.Get(messages.HeaderStage), Reason: m.Header.Get(messages.HeaderReason), Error: m.Header.Get(messages.HeaderError)}
			out.letters = append(out.letters, dl)
			row.Kind, row.Title = "dead-letter", "dead-lettered by "+dl.Stage
			row.Detail = dl.Reason + ": " + dl.Error
			row.Link = fmt.Sprintf("/console/dead-letters/%d", ref.Seq)
			if strings.HasPrefix(m.Header.Get(messages.HeaderOriginalSubject), c.subj.JobsSubmit()) && out.request == nil {
				out.request, _ = messages.DecodeRequest(m.Data)
			}
		case ref.Stream == c.subj.StreamDecisions():
			ev, err := messages.DecodeDecision(m.Data)
			row.Kind, row.Title = "decision", "decision published"
			if err == nil {
				out.decision = ev
				out.alerts = alertTexts(ev.Alerts)
				row.Detail = decisionDetail(ev.Decision, ev.Status)
			}
		default:
			ev, err := messages.DecodeEvent(m.Data)
			kind, _ := ref.EventKind()
			row.Kind, row.Title = "event", "event "+kind
			if err == nil {
				row.Title = "event " + ev.Kind
				switch {
				case ev.Error != nil:
					row.Detail = ev.Error.Code + ": " + ev.Error.Message
				case ev.Web != nil:
					row.Detail = "web link handed over"
				case ev.SDK != nil:
					row.Detail = "SDK token handed over"
				}
			}
		}
		out.rows = append(out.rows, row)
	}
	return out
}

// fromRecord reports whether the timeline row of ref is drawn from the
// record alone, without reading the message: an accepted, launched or
// finalized event whose time its publisher recorded (its row shows the
// kind, the time and the hand-over the channel implies), and the decision
// when the record holds its detail (capabilities and alerts; the event is
// read only to reveal its extracted data, readDecision). Failed events
// (their error), decisions recorded before the detail was, and dead
// letters are read.
func fromRecord(rec *pipeline.JobRecord, ref pipeline.MessageRef, readDecision bool) bool {
	switch ref.Kind {
	case pipeline.EventMessageKind(messages.KindAccepted), pipeline.EventMessageKind(messages.KindLaunched), pipeline.EventMessageKind(messages.KindFinalized):
		return !ref.At.IsZero()
	case pipeline.MessageKindDecision:
		return !readDecision && !ref.At.IsZero() && rec.Decision != nil && rec.DecisionDetail != nil
	}
	return false
}

// decisionDetail is a decision's timeline detail.
func decisionDetail(d messages.DecisionSummary, jumioStatus string) string {
	s := d.Type
	if d.Label != "" {
		s += " (" + d.Label + ")"
	}
	return s + ", Jumio status " + jumioStatus
}

// alertTexts shows a decision's alerts.
func alertTexts(alerts []messages.Alert) []string {
	var out []string
	for _, a := range alerts {
		out = append(out, strings.TrimSpace(a.Capability+": "+a.Decision+" "+a.Label))
	}
	return out
}

// recordedRow is the timeline row of a message fromRecord accepts: what
// readJobMessages shows of the message itself.
func recordedRow(rec *pipeline.JobRecord, ref pipeline.MessageRef) timelineRow {
	if ref.Kind == pipeline.MessageKindDecision {
		return timelineRow{At: ref.At, Ref: fmt.Sprintf("%s#%d", ref.Stream, ref.Seq), Kind: "decision", Title: "decision published",
			Detail: decisionDetail(*rec.Decision, rec.LastStatus)}
	}
	kind, _ := ref.EventKind()
	row := timelineRow{At: ref.At, Ref: fmt.Sprintf("%s#%d", ref.Stream, ref.Seq), Kind: "event", Title: "event " + kind}
	if kind != messages.KindAccepted {
		// The announce hands the channel's link or token over with the
		// launched or finalized event.
		switch rec.Channel {
		case messages.ChannelWeb:
			row.Detail = "web link handed over"
		case messages.ChannelSDK:
			row.Detail = "SDK token handed over"
		}
	}
	return row
}

// fetchedMsg is one message a record lists, as read by sequence.
type fetchedMsg struct {
	msg       *jetstream.RawStreamMsg
	err       error // reading the message
	streamErr error // looking up its stream
}

// fetchJobMessages reads the messages refs name, concurrently: a job's page
// waits for one round trip, not one per message.
func (c *Console) fetchJobMessages(ctx context.Context, rec *pipeline.JobRecord, readDecision bool) []fetchedMsg {
	out := make([]fetchedMsg, len(rec.Messages))
	var wg sync.WaitGroup
	for i, ref := range rec.Messages {
		if fromRecord(rec, ref, readDecision) {
			continue
		}
		st, err := c.streamHandle(ctx, ref.Stream)
		if err != nil {
			out[i].streamErr = err
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i].msg, out[i].err = st.GetMsg(ctx, ref.Seq)
		}()
	}
	wg.Wait()
	return out
}

// queuedRequest is the job's request as read from the jobs queue, or why
// it is not there.
type queuedRequest struct {
	req   *messages.VerificationRequest
	where string
}

// jobInQueue reads the job's message while it waits in the jobs queue (its
// own subject, or its recorded sequence: both at once, the subject's
// preferred). kycpipe keeps no other copy of the request but a dead letter.
func (c *Console) jobInQueue(ctx context.Context, rec *pipeline.JobRecord) queuedRequest {
	notHeld := queuedRequest{where: "not held: the job's message leaves the queue once a worker has run it"}
	st, err := c.streamHandle(ctx, c.subj.StreamJobs())
	if err != nil {
		return queuedRequest{where: "cannot read the jobs queue"}
	}
	var bySeq *jetstream.RawStreamMsg
	var wg sync.WaitGroup
	if rec.JobSeq != 0 {
		wg.Go(func() { bySeq, _ = st.GetMsg(ctx, rec.JobSeq) })
	}
	m, err := st.GetLastMsgForSubject(ctx, c.subj.JobSubmit(rec.JobID))
	wg.Wait()
	if err != nil {
		m = bySeq
	}
	if m == nil {
		return notHeld
	}
	req, err := messages.DecodeRequest(m.Data)
	if err != nil || req.JobID != "" && req.JobID != rec.JobID {
		return notHeld
	}
	return queuedRequest{req: req, where: "from the job's message in the queue"}
}

func (c *Console) loadJob(ctx context.Context, id string) (*pipeline.JobRecord, error) {
	if !messages.ValidJobID(id) {
		return nil, pipeline.ErrJobNotFound
	}
	// A job accepted but not yet picked up by a worker has no record yet:
	// its pending message stands for it (ACCEPTED). A job neither the
	// replica nor the queue knows is confirmed by the bucket stream's
	// leader: a replica that has not seen a job accepted a moment before
	// answers "none".
	return pipeline.LookupJob(ctx, c.js, c.store, c.subj, id)
}

// jobOrAnswer loads the job the path names; when it cannot, it answers
// the request itself (404 with notFound, or 503) and reports false.
func (c *Console) jobOrAnswer(w http.ResponseWriter, q request, notFound string) (*pipeline.JobRecord, bool) {
	rec, err := c.loadJob(q.r.Context(), q.r.PathValue("jobId"))
	if errors.Is(err, pipeline.ErrJobNotFound) {
		c.errorPage(w, q.r, http.StatusNotFound, notFound)
		return nil, false
	}
	if err != nil {
		c.unavailable(w, q.r, "the job", err)
		return nil, false
	}
	return rec, true
}

func (c *Console) job(w http.ResponseWriter, q request) {
	c.showJob(w, q, nil, flashOf(q.r))
}

// showJob renders a job's page, with the fields in reveal shown in clear.
func (c *Console) showJob(w http.ResponseWriter, q request, reveal []string, fl *flash) {
	ctx := q.r.Context()
	rec, ok := c.jobOrAnswer(w, q, "There is no such job (unknown, or its record expired).")
	if !ok {
		return
	}
	d, err := c.jobData(ctx, rec, reveal)
	if err != nil {
		c.unavailable(w, q.r, "the job", err)
		return
	}
	v := q.viewer(c.cfg.ReadOnly)
	d.CanReplay = d.CanReplay && v.CanAdmin
	d.CanErase = d.CanErase && v.CanErase
	c.render(w, q, http.StatusOK, "job.html", "Job "+rec.JobID, "jobs", d, fl)
}

func (c *Console) jobData(ctx context.Context, rec *pipeline.JobRecord, reveal []string) (*jobData, error) {
	d := &jobData{ID: rec.JobID, Status: rec.Status, Region: rec.Region, Channel: rec.Channel, AccountID: rec.AccountID,
		ExecutionID: rec.WorkflowExecutionID, Created: rec.CreatedAt, Updated: rec.UpdatedAt, Erasure: rec.Erasure,
		Attempts: rec.Attempts, Throttled: rec.Throttled, Polls: rec.Polls, LastJumioStatus: rec.LastStatus}
	// One round of reads after the record: the messages it lists and the
	// job's message in the queue, all at once.
	var queued queuedRequest
	var wg sync.WaitGroup
	if !rec.Erasing() {
		wg.Go(func() { queued = c.jobInQueue(ctx, rec) })
	}
	msgs := c.readJobMessages(ctx, rec, slices.Contains(reveal, fieldExtraction))
	wg.Wait()
	d.Warnings = msgs.warnings
	d.DeadLetters = msgs.letters

	// The timeline: status changes and messages, in time order.
	rows := slices.Clone(msgs.rows)
	for _, t := range rec.Timeline {
		rows = append(rows, timelineRow{At: t.At, Kind: "status", Title: t.Status, Detail: t.Note})
	}
	sort.SliceStable(rows, func(i, j int) bool { return rows[i].At.Before(rows[j].At) })
	for i := range rows {
		if i > 0 {
			rows[i].Since = rows[i].At.Sub(rows[i-1].At)
		}
	}
	d.Timeline = rows
	if len(rows) > 0 && !rec.CreatedAt.IsZero() {
		d.Elapsed = rows[len(rows)-1].At.Sub(rec.CreatedAt)
	}

	if rec.Decision != nil {
		d.Decision = decisionOf(rec, msgs.decision)
		d.Decision.Alerts = msgs.alerts
	}
	if rec.LastError != nil {
		d.LastError = &errorView{Code: rec.LastError.Code, Message: rec.LastError.Message, Status: rec.LastError.Status,
			Advice: advice(rec, len(msgs.letters) > 0)}
	}
	for _, l := range msgs.letters {
		if !l.Gone {
			d.CanReplay = true
		}
	}
	d.CanErase = !rec.Erasing()

	if rec.Erasing() {
		return d, nil // nothing personal is shown of a job being erased
	}
	// The request (its prepared data) from a dead letter of the job's
	// message, else from the message still queued.
	req, where := msgs.request, "from the job's dead letter"
	if req == nil {
		req, where = queued.req, queued.where
	}
	d.Personal = c.personal(rec, req, where, msgs.decision, reveal)
	for _, p := range d.Personal {
		d.AnyPersonal = d.AnyPersonal || p.Present
		d.Revealed = d.Revealed || p.Revealed
	}
	return d, nil
}

// personal lists the job's personal fields, masked unless in reveal.
func (c *Console) personal(rec *pipeline.JobRecord, req *messages.VerificationRequest, reqWhere string, dec *messages.DecisionEvent, reveal []string) []personalField {
	out := []personalField{
		{Name: fieldCustomerRef, Label: "customerInternalReference", Present: rec.CustomerInternalReference != "", Value: rec.CustomerInternalReference, Where: "job record"},
		{Name: fieldUserRef, Label: "userReference", Present: rec.UserReference != "", Value: rec.UserReference, Where: "job record"},
	}
	prepared := personalField{Name: fieldPreparedData, Label: "prepared data", Block: true, Where: reqWhere}
	if req != nil && req.PreparedData != nil {
		b, _ := json.MarshalIndent(req.PreparedData, "", "  ")
		prepared.Present, prepared.Value = true, string(b)
	} else if req != nil {
		prepared.Where = "none submitted"
	}
	out = append(out, prepared)
	extraction := personalField{Name: fieldExtraction, Label: "extracted document data", Block: true}
	fromRec := dec == nil && rec.DecisionDetail != nil && !slices.Contains(reveal, fieldExtraction)
	switch {
	case fromRec && rec.DecisionDetail.Extraction:
		// The decision was drawn from the record, which says the event
		// holds extracted data: revealing it reads the event.
		extraction.Present, extraction.Where = true, "decision event"
	case fromRec:
		extraction.Where = "not in the decision event (KYCPIPE_INCLUDE_EXTRACTION is off)"
	case dec == nil:
		extraction.Where = "no decision event held"
	case len(dec.Extraction) == 0:
		extraction.Where = "not in the decision event (KYCPIPE_INCLUDE_EXTRACTION is off)"
	default:
		b, _ := json.MarshalIndent(dec.Extraction, "", "  ")
		extraction.Present, extraction.Value, extraction.Where = true, string(b), "decision event"
	}
	out = append(out, extraction)
	for i := range out {
		if !out[i].Present {
			out[i].Value = ""
		}
		if out[i].Present && slices.Contains(reveal, out[i].Name) {
			out[i].Revealed = true
		} else {
			out[i].Value = ""
		}
	}
	return out
}

func decisionOf(rec *pipeline.JobRecord, ev *messages.DecisionEvent) *decisionView {
	d := &decisionView{Type: rec.Decision.Type, Label: rec.Decision.Label, Risk: "—", DecidedAt: rec.DecidedAt}
	if rec.Decision.RiskScore != nil {
		d.Risk = fmt.Sprintf("%g", *rec.Decision.RiskScore)
	}
	caps := map[string][]messages.CapabilitySummary(nil)
	switch {
	case ev != nil:
		caps = ev.Capabilities
	case rec.DecisionDetail != nil:
		caps = rec.DecisionDetail.Capabilities
	}
	for _, name := range slices.Sorted(maps.Keys(caps)) {
		for _, cs := range caps[name] {
			row := capabilityRow{Name: name, Decision: cs.Decision, Label: cs.Label}
			if cs.Data != nil {
				row.Data = capabilityData(cs.Data)
			}
			d.Capabilities = append(d.Capabilities, row)
		}
	}
	return d
}

// advice says what to do about a job's last error.
func advice(rec *pipeline.JobRecord, hasLetter bool) string {
	e := rec.LastError
	running := rec.Status != pipeline.StatusFailed
	if running {
		return "The job is still running and retries by itself (attempt " + fmt.Sprint(rec.Attempts) + " of its retry budget); nothing to do unless it fails."
	}
	replay := ""
	if hasLetter {
		replay = " Replay resumes the job from its checkpoint (no second Jumio account)."
	}
	switch e.Code {
	case messages.ErrCodeJumioRejected:
		switch e.Status {
		case http.StatusUnauthorized, http.StatusForbidden:
			return "Jumio refused the credentials or a permission (HTTP " + fmt.Sprint(e.Status) + "): check JUMIO_CLIENT_ID/SECRET for the job's region and the account's permissions, then replay." + replay
		case http.StatusNotFound:
			return "Jumio no longer knows the account or workflow execution (deleted, or expired at Jumio): submit a new job."
		}
		return "Jumio refused the request as invalid (HTTP " + fmt.Sprint(e.Status) + "): the same request fails the same way. Correct the job's data and submit a new job; replay only if Jumio's side changed (a workflow definition enabled, a setting fixed)."
	case messages.ErrCodeInvalidJob:
		return "The job's message is invalid or cannot be decoded: correct it and submit a new job. Replaying it fails again."
	case messages.ErrCodeRetryBudget:
		return "Jumio kept failing (5xx, timeouts) until the job's retry budget ran out. Once Jumio answers again (see the overview's error rate), replay." + replay
	case messages.ErrCodeMaxDeliveries:
		return "JetStream stopped redelivering the message (a process kept crashing on it, or the stage was stuck): look at the stage's logs for this job ID, fix the cause, then replay." + replay
	case messages.ErrCodeDeadline:
		return "Jumio never reported a final status before the deadline: the end user did not finish, or the callbacks were lost. Replay polls Jumio again with a new deadline; or submit a new job for the user." + replay
	case messages.ErrCodeImageMissing:
		return "An image was no longer in the image store (images are kept 24 h): submit a new job with the images."
	case messages.ErrCodeInternal:
		return "An unexpected state (a bug): look at the logs for this job ID and report it; replay once fixed." + replay
	}
	return "See the dead letter's error for the cause." + replay
}

// reveal shows the job's personal fields named in the form, after
// appending the audit record (the page shows nothing unless it is stored).
func (c *Console) reveal(w http.ResponseWriter, q request) {
	ctx := q.r.Context()
	rec, ok := c.jobOrAnswer(w, q, "There is no such job.")
	if !ok {
		return
	}
	var fields []string
	for _, f := range q.r.PostForm["field"] {
		if slices.Contains(personalFields, f) && !slices.Contains(fields, f) {
			fields = append(fields, f)
		}
	}
	if len(fields) == 0 {
		fields = personalFields
	}
	if rec.Erasing() {
		c.errorPage(w, q.r, http.StatusConflict, "The job is being erased: nothing of it can be revealed.")
		return
	}
	at := c.now().UTC()
	audit := &messages.AuditRecord{Action: messages.AuditReveal, JobID: rec.JobID, Actor: q.sess.principal.Name, At: at, Fields: fields}
	b, err := messages.Marshal(audit)
	if err != nil {
		c.unavailable(w, q.r, "the audit trail", err)
		return
	}
	m := nats.NewMsg(c.subj.Audit(messages.AuditReveal))
	m.Data = b
	m.Header.Set(messages.HeaderJobID, rec.JobID)
	m.Header.Set(messages.HeaderMsgID, messages.AuditMsgID(messages.AuditReveal, rec.JobID, at)+":"+q.sess.principal.Name)
	if _, err := c.js.PublishMsg(ctx, m); err != nil {
		c.log.Warn("console: reveal refused: the audit record was not stored", zap.String("job_id", rec.JobID), zap.Error(err))
		c.errorPage(w, q.r, http.StatusServiceUnavailable, "The reveal could not be audited (NATS did not store the audit record), so nothing is shown. Try again.")
		return
	}
	c.log.Info("console: personal data revealed", zap.String("job_id", rec.JobID), zap.String("key", q.sess.principal.Name), zap.Strings("fields", fields))
	c.showJob(w, q, fields, &flash{Kind: "ok", Text: "Revealed " + strings.Join(fields, ", ") + "; audited as kyc.audit.reveal by " + q.sess.principal.Name + ". Reloading the page masks them again."})
}

// replayJob replays every stored dead letter of the job.
func (c *Console) replayJob(w http.ResponseWriter, q request) {
	ctx := q.r.Context()
	rec, ok := c.jobOrAnswer(w, q, "There is no such job.")
	if !ok {
		return
	}
	done, failed := 0, 0
	for _, ref := range rec.Messages {
		if ref.Stream != c.subj.StreamDLQ() {
			continue
		}
		res, err := pipeline.ReplayDeadLetter(ctx, c.js, c.subj, ref.Seq, c.cfg.ReplayDeadline)
		switch {
		case err == nil:
			done++
			c.log.Info("console: dead letter replayed", zap.String("job_id", rec.JobID), zap.Uint64("seq", ref.Seq), zap.Bool("duplicate", res.Duplicate), zap.String("key", q.sess.principal.Name))
		case errors.Is(err, jetstream.ErrMsgNotFound):
		default:
			failed++
			c.log.Warn("console: replay failed", zap.String("job_id", rec.JobID), zap.Uint64("seq", ref.Seq), zap.Error(err))
		}
	}
	done2 := "replayed"
	switch {
	case failed > 0:
		done2 = "replay-error"
	case done == 0:
		done2 = "nothing"
	}
	http.Redirect(w, q.r, "/console/jobs/"+rec.JobID+"?done="+done2, http.StatusSeeOther)
}

// erase queues the job's erasure (as DELETE /v1/verifications/{jobId}).
func (c *Console) erase(w http.ResponseWriter, q request) {
	ctx := q.r.Context()
	id := q.r.PathValue("jobId")
	if !messages.ValidJobID(id) {
		c.errorPage(w, q.r, http.StatusNotFound, "There is no such job.")
		return
	}
	if q.r.PostFormValue("confirm") != "yes" {
		c.errorPage(w, q.r, http.StatusBadRequest, "Tick the confirmation box to erase the job: erasure cannot be undone.")
		return
	}
	_, err := pipeline.RequestErasure(ctx, c.js, c.store, c.subj, pipeline.ErasureRequest{JobID: id, Source: messages.ErasureRequest, Actor: q.sess.principal.Name})
	if errors.Is(err, pipeline.ErrJobNotFound) {
		c.errorPage(w, q.r, http.StatusNotFound, "There is no such job.")
		return
	}
	if err != nil {
		c.unavailable(w, q.r, "the job (the erasure was not queued)", err)
		return
	}
	c.log.Info("console: erasure queued", zap.String("job_id", id), zap.String("key", q.sess.principal.Name))
	http.Redirect(w, q.r, "/console/jobs/"+id+"?done=erasing", http.StatusSeeOther)
}

// capabilityData writes a capability's data as "name: value" pairs.
func capabilityData(d *messages.CapabilityData) string {
	b, _ := json.Marshal(d)
	var m map[string]any
	if json.Unmarshal(b, &m) != nil {
		return ""
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		v := m[k]
		if list, ok := v.([]any); ok {
			var items []string
			for _, x := range list {
				items = append(items, fmt.Sprint(x))
			}
			v = strings.Join(items, " ")
		}
		parts = append(parts, fmt.Sprintf("%s: %v", k, v))
	}
	return strings.Join(parts, ", ")
}

// streamHandle returns a handle of a stream of the pipeline, looked up once:
// reading a message by sequence then costs one request, not two (the
// lookup is a full stream info).
func (c *Console) streamHandle(ctx context.Context, name string) (jetstream.Stream, error) {
	if st, ok := c.streams.Load(name); ok {
		return st.(jetstream.Stream), nil
	}
	st, err := c.js.Stream(ctx, name)
	if err != nil {
		return nil, err
	}
	c.streams.Store(name, st)
	return st, nil
}
