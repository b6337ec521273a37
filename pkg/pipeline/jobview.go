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
	CreatedAt           time.Time                 `json:"createdAt"`
	UpdatedAt           time.Time                 `json:"updatedAt,omitzero"`
}

// JobViewError is the last error of a failed job.
type JobViewError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// NewJobView builds the public view of a job record.
func NewJobView(rec *JobRecord) JobView {
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
	rec, _, err := in.store.Get(ctx, id)
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
