package messages

import (
	"crypto/sha256"
	"encoding/base32"
	"fmt"
	"time"
)

// Erasure sources (DESIGN 3.7).
const (
	ErasureRequest   = "REQUEST"   // DELETE /v1/verifications/{jobId} or kycctl erase
	ErasureRetention = "RETENTION" // the job ended longer ago than KYCPIPE_RETENTION
)

// What happened at Jumio when a job was erased.
const (
	JumioDeleted    = "DELETED"     // the account (or the job's execution) was deleted
	JumioNotFound   = "NOT_FOUND"   // Jumio no longer had it (404)
	JumioNotCreated = "NOT_CREATED" // the job never reached Jumio
	JumioKept       = "KEPT"        // KYCPIPE_RETENTION_JUMIO=false: left to Jumio's own retention
)

// SchemaErasureTask identifies ErasureTask payloads.
const SchemaErasureTask = "kycpipe.erasure.v1"

// ErasureTask is the internal message that makes a worker erase a job
// (kyc.erasures.<jobId>, work queue). It carries IDs, no personal data.
type ErasureTask struct {
	Schema      string    `json:"schema"`
	JobID       string    `json:"jobId"`
	Source      string    `json:"source"`
	Actor       string    `json:"actor"` // the API key's NAME, or the tool that asked
	RequestedAt time.Time `json:"requestedAt"`
}

func (t *ErasureTask) stamp() { t.Schema = SchemaErasureTask }

// DecodeErasureTask decodes an erasure task and checks its job ID.
func DecodeErasureTask(b []byte) (*ErasureTask, error) {
	var t ErasureTask
	if err := tolerantDecode(b, &t, SchemaErasureTask, &t.Schema); err != nil {
		return nil, err
	}
	if !ValidJobID(t.JobID) {
		return nil, inputError(ErrMalformed, "erasure task without a valid jobId")
	}
	if t.Source != ErasureRequest && t.Source != ErasureRetention {
		return nil, inputError(ErrMalformed, fmt.Sprintf("erasure source %q", truncate(t.Source, 16)))
	}
	return &t, nil
}

// SchemaAudit identifies audit records.
const SchemaAudit = "kycpipe.audit.v1"

// Audit actions (the last token of kyc.audit.<action>).
const (
	AuditErasure = "erasure"
	AuditReveal  = "reveal"
)

// AuditRecord is an entry of the audit trail (kyc.audit.<action>, stream
// KYC_AUDIT): who did what to which job, and when. It never carries
// personal data.
type AuditRecord struct {
	Schema string    `json:"schema"`
	Action string    `json:"action"` // erasure, reveal
	JobID  string    `json:"jobId"`
	Actor  string    `json:"actor"` // an API key's NAME, never the key
	At     time.Time `json:"at"`

	// Erasure.
	Source      string          `json:"source,omitempty"`
	RequestedAt *time.Time      `json:"requestedAt,omitempty"`
	CompletedAt *time.Time      `json:"completedAt,omitempty"`
	Jumio       string          `json:"jumio,omitempty"`
	Removed     *ErasureRemoved `json:"removed,omitempty"`

	// Reveal: which fields were shown.
	Fields []string `json:"fields,omitempty"`
}

// ErasureRemoved counts what an erasure removed.
type ErasureRemoved struct {
	Messages    int `json:"messages"`
	Images      int `json:"images"`
	KVRevisions int `json:"kvRevisions"`
}

func (a *AuditRecord) stamp() { a.Schema = SchemaAudit }

// DecodeAudit decodes an audit record, tolerating unknown fields.
func DecodeAudit(b []byte) (*AuditRecord, error) {
	var a AuditRecord
	if err := tolerantDecode(b, &a, SchemaAudit, &a.Schema); err != nil {
		return nil, err
	}
	if a.JobID == "" || a.Action == "" {
		return nil, inputError(ErrMalformed, "audit record without jobId or action")
	}
	return &a, nil
}

// RefHash is the index key of a reference (customerInternalReference,
// userReference): 16 characters of its SHA-256, so the index holds no
// reference in the clear.
func RefHash(ref string) string {
	sum := sha256.Sum256([]byte("kycpipe/index/ref/v1\x00" + ref))
	return base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(sum[:10])
}

// ErasureMsgID is the message ID of a job's erasure task: one per job.
func ErasureMsgID(jobID string) string { return "erase:" + jobID }

// AuditMsgID is the message ID of an audit record of action on a job at
// a given instant.
func AuditMsgID(action, jobID string, at time.Time) string {
	return "audit:" + action + ":" + jobID + ":" + at.UTC().Format(time.RFC3339Nano)
}
