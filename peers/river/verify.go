package riverpeer

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"go.uber.org/zap"

	"github.com/kycpipe/kycpipe/pkg/jumio"
	"github.com/kycpipe/kycpipe/pkg/messages"
)

// credential is what the saga keeps of one of Jumio's credentials: the
// transaction token and the URLs to use it on.
type credential struct {
	Token       string            `json:"token,omitempty"`
	Parts       map[string]string `json:"parts,omitempty"`
	FinalizeURL string            `json:"finalizeUrl,omitempty"`
}

// account is the account step's result, recorded in kyc_job.
type account struct {
	AccountID   string
	ExecutionID string
	Credentials []credential
}

func (a *account) partURL(classifier string) (credential, string, bool) {
	for _, c := range a.Credentials {
		for k, u := range c.Parts {
			if strings.EqualFold(k, classifier) {
				return c, u, true
			}
		}
	}
	return credential{}, "", false
}

func (a *account) finalizer() (credential, bool) {
	for _, c := range a.Credentials {
		if c.Token != "" && c.FinalizeURL != "" {
			return c, true
		}
	}
	return credential{}, false
}

// verifyWorker runs the saga up to finalize. Each side effect at Jumio is
// checkpointed in the job's kyc_job row (its status: ACCEPTED →
// ACCOUNT_CREATED → UPLOADED → FINALIZED) before the next step, so a retry
// (River's, after an error, or the rescuer's, after a crash) skips what is
// recorded and resumes at the first step that is not.
//
// The state table is the checkpoint rather than River's resumable steps
// (ResumableStep with ResumableSetStepTx): measured here, each
// ResumableSetStepTx is a non-HOT update of the river_job row that
// maintains all its indexes, the GIN indexes on args and metadata
// included, and three of them per job were a third of PostgreSQL's
// statement time. kyc_job's updates touch no indexed column after the
// account step, so they are HOT updates.
type verifyWorker struct {
	river.WorkerDefaults[VerifyArgs]
	p *Peer
}

// Work runs the remaining steps of the job.
func (w *verifyWorker) Work(ctx context.Context, job *river.Job[VerifyArgs]) error {
	p := w.p
	req := job.Args.Request
	if req == nil || req.JobID == "" {
		return river.JobCancel(errors.New("kyc_verify job without a request"))
	}
	log := p.log.With(zap.String("job_id", req.JobID))
	client, err := p.client(req.Region)
	if err != nil {
		return p.fail(ctx, req.JobID, err)
	}
	if len(req.Parts) > 0 {
		return p.fail(ctx, req.JobID, errors.New("image parts are not supported by the River peer"))
	}
	status, acct := StatusAccepted, (*account)(nil)
	if job.Attempt > 1 {
		// A retry: resume after the last recorded step.
		if status, acct, err = p.loadJob(ctx, req.JobID); err != nil {
			return err
		}
	}
	if status == StatusDecided || status == StatusFailed || status == StatusFinalized {
		return nil
	}

	if acct == nil {
		if acct, err = w.createAccount(ctx, req, client, log); err != nil {
			return err
		}
		status = StatusAccountCreated
	}

	if status == StatusAccountCreated && req.PreparedData != nil {
		cred, u, ok := acct.partURL(jumio.PartPreparedData)
		if !ok {
			return p.fail(ctx, req.JobID, errors.New("the workflow has no credential that accepts prepared data"))
		}
		if _, err := client.UploadPreparedData(ctx, u, cred.Token, req.PreparedData); err != nil {
			if over, cerr := acquisitionOver(ctx, client, acct, err); cerr != nil || !over {
				return p.jumioFailure(ctx, req.JobID, cmp.Or(cerr, err))
			}
		}
		if err := p.record(ctx, log, "prepared_data", func(ctx context.Context) error {
			_, err := p.pool.Exec(ctx, `UPDATE kyc_job SET status = 'UPLOADED', updated_at = now() WHERE job_id = $1 AND status = 'ACCOUNT_CREATED'`, req.JobID)
			return err
		}); err != nil {
			return err
		}
	}

	cred, ok := acct.finalizer()
	if !ok {
		return p.fail(ctx, req.JobID, errors.New("the workflow allows no API finalize"))
	}
	if _, err := client.Finalize(ctx, cred.FinalizeURL, cred.Token); err != nil {
		if over, cerr := acquisitionOver(ctx, client, acct, err); cerr != nil || !over {
			return p.jumioFailure(ctx, req.JobID, cmp.Or(cerr, err))
		}
	}
	now := p.cfg.Now()
	poll := PollArgs{JobID: req.JobID, AccountID: acct.AccountID, ExecutionID: acct.ExecutionID, Region: req.Region, Deadline: now.Add(p.cfg.ProcessingGrace)}
	if err := p.record(ctx, log, "finalize", func(ctx context.Context) error {
		return pgx.BeginFunc(ctx, p.pool, func(tx pgx.Tx) error {
			// A callback may have been handled before this commit: then the
			// job is DECIDED already and needs no poll job.
			tag, err := tx.Exec(ctx, `UPDATE kyc_job SET status = 'FINALIZED', updated_at = now() WHERE job_id = $1 AND status NOT IN ('DECIDED', 'FAILED')`, req.JobID)
			if err != nil || tag.RowsAffected() == 0 {
				return err
			}
			res, err := p.river.InsertTx(ctx, tx, poll, &river.InsertOpts{ScheduledAt: now.Add(p.cfg.PollSchedule[0])})
			if err != nil {
				return err
			}
			_, err = tx.Exec(ctx, `UPDATE kyc_job SET poll_job_id = $2 WHERE job_id = $1`, req.JobID, res.Job.ID)
			return err
		})
	}); err != nil {
		return err
	}
	log.Info("finalized", zap.String("workflow_execution_id", acct.ExecutionID))
	return nil
}

// createAccount creates the Jumio account (or a new execution on the job's
// existing account) and records it before anything else.
func (w *verifyWorker) createAccount(ctx context.Context, req *messages.VerificationRequest, client *jumio.Client, log *zap.Logger) (*account, error) {
	p := w.p
	areq := &jumio.AccountRequest{
		CustomerInternalReference: req.CustomerInternalReference,
		WorkflowDefinition:        req.WorkflowDefinition,
		UserReference:             req.UserReference,
		ReportingCriteria:         req.ReportingCriteria,
		CallbackURL:               cmp.Or(req.CallbackURL, p.cfg.CallbackURL),
		TokenLifetime:             req.TokenLifetime,
		Web:                       req.Web,
		UserConsent:               req.UserConsent,
	}
	select {
	case p.accountSlots <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	var resp *jumio.AccountResponse
	var err error
	if req.AccountID != "" {
		resp, err = client.UpdateAccount(ctx, req.AccountID, areq)
	} else {
		resp, err = client.CreateAccount(ctx, areq)
	}
	<-p.accountSlots
	if err != nil {
		return nil, p.jumioFailure(ctx, req.JobID, err)
	}
	if !jumio.ValidID(resp.Account.ID) || !jumio.ValidID(resp.WorkflowExecution.ID) {
		return nil, errors.New("jumio account response without valid account or execution ID")
	}
	acct := &account{AccountID: resp.Account.ID, ExecutionID: resp.WorkflowExecution.ID}
	for _, c := range resp.WorkflowExecution.Credentials {
		if c.API != nil {
			acct.Credentials = append(acct.Credentials, credential{Token: c.API.Token, Parts: c.API.Parts, FinalizeURL: c.API.WorkflowExecution})
		}
	}
	creds, err := json.Marshal(acct.Credentials)
	if err != nil {
		return nil, err
	}
	// Until this is recorded, a retry would create a second account:
	// insist (the job stays running meanwhile).
	var taken bool
	if err := p.record(ctx, log, "account", func(ctx context.Context) error {
		tag, err := p.pool.Exec(ctx, `
			UPDATE kyc_job SET account_id = $2, execution_id = $3, credentials = $4, status = 'ACCOUNT_CREATED', updated_at = now()
			WHERE job_id = $1 AND execution_id IS NULL`, req.JobID, acct.AccountID, acct.ExecutionID, creds)
		taken = err == nil && tag.RowsAffected() == 0
		return err
	}); err != nil {
		return nil, err
	}
	if taken {
		// Another attempt recorded an execution first (possible only after
		// River rescued this job as stuck): ours is an orphan we know, so
		// delete it at Jumio and carry on with the recorded one.
		if req.AccountID == "" {
			err = client.DeleteAccount(ctx, acct.AccountID)
		} else {
			err = client.DeleteWorkflowExecution(ctx, acct.AccountID, acct.ExecutionID)
		}
		log.Warn("another attempt recorded an execution first; deleted ours at Jumio", zap.NamedError("delete_error", err))
		_, recorded, lerr := p.loadJob(ctx, req.JobID)
		if lerr != nil || recorded == nil {
			return nil, cmp.Or(lerr, errors.New("kyc_job has no account after a concurrent attempt"))
		}
		return recorded, nil
	}
	log.Info("jumio account ready", zap.String("account_id", acct.AccountID), zap.String("workflow_execution_id", acct.ExecutionID), zap.Bool("existing_account", req.AccountID != ""))
	return acct, nil
}

// record runs fn, which records a side effect, retrying until it succeeds
// or ctx ends: a side effect at Jumio that is not recorded would be
// repeated by the next attempt.
func (p *Peer) record(ctx context.Context, log *zap.Logger, step string, fn func(ctx context.Context) error) error {
	delay := 50 * time.Millisecond
	for attempt := 1; ; attempt++ {
		err := fn(ctx)
		if err == nil || ctx.Err() != nil {
			return err
		}
		if attempt == 1 || attempt%20 == 0 {
			log.Warn("cannot record a Jumio side effect yet; retrying", zap.String("step", step), zap.Int("attempt", attempt), zap.Error(err))
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
		delay = min(delay*2, 2*time.Second)
	}
}

// loadJob reads a job's status and recorded account (nil when none is).
func (p *Peer) loadJob(ctx context.Context, jobID string) (string, *account, error) {
	var status string
	var acctID, execID *string
	var creds []byte
	err := p.pool.QueryRow(ctx, `SELECT status, account_id, execution_id, credentials FROM kyc_job WHERE job_id = $1`, jobID).Scan(&status, &acctID, &execID, &creds)
	if err != nil {
		return "", nil, fmt.Errorf("riverpeer: load job %s: %w", jobID, err)
	}
	if execID == nil {
		return status, nil, nil
	}
	a := &account{AccountID: *acctID, ExecutionID: *execID}
	if err := json.Unmarshal(creds, &a.Credentials); err != nil {
		return "", nil, fmt.Errorf("riverpeer: job %s credentials: %w", jobID, err)
	}
	return status, a, nil
}

// acquisitionOver tells whether a refused credential call was refused
// because an earlier attempt already finalized the execution (Jumio
// consumed the transaction token).
func acquisitionOver(ctx context.Context, client *jumio.Client, a *account, callErr error) (bool, error) {
	if !errors.Is(callErr, jumio.ErrUnauthorized) && !errors.Is(callErr, jumio.ErrForbidden) && !errors.Is(callErr, jumio.ErrNotFound) {
		return false, nil
	}
	st, err := client.WorkflowStatus(ctx, a.AccountID, a.ExecutionID)
	if err != nil {
		return false, fmt.Errorf("check execution status after %v: %w", callErr, err)
	}
	s := st.WorkflowExecution.Status
	return s != jumio.StatusInitiated && s != jumio.StatusAcquisitionStarted, nil
}

// jumioFailure maps a Jumio error to River's control flow: 429 and local
// throttling snooze (no attempt used), other retryable errors are returned
// for River's retry policy, anything else fails the job for good.
func (p *Peer) jumioFailure(ctx context.Context, jobID string, err error) error {
	if jumio.IsRetryable(err) {
		if d, ok := jumio.RetryAfter(err); ok && (errors.Is(err, jumio.ErrRateLimited) || errors.Is(err, jumio.ErrThrottled)) {
			return river.JobSnooze(d)
		}
		return err
	}
	return p.fail(ctx, jobID, err)
}

// fail records the job as FAILED and cancels the River job (no retry).
func (p *Peer) fail(ctx context.Context, jobID string, cause error) error {
	if _, err := p.pool.Exec(ctx, `UPDATE kyc_job SET status = 'FAILED', error = $2, updated_at = now() WHERE job_id = $1 AND status <> 'DECIDED'`, jobID, cause.Error()); err != nil {
		return fmt.Errorf("riverpeer: record failure (%v): %w", cause, err)
	}
	p.log.Warn("job failed", zap.String("job_id", jobID), zap.Error(cause))
	return river.JobCancel(cause)
}

// client returns the Jumio client of a region ("" is the default region).
func (p *Peer) client(region string) (*jumio.Client, error) {
	r := jumio.DefaultRegion
	if region != "" {
		var err error
		if r, err = jumio.ParseRegion(region); err != nil {
			return nil, err
		}
	}
	return p.cfg.Jumio(r)
}
