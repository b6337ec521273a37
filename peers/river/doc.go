// Package riverpeer is kycpipe's verification saga written idiomatically on
// River (github.com/riverqueue/river) and PostgreSQL: the peer that
// `make bench-peers` measures side by side with kycpipe's own pipeline,
// against the same Jumio simulator, with the same job mix and concurrency.
//
// It is a benchmark peer, not a product: it has the saga and the guarantees
// that matter for the comparison, and leaves out what kycpipe adds around it
// (lifecycle events, dead letters, erasure, webhooks, the console).
//
// # The saga
//
//	POST /v1/verifications     one transaction per batch of concurrent requests:
//	                           kyc_job rows + InsertManyTx of kyc_verify jobs
//	kyc_verify (queue verify)  account → prepared data → finalize, each side
//	                           effect checkpointed in kyc_job before the next;
//	                           the finalize checkpoint also inserts the scheduled
//	                           kyc_poll job (the lost-callback fallback)
//	POST /v1/callbacks/jumio   one indexed read and one InsertMany of unique
//	                           kyc_retrieve jobs per batch of callbacks
//	kyc_retrieve (retrieve)    status → details → one transaction: kyc_job DECIDED,
//	kyc_poll     (retrieve)    the decision row in kyc_decision_outbox, NOTIFY
//	                           kyc_decision, the poll job deleted
//
// The decision is published through a transactional outbox: the row in
// kyc_decision_outbox (unique per workflow execution, so there is exactly one
// per execution) is the durable event, and a NOTIFY on channel kyc_decision
// (payload: the job ID) in the same transaction wakes downstream readers.
//
// # Crash safety
//
// The account step records the Jumio account and execution in kyc_job
// before the job goes on; a retry after an error or a crash (River's
// rescuer) resumes after the last recorded step, so it never creates a
// second account unless the process dies between Jumio's answer and that
// commit (the same window kycpipe has, bounded the same way: at most
// AccountConcurrency account calls are in flight).
package riverpeer
