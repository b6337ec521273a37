package pipeline

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/kycpipe/kycpipe/pkg/messages"
)

// ReplayResult says what a replay did.
type ReplayResult struct {
	Sequence  uint64 `json:"sequence"`
	JobID     string `json:"jobId,omitempty"`
	Subject   string `json:"subject"`
	Duplicate bool   `json:"duplicate"` // the same dead letter was replayed already
}

// ReplayDeadLetter puts a dead letter back into the pipeline: it resets its
// job from FAILED to the status its checkpoint reached (so the job resumes
// there: a replayed job never creates a second Jumio account or finalizes
// twice), republishes the original payload on its original subject, and
// removes the dead letter. The republish is deduplicated on the dead letter's
// sequence, so replaying the same dead letter twice (two operators at once)
// yields one message. Retrieval tasks get a new deadline (now + deadline).
// Only worker and retriever letters of the job's own messages (the job, its
// poll task) touch their job. A notifier letter is one webhook delivery,
// replayed with a fresh attempt count and the same webhook-id; a callback
// letter (kyc.callbacks.*) is only a trigger, republished as ingest stored it
// (without a Kyc-Job-Id header): in both cases the job record is left as it
// is. A callback's retrieval never failed its job (the poll task decides it),
// so nothing needs resuming.
func ReplayDeadLetter(ctx context.Context, js jetstream.JetStream, subj messages.Subjects, seq uint64, deadline time.Duration) (*ReplayResult, error) {
	dl, err := GetDeadLetter(ctx, js, subj, seq)
	if err != nil {
		return nil, err
	}
	if dl.OriginalSubject == "" || !strings.HasPrefix(dl.OriginalSubject, subj.Prefix()+".") {
		return nil, fmt.Errorf("pipeline: dead letter %d has no replayable original subject", seq)
	}
	data := dl.Data
	if strings.HasPrefix(dl.OriginalSubject, subj.Prefix()+".retrieve.") {
		if task, err := messages.DecodeRetrievalTask(data); err == nil {
			task.Deadline = time.Now().Add(deadline).UTC()
			if b, err := messages.Marshal(task); err == nil {
				data = b
			}
		}
	}
	callback := isCallbackSubject(subj, dl.OriginalSubject)
	var store *JobStore
	var restore func()
	if dl.JobID != "" && resumesJobs(dl.Stage) && !callback {
		kv, err := js.KeyValue(ctx, subj.BucketJobs())
		if err != nil {
			return nil, err
		}
		store = NewJobStore(kv, time.Now).withLeaderReads(js)
		if restore, err = resumeJob(ctx, store, dl.JobID, seq); err != nil {
			return nil, err
		}
	}
	m := nats.NewMsg(dl.OriginalSubject)
	m.Data = data
	for k, vs := range dl.Header {
		if strings.HasPrefix(k, "Kyc-") && (k != messages.HeaderJobID || callback) || strings.HasPrefix(k, "Nats-") {
			continue
		}
		m.Header[k] = append([]string(nil), vs...)
	}
	if dl.JobID != "" && !callback {
		m.Header.Set(messages.HeaderJobID, dl.JobID)
	}
	m.Header.Set(messages.HeaderReplayOf, strconv.FormatUint(seq, 10))
	m.Header.Set(messages.HeaderMsgID, messages.ReplayMsgID(subj.StreamDLQ(), seq))
	ack, err := js.PublishMsg(ctx, m)
	if err != nil {
		if restore != nil {
			restore()
		}
		return nil, fmt.Errorf("pipeline: replay dead letter %d: %w", seq, err)
	}
	if st, err := js.Stream(ctx, subj.StreamDLQ()); err == nil {
		if err := st.DeleteMsg(ctx, seq); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
			return nil, fmt.Errorf("pipeline: replayed dead letter %d but cannot remove it: %w", seq, err)
		}
	}
	return &ReplayResult{Sequence: seq, JobID: dl.JobID, Subject: dl.OriginalSubject, Duplicate: ack.Duplicate}, nil
}

// resumeJob moves a FAILED job back to the status its checkpoint reached and
// gives it a fresh retry budget. It returns a function undoing that (for a
// replay whose republish failed).
func resumeJob(ctx context.Context, store *JobStore, jobID string, seq uint64) (func(), error) {
	rec, rev, err := store.getLatest(ctx, jobID)
	if errors.Is(err, ErrJobNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if rec.Status != StatusFailed {
		return nil, nil
	}
	var prev *messages.ErrorInfo
	if rec.LastError != nil {
		e := *rec.LastError
		prev = &e
	}
	now := time.Now()
	updated, newRev, err := store.Update(ctx, rec, rev, func(r *JobRecord) error {
		if r.Status != StatusFailed {
			return errStop
		}
		status := StatusAccepted
		switch {
		case r.Announced && r.Channel == messages.ChannelAPI:
			status = StatusFinalized
		case r.Announced:
			status = StatusLaunched
		case r.WorkflowExecutionID != "":
			status = StatusAccountCreated
		}
		r.LastError, r.Attempts, r.Throttled = nil, 0, 0
		r.SetStatus(now, status, "replayed from dead letter "+strconv.FormatUint(seq, 10))
		return nil
	})
	if err != nil {
		return nil, err
	}
	return func() {
		_, _, _ = store.Update(context.WithoutCancel(ctx), updated, newRev, func(r *JobRecord) error {
			r.LastError = prev
			r.SetStatus(time.Now(), StatusFailed, "replay failed")
			return nil
		})
	}, nil
}

// isCallbackSubject reports whether subject is a stored Jumio callback's
// (kyc.callbacks.<region>).
func isCallbackSubject(subj messages.Subjects, subject string) bool {
	return strings.HasPrefix(subject, subj.Callback(""))
}

// resumesJobs reports whether a dead letter of stage stopped its job's
// progress, so that replaying it must resume the job: the worker's and the
// retriever's do; a webhook delivery's (the notifier's) never touched it.
func resumesJobs(stage string) bool {
	return stage == messages.StageWorker || stage == messages.StageRetriever
}
