package pipeline

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/kycpipe/kycpipe/pkg/jumio"
	"github.com/kycpipe/kycpipe/pkg/messages"
)

// ErrJobConflict is returned when a job ID (given or derived from an
// Idempotency-Key) already names a different request.
var ErrJobConflict = errors.New("pipeline: job ID already names a different request")

// ErrJobErased is returned when a job ID (given or derived from an
// Idempotency-Key) names an erased job: it is never used again. It matches
// ErrJobConflict.
var ErrJobErased = fmt.Errorf("%w: the job was erased", ErrJobConflict)

// Submitter stores validated jobs the way every entry point must: the job
// record first (so the job can be looked up at once and repeats detected),
// then the job message, deduplicated on the job ID. Ingest and kycctl use it.
type Submitter struct {
	js             jetstream.JetStream
	subj           messages.Subjects
	store          *JobStore
	now            func() time.Time
	publishTimeout time.Duration
}

// NewSubmitter opens the job-state bucket.
func NewSubmitter(ctx context.Context, js jetstream.JetStream, t Topology, now func() time.Time) (*Submitter, error) {
	t = t.WithDefaults()
	kv, err := js.KeyValue(ctx, t.Subjects.BucketJobs())
	if err != nil {
		return nil, fmt.Errorf("pipeline: job-state bucket: %w", err)
	}
	if now == nil {
		now = time.Now
	}
	return &Submitter{js: js, subj: t.Subjects, store: NewJobStore(kv, now).withIndex(js, t.Subjects, zap.NewNop()).withLeaderReads(js), now: now, publishTimeout: 5 * time.Second}, nil
}

// PrepareRequest fills what a stored job must have: its ID (the request's,
// else one derived from idemKey, else a new one), its region in Jumio's
// spelling (defaultRegion when absent), its channel and schema.
func PrepareRequest(req *messages.VerificationRequest, idemKey string, defaultRegion jumio.Region, now time.Time) {
	switch {
	case req.JobID != "":
	case idemKey != "":
		req.JobID = messages.IdempotentJobID(idemKey)
	default:
		req.JobID = messages.NewJobID(now)
	}
	if req.Region == "" {
		req.Region = string(defaultRegion)
	} else if r, err := jumio.ParseRegion(req.Region); err == nil {
		req.Region = string(r)
	}
	req.Channel = req.EffectiveChannel()
	req.Schema = messages.SchemaVerification
}

// SubmitResult says what Submit did.
type SubmitResult struct {
	JobID string
	// Repeated: the same request was submitted before (a retry).
	Repeated bool
	// Stored: this submission's message is the one in the queue (false for a
	// repeat whose first submission's message is stored).
	Stored bool
}

// Submit stores a prepared, validated request. It returns ErrJobConflict if
// its job ID names a different request, and a JetStream error (the caller
// answers "unavailable") if the job could not be stored; then nothing is.
func (s *Submitter) Submit(ctx context.Context, req *messages.VerificationRequest, note string) (SubmitResult, error) {
	now := s.now().UTC()
	req.SubmittedAt = &now
	hash := RequestHash(req)
	rec := newJobRecord(req, hash, now)
	rec.TraceParent = traceParentOf(ctx)
	rec.note(now, StatusAccepted, note)
	existing, _, err := s.store.Create(ctx, rec)
	repeat := false
	switch {
	case errors.Is(err, jetstream.ErrKeyExists):
		if existing.Erasing() {
			return SubmitResult{JobID: req.JobID}, ErrJobErased
		}
		if existing.RequestHash != hash {
			return SubmitResult{JobID: req.JobID}, ErrJobConflict
		}
		if existing.Status != StatusAccepted {
			return SubmitResult{JobID: req.JobID, Repeated: true}, nil // running or done: its message exists
		}
		// Not picked up yet; the first submission may also have died between
		// its record and its message. Publish this identical request:
		// JetStream drops it as a duplicate if the first one is stored.
		repeat = true
	case err != nil:
		return SubmitResult{JobID: req.JobID}, err
	}
	o, err := newOutMsg(s.subj.JobSubmit(req.JobID), req, messages.SubmitMsgID(req.JobID), req.JobID)
	var ack *jetstream.PubAck
	if err == nil {
		pctx, cancel := context.WithTimeout(ctx, s.publishTimeout)
		ack, err = publish(pctx, s.js, o)
		cancel()
	}
	if err != nil {
		if !repeat {
			// Nothing was stored: undo the record so a retry starts clean.
			_ = s.store.kv.Delete(context.WithoutCancel(ctx), jobKey(req.JobID))
		}
		return SubmitResult{JobID: req.JobID}, err
	}
	return SubmitResult{JobID: req.JobID, Repeated: repeat, Stored: !ack.Duplicate}, nil
}

// newJobRecord is the record of a newly accepted job.
func newJobRecord(req *messages.VerificationRequest, hash string, now time.Time) *JobRecord {
	rec := &JobRecord{JobID: req.JobID, Status: StatusAccepted, Region: req.Region, Channel: req.EffectiveChannel(),
		CustomerInternalReference: req.CustomerInternalReference, UserReference: req.UserReference, RequestHash: hash,
		ExistingAccount: req.AccountID != "", OwnAccount: req.AccountID == "", CreatedAt: now.UTC(), UpdatedAt: now.UTC()}
	for _, p := range req.Parts {
		if p.Object != "" {
			rec.Images = append(rec.Images, p.Object)
		}
	}
	return rec
}

// RequestHash identifies a request's content, to tell a repeated submission
// from a different one under the same job ID.
func RequestHash(req *messages.VerificationRequest) string {
	c := *req
	c.SubmittedAt = nil
	c.Schema = ""
	// Images are compared by content, not by where a submission stored them.
	c.Parts = make([]messages.Part, len(req.Parts))
	for i, p := range req.Parts {
		if p.SHA256 == "" && len(p.Data) > 0 {
			sum := sha256.Sum256(p.Data)
			p.SHA256 = hex.EncodeToString(sum[:])
		}
		c.Parts[i] = messages.Part{Classifier: p.Classifier, ContentType: p.ContentType, SHA256: p.SHA256}
	}
	b, _ := json.Marshal(&c)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:12])
}
