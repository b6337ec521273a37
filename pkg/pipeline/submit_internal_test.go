package pipeline

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/kycpipe/kycpipe/pkg/jumio"
	"github.com/kycpipe/kycpipe/pkg/messages"
)

// A publish whose acknowledgement was lost is published again (publish,
// confirm), and the repeat finds the first one stored: JetStream refuses it
// because the job's subject holds the message, or, once a worker has taken
// the message (and created the record), answers it as a duplicate. Either
// way the message is the submission's own (its submission time), so the
// submission is stored (202, its images kept), not a repeat of an earlier
// one (200, images deleted: the job would then fail on missing images).
// Another submission of the same request is a repeat.
func TestLostAcknowledgementIsAnAcceptance(t *testing.T) {
	t.Parallel()
	js, topo := provisioned(t)
	ctx := t.Context()
	s, err := NewSubmitter(ctx, js, topo, nil)
	if err != nil {
		t.Fatal(err)
	}
	request := func(id string) *messages.VerificationRequest {
		req := &messages.VerificationRequest{JobID: id, CustomerInternalReference: "order-" + id,
			WorkflowDefinition: messages.WorkflowDefinition{Key: "10066"}, Channel: messages.ChannelAPI}
		PrepareRequest(req, "", jumio.DefaultRegion, time.Now())
		return req
	}
	// repeat publishes req's job message again, as confirm does after a
	// lost acknowledgement, and settles what JetStream answers: a duplicate
	// (duplicate) or a refusal because the subject holds a message.
	repeat := func(t *testing.T, req *messages.VerificationRequest, duplicate bool) SubmitResult {
		t.Helper()
		o, hash, err := s.jobMessage(req, "submitted over HTTP")
		if err != nil {
			t.Fatal(err)
		}
		ack, perr := publish(ctx, js, o)
		if duplicate && (perr != nil || !ack.Duplicate) || !duplicate && !subjectHoldsMessage(perr) {
			t.Fatalf("the repeated publish: %+v, %v (want duplicate: %v)", ack, perr, duplicate)
		}
		res, retry, err := s.settle(ctx, req, hash, false, ack, perr)
		if err != nil || retry {
			t.Fatalf("settle = %+v, %v, %v", res, retry, err)
		}
		return res
	}

	t.Run("subject holds the message", func(t *testing.T) {
		req := request("job-lost-ack-held")
		if res, err := s.Submit(ctx, req, "submitted over HTTP"); err != nil || !res.Stored || res.Repeated {
			t.Fatalf("first publish: %+v, %v", res, err)
		}
		if res := repeat(t, req, false); !res.Stored || res.Repeated {
			t.Errorf("the repeat of a lost acknowledgement: %+v, want stored", res)
		}
	})
	t.Run("a worker took the message", func(t *testing.T) {
		req := request("job-lost-ack-taken")
		if res, err := s.Submit(ctx, req, "submitted over HTTP"); err != nil || !res.Stored {
			t.Fatalf("first publish: %+v, %v", res, err)
		}
		pending, err := PendingJob(ctx, js, topo.Subjects, req.JobID)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := s.store.Create(ctx, pending); err != nil {
			t.Fatal(err)
		}
		st, err := js.Stream(ctx, topo.Subjects.StreamJobs())
		if err != nil {
			t.Fatal(err)
		}
		if err := st.DeleteMsg(ctx, pending.JobSeq); err != nil {
			t.Fatal(err)
		}
		if res := repeat(t, req, true); !res.Stored || res.Repeated {
			t.Errorf("the repeat of a lost acknowledgement: %+v, want stored", res)
		}
	})
	t.Run("another submission", func(t *testing.T) {
		req := request("job-lost-ack-other")
		if res, err := s.Submit(ctx, req, "submitted over HTTP"); err != nil || !res.Stored {
			t.Fatalf("first publish: %+v, %v", res, err)
		}
		again := request("job-lost-ack-other")
		if res, err := s.Submit(ctx, again, "submitted over HTTP"); err != nil || res.Stored || !res.Repeated {
			t.Errorf("another submission of the same request: %+v, %v, want a repeat", res, err)
		}
	})
}

// A publish JetStream never answered may have stored the message: the
// submission fails (503) but keeps its images (errStoredUnconfirmed).
func TestUnansweredPublishKeepsImages(t *testing.T) {
	t.Parallel()
	js, topo := provisioned(t)
	s, err := NewSubmitter(t.Context(), js, topo, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = s.settle(t.Context(), &messages.VerificationRequest{JobID: "job-unanswered"}, "h", true, nil, context.DeadlineExceeded)
	if !errors.Is(err, errStoredUnconfirmed) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("an unanswered publish: %v, want errStoredUnconfirmed", err)
	}
	_, _, err = s.settle(t.Context(), &messages.VerificationRequest{JobID: "job-refused"}, "h", true, nil,
		&jetstream.APIError{Code: 503, ErrorCode: jetstream.JSErrCodeStreamNotFound})
	if errors.Is(err, errStoredUnconfirmed) {
		t.Errorf("a refused publish: %v, want no errStoredUnconfirmed (nothing was stored)", err)
	}
}

// During a rolling upgrade a worker of the previous release (9aa777e),
// which does not record the message a record comes from (JobSeq), can
// create a job's record between a new ingest's publish and its read after
// the store (afterStore). The submission is still the job's: stored (202),
// its images kept. A record created long before the submission began is an
// earlier job's (its message outlived the duplicate window): a repeat (200,
// images deleted), as is a record that names another message.
func TestRecordWithoutJobSeqFoundAfterTheStore(t *testing.T) {
	t.Parallel()
	js, topo := provisioned(t)
	ctx := t.Context()
	s, err := NewSubmitter(ctx, js, topo, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i, tc := range []struct {
		name      string
		createdAt time.Duration // the record's creation, from the submission's start
		otherSeq  bool          // the record names another message (JobSeq)
		stored    bool
	}{
		{"an old worker's record of this message", 8 * time.Millisecond, false, true},
		{"the worker's clock a little behind", -30 * time.Second, false, true},
		{"an earlier job's record", -20 * time.Minute, false, false},
		{"a record naming another message", 8 * time.Millisecond, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := &messages.VerificationRequest{JobID: fmt.Sprintf("job-no-seq-%d", i), CustomerInternalReference: "order-no-seq",
				WorkflowDefinition: messages.WorkflowDefinition{Key: "10066"}, Channel: messages.ChannelAPI}
			PrepareRequest(req, "", jumio.DefaultRegion, time.Now())
			now := time.Now().UTC()
			req.SubmittedAt = &now // as submit sets it
			o, hash, err := s.jobMessage(req, "submitted over HTTP")
			if err != nil {
				t.Fatal(err)
			}
			ack, err := publish(ctx, js, o)
			if err != nil || ack.Duplicate {
				t.Fatalf("publish: %+v, %v", ack, err)
			}
			at := req.SubmittedAt.Add(tc.createdAt)
			rec := &JobRecord{JobID: req.JobID, Status: StatusAccepted, Region: req.Region, Channel: req.Channel,
				RequestHash: hash, CreatedAt: at, UpdatedAt: at}
			if tc.otherSeq {
				rec.JobSeq = ack.Sequence + 1000
			}
			if _, _, err := s.store.Create(ctx, rec); err != nil {
				t.Fatal(err)
			}
			res, retry, err := s.settle(ctx, req, hash, false, ack, nil)
			if err != nil || retry {
				t.Fatalf("settle = %+v, %v, %v", res, retry, err)
			}
			if res.Stored != tc.stored || res.Repeated == tc.stored {
				t.Errorf("settle = %+v, want stored %v (images kept), repeated %v", res, tc.stored, !tc.stored)
			}
		})
	}
}

// subjectHoldsMessage is JetStream's refusal of a publish that expected
// its subject to hold no message: 10071 on a single replica, 10164 on a
// replicated stream, however wrapped (nats.go wraps the API error, publish
// wraps that). Any other answer, or none, is not.
func TestSubjectHoldsMessage(t *testing.T) {
	t.Parallel()
	refusal := func(code jetstream.ErrorCode) error {
		return &jetstream.APIError{Code: 400, ErrorCode: code, Description: "wrong last sequence: 1"}
	}
	for _, c := range []struct {
		name string
		err  error
		want bool
	}{
		{"10071", refusal(jetstream.JSErrCodeStreamWrongLastSequence), true},
		{"10164 (replicated stream)", refusal(jetstream.JSErrCodeStreamWrongLastSequenceConstant), true},
		{"10071 wrapped", fmt.Errorf("pipeline: publish s: %w", fmt.Errorf("nats: %w", refusal(10071))), true},
		{"10164 wrapped", fmt.Errorf("pipeline: publish s: %w", fmt.Errorf("nats: %w", refusal(10164))), true},
		{"stream full (10077)", refusal(errCodeStreamStoreFailed), false},
		{"stream not found", refusal(jetstream.JSErrCodeStreamNotFound), false},
		{"no answer", fmt.Errorf("pipeline: publish s: %w", context.DeadlineExceeded), false},
		{"nil", nil, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := subjectHoldsMessage(c.err); got != c.want {
				t.Errorf("subjectHoldsMessage(%v) = %v, want %v", c.err, got, c.want)
			}
		})
	}
}

// A replicated stream refuses a publish on a subject that holds a message
// with 10164, not 10071: settle takes it for the same refusal. The job's
// own message (a repeat after a lost acknowledgement) is its acceptance,
// another submission of the request is a repeat, another request a
// conflict; none is "unavailable".
func TestSettleReplicatedRefusal(t *testing.T) {
	t.Parallel()
	js, topo := provisioned(t)
	ctx := t.Context()
	s, err := NewSubmitter(ctx, js, topo, nil)
	if err != nil {
		t.Fatal(err)
	}
	request := func(ref string) *messages.VerificationRequest {
		req := &messages.VerificationRequest{JobID: "job-r3-refused", CustomerInternalReference: ref,
			WorkflowDefinition: messages.WorkflowDefinition{Key: "10066"}, Channel: messages.ChannelAPI}
		PrepareRequest(req, "", jumio.DefaultRegion, time.Now())
		return req
	}
	first := request("order-r3")
	if res, err := s.Submit(ctx, first, "submitted over HTTP"); err != nil || !res.Stored {
		t.Fatalf("first submission: %+v, %v", res, err)
	}
	refused := fmt.Errorf("nats: %w", &jetstream.APIError{Code: 400, ErrorCode: jetstream.JSErrCodeStreamWrongLastSequenceConstant,
		Description: "wrong last sequence: 1"})
	settle := func(req *messages.VerificationRequest) (SubmitResult, error) {
		t.Helper()
		_, hash, err := s.jobMessage(req, "submitted over HTTP")
		if err != nil {
			t.Fatal(err)
		}
		res, retry, err := s.settle(ctx, req, hash, false, nil, refused)
		if retry {
			t.Fatalf("settle asks to publish again: the job's message is pending")
		}
		return res, err
	}
	if res, err := settle(first); err != nil || !res.Stored || res.Repeated {
		t.Errorf("the submission's own message: %+v, %v, want stored", res, err)
	}
	if res, err := settle(request("order-r3")); err != nil || res.Stored || !res.Repeated {
		t.Errorf("another submission of the request: %+v, %v, want a repeat", res, err)
	}
	if _, err := settle(request("order-r3-other")); !errors.Is(err, ErrJobConflict) {
		t.Errorf("another request under the job's ID: %v, want ErrJobConflict", err)
	}
}
