// Package soak is kycpipe's chaos and soak harness: it runs ingest, several
// worker and retriever processes and the Jumio simulator with faults on,
// submits jobs, and meanwhile SIGKILLs and restarts workers and retrievers,
// restarts the NATS server (or, in cluster mode, kills and restarts one node
// of a 3-node JetStream cluster). At the end it checks the pipeline's
// promises: nothing lost, one Jumio execution per job, one decision per
// execution, at most one finalize per execution.
//
// # Files
//
//   - options.go: [Options], what a run is configured with, and its defaults.
//   - harness.go: [Run] and the harness: the embedded NATS nodes, the Jumio
//     simulator, the ingest, worker and retriever processes, their setup and
//     teardown, and the phases of a run (load with chaos, restore, drain,
//     check).
//   - chaos.go: the chaos loops: SIGKILLs of workers and retrievers, NATS
//     restarts or cluster node losses, Jumio fault and latency injection.
//   - load.go: the submission workload: job bodies, even pacing, and
//     submissions retried with the same Idempotency-Key until accepted.
//   - invariants.go: the end of a run: draining the decision and dead-letter
//     streams, and computing the invariants from the streams, the job store
//     and the simulator's counters.
//   - report.go: what a run returns and prints: [Invariant], [Report] and its
//     Markdown rendering, [Hostname].
//   - rate.go: [MeasureAccountRate] and [RateReport], the measurement of the
//     shared Jumio account-rate limit across workers.
package soak
