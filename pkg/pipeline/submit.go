package pipeline

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
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

// Submitter stores validated jobs the way every entry point must: one
// JetStream write per submission, the job message on the job's own subject
// (kyc.jobs.submit.<jobId>), which is the record of acceptance. The worker
// creates the job record when it picks the message up; until then GET and
// erasure find the job by its subject (see [PendingJob]). Ingest and kycctl
// use it; submit below gives the design.
type Submitter struct {
	js             jetstream.JetStream
	subj           messages.Subjects
	store          *JobStore
	now            func() time.Time
	publishTimeout time.Duration
	jobs           jobsStream
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
	return &Submitter{js: js, subj: t.Subjects, store: NewJobStore(kv, now).withIndex(js, t.Subjects, zap.NewNop()).withLeaderReads(js), now: now,
		publishTimeout: 5 * time.Second, jobs: newJobsStream(js, t.Subjects)}, nil
}

// PrepareRequest fills what a stored job must have: its ID (the request's,
// else one derived from idemKey, else a new one), its region in Jumio's
// spelling (defaultRegion when absent), its channel and schema. It reports
// whether it gave the job a new ID (which no earlier job can have).
func PrepareRequest(req *messages.VerificationRequest, idemKey string, defaultRegion jumio.Region, now time.Time) (newID bool) {
	switch {
	case req.JobID != "":
	case idemKey != "":
		req.JobID = messages.IdempotentJobID(idemKey)
	default:
		req.JobID = messages.NewJobID(now)
		newID = true
	}
	if req.Region == "" {
		req.Region = string(defaultRegion)
	} else if r, err := jumio.ParseRegion(req.Region); err == nil {
		req.Region = string(r)
	}
	req.Channel = req.EffectiveChannel()
	req.Schema = messages.SchemaVerification
	return newID
}

// SubmitResult says what Submit did.
type SubmitResult struct {
	JobID string
	// Repeated: the same request was submitted before (a retry).
	Repeated bool
	// Stored: this submission's message is the job's (false for a repeat:
	// the first submission's message, and its images, are the job's).
	Stored bool
}

// Headers of a job message published by a Submitter.
const (
	// HeaderRequestHash carries [RequestHash] of the job message's request,
	// so that a repeat is compared with a pending job without decoding it.
	HeaderRequestHash = "Kyc-Request-Hash"
	// HeaderSubmitNote says how the job was submitted ("submitted over
	// HTTP"); the worker writes it into the record's timeline.
	HeaderSubmitNote = "Kyc-Submit-Note"
)

// Submit stores a prepared, validated request. It returns ErrJobConflict if
// its job ID names a different request (ErrJobErased: an erased job), and
// a JetStream error (the caller answers "unavailable") if the job could not
// be stored; then nothing is.
func (s *Submitter) Submit(ctx context.Context, req *messages.VerificationRequest, note string) (SubmitResult, error) {
	return s.submit(ctx, req, note, false)
}

// submit is Submit; fresh says the job ID was just generated
// (messages.NewJobID: 80 random bits), so that no earlier job can have it.
//
// The job message is published on kyc.jobs.submit.<jobId> expecting no
// message on that subject (Nats-Expected-Last-Subject-Sequence: 0), with
// Nats-Msg-Id = the job ID. Every instant from a job's acceptance on, its
// message is on that subject (pending, or in a worker's hands) or its
// record exists (the worker creates it before it acks the message), so:
//   - a refused publish (the subject holds a message: 10071, or 10164 on
//     a replicated stream; or the message ID is a duplicate) is a repeat
//     of a pending job: its hash, in the message's Kyc-Request-Hash
//     header, tells a retry (200) from a conflict (409).
//     Unless the message is this very submission's (the same submission
//     time): publish repeats a publish whose acknowledgement was lost, and
//     the repeat finds the first one stored; that is an acceptance;
//   - a stored publish is the job's acceptance, unless the job ID names an
//     earlier job whose message is gone: then its record exists, and was
//     not created from this message (JobSeq), which the read after the
//     publish tells; the new message is discarded by the worker (it names
//     a job that has a record created from another message).
//
// Only client-named job IDs need that read; a fresh one needs none.
func (s *Submitter) submit(ctx context.Context, req *messages.VerificationRequest, note string, fresh bool) (SubmitResult, error) {
	now := s.now().UTC()
	req.SubmittedAt = &now
	o, hash, err := s.jobMessage(req, note)
	if err != nil {
		return SubmitResult{JobID: req.JobID}, err
	}
	for attempt := 0; ; attempt++ {
		pctx, cancel := context.WithTimeout(ctx, s.publishTimeout)
		ack, err := publish(pctx, s.js, o)
		cancel()
		r, retryPublish, err := s.settle(ctx, req, hash, fresh, ack, err)
		if retryPublish && attempt < 3 {
			continue // the pending message and the record were both gone: publish again
		}
		return r, err
	}
}

// jobMessage is req's job message (see submit) and req's hash.
func (s *Submitter) jobMessage(req *messages.VerificationRequest, note string) (outMsg, string, error) {
	hash := RequestHash(req)
	o, err := newOutMsg(s.subj.JobSubmit(req.JobID), req, messages.SubmitMsgID(req.JobID), req.JobID)
	if err != nil {
		return o, "", err
	}
	o.header = nats.Header{HeaderRequestHash: {hash}, jetstream.ExpectedLastSubjSeqHeader: {"0"}}
	if note != "" {
		o.header[HeaderSubmitNote] = []string{note}
	}
	return o, hash, nil
}

// settle decides what a publish of req's job message did (see submit);
// retry says the publish should be made again.
func (s *Submitter) settle(ctx context.Context, req *messages.VerificationRequest, hash string, fresh bool, ack *jetstream.PubAck, err error) (SubmitResult, bool, error) {
	res := SubmitResult{JobID: req.JobID}
	switch {
	case err == nil && !ack.Duplicate:
		return s.stored(ctx, res, req, hash, fresh, ack.Sequence)
	case err == nil || subjectHoldsMessage(err):
		// A message for the job is pending (or the message ID is a
		// duplicate): compare with it, or with the record if the worker
		// took the message meanwhile.
		return s.repeatOf(ctx, req, hash, fresh)
	case !answered(err):
		// JetStream never answered (publish repeated it meanwhile): the
		// message may be stored, and then it is the job's, images and all.
		return res, false, fmt.Errorf("%w: %w", errStoredUnconfirmed, err)
	}
	return res, false, err
}

// stored settles a submission whose job message is stored at seq: a fresh
// job ID is accepted at once, a client-named one after afterStore.
func (s *Submitter) stored(ctx context.Context, res SubmitResult, req *messages.VerificationRequest, hash string, fresh bool, seq uint64) (SubmitResult, bool, error) {
	if fresh {
		res.Stored = true
		return res, false, nil
	}
	r, err := s.afterStore(ctx, req, hash, seq)
	return r, false, err
}

// sameSubmission reports whether a stored message's submission time is
// req's: the message is req's own (a publish repeated after its
// acknowledgement was lost), not an earlier submission's.
func sameSubmission(at *time.Time, req *messages.VerificationRequest) bool {
	return at != nil && req.SubmittedAt != nil && at.Equal(*req.SubmittedAt)
}

// errStoredUnconfirmed wraps the error of a submission whose job message
// is, or may be, stored (the read after a stored publish failed, or
// JetStream never answered the publish): the message may be the job's, so
// the submission's images must not be deleted.
var errStoredUnconfirmed = errors.New("pipeline: job message stored, its acceptance unconfirmed")

// afterStore checks, after the job message was stored at seq, whether the
// job ID names an earlier job (see submit).
func (s *Submitter) afterStore(ctx context.Context, req *messages.VerificationRequest, hash string, seq uint64) (SubmitResult, error) {
	jobID := req.JobID
	res := SubmitResult{JobID: jobID}
	// From the stream leader: the record's absence decides the answer, and
	// a replica that lags may not have the earlier job's record. (Usually
	// it is absent, so a direct get first would only add a request.)
	rec, _, err := s.store.getLatest(ctx, jobID)
	switch {
	case errors.Is(err, ErrJobNotFound):
		res.Stored = true
		return res, nil
	case err != nil:
		// Stored, but unconfirmed: the client's retry is answered once
		// JetStream answers (never a 2xx for what is not known). The
		// message may be the job's: its images stay.
		return res, fmt.Errorf("%w: %w", errStoredUnconfirmed, err)
	case rec.JobSeq == seq:
		res.Stored = true // the worker already created the record from it
		return res, nil
	case mayBeFromThisSubmission(rec, hash, req):
		res.Stored = true
		return res, nil
	}
	return compareWith(res, rec.Erasing(), rec.RequestHash, hash)
}

// recordSkew is how much earlier than a submission's start a record created
// from its message may say it was created: the worker's clock against
// ingest's.
const recordSkew = time.Minute

// mayBeFromThisSubmission reports whether rec, found after this
// submission's job message was stored (not a duplicate), may have been
// created from that message although it does not say so: JobSeq 0, written
// by a release whose workers did not record it (9aa777e, during a rolling
// upgrade), for the same request, created after the submission began (give
// or take recordSkew). An earlier job's record would be older: its message
// was published before the duplicate window (10 minutes), or this one would
// have been refused as a duplicate. Such a submission is answered as the
// one that stored the job and keeps its images, which are the job's:
// deleting them failed the job with "image no longer in the image store"
// in the rolling-upgrade run of 2026-12-07 (an old worker created the
// record within milliseconds of the publish, before the new ingest's read).
func mayBeFromThisSubmission(rec *JobRecord, hash string, req *messages.VerificationRequest) bool {
	return rec.JobSeq == 0 && !rec.Erasing() && rec.RequestHash == hash &&
		req.SubmittedAt != nil && !rec.CreatedAt.Before(req.SubmittedAt.Add(-recordSkew))
}

// repeatOf answers a submission whose job message was refused because the
// job's subject holds a message: the pending job's hash decides, unless the
// pending message is this submission's own (stored by an earlier attempt of
// the publish whose answer was lost: then it is stored). When the message
// left meanwhile, the record decides (the same way); when neither is there
// any more (the job was never accepted after all: a message removed without
// a record), retry is true.
func (s *Submitter) repeatOf(ctx context.Context, req *messages.VerificationRequest, hash string, fresh bool) (res SubmitResult, retry bool, err error) {
	jobID := req.JobID
	res = SubmitResult{JobID: jobID}
	pending, perr := s.jobs.pendingRequest(ctx, s.subj.JobSubmit(jobID))
	if perr == nil {
		if pending.hash == hash && sameSubmission(pending.req.SubmittedAt, req) {
			return s.stored(ctx, res, req, hash, fresh, pending.seq)
		}
		res, err = compareWith(res, false, pending.hash, hash)
		return res, false, err
	}
	if !errors.Is(perr, ErrJobNotFound) {
		return res, false, perr
	}
	rec, _, err := s.store.getLatest(ctx, jobID)
	if errors.Is(err, ErrJobNotFound) {
		return res, true, nil
	}
	if err != nil {
		return res, false, err
	}
	if !rec.Erasing() && rec.JobSeq != 0 && rec.RequestHash == hash && sameSubmission(&rec.CreatedAt, req) {
		res.Stored = true // this submission's message, which a worker took already
		return res, false, nil
	}
	res, err = compareWith(res, rec.Erasing(), rec.RequestHash, hash)
	return res, false, err
}

func compareWith(res SubmitResult, erased bool, first, hash string) (SubmitResult, error) {
	switch {
	case erased:
		return res, ErrJobErased
	case first != "" && first != hash:
		return res, ErrJobConflict
	}
	res.Repeated = true
	return res, nil
}

// jobsStream reads pending job messages from the jobs stream, by subject.
type jobsStream struct {
	nc      *nats.Conn
	apiSubj string // <API prefix>STREAM.MSG.GET.<jobs stream>
}

func newJobsStream(js jetstream.JetStream, subj messages.Subjects) jobsStream {
	return jobsStream{nc: js.Conn(), apiSubj: msgGetSubject(js, subj.StreamJobs())}
}

// pendingJob is a job message still in the jobs stream.
type pendingJob struct {
	req  *messages.VerificationRequest
	hash string
	seq  uint64
	note string
}

// pendingRequest returns the job message on subject (a job's per-job
// subject), or ErrJobNotFound. One request (STREAM.MSG.GET: the jobs
// stream has no direct gets), answered by the stream's leader, so a
// replica that lags never hides a pending job.
func (j *jobsStream) pendingRequest(ctx context.Context, subject string) (*pendingJob, error) {
	m, err := lastMsgFromLeader(ctx, j.nc, j.apiSubj, subject)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, ErrJobNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("pipeline: read pending job: %w", err)
	}
	req, err := messages.DecodeRequest(m.data)
	if err != nil {
		return nil, fmt.Errorf("pipeline: pending job message: %w", err)
	}
	p := &pendingJob{req: req, hash: m.header.Get(HeaderRequestHash), seq: m.seq, note: m.header.Get(HeaderSubmitNote)}
	if p.hash == "" {
		p.hash = RequestHash(req)
	}
	return p, nil
}

// PendingJob returns the record a job accepted but not yet picked up by a
// worker will have (status ACCEPTED, from its message on its per-job
// subject), or ErrJobNotFound when no such message is pending. GET answers
// from it until the worker has created the record.
func PendingJob(ctx context.Context, js jetstream.JetStream, subj messages.Subjects, jobID string) (*JobRecord, error) {
	j := newJobsStream(js, subj)
	return j.pendingRecord(ctx, subj, jobID)
}

// PendingJobs calls fn, oldest first, with the record that each job
// accepted on its own subject (kyc.jobs.submit.<jobId>) and not yet picked
// up by a worker stands for (see [PendingJob]), until fn returns false.
// Messages a worker holds (their job has a record, which the job index
// lists) and messages whose job has a record for another reason (a
// repeat, a job erased while pending) are skipped; so are jobs published on
// kyc.jobs.submit itself, which have no record until a worker runs them
// either. It costs two requests per message read: the message (from the
// jobs stream's leader, in stream order) and the job's record.
func PendingJobs(ctx context.Context, js jetstream.JetStream, store *JobStore, subj messages.Subjects, fn func(*JobRecord) bool) error {
	apiSubj := msgGetSubject(js, subj.StreamJobs())
	prefix := subj.JobSubmit("")
	for seq := uint64(1); ; {
		m, err := msgFromLeader(ctx, js.Conn(), apiSubj, msgGetRequest{Seq: seq, NextBySubject: subj.JobsSubmitPerJob()})
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("pipeline: read pending jobs: %w", err)
		}
		seq = m.seq + 1
		jobID := strings.TrimPrefix(m.subject, prefix)
		req, err := messages.DecodeRequest(m.data)
		if err != nil || !messages.ValidJobID(jobID) || req.JobID != "" && req.JobID != jobID {
			continue // not a job a worker would run under this ID: it dead-letters it
		}
		if _, _, err := store.Get(ctx, jobID); err == nil {
			continue
		} else if !errors.Is(err, ErrJobNotFound) {
			return err
		}
		req.JobID = jobID
		hash := m.header.Get(HeaderRequestHash)
		if hash == "" {
			hash = RequestHash(req)
		}
		if !fn(acceptedRecord(req, hash, m.seq, m.header.Get(HeaderSubmitNote), time.Time{})) {
			return nil
		}
	}
}

// LookupJob returns a job's record as every reader shows it (GET
// /v1/verifications/{jobId}, kycctl status, the console's job page): the
// record in the job-state bucket; for a job accepted but not yet picked up
// by a worker (its message is pending and it has no record yet), the record
// that message stands for (status ACCEPTED, see [PendingJob]); else the
// record read from the bucket stream's leader (a replica that lags may not
// have it yet, and the worker may have taken the message and created the
// record between the two reads). It returns ErrJobNotFound when there is
// none of the three. It never writes.
func LookupJob(ctx context.Context, js jetstream.JetStream, store *JobStore, subj messages.Subjects, jobID string) (*JobRecord, error) {
	jobs := newJobsStream(js, subj)
	rec, err := lookupRecordOrPending(ctx, store, &jobs, subj, jobID)
	if !errors.Is(err, ErrJobNotFound) {
		return rec, err
	}
	if store.leader == nil {
		leaderStore := *store
		store = leaderStore.withLeaderReads(js)
	}
	rec, _, err = store.getLatest(ctx, jobID)
	return rec, err
}

// lookupJob is ingest's [LookupJob] without the leader read (its caller
// confirms a missing job with the leader), through the submitter's cached
// jobs stream.
func (in *Ingest) lookupJob(ctx context.Context, id string) (*JobRecord, error) {
	return lookupRecordOrPending(ctx, in.store, &in.submitter.jobs, in.subj, id)
}

// lookupRecordOrPending returns the job's record (a direct get) or, when
// there is none, the record its pending message stands for.
func lookupRecordOrPending(ctx context.Context, store *JobStore, jobs *jobsStream, subj messages.Subjects, jobID string) (*JobRecord, error) {
	rec, _, err := store.Get(ctx, jobID)
	if !errors.Is(err, ErrJobNotFound) {
		return rec, err
	}
	return jobs.pendingRecord(ctx, subj, jobID)
}

func (j *jobsStream) pendingRecord(ctx context.Context, subj messages.Subjects, jobID string) (*JobRecord, error) {
	p, err := j.pendingRequest(ctx, subj.JobSubmit(jobID))
	if err != nil {
		return nil, err
	}
	if p.req.JobID != "" && p.req.JobID != jobID {
		return nil, ErrJobNotFound
	}
	p.req.JobID = jobID
	return acceptedRecord(p.req, p.hash, p.seq, p.note, time.Time{}), nil
}

// acceptedRecord is the record of a job accepted with the message at seq:
// created at its submission time (now, when the message has none).
func acceptedRecord(req *messages.VerificationRequest, hash string, seq uint64, note string, now time.Time) *JobRecord {
	at := now
	if req.SubmittedAt != nil {
		at = *req.SubmittedAt
	}
	rec := newJobRecord(req, hash, at)
	rec.JobSeq = seq
	rec.note(at, StatusAccepted, note)
	return rec
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
