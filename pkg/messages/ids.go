package messages

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/binary"
	"strconv"
	"time"
)

// crockford is Crockford's base32 alphabet in lower case: no i, l, o or u.
var crockford = base32.NewEncoding("0123456789abcdefghjkmnpqrstvwxyz").WithPadding(base32.NoPadding)

// NewJobID returns a new job ID: "job_" followed by 26 characters that sort
// by creation time (48 bits of milliseconds, 80 random bits).
func NewJobID(now time.Time) string {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], uint64(now.UnixMilli())<<16)
	_, _ = rand.Read(b[6:])
	return "job_" + crockford.EncodeToString(b[:])
}

// IdempotentJobID derives a job ID from an Idempotency-Key, so that every
// submission with the same key names the same job: "idem_" followed by 26
// characters of the key's SHA-256.
func IdempotentJobID(key string) string {
	sum := sha256.Sum256([]byte("kycpipe/idempotency-key/v1\x00" + key))
	return "idem_" + crockford.EncodeToString(sum[:16])
}

// Message IDs (the Nats-Msg-Id header) of what the pipeline publishes.
// JetStream drops a second message with the same ID within the stream's
// duplicate window, so each ID names exactly one fact: publishing it again
// after a crash is harmless.

// SubmitMsgID is the message ID of a job submission: the job ID.
func SubmitMsgID(jobID string) string { return jobID }

// EventMsgID is the message ID of a job's lifecycle event of kind.
func EventMsgID(kind, jobID string) string { return kind + ":" + jobID }

// DecisionMsgID is the message ID of an execution's decision event: the
// workflow execution ID.
func DecisionMsgID(executionID string) string { return executionID }

// PollMsgID is the message ID of an execution's retrieval task.
func PollMsgID(executionID string) string { return "poll:" + executionID }

// CallbackMsgID is the message ID of a received callback: one per
// execution and status. callbackSentAt is not part of it: a sender
// changing only that must not get a second retrieval (Security II,
// finding 3).
func CallbackMsgID(executionID, status string) string {
	return "cb:" + executionID + ":" + status
}

// DeadLetterMsgID is the message ID of the dead letter of the message at
// seq in stream: a stage that gives up twice on it stores one letter.
func DeadLetterMsgID(stream string, seq uint64) string {
	return "dlq:" + stream + ":" + strconv.FormatUint(seq, 10)
}

// ReplayMsgID is the message ID of the replay of the dead letter at seq in
// the dead-letter stream: two operators replaying it yield one message.
func ReplayMsgID(dlqStream string, seq uint64) string {
	return "replay:" + dlqStream + ":" + strconv.FormatUint(seq, 10)
}
