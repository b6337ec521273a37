// Package soak is kycpipe's chaos and soak harness: it runs ingest, several
// worker, retriever and notifier processes, the Jumio simulator with faults
// on and the example webhook receiver (examples/webhook-receiver) failing a
// tenth of the deliveries, submits jobs and erases 5% of them at random
// moments, and meanwhile SIGKILLs and restarts workers, retrievers and
// notifiers, restarts the NATS server (or, in cluster mode, kills and
// restarts one node of a 3-node JetStream cluster). At the end it checks the
// pipeline's promises: nothing lost, one Jumio execution per job, one
// decision per execution, at most one finalize per execution, none both
// decided and dead-lettered; every erasure done, no marker of an erased job
// in any stream, bucket or object store, no Jumio call for a job after its
// erasure's 202; every event delivered to every subscribed endpoint with one
// webhook-id per (event, endpoint). [Verify] gives the same checks to
// another harness (internal/chaosnet).
//
// # Files
//
//   - options.go: [Options], what a run is configured with, and its defaults.
//   - harness.go: [Run] and the harness: the Jumio simulator, the ingest,
//     worker, retriever and notifier processes, their setup and teardown,
//     and the phases of a run (load with chaos, restore, drain, check).
//   - nodes.go: the embedded NATS nodes (one, or a 3-node cluster), their
//     restarts, and waiting for JetStream.
//   - chaos.go: the chaos loops: SIGKILLs of workers and retrievers, NATS
//     restarts or cluster node losses, Jumio fault and latency injection.
//   - load.go: the submission workload: job bodies, even pacing, and
//     submissions retried with the same Idempotency-Key until accepted.
//   - invariants.go: draining: waiting until every job is decided or
//     dead-lettered, every erasure done and the notifiers idle.
//   - verify.go: [Pipeline] and [Verify], the end of every run: the drain,
//     the invariants, the erasure checks.
//   - erasure.go: [Eraser], the erasures of the load, and the marker fields
//     of a soak job ([UserReference], [Email]).
//   - scan.go: the marker scan of every stream (the erased jobs' job IDs and
//     references, and where the design keeps a job ID).
//   - webhooks.go: the endpoints ([RegisterWebhooks]), the receiver's
//     settings, and the check of its journal against the event streams.
//   - build.go: [Build], the binaries a run needs.
//   - report.go: what a run returns and prints: [Invariant], [Report] and its
//     Markdown rendering, [Report.Details], [Hostname].
//   - rate.go: [MeasureAccountRate] and [RateReport], the measurement of the
//     shared Jumio account-rate limit across workers.
package soak
