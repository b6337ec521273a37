package riverpeer

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
	"go.uber.org/zap"

	"github.com/kycpipe/kycpipe/pkg/jumio"
	"github.com/kycpipe/kycpipe/pkg/messages"
)

// execution names the workflow execution a retrieval is for.
type execution struct {
	jobID, accountID, executionID, region string
}

// retrieveWorker handles kyc_retrieve: the callback's trigger.
type retrieveWorker struct {
	river.WorkerDefaults[RetrieveArgs]
	p *Peer
}

// Work retrieves and publishes the decision.
func (w *retrieveWorker) Work(ctx context.Context, job *river.Job[RetrieveArgs]) error {
	a := job.Args
	return w.p.retrieve(ctx, execution{a.JobID, a.AccountID, a.ExecutionID, a.Region}, job.JobRow, false)
}

// pollWorker handles kyc_poll: the lost-callback fallback.
type pollWorker struct {
	river.WorkerDefaults[PollArgs]
	p *Peer
}

// Work looks at the execution unless the job is already decided, snoozing
// until the next point of the schedule while it is not done.
func (w *pollWorker) Work(ctx context.Context, job *river.Job[PollArgs]) error {
	p, a := w.p, job.Args
	var status string
	if err := p.pool.QueryRow(ctx, `SELECT status FROM kyc_job WHERE job_id = $1`, a.JobID).Scan(&status); err != nil {
		return fmt.Errorf("riverpeer: poll %s: %w", a.JobID, err)
	}
	if status == StatusDecided || status == StatusFailed {
		return nil
	}
	if p.cfg.Now().After(a.Deadline) {
		return p.fail(ctx, a.JobID, fmt.Errorf("workflow execution not done at its deadline %s", a.Deadline.Format(time.RFC3339)))
	}
	return p.retrieve(ctx, execution{a.JobID, a.AccountID, a.ExecutionID, a.Region}, job.JobRow, true)
}

// nextPoll is the wait until the schedule's next point after the poll job's
// creation (at finalize).
func (p *Peer) nextPoll(created time.Time) time.Duration {
	since := p.cfg.Now().Sub(created)
	i, _ := slices.BinarySearch(p.cfg.PollSchedule, since+time.Second)
	if i < len(p.cfg.PollSchedule) {
		return p.cfg.PollSchedule[i] - since
	}
	return 5 * time.Minute
}

// retrieve reads the execution's status and, once terminal, its details,
// and publishes the decision.
//
// The River job is completed by River's batch completer after Work returns,
// not with JobCompleteTx in the decision's transaction: the decision is
// idempotent by itself (kyc_job's status guard, the outbox's unique
// execution), so a retry after a crash in between finds it published and
// does nothing, and the completer writes many completions per statement
// where JobCompleteTx writes one per job (measured: a single-row
// JobSetStateIfRunningMany per job was a quarter of PostgreSQL's statement
// time).
func (p *Peer) retrieve(ctx context.Context, e execution, job *rivertype.JobRow, poll bool) error {
	client, err := p.client(e.region)
	if err != nil {
		return p.fail(ctx, e.jobID, err)
	}
	st, err := client.WorkflowStatus(ctx, e.accountID, e.executionID)
	if err != nil {
		return p.jumioFailure(ctx, e.jobID, err)
	}
	status := st.WorkflowExecution.Status
	if !jumio.IsTerminalStatus(status) {
		if poll {
			return river.JobSnooze(p.nextPoll(job.CreatedAt))
		}
		return nil // an early callback: the poll job keeps watch
	}
	var ev *messages.DecisionEvent
	if jumio.IsExpiredStatus(status) {
		ev = &messages.DecisionEvent{AccountID: e.accountID, WorkflowExecutionID: e.executionID, WorkflowDefinitionKey: st.WorkflowExecution.DefinitionKey,
			Status: status, Decision: messages.DecisionSummary{Type: messages.DecisionExpired, Label: status}}
	} else {
		details, err := client.WorkflowDetails(ctx, e.accountID, e.executionID)
		if errors.Is(err, jumio.ErrNotFound) {
			return river.JobSnooze(2 * time.Second) // processed, not retrievable yet
		}
		if err != nil {
			return p.jumioFailure(ctx, e.jobID, err)
		}
		ev = decisionEvent(details)
	}
	ev.JobID, ev.Region, ev.DecidedAt = e.jobID, e.region, p.cfg.Now().UTC()
	payload, err := messages.Marshal(ev)
	if err != nil {
		return err
	}
	decided := false
	err = pgx.BeginFunc(ctx, p.pool, func(tx pgx.Tx) error {
		// One statement: the job's record, the outbox row (unique per
		// execution) and the notification, only if not decided before.
		var pollJobID *int64
		err := tx.QueryRow(ctx, `
			WITH j AS (
				UPDATE kyc_job SET status = 'DECIDED', decision_type = $3, updated_at = now()
				WHERE job_id = $1 AND status <> 'DECIDED'
				RETURNING job_id, poll_job_id
			), o AS (
				INSERT INTO kyc_decision_outbox (execution_id, job_id, decision_type, payload)
				SELECT $2, job_id, $3, $4 FROM j
				ON CONFLICT (execution_id) DO NOTHING
				RETURNING job_id
			)
			SELECT j.poll_job_id, pg_notify('`+DecisionChannel+`', o.job_id)::text FROM o JOIN j USING (job_id)`,
			e.jobID, e.executionID, ev.Decision.Type, payload).Scan(&pollJobID, new(string))
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			// Decided before (a duplicate trigger).
		case err != nil:
			return err
		default:
			decided = true
			if pollJobID != nil && *pollJobID != job.ID {
				// The callback cut the wait short: the poll job has nothing
				// left to do.
				if _, err := p.river.JobDeleteTx(ctx, tx, *pollJobID); err != nil && !errors.Is(err, rivertype.ErrJobRunning) && !errors.Is(err, rivertype.ErrNotFound) {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("riverpeer: publish decision of %s: %w", e.jobID, err)
	}
	if decided {
		p.log.Info("decision published", zap.String("job_id", e.jobID), zap.String("decision", ev.Decision.Type), zap.Bool("poll", poll))
	}
	return nil
}

// decisionEvent normalizes a retrieval response into kycpipe's decision
// event (the capabilities summarized by decision and label).
func decisionEvent(d *jumio.WorkflowDetails) *messages.DecisionEvent {
	ev := &messages.DecisionEvent{
		AccountID:                 d.Account.ID,
		WorkflowExecutionID:       d.Workflow.ID,
		CustomerInternalReference: d.Workflow.CustomerInternalReference,
		UserReference:             d.Workflow.UserReference,
		WorkflowDefinitionKey:     d.Workflow.DefinitionKey,
		Status:                    d.Workflow.Status,
		CreatedAt:                 d.CreatedAt,
		StartedAt:                 d.StartedAt,
		CompletedAt:               d.CompletedAt,
		Decision:                  messages.DecisionSummary{Type: d.Decision.Type, Label: d.Decision.Details.Label},
	}
	if d.Decision.Risk != nil {
		score := d.Decision.Risk.Score
		ev.Decision.RiskScore = &score
	}
	if !slices.Contains(messages.DecisionTypes, ev.Decision.Type) {
		ev.Decision.Type = messages.DecisionNotExecuted
	}
	for _, r := range d.Capabilities.All() {
		if ev.Capabilities == nil {
			ev.Capabilities = map[string][]messages.CapabilitySummary{}
		}
		ev.Capabilities[r.Name] = append(ev.Capabilities[r.Name], messages.CapabilitySummary{Decision: r.Decision.Type, Label: r.Decision.Details.Label})
	}
	return ev
}
