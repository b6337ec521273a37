package riverpeer

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"go.uber.org/zap"

	"github.com/kycpipe/kycpipe/pkg/jumio"
	"github.com/kycpipe/kycpipe/pkg/messages"
)

// submission is one accepted-for-storage request.
type submission struct {
	req  *messages.VerificationRequest
	hash [32]byte
}

// submitResult says what became of a submission.
type submitResult int

const (
	submitAccepted  submitResult = iota // stored now
	submitDuplicate                     // stored before, same body
	submitConflict                      // the job ID is taken by another body
)

// handleSubmit is POST /v1/verifications: the same checks as kycpipe's
// ingest (bearer key, content type, size, strict decoding, Jumio's rules),
// then the job is stored and answered 202 once committed.
func (p *Peer) handleSubmit(w http.ResponseWriter, r *http.Request) {
	if !p.authorized(r) {
		problem(w, http.StatusUnauthorized, "missing or unknown API key")
		return
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		problem(w, http.StatusUnsupportedMediaType, "the body must be application/json")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, messages.MaxRequestJSONSize))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			problem(w, http.StatusRequestEntityTooLarge, "body too large")
			return
		}
		problem(w, http.StatusBadRequest, "cannot read the body")
		return
	}
	req, err := messages.DecodeRequest(body)
	if err != nil {
		problem(w, http.StatusBadRequest, messages.DescribeJSONError(err))
		return
	}
	if err := req.Validate(); err != nil {
		problem(w, http.StatusUnprocessableEntity, err.Error())
		return
	}
	now := p.cfg.Now().UTC()
	if req.JobID == "" {
		req.JobID = messages.NewJobID(now)
	}
	req.SubmittedAt = &now
	res, err := p.submissions.do(r.Context(), submission{req: req, hash: sha256.Sum256(body)})
	if err != nil {
		p.log.Warn("submission not stored", zap.String("job_id", req.JobID), zap.Error(err))
		w.Header().Set("Retry-After", "1")
		problem(w, http.StatusServiceUnavailable, "the job could not be stored; retry")
		return
	}
	status := http.StatusAccepted
	switch res {
	case submitDuplicate:
		status = http.StatusOK
	case submitConflict:
		problem(w, http.StatusConflict, "the job ID is already used by another request")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	fmt.Fprintf(w, `{"jobId":%q,"status":"ACCEPTED"}`, req.JobID)
}

func (p *Peer) authorized(r *http.Request) bool {
	if len(p.cfg.APIKeys) == 0 {
		return true
	}
	key, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		return false
	}
	match := 0
	for _, k := range p.cfg.APIKeys {
		match |= subtle.ConstantTimeCompare([]byte(key), []byte(k))
	}
	return match == 1
}

// flushSubmissions stores a batch in one transaction: the kyc_job rows
// (the job ID is the primary key: a repeat is a duplicate or a conflict)
// and, for the new ones, their kyc_verify jobs with one InsertManyTx.
func (p *Peer) flushSubmissions(ctx context.Context, subs []submission) ([]submitResult, error) {
	ids := make([]string, len(subs))
	hashes := make([][]byte, len(subs))
	regions := make([]string, len(subs))
	for i, s := range subs {
		ids[i], hashes[i], regions[i] = s.req.JobID, s.hash[:], s.req.Region
	}
	tx, err := p.ingestPool.Begin(ctx)
	if err != nil {
		return nil, err
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	rows, err := tx.Query(ctx, `
		INSERT INTO kyc_job (job_id, request_hash, region, status)
		SELECT id, h, r, 'ACCEPTED' FROM unnest($1::text[], $2::bytea[], $3::text[]) AS t(id, h, r)
		ON CONFLICT (job_id) DO NOTHING
		RETURNING job_id`, ids, hashes, regions)
	if err != nil {
		return nil, err
	}
	inserted, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, err
	}
	fresh := make(map[string]bool, len(inserted))
	for _, id := range inserted {
		fresh[id] = true
	}
	out := make([]submitResult, len(subs))
	params := make([]river.InsertManyParams, 0, len(inserted))
	var repeated []string
	for i, s := range subs {
		if fresh[s.req.JobID] {
			delete(fresh, s.req.JobID) // a repeat within the batch is a duplicate
			params = append(params, river.InsertManyParams{Args: VerifyArgs{Request: s.req}})
			out[i] = submitAccepted
			continue
		}
		repeated = append(repeated, s.req.JobID)
		out[i] = submitDuplicate
	}
	if len(repeated) > 0 {
		rows, err := tx.Query(ctx, `SELECT job_id, request_hash FROM kyc_job WHERE job_id = ANY($1)`, repeated)
		if err != nil {
			return nil, err
		}
		stored := map[string][]byte{}
		var id string
		var h []byte
		if _, err := pgx.ForEachRow(rows, []any{&id, &h}, func() error { stored[id] = bytes.Clone(h); return nil }); err != nil {
			return nil, err
		}
		for i, s := range subs {
			if out[i] == submitDuplicate && !bytes.Equal(stored[s.req.JobID], s.hash[:]) {
				out[i] = submitConflict
			}
		}
	}
	if len(params) > 0 {
		if _, err := p.river.InsertManyTx(ctx, tx, params); err != nil {
			return nil, err
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, err
	}
	return out, nil
}

// callbackItem is one terminal callback.
type callbackItem struct {
	executionID, accountID, status string
}

// handleCallback is POST /v1/callbacks/jumio. A terminal callback inserts
// the execution's kyc_retrieve job, and is answered once that is committed;
// the callback is only a trigger (the decision is read from the retrieval
// API).
func (p *Peer) handleCallback(w http.ResponseWriter, r *http.Request) {
	cb, err := messages.ParseCallback(http.MaxBytesReader(w, r.Body, messages.MaxCallbackSize+1))
	if err != nil {
		problem(w, http.StatusBadRequest, "not a Jumio callback")
		return
	}
	if !jumio.IsTerminalStatus(cb.WorkflowExecution.Status) {
		w.WriteHeader(http.StatusOK) // intermediate: the poll job keeps watch
		return
	}
	known, err := p.callbacks.do(r.Context(), callbackItem{executionID: cb.WorkflowExecution.ID, accountID: cb.Account.ID, status: cb.WorkflowExecution.Status})
	if err != nil {
		p.log.Warn("callback not stored", zap.String("workflow_execution_id", cb.WorkflowExecution.ID), zap.Error(err))
		problem(w, http.StatusServiceUnavailable, "the callback could not be stored; retry")
		return
	}
	if !known {
		p.log.Warn("callback for a workflow execution no job knows", zap.String("workflow_execution_id", cb.WorkflowExecution.ID))
	}
	w.WriteHeader(http.StatusOK)
}

// flushCallbacks looks the batch's executions up (one indexed read) and
// inserts a kyc_retrieve job for each known, undecided one with one
// InsertMany: one transaction, unique by execution, so a duplicate callback
// adds nothing. The retrieve job is the callback's record.
func (p *Peer) flushCallbacks(ctx context.Context, cbs []callbackItem) ([]bool, error) {
	execs := make([]string, len(cbs))
	for i, c := range cbs {
		execs[i] = c.executionID
	}
	rows, err := p.ingestPool.Query(ctx, `SELECT job_id, account_id, execution_id, status, region FROM kyc_job WHERE execution_id = ANY($1::text[])`, execs)
	if err != nil {
		return nil, err
	}
	type known struct{ jobID, accountID, status, region string }
	byExec := map[string]known{}
	var k known
	var exec string
	if _, err := pgx.ForEachRow(rows, []any{&k.jobID, &k.accountID, &exec, &k.status, &k.region}, func() error { byExec[exec] = k; return nil }); err != nil {
		return nil, err
	}
	out := make([]bool, len(cbs))
	var params []river.InsertManyParams
	for i, c := range cbs {
		k, ok := byExec[c.executionID]
		if !ok || k.accountID != c.accountID {
			continue
		}
		out[i] = true
		if k.status != StatusDecided && k.status != StatusFailed {
			params = append(params, river.InsertManyParams{Args: RetrieveArgs{JobID: k.jobID, AccountID: k.accountID, ExecutionID: c.executionID, Region: k.region}})
		}
	}
	if len(params) > 0 {
		if err := pgx.BeginFunc(ctx, p.ingestPool, func(tx pgx.Tx) error {
			_, err := p.river.InsertManyTx(ctx, tx, params)
			return err
		}); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// problem writes an application/problem+json answer.
func problem(w http.ResponseWriter, status int, detail string) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"type": "about:blank", "title": http.StatusText(status), "status": status, "detail": detail})
}
