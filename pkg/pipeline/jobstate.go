package pipeline

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/kycpipe/kycpipe/pkg/jumio"
	"github.com/kycpipe/kycpipe/pkg/messages"
)

// Job statuses, as GET /v1/verifications/{jobId} reports them.
const (
	StatusAccepted       = "ACCEPTED"
	StatusAccountCreated = "ACCOUNT_CREATED"
	StatusLaunched       = "LAUNCHED"
	StatusFinalized      = "FINALIZED"
	StatusDecided        = "DECIDED"
	StatusFailed         = "FAILED"
	// StatusErasing: an erasure was accepted; no Jumio call for the job is
	// started any more, and a worker is removing every copy of its data.
	StatusErasing = "ERASING"
	// StatusErased: the record is a tombstone (IDs and times only).
	StatusErased = "ERASED"
)

// JobRecord is a job's checkpoint in the job-state bucket. Every external
// side effect (a Jumio account, an upload, a finalize, a published event) is
// recorded here, with compare-and-swap on the revision, before the message
// that caused it is acked; a redelivered job resumes from it.
//
// A record never holds the applicant's data (prepared data and images stay
// in the job message and the image store). It does hold the credentials'
// transaction tokens, which resume needs; they are secrets and never logged.
type JobRecord struct {
	JobID                     string    `json:"jobId"`
	Status                    string    `json:"status"`
	Region                    string    `json:"region"`
	Channel                   string    `json:"channel"`
	CustomerInternalReference string    `json:"customerInternalReference,omitempty"`
	UserReference             string    `json:"userReference,omitempty"`
	RequestHash               string    `json:"requestHash,omitempty"`
	TraceParent               string    `json:"traceParent,omitempty"` // W3C trace context of the submission
	CreatedAt                 time.Time `json:"createdAt"`
	UpdatedAt                 time.Time `json:"updatedAt"`

	// Jumio side effects.
	AccountID           string            `json:"accountId,omitempty"`
	WorkflowExecutionID string            `json:"workflowExecutionId,omitempty"`
	Credentials         []CredentialState `json:"credentials,omitempty"`
	WebHref             string            `json:"webHref,omitempty"`
	SDKToken            string            `json:"sdkToken,omitempty"`
	Uploaded            []string          `json:"uploaded,omitempty"` // classifiers uploaded, PREPARED_DATA included
	Finalized           bool              `json:"finalized,omitempty"`
	Announced           bool              `json:"announced,omitempty"` // launched/finalized event and poll task published
	PollSequence        uint64            `json:"pollSequence,omitempty"`
	ImagesDeleted       bool              `json:"imagesDeleted,omitempty"`

	// Retries: Attempts counts retryable failures (the retry budget);
	// Throttled counts rate-limit waits, which do not use the budget.
	Attempts  int                 `json:"attempts,omitempty"`
	Throttled int                 `json:"throttled,omitempty"`
	LastError *messages.ErrorInfo `json:"lastError,omitempty"`
	// AmbiguousCreates counts redeliveries that found no account recorded
	// although an earlier delivery may have created one at Jumio (a crash
	// between Jumio's answer and the checkpoint): a possible orphan account.
	AmbiguousCreates int `json:"ambiguousCreates,omitempty"`
	// Held counts deliveries handed back because Jumio refused kycpipe's
	// configuration of the job's region (a configuration fault: no retry
	// budget used, the job resumes by itself).
	Held int `json:"held,omitempty"`
	// ReplacedExecutions are executions of the job's account that the job
	// replaced with a new one (a WEB job launched again once Jumio returned
	// web.href): their callbacks are acknowledged, not retrieved.
	ReplacedExecutions []string `json:"replacedExecutions,omitempty"`

	// Retrieval.
	Polls        int                       `json:"polls,omitempty"`
	PollDeadline time.Time                 `json:"pollDeadline,omitzero"`
	LastStatus   string                    `json:"lastStatus,omitempty"` // Jumio workflow status last seen
	Decision     *messages.DecisionSummary `json:"decision,omitempty"`
	DecidedAt    time.Time                 `json:"decidedAt,omitzero"`
	// DecisionDetail is what the decision event says beyond its summary
	// and holds nothing personal: a job's page shows the decision from the
	// record alone (one read, not two). Nil in records decided before it
	// was added.
	DecisionDetail *DecisionDetail `json:"decisionDetail,omitempty"`

	Timeline []TimelineEntry `json:"timeline,omitempty"`

	// Where the job's data is, for erasure (and the console's timeline):
	// the image store objects ingest stored, the stream sequence of the job
	// message when it was not published on its per-job subject, and every
	// message about the job in the limits streams (events, decision, dead
	// letters), recorded by whoever published it.
	Images          []string     `json:"images,omitempty"`
	JobSeq          uint64       `json:"jobSeq,omitempty"`
	Messages        []MessageRef `json:"messages,omitempty"`
	ExistingAccount bool         `json:"existingAccount,omitempty"` // the job ran on an account it did not create
	// OwnAccount says the job created its Jumio account (it named no
	// accountId): only then does its erasure delete the account rather
	// than its workflow execution. A record without it (written by the
	// release before this field, or rewritten by one during a rolling
	// upgrade, which drops the fields it does not know) cannot tell, and
	// its erasure deletes only the execution: never an account other
	// jobs may run on.
	OwnAccount bool `json:"ownAccount,omitempty"`

	// AcceptedUnconfirmed is the time of the job's accepted event when
	// JetStream never acknowledged it (no answer, for longer than confirm
	// repeats it): the event may be stored with its sequence nowhere in
	// Messages. Publishing the same event again within the events stream's
	// duplicate window answers with the stored copy's sequence; the job's
	// later checkpoints and the eraser do that (accepted.go) and clear it.
	// Zero: nothing unconfirmed.
	AcceptedUnconfirmed time.Time `json:"acceptedUnconfirmed,omitzero"`

	// Erasure, once requested. A tombstone (StatusErased) keeps only JobID,
	// Status, Erasure and the IDs Erasure names.
	Erasure *Erasure `json:"erasure,omitempty"`
}

// DecisionDetail is a decision event's capabilities and alerts, recorded
// with the decision.
type DecisionDetail struct {
	Capabilities map[string][]messages.CapabilitySummary `json:"capabilities,omitempty"`
	Alerts       []messages.Alert                        `json:"alerts,omitempty"`
	// Extraction says the decision event holds extracted document data
	// (KYCPIPE_INCLUDE_EXTRACTION): personal, so only the event has it.
	Extraction bool `json:"extraction,omitempty"`
}

// detailOf returns ev's DecisionDetail.
func detailOf(ev *messages.DecisionEvent) *DecisionDetail {
	return &DecisionDetail{Capabilities: ev.Capabilities, Alerts: ev.Alerts, Extraction: len(ev.Extraction) > 0}
}

// MessageRef names one message about a job in a limits stream.
type MessageRef struct {
	Stream string `json:"stream"`
	Seq    uint64 `json:"seq"`
	Kind   string `json:"kind"` // event:<kind>, decision, dead_letter
	// At is a lifecycle event's own time (its "at"), recorded by its
	// publisher: the console shows the accepted, launched and finalized
	// events from the record without reading them. Zero in records
	// written before it was added.
	At time.Time `json:"at,omitzero"`
}

// Erasure describes a job's erasure (DESIGN 3.7).
type Erasure struct {
	RequestedAt time.Time `json:"requestedAt"`
	CompletedAt time.Time `json:"completedAt,omitzero"`
	Source      string    `json:"source"`          // REQUEST or RETENTION
	Actor       string    `json:"actor,omitempty"` // the API key's NAME
	Jumio       string    `json:"jumio,omitempty"` // DELETED, NOT_FOUND, NOT_CREATED, KEPT
}

// CredentialState is what resuming a job needs to know of a credential.
type CredentialState struct {
	ID          string            `json:"id"`
	Category    string            `json:"category"`
	Channels    []string          `json:"channels,omitempty"`
	Token       string            `json:"token,omitempty"` // transaction api.token: a secret
	Parts       map[string]string `json:"parts,omitempty"` // lowercase classifier → upload URL
	FinalizeURL string            `json:"finalizeUrl,omitempty"`
}

// TimelineEntry is one step of a job's history, for operators.
type TimelineEntry struct {
	At     time.Time `json:"at"`
	Status string    `json:"status"`
	Note   string    `json:"note,omitempty"`
}

// maxTimeline bounds the timeline kept in a record.
const maxTimeline = 32

// Terminal reports whether the job's work is over: decided, failed, or
// being (or been) erased. No stage starts work for a terminal job.
func (r *JobRecord) Terminal() bool {
	return r.Status == StatusDecided || r.Status == StatusFailed || r.Erasing()
}

// Erasing reports whether the job is being, or has been, erased.
func (r *JobRecord) Erasing() bool { return r.Status == StatusErasing || r.Status == StatusErased }

// addMessages records messages about the job, once each.
func (r *JobRecord) addMessages(refs ...MessageRef) {
	for _, m := range refs {
		if m.Seq != 0 && !r.hasMessage(m) {
			r.Messages = append(r.Messages, m)
		}
	}
}

// hasMessage reports whether the record lists the message m names (its
// stream and sequence; the kind and time are what the list says of it).
func (r *JobRecord) hasMessage(m MessageRef) bool {
	return slices.ContainsFunc(r.Messages, func(o MessageRef) bool { return o.Stream == m.Stream && o.Seq == m.Seq })
}

// offersChannel reports whether any of the job's credentials may be
// acquired over ch (WEB, SDK, API).
func (r *JobRecord) offersChannel(ch string) bool {
	for _, c := range r.Credentials {
		for _, a := range c.Channels {
			if a == ch {
				return true
			}
		}
	}
	return false
}

// HasUploaded reports whether classifier was uploaded.
func (r *JobRecord) HasUploaded(classifier string) bool {
	for _, c := range r.Uploaded {
		if c == classifier {
			return true
		}
	}
	return false
}

// SetStatus moves the job to status, with a timeline entry.
func (r *JobRecord) SetStatus(now time.Time, status, note string) {
	if r.Status != status {
		r.Status = status
		r.note(now, status, note)
	}
}

func (r *JobRecord) note(now time.Time, status, note string) {
	r.Timeline = append(r.Timeline, TimelineEntry{At: now.UTC(), Status: status, Note: note})
	if len(r.Timeline) > maxTimeline {
		r.Timeline = append(r.Timeline[:1], r.Timeline[len(r.Timeline)-maxTimeline+1:]...)
	}
}

// CredentialFor returns the credential holding a part classifier.
func (r *JobRecord) CredentialFor(classifier string) (*CredentialState, string, bool) {
	for i := range r.Credentials {
		c := &r.Credentials[i]
		for k, u := range c.Parts {
			if equalFoldASCII(k, classifier) {
				return c, u, true
			}
		}
	}
	return nil, "", false
}

// FinalizeCredential returns a credential that can finalize (any credential
// with a transaction token and a finalize URL).
func (r *JobRecord) FinalizeCredential() (*CredentialState, bool) {
	for i := range r.Credentials {
		c := &r.Credentials[i]
		if c.Token != "" && c.FinalizeURL != "" {
			return c, true
		}
	}
	return nil, false
}

func credentialStates(cs []jumio.CredentialStart) []CredentialState {
	out := make([]CredentialState, 0, len(cs))
	for _, c := range cs {
		st := CredentialState{ID: c.ID, Category: c.Category, Channels: c.AllowedChannels}
		if c.API != nil {
			st.Token, st.Parts, st.FinalizeURL = c.API.Token, c.API.Parts, c.API.WorkflowExecution
		}
		out = append(out, st)
	}
	return out
}

func equalFoldASCII(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i]|0x20, b[i]|0x20
		if x != y {
			return false
		}
	}
	return true
}

// JobStore reads and writes job records and the execution index in the
// job-state bucket. Keys: job.<jobId> and exec.<workflowExecutionId>.
//
// A store made by the pipeline's stages and ingest reads from the bucket's
// stream leader (see kvleader.go): a replica that lags after a partition
// never answers the reads that decide what to do with a job. A store made
// with [NewJobStore] alone (tools) reads with direct gets, from any replica.
type JobStore struct {
	kv     jetstream.KeyValue
	now    func() time.Time
	index  *jobIndexer   // nil: no index is maintained
	leader *leaderReader // nil: direct gets
}

// ErrJobNotFound is returned for an unknown job ID.
var ErrJobNotFound = errors.New("pipeline: job not found")

// errStop aborts a JobStore.Update without writing.
var errStop = errors.New("no change")

func jobKey(id string) string  { return "job." + id }
func execKey(id string) string { return "exec." + id }

// NewJobStore wraps the job-state bucket.
func NewJobStore(kv jetstream.KeyValue, now func() time.Time) *JobStore {
	if now == nil {
		now = time.Now
	}
	return &JobStore{kv: kv, now: now}
}

// withLeaderReads lets the store read from the bucket stream's leader,
// through js's connection (see [JobStore.getLatest]).
func (s *JobStore) withLeaderReads(js jetstream.JetStream) *JobStore {
	s.leader = newLeaderReader(js, s.kv.Bucket())
	return s
}

// read returns the value and revision of key's latest entry, or
// jetstream.ErrKeyNotFound (also for a deleted key). latest: from the
// stream leader (when the store reads from it), else with a direct get.
func (s *JobStore) read(ctx context.Context, key string, latest bool) ([]byte, uint64, error) {
	if latest && s.leader != nil {
		return s.leader.get(ctx, key)
	}
	e, err := s.kv.Get(ctx, key)
	if err != nil {
		return nil, 0, err
	}
	return e.Value(), e.Revision(), nil
}

// Get returns a job's record and its revision, or ErrJobNotFound. It reads
// with a direct get, which any replica of the bucket may answer: after a
// partition, an older revision of the record, or none. Writing on top of it
// is safe ([JobStore.Update] compares revisions and re-reads from the
// leader); a caller that decides something from the record alone (give up,
// call Jumio with its IDs, drop a message) confirms it with getLatest.
func (s *JobStore) Get(ctx context.Context, jobID string) (*JobRecord, uint64, error) {
	return s.get(ctx, jobID, false)
}

// GetConfirmed is Get for a caller that answers "unknown job": a job the
// replica that answered does not know (one accepted a moment before, or a
// replica cut off from its peers) is looked up on the bucket stream's
// leader before ErrJobNotFound is returned, when the store reads from it
// (stores of the stages, ingest and [NewJobIndex] do). A record found is
// Get's: it may be an older revision.
func (s *JobStore) GetConfirmed(ctx context.Context, jobID string) (*JobRecord, uint64, error) {
	rec, rev, err := s.get(ctx, jobID, false)
	if errors.Is(err, ErrJobNotFound) {
		return s.get(ctx, jobID, true)
	}
	return rec, rev, err
}

// getLatest is Get answered by the bucket stream's leader, which has every
// write the cluster committed (kvleader.go). It costs about three direct
// gets, so the hot paths read with Get and confirm with getLatest only what
// a stale record could get wrong.
func (s *JobStore) getLatest(ctx context.Context, jobID string) (*JobRecord, uint64, error) {
	return s.get(ctx, jobID, true)
}

func (s *JobStore) get(ctx context.Context, jobID string, latest bool) (*JobRecord, uint64, error) {
	value, rev, err := s.read(ctx, jobKey(jobID), latest)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, 0, ErrJobNotFound
	}
	if err != nil {
		return nil, 0, fmt.Errorf("pipeline: read job record: %w", err)
	}
	var r JobRecord
	if err := decodeRecord(value, &r); err != nil {
		return nil, 0, fmt.Errorf("pipeline: decode job record: %w", err)
	}
	return &r, rev, nil
}

// Create stores a new record. It returns jetstream.ErrKeyExists (and the
// existing record) if the job is already known.
func (s *JobStore) Create(ctx context.Context, r *JobRecord) (*JobRecord, uint64, error) {
	b, err := encodeRecord(r)
	if err != nil {
		return nil, 0, err
	}
	rev, err := s.kv.Create(ctx, jobKey(r.JobID), b)
	if errors.Is(err, jetstream.ErrKeyExists) {
		existing, rev, gerr := s.getLatest(ctx, r.JobID)
		if gerr != nil {
			return nil, 0, gerr
		}
		return existing, rev, jetstream.ErrKeyExists
	}
	if err != nil {
		return nil, 0, fmt.Errorf("pipeline: create job record: %w", err)
	}
	s.index.update(nil, r)
	return r, rev, nil
}

// ErrErasing is returned by [JobStore.Update] after it wrote a change to a
// job whose erasure was accepted meanwhile: the change was kept where it
// records data to erase (messages, Jumio IDs), but the job's status stays
// ERASING; the caller stops working on the job.
var ErrErasing = errors.New("pipeline: the job is being erased")

// ErrErased is returned by [JobStore.Update] for a job that was erased
// (its record is a tombstone); nothing was written. A caller that published
// a message about the job must delete it.
var ErrErased = errors.New("pipeline: the job was erased")

// Update applies mutate to the record at revision rev and writes it with
// compare-and-swap. When another writer got there first, it re-reads the
// record and applies mutate again (mutate must therefore be a pure function
// of the record it is given). mutate returns errStop to write nothing.
// It returns the record as written and its new revision.
//
// An erasure in progress wins over every other change: on an ERASING
// record the write keeps status ERASING and the timeline, and Update
// returns [ErrErasing] with the record written; on an ERASED tombstone
// nothing is written and Update returns [ErrErased].
func (s *JobStore) Update(ctx context.Context, r *JobRecord, rev uint64, mutate func(*JobRecord) error) (*JobRecord, uint64, error) {
	return s.update(ctx, r, rev, mutate, false)
}

// updateErasure is Update for the eraser, which may change an erasing record.
func (s *JobStore) updateErasure(ctx context.Context, r *JobRecord, rev uint64, mutate func(*JobRecord) error) (*JobRecord, uint64, error) {
	return s.update(ctx, r, rev, mutate, true)
}

func (s *JobStore) update(ctx context.Context, r *JobRecord, rev uint64, mutate func(*JobRecord) error, eraser bool) (*JobRecord, uint64, error) {
	for attempt := 0; ; attempt++ {
		if r.Status == StatusErased && !eraser {
			return r, rev, ErrErased
		}
		next := cloneRecord(r)
		if err := mutate(next); err != nil {
			if errors.Is(err, errStop) {
				if r.Status == StatusErasing && !eraser {
					return r, rev, ErrErasing
				}
				return r, rev, nil
			}
			return r, rev, err
		}
		erasing := r.Status == StatusErasing && !eraser
		if erasing {
			next.Status, next.Timeline, next.Erasure = r.Status, r.Timeline, r.Erasure
		}
		next.UpdatedAt = s.now().UTC()
		b, err := encodeRecord(next)
		if err != nil {
			return r, rev, err
		}
		newRev, err := s.kv.Update(ctx, jobKey(next.JobID), b, rev)
		if err == nil {
			s.index.move(ctx, r, next)
			if erasing {
				return next, newRev, ErrErasing
			}
			return next, newRev, nil
		}
		if !errors.Is(err, jetstream.ErrKeyRevisionMismatch) || attempt >= 10 {
			return r, rev, fmt.Errorf("pipeline: update job record: %w", err)
		}
		// The revision we had is not the latest: a concurrent write, or a
		// stale read. Re-read from the leader, or a lagging replica could
		// hand the same old revision back again.
		if r, rev, err = s.getLatest(ctx, r.JobID); err != nil {
			return r, rev, err
		}
	}
}

func cloneRecord(r *JobRecord) *JobRecord {
	c := *r
	c.Credentials = append([]CredentialState(nil), r.Credentials...)
	c.Uploaded = append([]string(nil), r.Uploaded...)
	c.Timeline = append([]TimelineEntry(nil), r.Timeline...)
	c.Images = append([]string(nil), r.Images...)
	c.Messages = append([]MessageRef(nil), r.Messages...)
	if r.Erasure != nil {
		e := *r.Erasure
		c.Erasure = &e
	}
	return &c
}

// IndexExecution records which job a workflow execution belongs to.
func (s *JobStore) IndexExecution(ctx context.Context, executionID, jobID string) error {
	if _, err := s.kv.Put(ctx, execKey(executionID), []byte(jobID)); err != nil {
		return fmt.Errorf("pipeline: index execution: %w", err)
	}
	return nil
}

// erasedKey marks an erased workflow execution (value: the job ID), so a
// late callback for it is recognized and dropped.
func erasedKey(id string) string { return "erased." + id }

// eraseExecution removes an execution's index entry and
// leaves the erased mark in its place.
func (s *JobStore) eraseExecution(ctx context.Context, executionID, jobID string) error {
	if _, err := s.kv.Put(ctx, erasedKey(executionID), []byte(jobID)); err != nil {
		return fmt.Errorf("pipeline: mark execution erased: %w", err)
	}
	// Delete, not Purge: the bucket keeps one revision per key, so the
	// delete marker replaces the entry, and roll-ups (which Purge needs)
	// are off on this bucket (docs/SECURITY.md).
	if err := s.kv.Delete(ctx, execKey(executionID)); err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
		return fmt.Errorf("pipeline: erase execution index: %w", err)
	}
	return nil
}

// ExecutionErased reports whether a workflow execution belonged to a job
// that was erased. It reads from the stream leader: it decides whether a
// callback is dropped.
func (s *JobStore) ExecutionErased(ctx context.Context, executionID string) (bool, error) {
	_, _, err := s.read(ctx, erasedKey(executionID), true)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return false, nil
	}
	return err == nil, err
}

// JobForExecution returns the job ID of a workflow execution, or
// ErrJobNotFound. Like Get, it reads with a direct get; a caller that drops
// a callback when the execution is unknown confirms that with
// jobForExecutionLatest.
func (s *JobStore) JobForExecution(ctx context.Context, executionID string) (string, error) {
	return s.jobForExecution(ctx, executionID, false)
}

// jobForExecutionLatest is JobForExecution answered by the stream leader.
func (s *JobStore) jobForExecutionLatest(ctx context.Context, executionID string) (string, error) {
	return s.jobForExecution(ctx, executionID, true)
}

func (s *JobStore) jobForExecution(ctx context.Context, executionID string, latest bool) (string, error) {
	value, _, err := s.read(ctx, execKey(executionID), latest)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return "", ErrJobNotFound
	}
	if err != nil {
		return "", fmt.Errorf("pipeline: read execution index: %w", err)
	}
	return string(value), nil
}

// List calls fn for every job record (for operators; it reads the whole
// bucket). fn returning false stops the iteration.
func (s *JobStore) List(ctx context.Context, fn func(*JobRecord) bool) error {
	lister, err := s.kv.ListKeysFiltered(ctx, "job.>")
	if err != nil {
		if errors.Is(err, jetstream.ErrNoKeysFound) {
			return nil
		}
		return fmt.Errorf("pipeline: list jobs: %w", err)
	}
	defer lister.Stop()
	for key := range lister.Keys() {
		r, _, err := s.Get(ctx, key[len("job."):])
		if errors.Is(err, ErrJobNotFound) {
			continue
		}
		if err != nil {
			return err
		}
		if !fn(r) {
			return nil
		}
	}
	return nil
}
