// Package messages is kycpipe's wire contract: the subjects and streams of
// the pipeline, the headers every message carries, and the typed, versioned
// payloads other systems read and write.
//
// # Subjects
//
// With the default prefix "kyc" (see [NewSubjects]):
//
//	kyc.jobs.submit          VerificationRequest   upstream/ingest → worker   (stream KYC_JOBS, work queue)
//	kyc.callbacks.<region>   CallbackReceived      ingest → retriever         (stream KYC_CALLBACKS, work queue)
//	kyc.retrieve.<region>    internal poll tasks   worker → retriever         (stream KYC_RETRIEVE, work queue)
//	kyc.events.<kind>        Event                 worker/retriever → anyone  (stream KYC_EVENTS, limits)
//	kyc.decisions.<TYPE>     DecisionEvent         retriever → downstream     (stream KYC_DECISIONS, limits)
//	kyc.dlq.<stage>          the original message  any stage → operators      (stream KYC_DLQ, limits)
//
// Every message the pipeline publishes carries the header Kyc-Job-Id. Jobs
// carry Nats-Msg-Id = job ID and decisions Nats-Msg-Id = workflow execution ID,
// so JetStream drops duplicates within the stream's duplicate window. Dead
// letters carry the original payload and Kyc-Stage, Kyc-Reason, Kyc-Error,
// Kyc-Deliveries and Kyc-Original-Subject.
//
// # Versioning and compatibility
//
// Every payload has a schema field: kycpipe.verification.v1,
// kycpipe.event.v1, kycpipe.callback.v1, kycpipe.decision.v1. An empty schema
// is read as the current version. Within a version, fields are only ever
// added; a field is never renamed, retyped or given a new meaning. A change
// that would break a reader gets a new schema version and new decoders, and
// the old version stays readable for at least one release.
//
// Requests are decoded strictly ([DecodeRequest]): an unknown field is an
// error, so a typo in an upstream system fails at the door instead of being
// silently ignored. Everything else (events, callbacks, decisions) is decoded
// tolerantly, so that readers keep working when a later version adds fields.
//
// # Validation
//
// [VerificationRequest.Validate] applies the pipeline's rules and Jumio's
// documented ones (package jumio), reporting every violation with its JSON
// path and never the value.
//
// # PII
//
// VerificationRequest.PreparedData and Parts, and DecisionEvent.Extraction,
// hold personal data. Never log them; the pipeline includes Extraction in
// decision events only when configured to.
package messages
