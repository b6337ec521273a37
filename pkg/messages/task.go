package messages

import (
	"time"
)

// SchemaRetrievalTask identifies RetrievalTask payloads.
const SchemaRetrievalTask = "kycpipe.retrieval.v1"

// RetrievalTask is the internal message that makes the retriever poll a
// workflow execution until it reaches a terminal status, published on
// kyc.retrieve.<region> when a job is launched or finalized. Deadline bounds
// the polling; a replayed task gets a new one.
type RetrievalTask struct {
	Schema              string    `json:"schema"`
	JobID               string    `json:"jobId"`
	Region              string    `json:"region"`
	AccountID           string    `json:"accountId"`
	WorkflowExecutionID string    `json:"workflowExecutionId"`
	Deadline            time.Time `json:"deadline"`
}

// DecodeRetrievalTask decodes a retrieval task, tolerating unknown fields,
// and checks that its IDs are well formed.
func DecodeRetrievalTask(b []byte) (*RetrievalTask, error) {
	var t RetrievalTask
	if err := tolerantDecode(b, &t, SchemaRetrievalTask, &t.Schema); err != nil {
		return nil, err
	}
	if !ValidJobID(t.JobID) || !ValidJumioID(t.AccountID) || !ValidJumioID(t.WorkflowExecutionID) {
		return nil, inputError(ErrMalformed, "retrieval task without valid IDs")
	}
	return &t, nil
}
