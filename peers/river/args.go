package riverpeer

import (
	"time"

	"github.com/riverqueue/river"

	"github.com/kycpipe/kycpipe/pkg/messages"
)

// Queues. Each has its own worker pool (Config.VerifyWorkers,
// Config.RetrieveWorkers), as kycpipe's worker and retriever have.
const (
	QueueVerify   = "verify"
	QueueRetrieve = "retrieve"
)

// VerifyArgs is the saga's first job: the verification request itself, as
// kycpipe's job message carries it.
type VerifyArgs struct {
	Request *messages.VerificationRequest `json:"request"`
}

// Kind is the job's wire name.
func (VerifyArgs) Kind() string { return "kyc_verify" }

// InsertOpts routes the job to the verify queue.
func (VerifyArgs) InsertOpts() river.InsertOpts { return river.InsertOpts{Queue: QueueVerify} }

// RetrieveArgs is inserted by the callback receiver when Jumio reports a
// terminal status: retrieve the decision and publish it. It is unique by
// execution, so duplicate callbacks make one job.
type RetrieveArgs struct {
	JobID       string `json:"jobId"`
	AccountID   string `json:"accountId"`
	ExecutionID string `json:"executionId" river:"unique"`
	Region      string `json:"region,omitempty"`
}

// Kind is the job's wire name.
func (RetrieveArgs) Kind() string { return "kyc_retrieve" }

// InsertOpts routes the job to the retrieve queue, unique per execution.
func (RetrieveArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: QueueRetrieve, UniqueOpts: river.UniqueOpts{ByArgs: true}}
}

// PollArgs is the lost-callback fallback, scheduled when the execution is
// finalized (River's durable timer): it checks the status on Jumio's
// recommended schedule, snoozing in between, until a decision or the
// deadline. The decision deletes it. It needs no unique key: the finalize
// checkpoint inserts it once, in the transaction that moves kyc_job to
// FINALIZED.
type PollArgs struct {
	JobID       string    `json:"jobId"`
	AccountID   string    `json:"accountId"`
	ExecutionID string    `json:"executionId"`
	Region      string    `json:"region,omitempty"`
	Deadline    time.Time `json:"deadline"`
}

// Kind is the job's wire name.
func (PollArgs) Kind() string { return "kyc_poll" }

// InsertOpts routes the job to the retrieve queue.
func (PollArgs) InsertOpts() river.InsertOpts { return river.InsertOpts{Queue: QueueRetrieve} }
