package pipeline

import (
	"context"
	"errors"
	"net/http"
	"time"

	"go.uber.org/zap"

	"github.com/kycpipe/kycpipe/pkg/messages"
)

// JobView is the body of GET /v1/verifications/{jobId}.
type JobView struct {
	JobID               string                    `json:"jobId"`
	Status              string                    `json:"status"`
	AccountID           string                    `json:"accountId,omitempty"`
	WorkflowExecutionID string                    `json:"workflowExecutionId,omitempty"`
	Web                 *messages.WebLink         `json:"web,omitempty"`
	SDK                 *messages.SDKToken        `json:"sdk,omitempty"`
	Decision            *messages.DecisionSummary `json:"decision,omitempty"`
	Error               *JobViewError             `json:"error,omitempty"`
	// Erasure is set once the job's erasure was requested; an erasing or
	// erased job shows nothing else but its ID and status.
	Erasure   *ErasureView `json:"erasure,omitempty"`
	CreatedAt time.Time    `json:"createdAt,omitzero"`
	UpdatedAt time.Time    `json:"updatedAt,omitzero"`
}

// ErasureView is what GET shows of a job's erasure (DESIGN 3.7).
type ErasureView struct {
	RequestedAt time.Time `json:"requestedAt"`
	CompletedAt time.Time `json:"completedAt,omitzero"`
	Source      string    `json:"source"`          // REQUEST or RETENTION
	Jumio       string    `json:"jumio,omitempty"` // DELETED, NOT_FOUND, NOT_CREATED, KEPT (once done)
}

// JobViewError is the last error of a failed job.
type JobViewError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// NewJobView builds the public view of a job record.
func NewJobView(rec *JobRecord) JobView {
	if rec.Erasing() {
		v := JobView{JobID: rec.JobID, Status: rec.Status}
		if e := rec.Erasure; e != nil {
			v.Erasure = &ErasureView{RequestedAt: e.RequestedAt, CompletedAt: e.CompletedAt, Source: e.Source}
			if rec.Status == StatusErased {
				v.Erasure.Jumio = e.Jumio
			}
		}
		return v
	}
	v := JobView{JobID: rec.JobID, Status: rec.Status, AccountID: rec.AccountID, WorkflowExecutionID: rec.WorkflowExecutionID,
		Decision: rec.Decision, CreatedAt: rec.CreatedAt, UpdatedAt: rec.UpdatedAt}
	if rec.Announced || rec.Status == StatusDecided {
		if rec.WebHref != "" && rec.Channel == messages.ChannelWeb {
			v.Web = &messages.WebLink{Href: rec.WebHref}
		}
		if rec.SDKToken != "" && rec.Channel == messages.ChannelSDK {
			v.SDK = &messages.SDKToken{Token: rec.SDKToken}
		}
	}
	if rec.Status == StatusFailed && rec.LastError != nil {
		v.Error = &JobViewError{Code: rec.LastError.Code, Message: rec.LastError.Message}
	}
	return v
}

func (in *Ingest) status(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("jobId")
	if !messages.ValidJobID(id) {
		writeProblem(w, Problem{Type: ProblemNotFound, Status: http.StatusNotFound, Detail: "unknown job"})
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), in.cfg.PublishTimeout)
	defer cancel()
	rec, err := in.lookupJob(ctx, id)
	if errors.Is(err, ErrJobNotFound) {
		// A replica that has not seen the record yet answers "none" for a
		// job accepted a moment before: the leader confirms a 404.
		rec, _, err = in.store.getLatest(ctx, id)
	}
	if errors.Is(err, ErrJobNotFound) {
		writeProblem(w, Problem{Type: ProblemNotFound, Status: http.StatusNotFound, Detail: "unknown job"})
		return
	}
	if err != nil {
		in.log.Warn("cannot read job", jobField(id), zap.Error(err))
		writeUnavailable(w, in.cfg.RetryAfter, "cannot read the job now")
		return
	}
	writeJSON(w, http.StatusOK, NewJobView(rec))
}
