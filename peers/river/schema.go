package riverpeer

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"
)

// schemaSQL is the peer's own state: one row per job (the saga's record,
// updated at each checkpoint) and the decision outbox. fillfactor leaves
// room for HOT updates of kyc_job's rows, which change four times per job.
const schemaSQL = `
CREATE TABLE IF NOT EXISTS kyc_job (
	job_id          text PRIMARY KEY,
	request_hash    bytea NOT NULL,
	region          text NOT NULL,
	status          text NOT NULL,
	account_id      text,
	execution_id    text UNIQUE,
	credentials     jsonb,
	poll_job_id     bigint,
	decision_type   text,
	error           text,
	created_at      timestamptz NOT NULL DEFAULT now(),
	updated_at      timestamptz NOT NULL DEFAULT now()
) WITH (fillfactor = 80);

CREATE TABLE IF NOT EXISTS kyc_decision_outbox (
	id            bigserial PRIMARY KEY,
	execution_id  text NOT NULL UNIQUE,
	job_id        text NOT NULL,
	decision_type text NOT NULL,
	payload       jsonb NOT NULL,
	created_at    timestamptz NOT NULL DEFAULT now()
);
`

// Job statuses in kyc_job.status (the same names as kycpipe's job record).
const (
	StatusAccepted       = "ACCEPTED"
	StatusAccountCreated = "ACCOUNT_CREATED"
	StatusUploaded       = "UPLOADED"
	StatusFinalized      = "FINALIZED"
	StatusDecided        = "DECIDED"
	StatusFailed         = "FAILED"
)

// DecisionChannel is the NOTIFY channel of decisions; the payload is the job
// ID.
const DecisionChannel = "kyc_decision"

// Migrate brings River's schema to its latest version and creates the
// peer's tables. It is idempotent.
func Migrate(ctx context.Context, pool *pgxpool.Pool) error {
	m, err := rivermigrate.New(riverpgxv5.New(pool), nil)
	if err != nil {
		return fmt.Errorf("riverpeer: migrator: %w", err)
	}
	if _, err := m.Migrate(ctx, rivermigrate.DirectionUp, nil); err != nil {
		return fmt.Errorf("riverpeer: migrate river: %w", err)
	}
	if _, err := pool.Exec(ctx, schemaSQL); err != nil {
		return fmt.Errorf("riverpeer: create tables: %w", err)
	}
	return nil
}
