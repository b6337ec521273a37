package pipeline

import (
	"context"
	"errors"
	"net/http"

	"go.uber.org/zap"

	"github.com/kycpipe/kycpipe/pkg/messages"
)

// erase answers DELETE /v1/verifications/{jobId} (scope erase): 202
// {"jobId","status":"ERASING"} once the erasure is durably queued (repeats
// answer the same), 200 with the tombstone once it is done, 404 for an
// unknown job (DESIGN 3.7).
func (in *Ingest) erase(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("jobId")
	if !messages.ValidJobID(id) {
		writeProblem(w, Problem{Type: ProblemNotFound, Status: http.StatusNotFound, Detail: "unknown job"})
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 2*in.cfg.PublishTimeout)
	defer cancel()
	actor := PrincipalFrom(r.Context()).Name
	rec, err := RequestErasure(ctx, in.js, in.store, in.subj, ErasureRequest{JobID: id, Source: messages.ErasureRequest, Actor: actor})
	switch {
	case errors.Is(err, ErrJobNotFound):
		writeProblem(w, Problem{Type: ProblemNotFound, Status: http.StatusNotFound, Detail: "unknown job"})
	case err != nil:
		in.log.Warn("cannot queue an erasure", jobField(id), zap.Error(err))
		writeUnavailable(w, in.cfg.RetryAfter, "cannot queue the erasure now")
	case rec.Status == StatusErased:
		writeJSON(w, http.StatusOK, NewJobView(rec))
	default:
		in.log.Info("erasure queued", jobField(id), zap.String("key", actor))
		w.Header().Set("Location", "/v1/verifications/"+id)
		writeJSON(w, http.StatusAccepted, submitResponse{JobID: id, Status: StatusErasing})
	}
}
