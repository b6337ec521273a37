// Package pipeline runs identity verifications through Jumio as a durable
// pipeline on NATS JetStream: an HTTP front door ([Ingest]) stores each job,
// stateless workers ([Worker]) drive Jumio's account API, and retrievers
// ([Retriever]) turn Jumio's callbacks, and their own polling, into exactly
// one decision event per workflow execution; notifiers ([Notifier]) deliver
// the lifecycle events and decisions to registered webhook endpoints
// ([WebhookEndpoints]) as signed HTTP POSTs. Everything that must survive a
// crash lives in JetStream: the work queues, the job records (checkpoints),
// the images and the webhook endpoints and deliveries. The wire contract (subjects, message types) is package
// messages; the Jumio client is package jumio.
//
// # Stages and their core
//
// Every consuming stage (worker, retriever, notifier, and the dead-letter
// sweeper) embeds one core (core.go): the JetStream handle,
// the job store, logger, clock, metrics, tracing and readiness, plus the two
// paths every stage shares. [classify] (outcome.go) maps any error to what it
// means for the message: transient (retry within the job's budget),
// throttled (wait without using it), terminal (give up), infrastructure
// (retry as is), canceled (hand back), or a configuration fault (Jumio
// refuses kycpipe's credentials, a permission or a portal setting: the
// region pauses and resumes by itself, pause.go). stage.settle applies that
// the same way everywhere, and stage.giveUp (giveup.go) dead-letters a message on
// kyc.dlq.<stage>, marks its job failed and publishes the failed event. A
// stage adds only its handlers; a runner (runner.go) pulls its messages with
// bounded concurrency and sends InProgress heartbeats while they run.
//
// # Files
//
//	doc.go             this overview
//	config.go          WorkerConfig, RetrieverConfig, IngestConfig, Delays: defaults and validation
//	topology.go        streams, consumers, buckets and their limits; Provision and Check
//	core.go            the stage core: settle (failure → outcome), chargeRecord, runners
//	outcome.go         outcomes (ack, retry, terminate, hand back) and the error classifier
//	giveup.go          the give-up path: dead letter, failed job, failed event
//	runner.go          the consume loop: pull, run, settle, heartbeats, graceful drain
//	pause.go           the pause gate: configuration faults pause a region, probes resume it
//	probe.go           ConfigFault, Clients.Probe and ProbePermission (harmless permission checks)
//	ready.go           the readiness cache (NATS connected, topology present)
//	publish.go         typed publishing (schema stamped, message IDs, trace context), lifecycle events
//	jobstate.go        JobRecord, the checkpoint of a job, and JobStore (the job-state bucket)
//	submit.go          Submitter: the one way to store a job (record, then message); RequestHash
//	worker.go          Worker: decode, validate, load the record
//	saga.go            the worker's saga: account, prepared data, images, finalize or launch
//	retriever.go       Retriever: callbacks and poll tasks → status, details, one decision
//	callbackchain.go   one callback-triggered retrieval chain per execution (a claim in the job-state bucket)
//	decision.go        normalizing Jumio's workflow details into a DecisionEvent
//	sweeper.go         dead letters for the messages JetStream gave up on (advisories)
//	deadletter.go      reading dead letters: DeadLetter, ListDeadLetters, GetDeadLetter
//	replay.go          ReplayDeadLetter: put a dead letter back, resuming its job (worker, retriever)
//	erase.go           the eraser: erasure tasks → Jumio deletion, every stored trace removed, tombstone, audit
//	erasureguard.go    a Jumio call that waited (account slot, rate limiter) looks for an erasure before it goes out
//	retention.go       the retention sweep: erasures of jobs past KYCPIPE_RETENTION (one sweeper at a time, a lease)
//	index.go           the job index (KYC_INDEX): listings by status, region, time, reference
//	ingest.go          Ingest: routes, middleware, health and readiness
//	ingest_submit.go   POST /v1/verifications: JSON and multipart bodies, images, idempotency
//	ingest_guard.go    checks before anything is stored: request bounds, capabilities, message size
//	ingest_upload.go   streaming image uploads: size limits, idle deadlines, purging failed uploads
//	ingest_idem.go     Idempotency-Key bindings: one key names one job
//	ingest_erase.go    DELETE /v1/verifications/{jobId}: erasure requests
//	doorrules.go       Jumio's rules for API image uploads: consent, the ID's country and type
//	images.go          Jumio's image rules: dimensions read from the header
//	jobview.go         GET /v1/verifications/{jobId}: JobView
//	callback.go        POST /v1/callbacks/jumio: checks, region, publish
//	callbackguard.go   callback defenses: secret path, source allowlist, trusted proxies, rate
//	auth.go            API keys
//	problem.go         RFC 9457 problem responses
//	clients.go         per-region Jumio clients
//	ratelimit.go       the tenant-wide rate limits shared by every replica (KV-backed GCRA)
//	backoff.go         backoff and Jumio's retrieval schedule (pure functions)
//	metrics.go         Prometheus metrics
//	trace.go           OpenTelemetry propagation and spans
//	notifier.go        Notifier: NotifierConfig, fan-out and delivery runners, readiness
//	notifier_fanout.go an event → one delivery job per subscribed endpoint (webhook-id as message ID)
//	notifier_deliver.go one signed attempt per delivery: attempts, retry schedule, 410, dead letter
//	notifier_cache.go  the endpoint registry mirrored by a KV watch; per-endpoint concurrency
//	notifier_metrics.go WebhookMetrics
//	webhook_endpoints.go WebhookEndpoints: the registry (create, list, get, update, delete, rotate)
//	webhook_secrets.go endpoint secrets at rest (AES-256-GCM with KYCPIPE_WEBHOOK_SECRET_KEY)
//	webhook_deliveries.go delivery jobs, the delivery log, Deliveries and Resend
//	webhook_api.go     the /v1/webhook-endpoints routes of ingest (scope admin)
//	webhook_erase.go   EraseWebhookData: a job's pending deliveries, log and counters
//	topology_webhooks.go the webhook streams, buckets and the notifier's consumers
//
// # Delivery semantics
//
// At-least-once everywhere, with idempotent effects: every Jumio side effect
// is recorded in the job record, with compare-and-swap on its revision,
// before the message that caused it is acked; published messages carry
// message IDs (package messages builds them) so JetStream drops repeats. A
// stage stopped by SIGTERM stops pulling, lets in-flight work finish within
// its grace period and hands the rest back.
package pipeline
